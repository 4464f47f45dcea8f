// Dense: forward values against hand computation with weight layout (N, K), and
// gradients against finite differences on flat and flattened inputs.
#include <doctest/doctest.h>

#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;
using laminar_test::set_parameter;

TEST_CASE("dense computes W x + b with weight layout (N, K)") {
  // W = [1 2 3; -1 0 2], b = (0.5, -0.5)
  //   x = (1, -1, 2): (1 - 2 + 6 + 0.5, -1 + 4 - 0.5) = (5.5, 2.5)
  //   x = (0, 1, 0):  (2 + 0.5, 0 - 0.5)              = (2.5, -0.5)
  using Net = Sequential<Input<3>, Dense<2>>;
  Model<Net, cpu, double> model;
  set_parameter(model, "1.weight", {1, 2, 3, -1, 0, 2});
  set_parameter(model, "1.bias", {0.5, -0.5});
  const std::vector<double> x{1, -1, 2, 0, 1, 0};
  CHECK(forward(model, x.data(), 2) == std::vector<double>{5.5, 2.5, 2.5, -0.5});
}

TEST_CASE("dense has input and parameter gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<5>, Dense<3>>>({.batch = 3});
}

TEST_CASE("dense after flatten has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Flatten, Dense<4>>>();
}
