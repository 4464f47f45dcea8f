// Model: default initialisation, parameter naming and counting, and the
// forward/backward contract (gradients written not added, dx optional, batch
// mismatches reported).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;
using laminar_test::parameter;

namespace {
using Small = Sequential<Input<2, 4, 4>, Conv<3, 3, 3>, BatchNorm, ReLU, Flatten, Dense<2>>;
using SmallModel = Model<Small, cpu, double>;

struct Moments {
  double mean = 0, variance = 0;
};
Moments moments(const double* v, long n) {
  Moments m;
  for (long i = 0; i < n; ++i) m.mean += v[i];
  m.mean /= double(n);
  for (long i = 0; i < n; ++i) m.variance += (v[i] - m.mean) * (v[i] - m.mean);
  m.variance /= double(n - 1);
  return m;
}

std::vector<std::vector<double>> gradients(SmallModel& model) {
  std::vector<std::vector<double>> g;
  for (const auto& p : model.parameters())
    if (p.parameter->trainable())
      g.emplace_back(p.parameter->grad(), p.parameter->grad() + p.parameter->size);
  return g;
}
}  // namespace

TEST_CASE("default initialisation draws weights from N(0, 2 / fan_in)") {
  // Dense<256> on 512 inputs: 131072 weights, fan_in 512, variance 2/512. The
  // sample variance's relative standard deviation is sqrt(2/n) = 0.4%; the
  // mean's standard deviation is 0.0625 / sqrt(n) = 1.7e-4.
  Model<Sequential<Input<512>, Dense<256>>, cpu, double> dense(3);
  const auto& w = parameter(dense, "1.weight");
  const Moments d = moments(w.value(), w.size);
  CHECK(std::abs(d.mean) < 1e-3);
  CHECK(d.variance == doctest::Approx(2.0 / 512).epsilon(0.02));
  // Conv<3,3,64> on 32 channels: fan_in 32*3*3 = 288, 18432 weights (sd of the variance 1%).
  Model<Sequential<Input<32, 3, 3>, Conv<3, 3, 64>>, cpu, double> conv(3);
  const auto& k = parameter(conv, "1.weight");
  CHECK(moments(k.value(), k.size).variance == doctest::Approx(2.0 / 288).epsilon(0.05));
}

TEST_CASE(
    "default initialisation sets biases and shifts to 0, scales to 1, running statistics to (0, "
    "1)") {
  SmallModel model(5);
  auto all = [&](const std::string& name, double value) {
    const auto& p = parameter(model, name);
    for (long i = 0; i < p.size; ++i)
      if (p.value()[i] != value) return false;
    return true;
  };
  CHECK(all("1.bias", 0));
  CHECK(all("2.gamma", 1));
  CHECK(all("2.beta", 0));
  CHECK(all("2.running_mean", 0));
  CHECK(all("2.running_var", 1));
  CHECK(all("5.bias", 0));
}

TEST_CASE("the same seed gives the same weights and another seed different ones") {
  SmallModel a(7), b(7), c(8);
  const auto& wa = parameter(a, "1.weight");
  CHECK(std::vector<double>(wa.value(), wa.value() + wa.size) ==
        std::vector<double>(parameter(b, "1.weight").value(),
                            parameter(b, "1.weight").value() + wa.size));
  long same = 0;
  for (long i = 0; i < wa.size; ++i) same += wa.value()[i] == parameter(c, "1.weight").value()[i];
  CHECK(same == 0);
}

TEST_CASE("parameters are named by layer position and role, statistics included") {
  SmallModel model;
  std::vector<std::string> names;
  for (const auto& p : model.parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"1.weight", "1.bias", "2.gamma", "2.beta",
                                          "2.running_mean", "2.running_var", "5.weight", "5.bias"});
  CHECK_FALSE(parameter(model, "2.running_mean").trainable());
  CHECK(parameter(model, "2.running_mean").role == Role::statistic);
  CHECK(parameter(model, "2.gamma").role == Role::scale);
  CHECK(parameter(model, "2.beta").role == Role::shift);
  CHECK(parameter(model, "5.weight").role == Role::weight);
  CHECK(parameter(model, "5.bias").role == Role::bias);
}

TEST_CASE("parameter count counts trainable parameters only") {
  // Conv 3*2*9 + 3 = 57, BatchNorm 2*3 = 6 (not its 6 statistics), Dense 2*48 + 2 = 98
  SmallModel model;
  CHECK(model.parameter_count() == 57 + 6 + 98);
}

TEST_CASE("backward overwrites parameter gradients instead of adding to them") {
  SmallModel model(2);
  const std::vector<double> x = laminar_test::Random(1).uniform(2 * 32, -1, 1);
  const std::vector<double> dy = laminar_test::Random(2).uniform(2 * 2, -1, 1);
  forward(model, x.data(), 2);
  model.backward(laminar_test::output_view<SmallModel>{dy.data(), 2});
  const auto first = gradients(model);
  for (const auto& p : model.parameters())
    if (p.parameter->trainable())
      std::fill(p.parameter->grad(), p.parameter->grad() + p.parameter->size, 1e30);
  model.backward(laminar_test::output_view<SmallModel>{dy.data(), 2});
  CHECK(gradients(model) == first);
}

TEST_CASE("backward without an input gradient writes the same parameter gradients") {
  SmallModel model(2);
  const std::vector<double> x = laminar_test::Random(1).uniform(2 * 32, -1, 1);
  const std::vector<double> dy = laminar_test::Random(2).uniform(2 * 2, -1, 1);
  std::vector<double> dx(x.size());
  forward(model, x.data(), 2);
  model.backward(laminar_test::output_view<SmallModel>{dy.data(), 2}, dx.data());
  const auto with_dx = gradients(model);
  model.backward(laminar_test::output_view<SmallModel>{dy.data(), 2});
  CHECK(gradients(model) == with_dx);
}

TEST_CASE("backward with a batch other than the last forward's is an error") {
  SmallModel model;
  const std::vector<double> x(3 * 32, 0.5), dy(3 * 2, 1.0);
  // No forward yet:
  CHECK_THROWS_AS(model.backward(laminar_test::output_view<SmallModel>{dy.data(), 2}), Error);
  forward(model, x.data(), 3);
  CHECK_THROWS_WITH_AS(model.backward(laminar_test::output_view<SmallModel>{dy.data(), 2}),
                       doctest::Contains("batch 2"), Error);
}

TEST_CASE("forward with a batch of zero is an error") {
  SmallModel model;
  const std::vector<double> x(32, 0.5);
  CHECK_THROWS_AS(forward(model, x.data(), 0), Error);
}

TEST_CASE("in eval mode each sample's output is the same whatever batch it runs in") {
  // Batches of 2, then 5 (the activation buffers grow), then each sample alone.
  using Net = Sequential<Input<2, 4, 4>, Conv<3, 3, 3>, BatchNorm, ReLU,
                         Residual<Conv<3, 3, 4, 2>, Tanh>, Dropout<0.5>, GlobalAvgPool, Dense<3>>;
  Model<Net, cpu, double> model(6);
  model.eval();
  const std::vector<double> x = laminar_test::Random(4).uniform(5 * 32, -1, 1);
  forward(model, x.data(), 2);
  const std::vector<double> together = forward(model, x.data(), 5);
  REQUIRE(together.size() == 15);
  for (int n = 0; n < 5; ++n) {
    const std::vector<double> alone = forward(model, x.data() + n * 32, 1);
    for (int k = 0; k < 3; ++k)
      CHECK(alone[k] == doctest::Approx(together[n * 3 + k]).epsilon(1e-13));
  }
}
