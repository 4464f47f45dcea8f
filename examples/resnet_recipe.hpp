// resnet_cifar's recipe (its flags) and the per-depth training functions. The
// nine (depth, shortcut) networks are each their own type, too much for one
// translation unit to compile in under 30 s, so resnet_cifar.cpp reads the
// flags and resnet_cifar_depth_{20,32,56}.cpp each compile one depth's three
// networks (resnet_train.hpp), in parallel under a parallel build.
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

// Trains ResNet-Depth with r's shortcut; defined in resnet_train.hpp,
// instantiated in resnet_cifar_depth_<Depth>.cpp.
template <int Depth>
void train_depth(const Recipe& r, const examples::CifarFlags& flags, const laminar::data::Splits& data,
                 const examples::Stopwatch& clock);
extern template void train_depth<20>(const Recipe&, const examples::CifarFlags&, const laminar::data::Splits&,
                                     const examples::Stopwatch&);
extern template void train_depth<32>(const Recipe&, const examples::CifarFlags&, const laminar::data::Splits&,
                                     const examples::Stopwatch&);
extern template void train_depth<56>(const Recipe&, const examples::CifarFlags&, const laminar::data::Splits&,
                                     const examples::Stopwatch&);

}  // namespace resnet_cifar
