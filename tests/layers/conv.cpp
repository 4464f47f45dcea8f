// Conv: output shapes under same, valid and explicit padding; forward values
// against hand computation (orientation, weight layout (Cout, Cin, KH, KW),
// stride, PyTorch-style same padding); gradients against finite differences.
#include <doctest/doctest.h>

#include <type_traits>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;
using laminar_test::set_parameter;

namespace {
template <class Net>
using Out = typename Net::output_shape;
}  // namespace

TEST_CASE("conv output shapes follow the same, valid and explicit padding rules") {
  // same: ceil(H / stride); valid: (H - K) / stride + 1; pad P: (H + 2P - K) / stride + 1
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, Conv<3, 3, 8>>>, Shape<8, 5, 5>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, Conv<3, 3, 8, 2>>>, Shape<8, 3, 3>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 6, 6>, Conv<3, 3, 8, 2>>>, Shape<8, 3, 3>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, Conv<3, 3, 8, 1, valid>>>, Shape<8, 3, 3>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, Conv<2, 2, 8, 1, valid>>>, Shape<8, 4, 4>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, Conv<3, 3, 8, 2, 1>>>, Shape<8, 3, 3>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, Conv<3, 3, 8, 1, 2>>>, Shape<8, 7, 7>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 4, 6>, Conv<1, 3, 8, 1, valid>>>, Shape<8, 4, 4>>);
}

