#!/usr/bin/env python3
"""scripts/progress_csv.py against a hand-written log: the exact CSV it must write,
the errors it must give, and (with --plot-log PATH) that plot_log reads the result."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "progress_csv.py")
HEADER = "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,learning_rate,seconds,images_per_second"

# Two trainings as the examples print them: the bar redrawn with carriage returns,
# then a second run without validation (the speedrun's lines), one over an hour.
LOG = (
    "CIFAR-10 from build/data/cifar10: 40000 training images\n"
    "teacher ResNet-56, 2 epochs\n"
    "epoch 1/2 [====>      ] 100/313  loss 2.1000  acc  20.00%\r"
    "epoch 1/2 [===========] 313/313  loss 1.8039  acc  31.52%     251 img/s  2:40  | valid loss 1.4295  acc  46.55%  lr 0.09905\n"
    "epoch 2/2 [===========] 313/313  loss 1.2464  acc  54.85%     250 img/s  2:40  | valid loss 2.4834  acc  40.35%  lr 0.09082\n"
    "student alone\n"
    "epoch  1/10 [========================] 39/39  loss 1.8353  acc  45.67%     364 img/s  1:50  lr 0.8922\n"
    "epoch  2/10 [========================] 39/39  loss 1.4373  acc  70.08%      10 img/s  1:02:05  lr 1.5\n"
    "training: 1031.7 s\n"
)

EXPECTED = {
    1: [HEADER,
        "1,1.8039,0.3152,1.4295,0.4655,0.09905,160,251",
        "2,1.2464,0.5485,2.4834,0.4035,0.09082,160,250"],
    2: [HEADER,
        "1,1.8353,0.4567,,,0.8922,110,364",
        "2,1.4373,0.7008,,,1.5,3725,10"],
}

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED:", what)


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def main():
    plot_log = sys.argv[sys.argv.index("--plot-log") + 1] if "--plot-log" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "run.log")
        with open(log, "w") as f:
            f.write(LOG)
        for k, lines in EXPECTED.items():
            out = os.path.join(tmp, f"run{k}.csv")
            result = run(log, "--run", str(k), "--out", out)
            check(result.returncode == 0, f"--run {k} exits 0 (stderr: {result.stderr.strip()})")
            with open(out) as f:
                got = f.read()
            check(got == "\n".join(lines) + "\n", f"--run {k} writes the expected CSV, got:\n{got}")
            if plot_log:
                svg = os.path.join(tmp, f"run{k}.svg")
                drawn = subprocess.run([plot_log, "--epochs", out, "--out", svg], capture_output=True, text=True)
                check(drawn.returncode == 0 and os.path.getsize(svg) > 0,
                      f"plot_log reads run {k}'s CSV ({drawn.stderr.strip()})")

        # Errors: status 1, a message naming the file (and line), the old target left as it was.
        target = os.path.join(tmp, "keep.csv")
        with open(target, "w") as f:
            f.write("old\n")
        gap = os.path.join(tmp, "gap.log")
        with open(gap, "w") as f:
            f.write(LOG.replace("epoch 2/2", "epoch 3/2"))
        plain = os.path.join(tmp, "plain.log")
        with open(plain, "w") as f:
            f.write("CIFAR-10 from build/data/cifar10\ntraining: 1031.7 s\n")
        for args, message in [
            ([log, "--run", "3"], "--run 3, but the log holds 2 run(s)"),
            ([gap], f"{gap}:4: epoch 3 follows epoch 1"),
            ([plain], "no epoch lines"),
            ([os.path.join(tmp, "missing.log")], "missing.log"),
        ]:
            result = run(*args, "--out", target)
            check(result.returncode == 1 and message in result.stderr,
                  f"{args[1:] or args} fails naming {message!r}, got {result.returncode}: {result.stderr.strip()}")
            with open(target) as f:
                check(f.read() == "old\n", f"{args} leaves the existing output untouched")
        check(not [n for n in os.listdir(tmp) if n.endswith(".tmp")], "no temporary file is left behind")
    print("progress_csv:", "FAILED" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
