// Residual: y = branch(x) + shortcut(x) with the identity or a 1x1 projection
// shortcut, its parameters' names, and gradients against finite differences.
#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;
using laminar_test::set_parameter;

TEST_CASE("residual with an identity shortcut adds its input to the branch output") {
  // branch Conv<1,1,1> with w = 2, b = 0.5: y = (2x + 0.5) + x; x = (1, -2, 3) -> (3.5, -5.5, 9.5)
  using Net = Sequential<Input<1, 1, 3>, Residual<Conv<1, 1, 1>>>;
  Model<Net, cpu, double> model;
  set_parameter(model, "1.1.weight", {2});
  set_parameter(model, "1.1.bias", {0.5});
  const std::vector<double> x{1, -2, 3};
  CHECK(forward(model, x.data(), 1) == std::vector<double>{3.5, -5.5, 9.5});
}

TEST_CASE("residual whose branch changes channels adds a 1x1 projection with bias") {
  // x = (1, 3) as one channel of 1x2. branch Conv<1,1,2>: w = (2, -1), b = (0, 1)
  //   -> c0 = (2, 6), c1 = (0, -2); shortcut w = (10, 100), b = (0.5, 0.25)
  //   -> c0 = (10.5, 30.5), c1 = (100.25, 300.25); sum c0 = (12.5, 36.5), c1 = (100.25, 298.25)
  using Net = Sequential<Input<1, 1, 2>, Residual<Conv<1, 1, 2>>>;
  Model<Net, cpu, double> model;
  set_parameter(model, "1.1.weight", {2, -1});
  set_parameter(model, "1.1.bias", {0, 1});
  set_parameter(model, "1.shortcut.weight", {10, 100});
  set_parameter(model, "1.shortcut.bias", {0.5, 0.25});
  const std::vector<double> x{1, 3};
  CHECK(forward(model, x.data(), 1) == std::vector<double>{12.5, 36.5, 100.25, 298.25});
}

TEST_CASE("residual whose branch downsamples has a strided projection shortcut") {
  // Branch Conv<3,3,4,2> takes Shape<2,4,4> to Shape<4,2,2>; the shortcut is
  // Conv<1,1,4,2,valid>: 4 * 2 + 4 = 12 parameters beside the branch's 4*2*9 + 4 = 76.
  using Block = Residual<Conv<3, 3, 4, 2>>;
  using Net = Sequential<Input<2, 4, 4>, Block>;
  CHECK(std::is_same_v<Net::output_shape, Shape<4, 2, 2>>);
  CHECK(std::is_same_v<Block::Projection<Shape<2, 4, 4>>, Conv<1, 1, 4, 2, valid>>);
  CHECK(Block::parameter_count<Shape<2, 4, 4>> == 76 + 12);
  // The shortcut samples x at pixels (0,0), (0,2), (2,0), (2,2): with a zero
  // branch, weight 1 and bias 0 the output is those pixels of the first channel.
  Model<Net, cpu, double> model;
  set_parameter(model, "1.1.weight", std::vector<double>(72, 0.0));
  set_parameter(model, "1.1.bias", std::vector<double>(4, 0.0));
  set_parameter(model, "1.shortcut.weight", {1, 0, 0, 0, 0, 0, 0, 0});
  set_parameter(model, "1.shortcut.bias", {0, 0, 0, 0});
  std::vector<double> x(32);
  for (int i = 0; i < 32; ++i) x[i] = i;
  const std::vector<double> y = forward(model, x.data(), 1);
  CHECK(std::vector<double>(y.begin(), y.begin() + 4) == std::vector<double>{0, 2, 8, 10});
  CHECK(std::vector<double>(y.begin() + 4, y.end()) == std::vector<double>(12, 0.0));
}

TEST_CASE(
    "residual parameters are named by the block's position, the branch layer's, and shortcut") {
  using Net = Sequential<Input<2, 4, 4>, Conv<3, 3, 2>, Residual<Conv<3, 3, 4, 2>, BatchNorm>,
                         Flatten, Dense<3>>;
  Model<Net, cpu, double> model;
  std::vector<std::string> names;
  for (const auto& p : model.parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"1.weight", "1.bias", "2.1.weight", "2.1.bias",
                                          "2.2.gamma", "2.2.beta", "2.2.running_mean",
                                          "2.2.running_var", "2.shortcut.weight", "2.shortcut.bias",
                                          "4.weight", "4.bias"});
}

TEST_CASE("residual with an identity shortcut has gradients matching finite differences") {
  gradient_check::require_gradients_match<
      Sequential<Input<2, 4, 4>, Residual<Conv<3, 3, 2>, Tanh, Conv<3, 3, 2>>>>();
}

TEST_CASE("residual with a strided projection shortcut has gradients matching finite differences") {
  gradient_check::require_gradients_match<
      Sequential<Input<2, 4, 4>, Residual<Conv<3, 3, 3, 2>, Tanh, Conv<3, 3, 3>>>>();
}

TEST_CASE(
    "residual with a channel-changing projection shortcut has gradients matching finite "
    "differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Residual<Conv<3, 3, 3>>>>();
}

TEST_CASE("residual on flat inputs has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<4>, Residual<Dense<4>, Tanh>>>(
      {.batch = 3});
}

TEST_CASE("nested residual blocks have gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<
      Input<2, 3, 3>, Residual<Residual<Conv<3, 3, 2>>, Tanh>, Residual<Conv<1, 1, 3>, Sigmoid>>>();
}

TEST_CASE("residual downsampling an odd-sized input gets a stride-2 projection shortcut") {
  using Block = Residual<Conv<3, 3, 3, 2>, Tanh, Conv<3, 3, 3>>;
  using Net = Sequential<Input<2, 5, 5>, Block>;
  CHECK(std::is_same_v<Net::output_shape, Shape<3, 3, 3>>);
  CHECK(std::is_same_v<Block::Projection<Shape<2, 5, 5>>, Conv<1, 1, 3, 2, valid>>);
  gradient_check::require_gradients_match<Net>();
}
