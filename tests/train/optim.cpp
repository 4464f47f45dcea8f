// SGD: the first steps equal hand-computed values, with momentum, Nesterov
// momentum, weight decay and the no-bias-decay rule.
#include <doctest/doctest.h>

#include <laminar/laminar.hpp>

using namespace laminar;

using Net = Sequential<Input<2>, Dense<1>>;  // weight (1, 2), bias (1)

namespace {
Parameter<double, cpu>& find(Model<Net, cpu, double>& m, const std::string& name) {
  for (const auto& p : m.parameters())
    if (p.name == name) return *p.parameter;
  FAIL("no parameter " << name);
  throw;
}
}  // namespace

TEST_CASE("sgd with momentum takes the hand-computed first three steps") {
  Model<Net, cpu, double> model;
  auto& w = find(model, "1.weight");
  auto& b = find(model, "1.bias");
  w.value()[0] = 1.0, w.value()[1] = -2.0, b.value()[0] = 0.5;
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  // Constant gradient g = 1 for w0, 0 for w1, 2 for b. Weight decay applies to
  // weights only (biases are not decayed by default).
  //   w0: g' = 1 + 0.01 w0; v1 = g'(1) = 1.01, w0 = 1 - 0.101 = 0.899
  //       g' = 1.00899; v2 = 0.909 + 1.00899 = 1.91799, w0 = 0.899 - 0.191799 = 0.707201
  //       g' = 1.00707201; v3 = 1.726191 + 1.00707201 = 2.73326301, w0 = 0.4338747
  //   w1: g' = 0.01 w1 = -0.02; v1 = -0.02, w1 = -1.998; g' = -0.01998, v2 = -0.03798,
  //       w1 = -1.994202; g' = -0.01994202, v3 = -0.054122, w1 = -1.9887898
  //   b:  v = 2, 3.8, 5.42; b = 0.3, -0.08, -0.622
  const double w0[3] = {0.899, 0.707201, 0.4338747}, w1[3] = {-1.998, -1.994202, -1.9887896},
               bias[3] = {0.3, -0.08, -0.622};
  for (int step = 0; step < 3; ++step) {
    w.grad()[0] = 1.0, w.grad()[1] = 0.0, b.grad()[0] = 2.0;
    opt.step();
    CHECK(w.value()[0] == doctest::Approx(w0[step]).epsilon(1e-7));
    CHECK(w.value()[1] == doctest::Approx(w1[step]).epsilon(1e-7));
    CHECK(b.value()[0] == doctest::Approx(bias[step]).epsilon(1e-12));
  }
}

TEST_CASE("sgd with nesterov momentum steps along gradient plus momentum times velocity") {
  Model<Net, cpu, double> model;
  auto& b = find(model, "1.bias");
  b.value()[0] = 0.0;
  optim::SGD opt(model, {.lr = 0.5, .momentum = 0.5, .nesterov = true});
  // g = 1 each step: v = 1, 1.5, 1.75; step = g + mu v = 1.5, 1.75, 1.875; b -= 0.5 step.
  const double expected[3] = {-0.75, -1.625, -2.5625};
  for (double e : expected) {
    b.grad()[0] = 1.0;
    find(model, "1.weight").grad()[0] = find(model, "1.weight").grad()[1] = 0.0;
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(e).epsilon(1e-12));
  }
}

TEST_CASE("sgd decays biases too when decay_bias_and_bn is set") {
  Model<Net, cpu, double> model;
  auto& b = find(model, "1.bias");
  b.value()[0] = 2.0;
  b.grad()[0] = 0.0;
  auto& w = find(model, "1.weight");
  w.grad()[0] = w.grad()[1] = 0.0;
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0, .weight_decay = 0.5, .decay_bias_and_bn = true});
  opt.step();
  CHECK(b.value()[0] == doctest::Approx(2.0 - 0.1 * 0.5 * 2.0).epsilon(1e-12));
}