// The 4x4 input of the stride-2 cases, x(r, c) = 4r + c + 1:
//    1  2  3  4
//    5  6  7  8
//    9 10 11 12
//   13 14 15 16
// and the 3x3 kernel (rows ky, columns kx), asymmetric so a flipped kernel
// (true convolution instead of cross-correlation) or a transposed one shows:
//    1  0  2
//    0 -1  0
//    3  0  0
// With the window centred on (r, c), y = x(r-1,c-1) + 2 x(r-1,c+1) - x(r,c) + 3 x(r+1,c-1) + bias.
namespace {
const std::vector<double> four_by_four{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const std::vector<double> asymmetric_kernel{1, 0, 2, 0, -1, 0, 3, 0, 0};
}  // namespace

TEST_CASE("conv with stride 2 and explicit padding 1 matches hand-computed values") {
  // Padding 1 on every side, output (4 + 2 - 3) / 2 + 1 = 2: windows centred on
  // (0,0), (0,2), (2,0), (2,2); out-of-image pixels are 0. Bias 0.5.
  //   (0,0): -x(0,0) = -1                                   -> -0.5
  //   (0,2): -x(0,2) + 3 x(1,1) = -3 + 18 = 15              -> 15.5
  //   (2,0): 2 x(1,1) - x(2,0) = 12 - 9 = 3                 ->  3.5
  //   (2,2): x(1,1) + 2 x(1,3) - x(2,2) + 3 x(3,1)
  //          = 6 + 16 - 11 + 42 = 53                        -> 53.5
  using Net = Sequential<Input<1, 4, 4>, Conv<3, 3, 1, 2, 1>>;
  Model<Net, cpu, double> model;
  set_parameter(model, "1.weight", asymmetric_kernel);
  set_parameter(model, "1.bias", {0.5});
  CHECK(forward(model, four_by_four.data(), 1) == std::vector<double>{-0.5, 15.5, 3.5, 53.5});
}

TEST_CASE("conv with stride 2 and same padding pads (K - 1) / 2 before the image, as PyTorch") {
  // same: output ceil(4 / 2) = 2 with one pixel of padding before the image, so
  // windows are centred on (0,0), (0,2), (2,0), (2,2): the explicit-padding case
  // above, whose values are worked out there.
  using Net = Sequential<Input<1, 4, 4>, Conv<3, 3, 1, 2>>;
  Model<Net, cpu, double> model;
  set_parameter(model, "1.weight", asymmetric_kernel);
  set_parameter(model, "1.bias", {0.5});
  CHECK(forward(model, four_by_four.data(), 1) == std::vector<double>{-0.5, 15.5, 3.5, 53.5});
}

TEST_CASE("conv weight layout is (Cout, Cin, KH, KW) over NCHW activations") {
  // Cin = 2, 2x3 planes:  x0 = [1 2 3; 4 5 6]   x1 = [-1 0 1; 2 -2 3]
  // Conv<2,2,2,valid>: output 2 channels of 1x2.
  //   W[0][0] = [1 0; 0 0], W[0][1] = [0 0; 0 2]: y0(ox) = x0(0,ox) + 2 x1(1,ox+1) + 0.25
  //     ox=0: 1 + 2(-2) = -3 -> -2.75;  ox=1: 2 + 2(3) = 8 -> 8.25
  //   W[1][0] = [0 1; 0 0], W[1][1] = [0 0; -1 0]: y1(ox) = x0(0,ox+1) - x1(1,ox) - 1
  //     ox=0: 2 - 2 = 0 -> -1;  ox=1: 3 - (-2) = 5 -> 4
  using Net = Sequential<Input<2, 2, 3>, Conv<2, 2, 2, 1, valid>>;
  Model<Net, cpu, double> model;
  set_parameter(model, "1.weight", {1, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, -1, 0});
  set_parameter(model, "1.bias", {0.25, -1});
  const std::vector<double> x{1, 2, 3, 4, 5, 6, -1, 0, 1, 2, -2, 3};
  CHECK(forward(model, x.data(), 1) == std::vector<double>{-2.75, 8.25, -1, 4});
}

TEST_CASE("pointwise conv mixes channels per pixel with weight (Cout, Cin)") {
  // W = [1 2 3; -1 0 2], b = (0.5, -0.5); pixels p of channels x0 = (1,2), x1 = (3,4), x2 = (5,6).
  //   y0 = x0 + 2 x1 + 3 x2 + 0.5 = (1+6+15, 2+8+18) + 0.5 = (22.5, 28.5)
  //   y1 = -x0 + 2 x2 - 0.5 = (9, 10) - 0.5 = (8.5, 9.5)
  // A second sample (all zeros) gets the bias alone.
  using Net = Sequential<Input<3, 1, 2>, Conv<1, 1, 2>>;
  Model<Net, cpu, double> model;
  set_parameter(model, "1.weight", {1, 2, 3, -1, 0, 2});
  set_parameter(model, "1.bias", {0.5, -0.5});
  const std::vector<double> x{1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0};
  CHECK(forward(model, x.data(), 2) ==
        std::vector<double>{22.5, 28.5, 8.5, 9.5, 0.5, 0.5, -0.5, -0.5});
}

TEST_CASE("non-square conv kernel Conv<1,3> runs along the width") {
  // W = (1, 10, 100) over x = [1 2 3 4; 5 6 7 8], valid:
  //   y(r, c) = x(r,c) + 10 x(r,c+1) + 100 x(r,c+2)
  //   row 0: 1 + 20 + 300 = 321, 2 + 30 + 400 = 432; row 1: 5 + 60 + 700 = 765, 6 + 70 + 800 = 876
  using Net = Sequential<Input<1, 2, 4>, Conv<1, 3, 1, 1, valid>>;
  static_assert(std::is_same_v<Net::output_shape, Shape<1, 2, 2>>);
  Model<Net, cpu, double> model;
  set_parameter(model, "1.weight", {1, 10, 100});
  set_parameter(model, "1.bias", {0});
  const std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(forward(model, x.data(), 1) == std::vector<double>{321, 432, 765, 876});
}

TEST_CASE("conv with same padding has input and parameter gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, Conv<3, 3, 3>>>();
}

TEST_CASE("conv with valid padding has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, Conv<3, 3, 3, 1, valid>>>();
}

TEST_CASE(
    "conv with stride 2 and symmetric same padding has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, Conv<3, 3, 3, 2>>>(
      {.batch = 3});
}

TEST_CASE(
    "conv with stride 2 and same padding on an even input has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 6, 6>, Conv<3, 3, 2, 2>>>();
}

TEST_CASE("conv with explicit padding has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, Conv<3, 3, 2, 1, 2>>>();
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, Conv<3, 3, 2, 2, 1>>>();
}

TEST_CASE("pointwise 1x1 conv has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<3, 4, 4>, Conv<1, 1, 4>>>({.batch = 3});
}

TEST_CASE("1x1 conv with stride 2 has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<3, 5, 5>, Conv<1, 1, 2, 2, valid>>>();
}

TEST_CASE("non-square conv kernels have gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 4, 5>, Conv<1, 3, 3>>>();
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 4>, Conv<3, 1, 2, 1, valid>>>();
}

TEST_CASE("even 2x2 conv kernel has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, Conv<2, 2, 3, 1, valid>>>();
  gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, Conv<2, 2, 3>>>();
}
