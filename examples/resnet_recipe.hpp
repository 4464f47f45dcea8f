// resnet_cifar's recipe (its flags) and its training function per network.
// The nine (depth, shortcut) networks are each their own type, too much for
// one translation unit to compile in under 30 s (three of them took 32-35 s on
// the Xeon of docs/benchmarks.md, 2026-12-08), so resnet_cifar.cpp reads the
// flags and nine translation units, written by examples/CMakeLists.txt from
// resnet_cifar_network.cpp.in, compile one network each (resnet_train.hpp),
// in parallel under a parallel build.
#pragma once

#include <string>

#include <laminar/laminar.hpp>

#include "cifar.hpp"

namespace resnet_cifar {

struct Recipe {
  int depth = 20;
  std::string shortcut;  // "A", "projection" or "D"
  std::string schedule;  // "step" or "cosine"
  double warmup = 0, label_smoothing = 0, mixup = 0;
  bool no_bias_decay = false, zero_gamma = false;
  int cutout = 0;
  double lr = 0.1, weight_decay = 1e-4;
  int batch = 128;
};

laminar::schedule::Schedule schedule_of(const Recipe& r, int epochs);
void print_recipe(const Recipe& r, int epochs);

// The downsampling blocks' shortcut: the paper's option A (zero-padded
// identity), a strided 1x1 projection, or ResNet-D's average pool and 1x1
// convolution (examples/resnet.hpp).
enum class DownShortcut { zero_pad, projection, avg_pool };

// Trains ResNet-Depth with the Kind shortcut; defined in resnet_train.hpp,
// instantiated once per network in the translation units CMake writes.
template <int Depth, DownShortcut Kind>
void train_network(const Recipe& r, const examples::CifarFlags& flags, const laminar::data::Splits& data,
                   const examples::Stopwatch& clock);

}  // namespace resnet_cifar
