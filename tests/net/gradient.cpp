// A whole small network (BatchNorm, ReLU, a downsampling residual block with
// dropout inside, pooling, dropout, dense) against finite differences: every
// layer's backward composed, in training and in evaluation mode.
#include <doctest/doctest.h>

#include "support/gradient_check.hpp"

using namespace laminar;

namespace {
using Block = Residual<Conv<3, 3, 4, 2>, BatchNorm, ReLU, Dropout<0.25>, Conv<3, 3, 4>, BatchNorm>;
using Net = Sequential<Input<2, 6, 6>, Conv<3, 3, 3>, BatchNorm, ReLU,  // 3 x 6 x 6
                       Block, ReLU,                                     // 4 x 3 x 3
                       MaxPool<2, 1>, Flatten,                          // 16
                       Dropout<0.25>, Dense<3>>;
}  // namespace

TEST_CASE("a small residual network in training mode has gradients matching finite differences") {
  gradient_check::require_gradients_match<Net>({.batch = 2, .seed = 4, .step = 5});
}

TEST_CASE("a small residual network in eval mode has gradients matching finite differences") {
  gradient_check::require_gradients_match<Net>(
      {.batch = 2, .seed = 4, .mode = gradient_check::Mode::eval},
      gradient_check::TrainStatisticsFirst{});
}
