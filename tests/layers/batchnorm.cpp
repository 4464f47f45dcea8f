// BatchNorm: batch statistics in training, running statistics (momentum 0.1,
// unbiased variance) in evaluation, both checked against hand computation; and
// gradients against finite differences in both modes, on images and on flat
// inputs (BatchNorm1d).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;
using laminar_test::parameter;
using laminar_test::set_parameter;

namespace {
constexpr double epsilon = 1e-5;

using laminar_test::values;

// For the evaluation-mode gradient checks: running statistics that have moved
// well away from their initial (0, 1).
struct TrainRunningStatistics {
  template <class M>
  void operator()(M& model) const {
    gradient_check::TrainStatisticsFirst{}(model);
    const auto& mean = parameter(model, "1.running_mean");
    const auto& var = parameter(model, "1.running_var");
    for (long c = 0; c < mean.size; ++c) {
      REQUIRE(mean.value()[c] > 0.3);
      REQUIRE(std::abs(var.value()[c] - 1) > 0.05);
    }
  }
};
}  // namespace

// One flat batch used below: 4 samples of 2 features, x = (1,-1), (2,0), (3,1), (4,4).
//   feature 0: {1,2,3,4}:  mean 2.5, biased variance 5/4  = 1.25, unbiased 5/3
//   feature 1: {-1,0,1,4}: mean 1,   biased variance 14/4 = 3.5,  unbiased 14/3
// gamma = (2, 0.5), beta = (0.5, -1).
namespace {
const std::vector<double> flat_batch{1, -1, 2, 0, 3, 1, 4, 4};

template <class M>
void set_affine(M& model) {
  set_parameter(model, "1.gamma", {2, 0.5});
  set_parameter(model, "1.beta", {0.5, -1});
}
}  // namespace

TEST_CASE("batchnorm in training mode normalises each feature with the batch statistics") {
  // y0 = 2 (x - 2.5) / sqrt(1.25 + 1e-5) + 0.5 = -2.18327084, -0.39442361, 1.39442361, 3.18327084
  // y1 = 0.5 (x - 1) / sqrt(3.5 + 1e-5) - 1    = -1.53452172, -1.26726086, -1, -0.19821742
  Model<Sequential<Input<2>, BatchNorm>, cpu, double> model;
  set_affine(model);
  model.train();
  const std::vector<double> y = forward(model, flat_batch.data(), 4);
  const double expected[8] = {-2.1832708399378538, -1.5345217202229366, -0.394423613312618,
                              -1.2672608601114683, 1.394423613312618,   -1.0,
                              3.1832708399378538,  -0.19821741966559492};
  for (int i = 0; i < 8; ++i) CHECK(y[i] == doctest::Approx(expected[i]).epsilon(1e-12));
}

TEST_CASE("batchnorm running statistics follow momentum 0.1 with the unbiased batch variance") {
  // Start: mean 0, variance 1. After k updates with the same batch:
  //   running_mean = m (1 - 0.9^k), running_var = 0.9^k + (1 - 0.9^k) s^2 (s^2 unbiased)
  // k = 1: mean (0.25, 0.1),       var (0.9 + 0.1 * 5/3, 0.9 + 0.1 * 14/3) = (1.0666667, 1.3666667)
  // k = 3: mean (0.6775, 0.271),
  //        var (0.729 + 0.271 * 5/3, 0.729 + 0.271 * 14/3) = (1.1806667, 1.9936667)
  Model<Sequential<Input<2>, BatchNorm>, cpu, double> model;
  model.train();
  forward(model, flat_batch.data(), 4);
  auto mean = values(model, "1.running_mean"), var = values(model, "1.running_var");
  CHECK(mean[0] == doctest::Approx(0.25).epsilon(1e-14));
  CHECK(mean[1] == doctest::Approx(0.1).epsilon(1e-14));
  CHECK(var[0] == doctest::Approx(0.9 + 0.1 * 5 / 3).epsilon(1e-14));
  CHECK(var[1] == doctest::Approx(0.9 + 0.1 * 14 / 3).epsilon(1e-14));
  forward(model, flat_batch.data(), 4);
  forward(model, flat_batch.data(), 4);
  mean = values(model, "1.running_mean"), var = values(model, "1.running_var");
  CHECK(mean[0] == doctest::Approx(0.6775).epsilon(1e-14));
  CHECK(mean[1] == doctest::Approx(0.271).epsilon(1e-14));
  CHECK(var[0] == doctest::Approx(0.729 + 0.271 * 5 / 3).epsilon(1e-14));
  CHECK(var[1] == doctest::Approx(0.729 + 0.271 * 14 / 3).epsilon(1e-14));
}

