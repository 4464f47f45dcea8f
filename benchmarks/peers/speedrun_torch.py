#!/usr/bin/python3
"""PyTorch peer for examples/speedrun_cifar: the airbench94 recipe (after Keller
Jordan's airbench94, 2024) written to the spec both implement, trained on the CPU.

    /usr/bin/python3 benchmarks/peers/speedrun_torch.py [--data build/data/cifar10] [--seeds 1,2,3]
        [--precision fp32|bf16] [--threads 2] [--final [--test FILE]] [--epochs 9.9] [--limit N]
        [--json FILE] [--max-steps K]
    full runs:  /usr/bin/python3 benchmarks/peers/speedrun_torch.py --seeds 1,2,3 --precision fp32 --json FILE
                /usr/bin/python3 benchmarks/peers/speedrun_torch.py --seeds 1,2,3 --precision bf16 --json FILE

The network, initialisation, optimiser, schedule, lookahead, augmentation and
six-view evaluation are those of the shared recipe, so the accuracies compare
with laminar's speedrun_cifar seed for seed in distribution (not bit for bit:
the two draw different random numbers), and the training seconds compare like
for like: both time from the first step to the last, per-epoch augmentation
included, data loading, whitening set-up and evaluation excluded. Where this
file had to read the spec one way, the comment at that place says so.

glibc's malloc hands large freed blocks back to the kernel, so every step would
fault its activations in afresh; the script re-executes itself with
MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ in the environment (unless
they are set already) and prints the values in force.
"""
import os
import sys

# Measured with glibc 2.36 (malloc 256 MiB, touch it, free it, repeat): by default each
# round faults every page in again; with these values only the first round does.
# The threshold above any tensor keeps big blocks on the heap instead of in their own
# mmap, and the trim threshold keeps the heap from being handed back when they are freed.
MALLOC_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": "17179869184",
    "MALLOC_TRIM_THRESHOLD_": "34359738368",
}


def reexecute_with_malloc_settings():
    missing = {name: value for name, value in MALLOC_SETTINGS.items() if name not in os.environ}
    if missing and os.environ.get("SPEEDRUN_TORCH_REEXECUTED") != "1":
        environment = dict(os.environ, SPEEDRUN_TORCH_REEXECUTED="1", **missing)
        sys.stdout.flush()
        os.execve(sys.executable, sys.orig_argv, environment)


reexecute_with_malloc_settings()

import argparse  # noqa: E402  (imported after the re-execution: torch loads once, in its final environment)
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CLASSES = 10
RECORD_BYTES = 1 + 3 * 32 * 32
BATCH = 1024
MOMENTUM = 0.85
# airbench sums its loss over the batch; these are its constants for that sum, and
# lr * batch, weight_decay / batch give the identical update on the mean loss.
LEARNING_RATE_SUM = 11.5 / (BATCH * (1 + 1 / (1 - MOMENTUM)))
WEIGHT_DECAY_SUM = 0.0153 * BATCH / (BATCH * (1 + 1 / (1 - MOMENTUM)))
LEARNING_RATE = LEARNING_RATE_SUM * BATCH
WEIGHT_DECAY = WEIGHT_DECAY_SUM / BATCH
BATCH_NORM_BIAS_SCALE = 64
LABEL_SMOOTHING = 0.2
WHITEN_BIAS_EPOCHS = 3
WHITEN_IMAGES = 5000
WHITEN_EPSILON = 5e-4
LOOKAHEAD_EVERY = 5
EVALUATION_BATCH = 2000


