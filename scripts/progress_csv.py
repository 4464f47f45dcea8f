#!/usr/bin/env python3
"""Turns the epoch lines an example printed into the epoch CSV that plot_log reads.

The CIFAR examples print one progress line per epoch (train::ProgressBar):

  epoch 3/8 [====] 313/313  loss 1.0313  acc  63.08%  260 img/s  2:34  | valid loss 1.3552  acc  58.54%  lr 0.07546

This reads a saved log of them and writes the columns of train::write_epoch_csv
(accuracies as fractions, seconds from the printed m:ss or h:mm:ss, fields the
line does not have left empty), so a run that was logged only to the terminal
still gets its curves:

  scripts/progress_csv.py run.log [--run K] --out epochs.csv
  build/examples/plot_log --epochs epochs.csv --out curves.svg

A log with several trainings (distill_cifar's teacher, student alone, distilled
student) holds several runs: a run starts at every "epoch 1/"; --run K (from 1)
picks one. Errors name the file and line and exit with status 1.
"""

import argparse
import os
import re
import sys
import tempfile

HEADER = "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,learning_rate,seconds,images_per_second"

EPOCH = re.compile(r"^epoch\s+(\d+)/(\d+)\s+\[[=> .]*\]\s+\d+/\d+\s+(?P<rest>.*)$")
FIELDS = {
    "train_loss": re.compile(r"^\s*loss\s+(\S+)"),
    "train_accuracy": re.compile(r"^\s*loss\s+\S+\s+acc\s+(\S+)%"),
    "images_per_second": re.compile(r"(\S+)\s+img/s"),
    "seconds": re.compile(r"img/s\s+(\d+(?::\d\d){1,2})"),
    "valid_loss": re.compile(r"\|\s*valid loss\s+(\S+)"),
    "valid_accuracy": re.compile(r"\|\s*valid loss\s+\S+\s+acc\s+(\S+)%"),
    "learning_rate": re.compile(r"\blr\s+(\S+)"),
}


def seconds(clock):
    value = 0
    for part in clock.split(":"):
        value = value * 60 + int(part)
    return value


def parse(path):
    """The runs in the log, each a list of {column: text} in epoch order."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:  # keep the \r redraws
        text = f.read()
    runs = []
    # The progress bar redraws with carriage returns: only the last drawing of a line counts.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r").split("\r")[-1].strip()
        match = EPOCH.match(line)
        if not match:
            continue
        epoch, rest = int(match.group(1)), match.group("rest")
        if epoch == 1 or not runs:
            runs.append([])
        if runs[-1] and epoch != int(runs[-1][-1]["epoch"]) + 1:
            raise ValueError(f"{path}:{number}: epoch {epoch} follows epoch {runs[-1][-1]['epoch']}")
        record = {"epoch": str(epoch)}
        for name, pattern in FIELDS.items():
            found = pattern.search(rest)
            if not found:
                continue
            value = found.group(1)
            if name.endswith("accuracy"):
                value = f"{float(value) / 100:.6g}"
            elif name == "seconds":
                value = str(seconds(value))
            else:
                float(value)  # refuse a field that is not a number
            record[name] = value
        if "train_loss" not in record:
            raise ValueError(f"{path}:{number}: an epoch line without a training loss: {line!r}")
        runs[-1].append(record)
    if not runs:
        raise ValueError(f"{path}: no epoch lines (\"epoch N/M [...] ... loss ...\") in the log")
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log")
    parser.add_argument("--run", type=int, default=1, help="which training of the log, from 1")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        runs = parse(args.log)
        if not 1 <= args.run <= len(runs):
            raise ValueError(f"{args.log}: --run {args.run}, but the log holds {len(runs)} run(s)")
        rows = [HEADER] + [",".join(r.get(c, "") for c in HEADER.split(",")) for r in runs[args.run - 1]]
        directory = os.path.dirname(os.path.abspath(args.out))
        # Written beside the target and renamed over it, so a failure leaves no half file.
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
            f.write("\n".join(rows) + "\n")
        os.replace(f.name, args.out)
    except (OSError, ValueError) as error:
        print(f"progress_csv: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
