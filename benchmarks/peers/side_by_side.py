#!/usr/bin/python3
"""laminar beside PyTorch on whole networks: runs benchmarks/nets.cpp's binary and
nets_torch.py in alternation (laminar, PyTorch, laminar, PyTorch, ... one
repetition each, so a noisy neighbour hits both sides alike) and prints the
machine and a markdown table of medians.

    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/peers/side_by_side.py \\
        --laminar build/benchmarks/bench_nets [--threads 2 --batch 128 --repeat 5 --steps 3]

GFLOP/s on both sides divides laminar's forward FLOPs per image (its describe
table, a multiply-add counted as 2) by the measured time; a training step counts
3x the forward. The PyTorch float32 column is the faster of NCHW and
channels_last (named beside it); PyTorch bf16 is autocast training, also the
faster layout. laminar bf16 is Model<Net, cpu, bf16> (bf16 convolution operands,
float everything else), in training and inference. Each (net, pass) runs in a fresh process on both sides, so each peak
memory figure is that of its own training step.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

NETS = ("A", "B", "C")
PASSES = ("train", "infer")
NAMES = {"A": "A (VGG-style)", "B": "B (ResNet-20)", "C": "C (airbench94)"}


def run_json(command, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with status {done.returncode}: {done.stderr.strip()[-2000:]}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise SystemExit(f"{' '.join(command)} printed no JSON ({error}): {done.stdout[:500]!r}")


def laminar_once(binary, net, mode, args, env):
    report = run_json([binary, f"--batch={args.batch}", f"--steps={args.steps}", "--benchmark_repetitions=1",
                       "--benchmark_report_aggregates_only=false", f"--benchmark_filter=^net_{net}/{mode}/",
                       "--benchmark_format=json"], env)
    runs = [b for b in report["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    if len(runs) != 1:
        raise SystemExit(f"{binary} ran {len(runs)} cases for net_{net}/{mode}, expected 1: is it bench_nets?")
    return runs[0]


def torch_once(script, net, mode, args, env):
    return run_json([sys.executable, str(script), "--net", net, "--pass", mode, "--threads", str(args.threads),
                     "--batch", str(args.batch), "--steps", str(args.steps), "--repeat", "1", "--json"], env)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def best_layout(records, precision):
    """(median img/s, layout) of the faster layout at this precision, or None."""
    by_layout = {}
    for r in records:
        if r["precision"] == precision:
            by_layout.setdefault(r["layout"], []).append(r["img_per_s"])
    if not by_layout:
        return None
    return max((statistics.median(v), layout) for layout, v in by_layout.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--laminar", required=True, help="the bench_nets binary")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5, help="alternating repetitions per side; medians reported")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repetition")
    parser.add_argument("--net", choices=NETS, action="append", help="net to run (repeatable; default all)")
    args = parser.parse_args()
    for name in ("threads", "batch", "repeat", "steps"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    binary = os.path.abspath(args.laminar)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"--laminar {args.laminar} is not an executable file; build the bench_nets target first")
    script = pathlib.Path(__file__).resolve().with_name("nets_torch.py")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    nets = args.net or NETS

    laminar = {(n, m): [] for n in nets for m in PASSES}
    laminar_bf16 = {(n, m): [] for n in nets for m in PASSES}
    torch_records = {(n, m): [] for n in nets for m in PASSES}
    torch_version = None
    for round_index in range(args.repeat):
        for net in nets:
            for mode in PASSES:
                print(f"round {round_index + 1}/{args.repeat}: net_{net}/{mode}", file=sys.stderr, flush=True)
                laminar[net, mode].append(laminar_once(binary, net, mode, args, env))
                laminar_bf16[net, mode].append(laminar_once(binary, net, mode + "_bf16", args, env))
                peer = torch_once(script, net, mode, args, env)
                torch_version = peer["torch"]
                torch_records[net, mode] += peer["records"]

    for net in nets:
        ours, theirs = laminar[net, "train"][0]["parameters"], torch_records[net, "train"][0]["parameters"]
        if int(ours) != int(theirs):
            raise SystemExit(f"net {net} has {int(ours)} trainable parameters in laminar but {theirs} in PyTorch: "
                             "the two definitions differ")

    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; {args.threads} threads; torch {torch_version}; "
          f"OPENBLAS_CORETYPE {coretype}")
    print(f"batch {args.batch}, 3x32x32; medians of {args.repeat} alternating repetitions of "
          f"{args.steps} steps after a warm-up step")
    for net in nets:
        first = laminar[net, "train"][0]
        print(f"net {NAMES[net]}: {int(first['parameters'])} parameters, {first['fwd_MFLOP']:.3f} MFLOP forward per "
              f"image (laminar describe, multiply-add = 2 FLOPs)")
    print()
    print("| net | pass | laminar img/s | laminar GFLOP/s | PyTorch fp32 img/s (layout) | PyTorch fp32 GFLOP/s "
          "| laminar / PyTorch fp32 | laminar bf16 img/s | PyTorch bf16 img/s (layout) "
          "| laminar bf16 / PyTorch fp32 | laminar bf16 / PyTorch bf16 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for net in nets:
        for mode in PASSES:
            runs = laminar[net, mode]
            ours = statistics.median(r["img/s"] for r in runs)
            flops = runs[0]["fwd_MFLOP"] * 1e6 * (3 if mode == "train" else 1)
            fp32, fp32_layout = best_layout(torch_records[net, mode], "fp32")
            ours_bf16 = statistics.median(r["img/s"] for r in laminar_bf16[net, mode])
            bf16 = best_layout(torch_records[net, mode], "bf16")
            bf16_cell = f"{bf16[0]:.0f} ({bf16[1]})" if bf16 else "—"
            bf16_ratio = f"{ours_bf16 / bf16[0]:.2f}×" if bf16 else "—"
            print(f"| {NAMES[net]} | {mode} | {ours:.0f} | {ours * flops / 1e9:.1f} | {fp32:.0f} ({fp32_layout}) "
                  f"| {fp32 * flops / 1e9:.1f} | {ours / fp32:.2f}× | {ours_bf16:.0f} | {bf16_cell} "
                  f"| {ours_bf16 / fp32:.2f}× | {bf16_ratio} |")
    print()
    print("| net | training step peak resident growth, laminar | PyTorch fp32 NCHW |")
    print("|---|---|---|")
    for net in nets:
        ours = [r["peak_MiB"] for r in laminar[net, "train"] if "peak_MiB" in r]
        theirs = [r["peak_MiB"] for r in torch_records[net, "train"] if "peak_MiB" in r]
        ours_cell = f"{statistics.median(ours):.0f} MiB" if ours else "—"
        theirs_cell = f"{statistics.median(theirs):.0f} MiB" if theirs else "—"
        print(f"| {NAMES[net]} | {ours_cell} | {theirs_cell} |")


if __name__ == "__main__":
    main()
