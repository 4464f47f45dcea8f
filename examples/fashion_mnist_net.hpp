// The default example's network and recipe, shared by the example and by the
// convergence test that guards it.
#pragma once

#include <laminar/laminar.hpp>

namespace examples {

using namespace laminar;

using FashionNet = Sequential<Input<1, 28, 28>,
                              Conv<3, 3, 32>, BatchNorm, ReLU, MaxPool<2>,  // 32 x 14 x 14
                              Conv<3, 3, 64>, BatchNorm, ReLU, MaxPool<2>,  // 64 x 7 x 7
                              Flatten, Dense<256>, BatchNorm, ReLU, Dropout<0.3>,
                              Dense<10>>;

struct FashionRecipe {
  int epochs = 8;
  int batch = 128;
  double peak_lr = 0.1;
  double warmup_epochs = 0.5;

  optim::SGDOptions optimizer() const {
    return {.lr = peak_lr, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4};
  }
  // Linear warmup from zero, then linear decay to zero at the last epoch.
  schedule::Schedule schedule() const { return schedule::warmup(warmup_epochs) + schedule::linear(0.0); }
};

}  // namespace examples