TEST_CASE(
    "batchnorm in eval mode normalises with the running statistics and leaves them unchanged") {
  // After three training updates (previous case): mean (0.6775, 0.271),
  // var (1.1806667, 1.9936667). For x = (2, 3):
  //   y0 = 2 (2 - 0.6775) / sqrt(1.1806667 + 1e-5) + 0.5 = 2.93422202
  //   y1 = 0.5 (3 - 0.271) / sqrt(1.9936667 + 1e-5) - 1  = -0.03362391
  Model<Sequential<Input<2>, BatchNorm>, cpu, double> model;
  set_affine(model);
  model.train();
  for (int k = 0; k < 3; ++k) forward(model, flat_batch.data(), 4);
  model.eval();
  const std::vector<double> x{2, 3};
  const std::vector<double> y = forward(model, x.data(), 1);  // one sample is fine in eval
  CHECK(y[0] == doctest::Approx(2.9342220165332193).epsilon(1e-12));
  CHECK(y[1] == doctest::Approx(-0.03362390811635918).epsilon(1e-12));
  CHECK(values(model, "1.running_mean")[0] == doctest::Approx(0.6775).epsilon(1e-14));
  CHECK(values(model, "1.running_var")[1] ==
        doctest::Approx(0.729 + 0.271 * 14 / 3).epsilon(1e-14));
}

TEST_CASE("batchnorm on images takes statistics per channel over the batch and all pixels") {
  // Shape<2,1,2>, batch 2, x = [s0: c0 (1,2) c1 (3,4) | s1: c0 (5,6) c1 (7,10)]
  //   channel 0: {1,2,5,6}:  mean 3.5, sum of squares 17, biased 4.25, unbiased 17/3
  //   channel 1: {3,4,7,10}: mean 6,   sum of squares 30, biased 7.5,  unbiased 10
  // gamma = (1, 2), beta = (0, 1): y = gamma (x - mean) / sqrt(biased + 1e-5) + beta.
  // Running statistics after this one update: mean (0.35, 0.6), var (0.9 + 17/30, 1.9).
  Model<Sequential<Input<2, 1, 2>, BatchNorm>, cpu, double> model;
  set_parameter(model, "1.gamma", {1, 2});
  set_parameter(model, "1.beta", {0, 1});
  model.train();
  const std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 10};
  const std::vector<double> y = forward(model, x.data(), 2);
  const double s0 = std::sqrt(4.25 + epsilon), s1 = std::sqrt(7.5 + epsilon);
  const double expected[8] = {-2.5 / s0, -1.5 / s0, 2 * -3 / s1 + 1, 2 * -2 / s1 + 1,
                              1.5 / s0,  2.5 / s0,  2 * 1 / s1 + 1,  2 * 4 / s1 + 1};
  for (int i = 0; i < 8; ++i) CHECK(y[i] == doctest::Approx(expected[i]).epsilon(1e-12));
  const auto mean = values(model, "1.running_mean"), var = values(model, "1.running_var");
  CHECK(mean[0] == doctest::Approx(0.35).epsilon(1e-14));
  CHECK(mean[1] == doctest::Approx(0.6).epsilon(1e-14));
  CHECK(var[0] == doctest::Approx(0.9 + 17.0 / 30).epsilon(1e-14));
  CHECK(var[1] == doctest::Approx(1.9).epsilon(1e-14));
}

TEST_CASE("batchnorm backward follows the mode of the last forward, not the current one") {
  // Forward with batch statistics, then switch to eval before backward: the
  // gradient must still be the batch-statistics one.
  using M = Model<Sequential<Input<2>, BatchNorm>, cpu, double>;
  const std::vector<double> dy{0.3, -1, 2, 0.5, -0.7, 1, 0.1, 0.2};
  std::vector<double> expected(8), actual(8);
  M reference, switched;
  reference.train(), switched.train();
  forward(reference, flat_batch.data(), 4);
  reference.backward(laminar_test::output_view<M>{dy.data(), 4}, expected.data());
  forward(switched, flat_batch.data(), 4);
  switched.eval();
  switched.backward(laminar_test::output_view<M>{dy.data(), 4}, actual.data());
  CHECK(actual == expected);
}

TEST_CASE("batchnorm in training mode with one value per channel is an error naming the layer") {
  Model<Sequential<Input<3>, BatchNorm>, cpu, double> model;
  model.train();
  const std::vector<double> x{1, 2, 3};
  CHECK_THROWS_WITH_AS(forward(model, x.data(), 1), doctest::Contains("BatchNorm"), laminar::Error);
}

TEST_CASE("batchnorm on images in training mode has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<3, 3, 3>, BatchNorm>>({.batch = 3});
}

TEST_CASE("batchnorm on flat inputs in training mode has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<4>, BatchNorm>>({.batch = 5});
}

TEST_CASE("batchnorm on images in eval mode has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<3, 3, 3>, BatchNorm>>(
      {.batch = 3, .mode = gradient_check::Mode::eval}, TrainRunningStatistics{});
}

TEST_CASE("batchnorm on flat inputs in eval mode has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<4>, BatchNorm>>(
      {.batch = 5, .mode = gradient_check::Mode::eval}, TrainRunningStatistics{});
}

