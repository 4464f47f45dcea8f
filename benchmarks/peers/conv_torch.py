#!/usr/bin/python3
"""PyTorch peer for benchmarks/conv.cpp: the same 3x3 convolutions (batch 128,
float32, same padding, bias) forward and backward (input and weight gradients),
on the CPU with the same thread count. Prints median times and GFLOP/s.

    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/peers/conv_torch.py [--repeat 5]

(/usr/bin/python3: Debian's interpreter, the one python3-torch installs into.)
"""
import argparse
import statistics
import time

import torch


def median_seconds(fn, repeat, inner=3):
    fn()  # warm-up: oneDNN picks and caches its kernels
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    gemm_n = 2048
    a, b = torch.randn(gemm_n, gemm_n), torch.randn(gemm_n, gemm_n)
    t = median_seconds(lambda: a @ b, args.repeat)
    print(f"{'sgemm/2048':34s} {t * 1e3:8.1f} ms {2 * gemm_n ** 3 / t / 1e9:8.1f} GFLOP/s")
    for c, hw in ((64, 32), (128, 16), (256, 8)):
        for layout in (torch.contiguous_format, torch.channels_last):
            conv = torch.nn.Conv2d(c, c, 3, padding=1).to(memory_format=layout)
            x = torch.randn(args.batch, c, hw, hw).to(memory_format=layout).requires_grad_()
            dy = torch.randn(args.batch, c, hw, hw).to(memory_format=layout)
            flops = 2.0 * c * c * 9 * hw * hw * args.batch
            name = "nchw" if layout == torch.contiguous_format else "channels_last"

            def forward():
                with torch.no_grad():
                    conv(x)

            y = conv(x)

            def backward():
                x.grad = None
                conv.weight.grad = None
                conv.bias.grad = None
                torch.autograd.backward(y, dy, retain_graph=True)

            tf = median_seconds(forward, args.repeat)
            tb = median_seconds(backward, args.repeat)
            shape = f"{c}x{hw}x{hw}"
            print(f"{'conv3x3_forward/' + shape + '/' + name:34s} {tf * 1e3:8.1f} ms {flops / tf / 1e9:8.1f} GFLOP/s")
            print(f"{'conv3x3_backward/' + shape + '/' + name:34s} {tb * 1e3:8.1f} ms {2 * flops / tb / 1e9:8.1f} GFLOP/s")


if __name__ == "__main__":
    main()