def read_cifar(path):
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) of one CIFAR-10 binary batch."""
    try:
        with open(path, "rb") as file:
            raw = bytearray(file.read())
    except OSError as error:
        sys.exit(f"{path}: cannot read the CIFAR-10 batch ({error.strerror})")
    if not raw or len(raw) % RECORD_BYTES:
        sys.exit(f"{path}: {len(raw)} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records")
    records = torch.frombuffer(raw, dtype=torch.uint8).view(-1, RECORD_BYTES)
    labels = records[:, 0].long()
    if int(labels.max()) >= CLASSES:
        sys.exit(f"{path}: label {int(labels.max())} is outside 0..9; the file is not CIFAR-10")
    images = records[:, 1:].reshape(-1, 3, 32, 32).clone()
    return images, labels


def read_set(paths, limit):
    parts = [read_cifar(path) for path in paths]
    images = torch.cat([images for images, _ in parts])
    labels = torch.cat([labels for _, labels in parts])
    if limit:
        images, labels = images[:limit].contiguous(), labels[:limit].contiguous()
    return images, labels


def channel_statistics(images):
    """Per-channel mean and standard deviation of images / 255, exact from byte histograms.
    Interpretation: the population standard deviation (divided by n, not n - 1)."""
    values = torch.arange(256, dtype=torch.float64) / 255
    means, deviations = [], []
    for channel in range(3):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).double()
        total = counts.sum()
        mean = (counts * values).sum() / total
        variance = (counts * values * values).sum() / total - mean * mean
        means.append(float(mean))
        deviations.append(math.sqrt(float(variance)))
    return torch.tensor(means), torch.tensor(deviations)


class Normaliser:
    """uint8 (N, 3, 32, 32) -> float32 (x / 255 - mean) / std in channels_last."""

    def __init__(self, mean, deviation):
        self.shift = (mean * 255).view(1, 3, 1, 1)
        self.scale = (1 / (deviation * 255)).view(1, 3, 1, 1)

    def __call__(self, images):
        x = images.contiguous(memory_format=torch.channels_last).float()
        return x.sub_(self.shift).mul_(self.scale)


def reflect_index(size, pad):
    """Source index of every position of a reflect-padded axis (no edge repeat, as F.pad's 'reflect')."""
    return torch.tensor([abs(i) if i < size else 2 * (size - 1) - i for i in range(-pad, size + pad)])


def augment_epoch(images, flip_bits, epoch, generator, pad=2):
    """One epoch's training images (uint8, N x 3 x 32 x 32): alternating flip, then a random 32x32
    crop of the 2-pixel reflect pad, as two gathers with no padded copy. The reflect pad is
    symmetric, so mirroring the padded image maps padded column k to 35 - k: the flip is folded
    into the column index. Rows move as whole 32-byte rows (viewed as four int64)."""
    count, size = images.shape[0], images.shape[-1]
    padded_source = reflect_index(size, pad)  # padded position -> source position
    offsets = torch.arange(size)
    rows = torch.randint(0, 2 * pad + 1, (count, 1), generator=generator) + offsets
    columns = torch.randint(0, 2 * pad + 1, (count, 1), generator=generator) + offsets
    mirror = (flip_bits ^ bool(epoch % 2)).unsqueeze(1)
    columns = torch.where(mirror, size + 2 * pad - 1 - columns, columns)
    column_index = padded_source[columns].view(count, 1, 1, size).expand(count, 3, size, size)
    cropped = images.gather(3, column_index)
    row_index = padded_source[rows].view(count, 1, size, 1).expand(count, 3, size, size // 8)
    return cropped.view(torch.int64).gather(2, row_index).view(torch.uint8)


def batch_norm(width):
    # running = 0.6 * running + 0.4 * batch; gamma stays at 1, only beta trains.
    norm = nn.BatchNorm2d(width, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(False)
    return norm


def identity_filters(convolution):
    """The first c_in output filters pass their input channel through (airbench's partial dirac)."""
    with torch.no_grad():
        nn.init.dirac_(convolution.weight[:convolution.in_channels])


def group(c_in, width):
    # The bias of a convolution feeding a BatchNorm has zero gradient, so it is left out.
    first = nn.Conv2d(c_in, width, 3, padding=1, bias=False)
    second = nn.Conv2d(width, width, 3, padding=1, bias=False)
    identity_filters(first)
    identity_filters(second)
    return nn.Sequential(first, nn.MaxPool2d(2), batch_norm(width), nn.GELU(),
                         second, batch_norm(width), nn.GELU())


class Airbench(nn.Module):
    """whiten 2x2 -> GELU -> groups 64, 256, 256 -> global max pool -> linear / 9 (input 3x32x32)."""

    def __init__(self):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        self.groups = nn.Sequential(group(24, 64), group(64, 256), group(256, 256))
        self.head = nn.Linear(256, CLASSES, bias=False)

    def forward(self, x):
        x = self.groups(F.gelu(self.whiten(x)))
        return self.head(x.amax(dim=(2, 3))) * (1 / 9)


def initialise_whitening(whiten, images, normalise):
    """Whitening filters from the uncentred second moment of all 2x2 patches of the first 5000
    images: S = (1/n) sum v v^T = sum l_k e_k e_k^T; filter k = e_k / sqrt(l_k + 5e-4), eigenvalues
    descending, then the same twelve negated; bias 0. Accumulated in float64."""
    moment = torch.zeros(12, 12, dtype=torch.float64)
    patches_seen = 0
    for start in range(0, images.shape[0], 500):
        x = normalise(images[start:start + 500]).contiguous().double()
        # (n, 3, 31, 31, 2, 2) -> (n, 31, 31, 3, 2, 2): each patch ordered channel, row, column
        patches = x.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        moment += patches.T @ patches
        patches_seen += patches.shape[0]
    moment /= patches_seen
    eigenvalues, eigenvectors = torch.linalg.eigh(moment)  # ascending
    order = torch.argsort(eigenvalues, descending=True)
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    filters = (eigenvectors.T / torch.sqrt(eigenvalues + WHITEN_EPSILON).unsqueeze(1)).reshape(12, 3, 2, 2)
    with torch.no_grad():
        whiten.weight.copy_(torch.cat([filters, -filters]).float())
        whiten.bias.zero_()
    whiten.weight.requires_grad_(False)


class Lookahead:
    """airbench's "EMA": a slow copy of every parameter and running statistic; slow = d * slow +
    (1 - d) * fast, then fast = slow."""

    def __init__(self, model):
        self.slow = {name: value.detach().clone() for name, value in model.state_dict().items()
                     if value.is_floating_point()}

    @torch.no_grad()
    def update(self, model, decay):
        for name, fast in model.state_dict().items():
            if name in self.slow:
                slow = self.slow[name]
                slow.lerp_(fast, 1 - decay)
                fast.copy_(slow)


def learning_rate_multiplier(step, total):
    """Piecewise linear through (0, 0.2), (floor(0.2 S), 1), (S, 0)."""
    peak = int(0.2 * total)
    if step < peak:
        return 0.2 + 0.8 * step / peak
    return (total - step) / (total - peak)


def autocast(enabled):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def evaluate(model, images, labels, normalise, bf16):
    """(accuracy with the six views, accuracy of the plain view): {identity, +1 and -1 pixel diagonal
    shifts with reflect border} x {unflipped, mirrored}, logits averaged with equal weights."""
    model.eval()
    correct_views = correct_plain = 0
    for start in range(0, images.shape[0], EVALUATION_BATCH):
        x = normalise(images[start:start + EVALUATION_BATCH])
        y = labels[start:start + EVALUATION_BATCH]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        views = [x, padded[:, :, 0:32, 0:32], padded[:, :, 2:34, 2:34]]
        views += [view.flip(3) for view in views]
        with autocast(bf16):
            logits = [model(view.contiguous(memory_format=torch.channels_last)).float() for view in views]
        correct_plain += int((logits[0].argmax(1) == y).sum())
        correct_views += int((torch.stack(logits).mean(0).argmax(1) == y).sum())
    model.train()
    return correct_views / images.shape[0], correct_plain / images.shape[0]


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def train_seed(seed, data, args):
    run_start = time.perf_counter()
    train_images, train_labels = data["train"]
    normalise = data["normalise"]
    count = train_images.shape[0]
    steps_per_epoch = count // BATCH
    total_steps = math.ceil(args.epochs * steps_per_epoch)
    steps = min(total_steps, args.max_steps) if args.max_steps else total_steps

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = Airbench()
    initialise_whitening(model.whiten, train_images[:WHITEN_IMAGES], normalise)
    model = model.to(memory_format=torch.channels_last).train()

    norm_biases = [module.bias for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    norm_ids = {id(p) for p in norm_biases}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in norm_ids]
    # Coupled weight decay on every trainable tensor, weights and biases alike.
    optimiser = torch.optim.SGD(
        [dict(params=norm_biases, lr=LEARNING_RATE * BATCH_NORM_BIAS_SCALE,
              weight_decay=WEIGHT_DECAY / BATCH_NORM_BIAS_SCALE),
         dict(params=others, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)],
        momentum=MOMENTUM, nesterov=True, foreach=True)
    for parameter_group in optimiser.param_groups:
        parameter_group["base_lr"] = parameter_group["lr"]
    lookahead = Lookahead(model)
    flip_bits = torch.rand(count, generator=generator) < 0.5
    setup_seconds = time.perf_counter() - run_start

    epochs_log, step_seconds = [], []
    faults_before = minor_faults()
    train_start = time.perf_counter()
    for step in range(steps):
        step_start, step_faults = time.perf_counter(), minor_faults()
        epoch, position = divmod(step, steps_per_epoch)
        if position == 0:
            epoch_start, epoch_loss, epoch_correct, epoch_steps = step_start, 0.0, 0, 0
            # Interpretation: the whiten bias trains in epochs 0, 1, 2 and is frozen (no update, no
            # decay, no momentum) from epoch 3; the lookahead still averages it, as airbench's does.
            model.whiten.bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)
            augmented = augment_epoch(train_images, flip_bits, epoch, generator)
            # Interpretation: batches are drawn from a fresh random permutation every epoch.
            order = torch.randperm(count, generator=generator)
        chosen = order[position * BATCH:(position + 1) * BATCH]
        x, y = normalise(augmented[chosen]), train_labels[chosen]

        multiplier = learning_rate_multiplier(step, total_steps)
        for parameter_group in optimiser.param_groups:
            parameter_group["lr"] = parameter_group["base_lr"] * multiplier
        with autocast(args.precision == "bf16"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=LABEL_SMOOTHING)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

        if (step + 1) % LOOKAHEAD_EVERY == 0:
            lookahead.update(model, decay=0.95 ** 5 * ((step + 1) / total_steps) ** 3)
        if step + 1 == steps:
            lookahead.update(model, decay=1.0)

        epoch_loss += float(loss)
        epoch_correct += int((logits.argmax(1) == y).sum())
        epoch_steps += 1
        now = time.perf_counter()
        step_seconds.append(now - step_start)
        if args.max_steps:
            print(f"  step {step + 1}: {now - step_start:.3f} s, {minor_faults() - step_faults} page faults", flush=True)
        if position + 1 == steps_per_epoch or step + 1 == steps:
            record = {"epoch": epoch + 1, "steps": epoch_steps, "train_loss": epoch_loss / epoch_steps,
                      "train_accuracy": epoch_correct / (epoch_steps * BATCH), "seconds": now - epoch_start}
            epochs_log.append(record)
            print(f"seed {seed} epoch {record['epoch']:2d} ({epoch_steps} steps): train loss {record['train_loss']:.4f}"
                  f"  train accuracy {100 * record['train_accuracy']:6.2f}%  {record['seconds']:6.2f} s", flush=True)
    train_seconds = time.perf_counter() - train_start
    faults = minor_faults() - faults_before

    evaluations = {}
    for name, (images, labels) in ({} if args.max_steps else data["evaluate"]).items():
        evaluations[name] = evaluate(model, images, labels, normalise, args.precision == "bf16")
    total_seconds = time.perf_counter() - run_start
    result = {"seed": seed, "precision": args.precision, "steps": steps, "total_steps": total_steps,
              "steps_per_epoch": steps_per_epoch, "train_seconds": train_seconds, "total_seconds": total_seconds,
              "setup_seconds": setup_seconds, "seconds_per_step": train_seconds / steps,
              "median_step_seconds": statistics.median(step_seconds), "images_per_second": steps * BATCH / train_seconds,
              "minor_faults_per_step": faults / steps, "epochs": epochs_log}
    for name, (with_views, plain) in evaluations.items():
        result[f"{name}_accuracy_tta"] = with_views
        result[f"{name}_accuracy"] = plain
    primary = next(iter(evaluations), None)
    accuracy = (f"{primary} accuracy {100 * evaluations[primary][0]:.2f}% with TTA, {100 * evaluations[primary][1]:.2f}%"
                f" without" if primary else "no evaluation set")
    print(f"seed {seed}: {accuracy}; training {train_seconds:.1f} s, total {total_seconds:.1f} s, "
          f"{train_seconds / steps:.3f} s/step, {steps * BATCH / train_seconds:.0f} images/s, "
          f"{faults / steps:.0f} page faults/step", flush=True)
    return result


def spread(name, values, scale=1.0, unit=""):
    values = [scale * v for v in values]
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"{name}: mean {statistics.fmean(values):.3f}{unit}, min-max {min(values):.3f}-{max(values):.3f}{unit}, "
            f"std {deviation:.3f}{unit}")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="build/data/cifar10", help="folder of the decompressed data_batch_N.bin")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds, one run each")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast to bfloat16 with float32 master weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--final", action="store_true", help="train on all five batches, no validation")
    parser.add_argument("--test", help="a test_batch.bin to evaluate on after training")
    parser.add_argument("--epochs", type=float, default=9.9)
    parser.add_argument("--limit", type=int, default=0,
                        help="use only the first N training and first N evaluation images (0: all)")
    parser.add_argument("--json", help="write the per-seed results to this file")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="debug: stop after K steps (the schedule still spans the full run), print each step's time, "
                        "skip the evaluation")
    args = parser.parse_args()
    try:
        args.seed_list = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if args.threads <= 0:
        parser.error(f"--threads must be positive, got {args.threads}")
    if not args.epochs > 0:
        parser.error(f"--epochs must be positive, got {args.epochs}")
    if args.limit < 0:
        parser.error(f"--limit must be 0 (all) or positive, got {args.limit}")
    if args.max_steps < 0:
        parser.error(f"--max-steps must be 0 (off) or positive, got {args.max_steps}")
    return args