TEST_CASE("eval_sum2_per_channel writes a and sums a and a times b per channel, as sum2_per_channel does") {
  // (N=2, C=2, pixels=3): channel 0 holds 1 2 3 | 7 8 9, channel 1 holds 4 5 6 | 10 11 12.
  const std::vector<double> a{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const std::vector<double> b{1, 0, -1, 2, 2, 2, 0.5, 0.5, 0.5, -1, 0, 1};
  std::vector<double> out(a.size(), -99.0), first(2), second(2);
  ops<cpu>::eval_sum2_per_channel(out.data(), first.data(), second.data(), 2, 2, 3, expr::in(a.data()) * 2.0,
                                  expr::in(b.data()));
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(out[i] == 2 * a[i]);
  CHECK(first[0] == 2 * (1 + 2 + 3 + 7 + 8 + 9));
  CHECK(first[1] == 2 * (4 + 5 + 6 + 10 + 11 + 12));
  CHECK(second[0] == 2 * (1 * 1 + 2 * 0 - 3 * 1 + 7 * 0.5 + 8 * 0.5 + 9 * 0.5));  // 20
  CHECK(second[1] == 2 * (4 * 2 + 5 * 2 + 6 * 2 - 10 + 0 + 12));                    // 64
  std::vector<double> first2(2), second2(2);
  ops<cpu>::sum2_per_channel(first2.data(), second2.data(), 2, 2, 3, expr::in(a.data()) * 2.0,
                             expr::in(a.data()) * 2.0 * expr::in(b.data()));
  CHECK(first2 == first);
  CHECK(second2 == second);
}

TEST_CASE("eval_sum2_per_channel over a tensor big enough to run in parallel agrees with separate passes") {
  const int batch = 7, channels = 19;
  const long pixels = 225;  // 29,925 elements: above the 16,384 that parallelises
  std::vector<float> a(std::size_t(batch * channels * pixels)), b(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = float(philox::normal(3, 0, 0, i));
    b[i] = float(philox::normal(4, 0, 0, i));
  }
  const auto g = expr::map(activation::Gradient<activation::Gelu>{}, expr::in(a.data()), expr::in(b.data()),
                           expr::in(b.data()));
  std::vector<float> out(a.size()), expected(a.size()), first(channels), second(channels), first2(channels),
      second2(channels);
  ops<cpu>::eval_sum2_per_channel(out.data(), first.data(), second.data(), batch, channels, pixels, g,
                                  expr::in(a.data()));
  ops<cpu>::eval(expected.data(), long(expected.size()), g);
  ops<cpu>::sum2_per_channel(first2.data(), second2.data(), batch, channels, pixels, g, g * expr::in(a.data()));
  CHECK(out == expected);
  for (int c = 0; c < channels; ++c) {
    CAPTURE(c);
    CHECK(first[std::size_t(c)] == doctest::Approx(first2[std::size_t(c)]).epsilon(1e-6));
    CHECK(second[std::size_t(c)] == doctest::Approx(second2[std::size_t(c)]).epsilon(1e-6));
  }
}

TEST_CASE("float batch statistics keep the variance of values far from zero, in either layout") {
  // 1000 + 0.01 z: a variance of 1e-4 beside a squared mean of 1e6, which a
  // float sum of squares would lose entirely; ops<cpu> combines the sums in double.
  using Net = Sequential<Input<16, 5, 5>, BatchNorm>;
  const int batch = 6;
  laminar_test::Random random(4);
  std::vector<float> x;
  std::vector<double> exact_mean(16, 0.0), exact_variance(16, 0.0);
  for (double v : random.uniform(std::size_t(batch) * Net::input_shape::size, -1, 1)) x.push_back(float(1000 + 0.01 * v));
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < 16; ++c)
      for (int p = 0; p < 25; ++p) exact_mean[std::size_t(c)] += x[std::size_t((n * 16 + c) * 25 + p)] / (25.0 * batch);
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < 16; ++c)
      for (int p = 0; p < 25; ++p) {
        const double d = x[std::size_t((n * 16 + c) * 25 + p)] - exact_mean[std::size_t(c)];
        exact_variance[std::size_t(c)] += d * d / (25.0 * batch);
      }
  for (const Layout layout : {Layout::planar, Layout::blocked}) {
    const std::string name = layout_name(layout);
    CAPTURE(name);
    Model<Net, cpu, float> model;
    model.set_image_layout(layout);
    const std::vector<float> y = forward(model, x.data(), batch);
    // The output is (x - mean) / sqrt(var + eps), against the exact statistics.
    // The float mean is off by up to half an ulp of 1000 (3e-5), 0.5% of a
    // standard deviation here, and x - mean rounds likewise: that allows a few
    // hundredths. A variance lost to a float sum of squares is off by over 1.
    double worst = 0;
    for (int n = 0; n < batch; ++n)
      for (int c = 0; c < 16; ++c)
        for (int p = 0; p < 25; ++p) {
          const std::size_t i = std::size_t((n * 16 + c) * 25 + p);
          const double want = (x[i] - exact_mean[std::size_t(c)]) / std::sqrt(exact_variance[std::size_t(c)] + epsilon);
          worst = std::max(worst, std::abs(double(y[i]) - want));
        }
    CHECK(worst < 0.05);
  }
}
