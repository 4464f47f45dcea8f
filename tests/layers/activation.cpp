// Activations: values at a few points against hand computation (SELU with the
// exact constants of Klambauer et al. 2017) and gradients against finite
// differences on both sides of zero.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;

namespace {
const std::vector<double> points{-2, -1, -0.5, 0, 0.5, 1, 2};

template <class Activation>
std::vector<double> apply() {
  Model<Sequential<Input<7>, Activation>, cpu, double> model;
  return laminar_test::forward(model, points.data(), 1);
}

void check_values(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("at x = " << points[i]);
    CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-15));
  }
}

constexpr gradient_check::Options both_sides{.batch = 2, .input_low = -2, .input_high = 2};
}  // namespace

TEST_CASE("relu is max(x, 0)") { check_values(apply<ReLU>(), {0, 0, 0, 0, 0.5, 1, 2}); }

TEST_CASE("relu passes NaN through instead of zeroing it") {
  Model<Sequential<Input<3>, ReLU>, cpu, double> model;
  const double x[3] = {std::nan(""), -1.0, 2.0};
  const auto y = laminar_test::forward(model, x, 1);
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == 0.0);
  CHECK(y[2] == 2.0);
}

TEST_CASE(
    "leaky relu has slope 0.01 below zero by default and the given slope with LeakyReLUWith") {
  check_values(apply<LeakyReLU>(), {-0.02, -0.01, -0.005, 0, 0.5, 1, 2});
  check_values(apply<LeakyReLUWith<0.2>>(), {-0.4, -0.2, -0.1, 0, 0.5, 1, 2});
}

TEST_CASE("elu is alpha (e^x - 1) below zero and x above") {
  // e^-2 - 1 = -0.86466472, e^-1 - 1 = -0.63212056, e^-0.5 - 1 = -0.39346934
  check_values(apply<ELU>(),
               {std::exp(-2.0) - 1, std::exp(-1.0) - 1, std::exp(-0.5) - 1, 0, 0.5, 1, 2});
  check_values(apply<ELUWith<0.5>>(), {0.5 * (std::exp(-2.0) - 1), 0.5 * (std::exp(-1.0) - 1),
                                       0.5 * (std::exp(-0.5) - 1), 0, 0.5, 1, 2});
}

TEST_CASE(
    "selu is lambda x above zero and lambda alpha (e^x - 1) below, with the exact constants") {
  const double lambda = 1.0507009873554804934193349852946;
  const double alpha = 1.6732632423543772848170429916717;
  // selu(-2) = -1.52016647, selu(-1) = -1.11133074, selu(-0.5) = -0.69175819,
  // selu(0.5) = 0.52535049, selu(1) = 1.05070099, selu(2) = 2.10140197
  check_values(apply<SELU>(), {-1.520166468595695, -1.1113307378125625, -0.6917581878028713, 0,
                               0.5253504936777402, 1.0507009873554805, 2.101401974710961});
  check_values(apply<SELU>(),
               {lambda * alpha * (std::exp(-2.0) - 1), lambda * alpha * (std::exp(-1.0) - 1),
                lambda * alpha * (std::exp(-0.5) - 1), 0, lambda * 0.5, lambda, 2 * lambda});
}

TEST_CASE("gelu is x Phi(x) with the exact normal cdf") {
  // Phi(1) = 0.84134475, Phi(2) = 0.97724987, Phi(0.5) = 0.69146246; gelu(-x) = gelu(x) - x
  check_values(apply<GELU>(), {-0.04550026389635842, -0.15865525393145707, -0.15426876936299344, 0,
                               0.34573123063700656, 0.8413447460685429, 1.9544997361036416});
}

TEST_CASE("float gelu and its derivative match the double formula to float precision") {
  // The float path is a polynomial (for vectorisation), the double one std::erfc
  // and std::exp. The erfc fit is good to 1.2e-7 relative and a dozen float
  // operations round on top, so over [-6, 6] every value and derivative is within
  // 3 float epsilons of the double result relative to max(1, |value|); in the
  // left tail, where both vanish, the value keeps a relative error below 2e-5.
  double worst = 0, worst_tail = 0;
  for (int k = -60000; k <= 60000; ++k) {
    const float x = float(k) * 1e-4f;
    const double xd = x, cdf = 0.5 * std::erfc(-xd / std::sqrt(2.0));
    const double value = xd * cdf, derivative = cdf + xd * std::exp(-0.5 * xd * xd) / std::sqrt(2 * std::numbers::pi);
    const float v = activation::Gelu::value(x);
    worst = std::max(worst, std::abs(double(v) - value) / std::max(1.0, std::abs(value)));
    worst = std::max(worst, std::abs(double(activation::Gelu::derivative(x, v)) - derivative) /
                                std::max(1.0, std::abs(derivative)));
  }
  for (int k = 60; k <= 120; ++k) {
    const float x = -0.1f * float(k);
    const double xd = x, value = xd * 0.5 * std::erfc(-xd / std::sqrt(2.0));
    worst_tail = std::max(worst_tail, std::abs(double(activation::Gelu::value(x)) - value) / std::abs(value));
  }
  CHECK(worst < 3 * double(std::numeric_limits<float>::epsilon()));
  CHECK(worst_tail < 2e-5);
  CHECK(std::isnan(activation::Gelu::value(std::nanf(""))));
  CHECK(activation::Gelu::value(-200.0f) == 0.0f);
  CHECK(activation::Gelu::value(200.0f) == 200.0f);
}

TEST_CASE("sigmoid is 1 / (1 + e^-x)") {
  check_values(apply<Sigmoid>(), {0.11920292202211755, 0.2689414213699951, 0.3775406687981454, 0.5,
                                  0.6224593312018546, 0.7310585786300049, 0.8807970779778823});
}

TEST_CASE("tanh is the hyperbolic tangent") {
  check_values(apply<Tanh>(), {-0.9640275800758169, -0.7615941559557649, -0.46211715726000974, 0,
                               0.46211715726000974, 0.7615941559557649, 0.9640275800758169});
}

TEST_CASE("scale multiplies by its factor") {
  check_values(apply<Scale<0.25>>(), {-0.5, -0.25, -0.125, 0, 0.125, 0.25, 0.5});
  check_values(apply<Scale<-3.0>>(), {6, 3, 1.5, 0, -1.5, -3, -6});
}

TEST_CASE("scale has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Scale<1.0 / 9>>>(both_sides);
}

TEST_CASE("relu has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, ReLU>>(both_sides);
}

TEST_CASE("leaky relu has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, LeakyReLU>>(both_sides);
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, LeakyReLUWith<0.2>>>(
      both_sides);
}

TEST_CASE("elu has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, ELU>>(both_sides);
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, ELUWith<0.5>>>(both_sides);
}

TEST_CASE("selu has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, SELU>>(both_sides);
}

TEST_CASE("gelu has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, GELU>>(both_sides);
}

TEST_CASE("sigmoid has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Sigmoid>>(both_sides);
}

TEST_CASE("tanh has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Tanh>>(both_sides);
}
