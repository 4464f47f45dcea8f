#!/usr/bin/python3
"""PyTorch peer for benchmarks/nets.cpp: the same three networks (float32,
3x32x32 inputs, 10 classes), a training step (forward, cross-entropy,
backward, SGD momentum 0.9) and inference (eval mode, no_grad), on the CPU.

    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/peers/nets_torch.py --net A [--pass train]
        [--threads 2 --batch 128 --steps 3 --repeat 5] [--json]

Each net is written layer for layer as laminar's, so both do the same work:
  A  the Keras-questions VGG-style net (same 3x3 convs 32-32-64-64-128-128,
     2x2 max pools, dropout 0.2 / 0.5, dense 1024-512-10).
  B  ResNet-20 (He et al. 2016) with laminar's shortcut: where a block halves
     the size and doubles the width, the shortcut is a strided 1x1 convolution
     with bias (a projection, no BN), not the paper's zero-padded option A.
  C  the airbench94 net: a 2x2 valid whitening conv + GELU, three groups of
     conv - max pool - BN - GELU - conv - BN - GELU at widths 64/256/256, global
     max pool, linear head. nn.GELU() is the exact erf form, as laminar's GELU.
Every convolution has a bias, as laminar's Conv always does (airbench's own
convs have none). BN uses PyTorch's defaults (momentum 0.1, eps 1e-5), which
are laminar's too.

Variants: float32 in NCHW and in channels_last, and bfloat16 autocast
(torch.autocast("cpu", dtype=torch.bfloat16)) for training. Each repetition
times `steps` steps after one warm-up step; the median over repetitions is
reported. peak_MiB is the growth of the resident set from before the model is
built to the peak during the timed steps (getrusage's ru_maxrss, its high-water
mark reset first through /proc/self/clear_refs), given only for the first
variant the process runs (float32 NCHW training of the first net and pass):
later ones reuse memory the process already holds.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

CLASSES = 10


def conv(c_in, c_out, kernel=3, stride=1, padding=1):
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=True)


def net_a():
    layers = []
    c_in = 3
    for width in (32, 64, 128):
        layers += [conv(c_in, width), nn.ReLU(), conv(width, width), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2)]
        c_in = width
    layers += [nn.Flatten(), nn.Linear(128 * 4 * 4, 1024), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(1024, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, CLASSES)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """relu(conv-BN-ReLU-conv-BN(x) + shortcut(x)); laminar's Residual followed by ReLU."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.branch = nn.Sequential(conv(c_in, c_out, stride=stride), nn.BatchNorm2d(c_out), nn.ReLU(),
                                    conv(c_out, c_out), nn.BatchNorm2d(c_out))
        changes_shape = stride != 1 or c_in != c_out
        self.shortcut = conv(c_in, c_out, kernel=1, stride=stride, padding=0) if changes_shape else nn.Identity()

    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x))


def net_b():
    layers = [conv(3, 16), nn.BatchNorm2d(16), nn.ReLU()]
    c_in = 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(BasicBlock(c_in, width, 2 if stage > 0 and block == 0 else 1))
            c_in = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, CLASSES)]
    return nn.Sequential(*layers)


def net_c():
    layers = [conv(3, 24, kernel=2, padding=0), nn.GELU()]
    c_in = 24
    for width in (64, 256, 256):
        layers += [conv(c_in, width), nn.MaxPool2d(2), nn.BatchNorm2d(width), nn.GELU(),
                   conv(width, width), nn.BatchNorm2d(width), nn.GELU()]
        c_in = width
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(256, CLASSES)]
    return nn.Sequential(*layers)


NETS = {"A": net_a, "B": net_b, "C": net_c}
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def resident_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmRSS line")


def reset_peak():
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(net, mode, layout, precision, batch, steps, repeat, track_memory):
    """One variant: returns its record, img/s the median over `repeat` repetitions."""
    if track_memory:
        reset_peak()
        start = resident_kib()
    torch.manual_seed(0)
    model = NETS[net]().to(memory_format=LAYOUTS[layout])
    x = torch.randn(batch, 3, 32, 32).to(memory_format=LAYOUTS[layout])
    labels = torch.randint(0, CLASSES, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    if mode == "train":
        model.train()

        def step():
            optimizer.zero_grad(set_to_none=True)
            if precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = F.cross_entropy(model(x), labels)
            else:
                loss = F.cross_entropy(model(x), labels)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)

    step()  # warm-up: oneDNN creates and caches its primitives
    samples = []
    for _ in range(repeat):
        begin = time.perf_counter()
        for _ in range(steps):
            step()
        samples.append(batch * steps / (time.perf_counter() - begin))
    record = {"net": net, "pass": mode, "layout": layout, "precision": precision,
              "img_per_s": statistics.median(samples), "samples": samples,
              "parameters": sum(p.numel() for p in model.parameters())}
    if track_memory:
        record["peak_MiB"] = (peak_kib() - start) / 1024
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", choices=sorted(NETS), action="append",
                        help="net to run (repeatable; default all)")
    parser.add_argument("--pass", dest="passes", choices=("train", "infer"), action="append",
                        help="pass to run (repeatable; default both)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repetition")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions, the median is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON list of records")
    args = parser.parse_args()
    for name in ("threads", "batch", "steps", "repeat"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)

    records = []
    for net in args.net or sorted(NETS):
        for mode in args.passes or ("train", "infer"):
            variants = [(layout, "fp32") for layout in LAYOUTS]
            if mode == "train":
                variants += [(layout, "bf16") for layout in LAYOUTS]
            for layout, precision in variants:
                records.append(measure(net, mode, layout, precision, args.batch, args.steps, args.repeat,
                                       track_memory=not records))
    if args.json:
        json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "records": records}, sys.stdout)
        print()
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"median of {args.repeat} x {args.steps} steps")
    for r in records:
        memory = f" {r['peak_MiB']:8.1f} MiB peak" if "peak_MiB" in r else ""
        print(f"net_{r['net']}/{r['pass']:5s} {r['precision']} {r['layout']:13s} {r['img_per_s']:9.1f} img/s{memory}")


if __name__ == "__main__":
    main()
