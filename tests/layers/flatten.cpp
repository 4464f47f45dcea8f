// Flatten: a renaming of the sample's shape that keeps the NCHW order.
#include <doctest/doctest.h>

#include <type_traits>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;

TEST_CASE("flatten turns Shape<C,H,W> into Shape<C*H*W> and keeps the values in NCHW order") {
  using Net = Sequential<Input<2, 2, 3>, Flatten>;
  static_assert(std::is_same_v<Net::output_shape, Shape<12>>);
  Model<Net, cpu, double> model;
  std::vector<double> x(24);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(i) - 5;
  CHECK(laminar_test::forward(model, x.data(), 2) == x);
}

TEST_CASE("flatten passes the gradient through unchanged") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Flatten>>();
}
