// Per-layer cpu benchmarks at batch 128: every 3x3 convolution shape of the
// three CIFAR-10 nets of the CPU-speed issue in float (forward, backward, and
// backward split into data and weight gradients), net C's and the wider ones of
// A and B also under the bf16 policy, the pointwise and pooling layers that sit between them, a dense head,
// and the SGEMM ceiling the im2col path can at best approach. Counters and their
// formulas: layer_benchmark.hpp.
#include "layer_benchmark.hpp"

using namespace laminar;

// Net A, VGG-style: two convolutions per stage at 32, 16 and 8 pixels.
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 32>, Shape<3, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 32>, Shape<32, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 64>, Shape<32, 16, 16>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 64>, Shape<64, 16, 16>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 128>, Shape<64, 8, 8>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 128>, Shape<128, 8, 8>, 128);

// Net B, ResNet-20: the convolution inside each of the three stages' blocks.
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 16>, Shape<16, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 32>, Shape<32, 16, 16>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 64>, Shape<64, 8, 8>, 128);

// Net C, airbench: a 2x2 valid whitening convolution, then 3x3 convolutions
// at 31, 15, 7 and 3 pixels.
LAMINAR_BENCHMARK_LAYER(Conv<2, 2, 24, 1, valid>, Shape<3, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 64>, Shape<24, 31, 31>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 64>, Shape<64, 15, 15>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 256>, Shape<64, 15, 15>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 256>, Shape<256, 7, 7>, 128);
LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 256>, Shape<256, 3, 3>, 128);

// Net C's convolutions under the bf16 compute policy (AMX where the CPU has it).
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 64>, Shape<24, 31, 31>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 64>, Shape<64, 15, 15>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 256>, Shape<64, 15, 15>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 256>, Shape<256, 7, 7>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 256>, Shape<256, 3, 3>, 128);
// ... and the shapes of A and B where the float rule picks Winograd (conv.hpp).
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 32>, Shape<32, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 32>, Shape<32, 16, 16>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 64>, Shape<64, 16, 16>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 64>, Shape<64, 8, 8>, 128);
LAMINAR_BENCHMARK_LAYER_ON(cpu, bf16, Conv<3, 3, 128>, Shape<128, 8, 8>, 128);

// The layers between the convolutions, and a dense head.
LAMINAR_BENCHMARK_LAYER(BatchNorm, Shape<64, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER(BatchNorm, Shape<256, 7, 7>, 128);  // net C: few pixels a channel
LAMINAR_BENCHMARK_LAYER(BatchNorm, Shape<256, 3, 3>, 128);
LAMINAR_BENCHMARK_LAYER(BnAct<BatchNorm, GELU>, Shape<64, 15, 15>, 128);  // net C after its first pool
LAMINAR_BENCHMARK_LAYER(ReLU, Shape<64, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER(MaxPool<2>, Shape<64, 32, 32>, 128);
LAMINAR_BENCHMARK_LAYER(MaxPool<2>, Shape<64, 31, 31>, 128);  // net C: odd sizes leave a row and a column out
LAMINAR_BENCHMARK_LAYER(MaxPool<2>, Shape<256, 15, 15>, 128);
LAMINAR_BENCHMARK_LAYER(Dense<512>, Shape<1024>, 128);

LAMINAR_BENCHMARK_SGEMM();

BENCHMARK_MAIN();
