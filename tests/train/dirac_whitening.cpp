// The data-shaped initialisers: dirac (identity convolutions) against
// hand-written filters, and patch whitening through the model's own forward
// pass: its outputs on the data must be decorrelated with variances
// l / (l + epsilon), largest first, and the negated half must mirror the first.
#include <doctest/doctest.h>

#include <cmath>
#include <laminar/laminar.hpp>
#include <vector>

#include "support/gradient_check.hpp"
#include "support/model.hpp"

using namespace laminar;

TEST_CASE("dirac makes the first Cin filters pass their channel through the centre tap and keeps the rest") {
  using Net = Sequential<Input<2, 4, 4>, Conv<3, 3, 3>>;  // 3 filters over 2 channels
  Model<Net, cpu, double> model(1);
  const std::vector<double> before = laminar_test::values(model, "1.weight");
  init::dirac(model);
  const std::vector<double> w = laminar_test::values(model, "1.weight");
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 2; ++i)
      for (int t = 0; t < 9; ++t) CHECK(w[std::size_t((o * 2 + i) * 9 + t)] == double(o == i && t == 4));
  for (std::size_t k = 2 * 2 * 9; k < w.size(); ++k) CHECK(w[k] == before[k]);  // filter 2 untouched
}

TEST_CASE("a dirac convolution with zero bias returns its input") {
  using Net = Sequential<Input<3, 5, 5>, Conv<3, 3, 3>>;
  Model<Net, cpu, double> model(2);
  init::dirac(model);
  init::zeros(model, Role::bias);
  const std::vector<double> x = laminar_test::Random(3).uniform(2 * 75, -1, 1);
  CHECK(laminar_test::forward(model, x.data(), 2) == x);
}

TEST_CASE("dirac refuses even kernels and prefixes that select nothing, changing nothing") {
  Model<Sequential<Input<1, 4, 4>, Conv<2, 2, 2>, Flatten, Dense<3>>, cpu, double> model(1);
  const auto before = laminar_test::all_values(model);
  CHECK_THROWS_WITH_AS(init::dirac(model), doctest::Contains("weight 1.weight has an even 2x2 kernel"), Error);
  CHECK_THROWS_WITH_AS(init::dirac(model, "7"), doctest::Contains("prefix \"7\" selects no weight"), Error);
  CHECK(laminar_test::all_values(model) == before);
}

namespace {

// n random 1-channel 3x3 images with correlated pixels (a shared brightness
// plus noise), so the patch moments are far from the identity.
data::Dataset correlated_images(int n) {
  data::Dataset d{1, 3, 3, 2, {}, {}, "correlated"};
  const std::vector<double> u = laminar_test::Random(9).uniform(std::size_t(n) * 10, -1, 1);
  for (int i = 0; i < n; ++i) {
    const double brightness = 128 + 100 * u[std::size_t(i) * 10];
    for (int k = 0; k < 9; ++k)
      d.images.push_back(std::uint8_t(std::clamp(brightness + 25 * u[std::size_t(i) * 10 + 1 + k] + 3 * k, 0.0, 255.0)));
    d.labels.push_back(std::uint8_t(i % 2));
  }
  return d;
}

}  // namespace

TEST_CASE("patch whitening decorrelates the first layer's outputs on the data, largest variance first") {
  // A 2x2 valid convolution over 3x3 images: 4 patches per image, 4 values each,
  // 8 filters (the whitening and its negatives).
  using Net = Sequential<Input<1, 3, 3>, Conv<2, 2, 8, 1, valid>, Flatten>;
  const data::Dataset d = correlated_images(400);
  const data::Normalization norm = data::Normalization::standardize(d);
  const double epsilon = 1e-2;
  Model<Net, cpu, double> model(1);
  init::zeros(model, Role::bias);
  init::patch_whitening(model, "1", d, norm, {.images = 400, .epsilon = epsilon});

  const Eigen::MatrixXd moments = init::patch_second_moments(d, norm, 2, 400);
  const Eigen::VectorXd l = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(moments).eigenvalues().reverse();
  std::vector<double> x;
  for (long i = 0; i < d.size(); ++i)
    for (int k = 0; k < 9; ++k) x.push_back((d.images[std::size_t(i * 9 + k)] / 255.0 - norm.mean[0]) / norm.std[0]);
  const std::vector<double> y = laminar_test::forward(model, x.data(), int(d.size()));  // (n, 8, 2, 2)
  Eigen::MatrixXd second = Eigen::MatrixXd::Zero(8, 8);
  for (long i = 0; i < d.size(); ++i)
    for (int p = 0; p < 4; ++p) {
      Eigen::VectorXd v(8);
      for (int f = 0; f < 8; ++f) v[f] = y[std::size_t(i * 32 + f * 4 + p)];
      second += v * v.transpose();
    }
  second /= double(d.size() * 4);
  for (int f = 0; f < 4; ++f) {
    CHECK(second(f, f) == doctest::Approx(l[f] / (l[f] + epsilon)).epsilon(1e-9));
    if (f > 0) CHECK(l[f] <= l[f - 1]);
    for (int g = 0; g < 4; ++g)
      if (g != f) CHECK(std::abs(second(f, g)) < 1e-9);
    CHECK(second(f + 4, f + 4) == doctest::Approx(second(f, f)).epsilon(1e-12));
    CHECK(second(f, f + 4) == doctest::Approx(-second(f, f)).epsilon(1e-12));
  }
  CHECK(l[0] > 10 * l[3]);  // the data were correlated: whitening had work to do
}

TEST_CASE("patch second moments of one-pixel patches are the mean square of the normalised pixels") {
  data::Dataset d{1, 1, 2, 2, {0, 255, 51, 102}, {0, 1}, "two"};
  const auto norm = data::Normalization::unit(1);
  const Eigen::MatrixXd s = init::patch_second_moments(d, norm, 1, 2);
  REQUIRE(s.rows() == 1);
  CHECK(s(0, 0) == doctest::Approx((0.0 + 1.0 + 0.04 + 0.16) / 4).epsilon(1e-12));
}

TEST_CASE("patch whitening refuses a filter count or channel count that does not fit, by name") {
  const data::Dataset d = correlated_images(10);
  const auto norm = data::Normalization::standardize(d);
  Model<Sequential<Input<1, 3, 3>, Conv<2, 2, 6, 1, valid>, Flatten>, cpu, double> six(1);
  CHECK_THROWS_WITH_AS(init::patch_whitening(six, "1", d, norm),
                       doctest::Contains("weight 1.weight has 6 filters; whitening 4-value patches needs 4 or 8"), Error);
  Model<Sequential<Input<2, 3, 3>, Conv<2, 2, 8, 1, valid>, Flatten>, cpu, double> two_channels(1);
  CHECK_THROWS_WITH_AS(init::patch_whitening(two_channels, "1", d, norm),
                       doctest::Contains("reads 8 values per output but correlated has 1 channels"), Error);
}