def main():
    process_start = time.perf_counter()
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    malloc = ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in MALLOC_SETTINGS)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision {args.precision}, "
          f"oneDNN {torch.backends.mkldnn.is_available()}")
    print(f"malloc: {malloc}")
    print(f"OPENBLAS_CORETYPE {'= ' + os.environ['OPENBLAS_CORETYPE'] if 'OPENBLAS_CORETYPE' in os.environ else 'is unset'}")

    load_start = time.perf_counter()
    batches = range(1, 6) if args.final else range(1, 5)
    train = read_set([os.path.join(args.data, f"data_batch_{n}.bin") for n in batches], args.limit)
    evaluate_sets = {}
    if not args.final:
        evaluate_sets["validation"] = read_set([os.path.join(args.data, "data_batch_5.bin")], args.limit)
    if args.test:
        evaluate_sets["test"] = read_set([args.test], args.limit)
    if train[0].shape[0] < BATCH:
        sys.exit(f"--limit {args.limit} leaves {train[0].shape[0]} training images, fewer than one batch of {BATCH}")
    mean, deviation = channel_statistics(train[0])
    data = {"train": train, "evaluate": evaluate_sets, "normalise": Normaliser(mean, deviation)}
    steps_per_epoch = train[0].shape[0] // BATCH
    total_steps = math.ceil(args.epochs * steps_per_epoch)
    print(f"CIFAR-10 from {args.data}: {train[0].shape[0]} training images, "
          + ", ".join(f"{images.shape[0]} {name}" for name, (images, _) in evaluate_sets.items())
          + f"; loaded in {time.perf_counter() - load_start:.2f} s")
    print(f"batch {BATCH}, {steps_per_epoch} steps/epoch, {total_steps} steps ({args.epochs} epochs)"
          + (f", stopping after {args.max_steps}" if args.max_steps else "")
          + f"; lr {LEARNING_RATE:.4g} (BN biases x{BATCH_NORM_BIAS_SCALE}), weight decay {WEIGHT_DECAY:.4g}"
          f" (BN biases /{BATCH_NORM_BIAS_SCALE}), Nesterov momentum {MOMENTUM}")
    print("channel mean " + " ".join(f"{v:.4f}" for v in mean) + ", std " + " ".join(f"{v:.4f}" for v in deviation),
          flush=True)

    results = [train_seed(seed, data, args) for seed in args.seed_list]

    if len(results) > 1:
        print(f"over {len(results)} seeds ({args.precision}):")
        for name in evaluate_sets:
            print("  " + spread(f"{name} accuracy with TTA", [r[f"{name}_accuracy_tta"] for r in results], 100, "%"))
            print("  " + spread(f"{name} accuracy without", [r[f"{name}_accuracy"] for r in results], 100, "%"))
        print("  " + spread("training seconds", [r["train_seconds"] for r in results]))
        print("  " + spread("total seconds", [r["total_seconds"] for r in results]))
        print("  " + spread("seconds/step", [r["seconds_per_step"] for r in results]))
        print("  " + spread("images/s", [r["images_per_second"] for r in results]))
    print(f"whole process {time.perf_counter() - process_start:.1f} s")
    if args.json:
        summary = {"torch": torch.__version__, "threads": torch.get_num_threads(), "precision": args.precision,
                   "final": args.final, "epochs": args.epochs, "limit": args.limit, "max_steps": args.max_steps,
                   "malloc": {name: os.environ.get(name) for name in MALLOC_SETTINGS},
                   "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "results": results}
        with open(args.json, "w") as file:
            json.dump(summary, file, indent=1)
            file.write("\n")


if __name__ == "__main__":
    main()
