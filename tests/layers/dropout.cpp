// Dropout: inverted scaling, the dropped fraction, identity in evaluation, masks
// that are a pure function of (seed, layer, step, element), and gradients
// against finite differences with the step held fixed.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;

namespace {
constexpr int features = 10000, batch = 4;
constexpr long elements = long(features) * batch;

// Positive inputs in [0.5, 1.5], so a zero output can only be a dropped element.
std::vector<double> positive_input(std::size_t n) {
  return laminar_test::Random(5).uniform(n, 0.5, 1.5);
}

template <class M>
std::vector<typename M::value_type> run(M& model, std::uint64_t seed, std::uint32_t step,
                                        const std::vector<typename M::value_type>& x) {
  model.train();
  model.set_seed(seed);
  model.set_step(step);
  return forward(model, x.data(), batch);
}

double fraction_dropped(const std::vector<double>& y) {
  long dropped = 0;
  for (double v : y) dropped += v == 0;
  return double(dropped) / double(y.size());
}

long differences(const std::vector<double>& a, const std::vector<double>& b) {
  long n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += (a[i] == 0) != (b[i] == 0);
  return n;
}
}  // namespace

TEST_CASE("dropout in training keeps elements scaled by 1/(1-p) and zeroes the others") {
  Model<Sequential<Input<features>, Dropout<0.25>>, cpu, double> model;
  const std::vector<double> x = positive_input(elements);
  const std::vector<double> y = run(model, 11, 0, x);
  long wrong = 0;
  for (long i = 0; i < elements; ++i)
    if (y[i] != 0 && std::abs(y[i] - x[i] / 0.75) > 1e-15 * std::abs(x[i] / 0.75)) ++wrong;
  CHECK(wrong == 0);
}

TEST_CASE("dropout drops a fraction of elements close to its rate") {
  // 40000 Bernoulli draws: standard deviation of the fraction sqrt(p(1-p)/n) <= 0.0025.
  const std::vector<double> x = positive_input(elements);
  Model<Sequential<Input<features>, Dropout<0.25>>, cpu, double> quarter;
  CHECK(std::abs(fraction_dropped(run(quarter, 11, 0, x)) - 0.25) < 0.01);
  Model<Sequential<Input<features>, Dropout<0.5>>, cpu, double> half;
  CHECK(std::abs(fraction_dropped(run(half, 11, 0, x)) - 0.5) < 0.01);
}

TEST_CASE("dropout in eval mode is the identity") {
  Model<Sequential<Input<features>, Dropout<0.5>>, cpu, double> model;
  const std::vector<double> x = positive_input(elements);
  model.eval();
  model.set_step(4);
  CHECK(forward(model, x.data(), batch) == x);
}

TEST_CASE("dropout draws the same mask for the same seed and step") {
  Model<Sequential<Input<features>, Dropout<0.5>>, cpu, double> model;
  const std::vector<double> x = positive_input(elements);
  const std::vector<double> first = run(model, 11, 3, x);
  run(model, 11, 4, x);
  CHECK(run(model, 11, 3, x) == first);
}

TEST_CASE("dropout draws a different mask at a different step or seed") {
  // Two independent masks of rate 1/2 disagree on half the elements.
  Model<Sequential<Input<features>, Dropout<0.5>>, cpu, double> model;
  const std::vector<double> x = positive_input(elements);
  const std::vector<double> base = run(model, 11, 3, x);
  CHECK(std::abs(double(differences(base, run(model, 11, 4, x))) / elements - 0.5) < 0.01);
  CHECK(std::abs(double(differences(base, run(model, 12, 3, x))) / elements - 0.5) < 0.01);
}

TEST_CASE("two dropout layers in one network draw independent masks") {
  // Independent masks keep (1/2)^2 = 1/4 of the elements, scaled by 4; one shared
  // mask would keep 1/2.
  Model<Sequential<Input<features>, Dropout<0.5>, Dropout<0.5>>, cpu, double> model;
  const std::vector<double> x = positive_input(elements);
  const std::vector<double> y = run(model, 11, 0, x);
  CHECK(std::abs(1 - fraction_dropped(y) - 0.25) < 0.01);
  long wrong = 0;
  for (long i = 0; i < elements; ++i) wrong += y[i] != 0 && y[i] != 4 * x[i];
  CHECK(wrong == 0);
}

TEST_CASE("dropout backward applies the forward's mask") {
  Model<Sequential<Input<features>, Dropout<0.5>>, cpu, double> model;
  const std::vector<double> x = positive_input(elements);
  const std::vector<double> y = run(model, 11, 7, x);
  const std::vector<double> dy(elements, 1.0);
  std::vector<double> dx(elements);
  model.backward(laminar_test::output_view<decltype(model)>{dy.data(), batch}, dx.data());
  long wrong = 0;
  for (long i = 0; i < elements; ++i) wrong += dx[i] != (y[i] != 0 ? 2.0 : 0.0);
  CHECK(wrong == 0);
}

TEST_CASE("float and double models draw the same dropout mask") {
  Model<Sequential<Input<features>, Dropout<0.3>>, cpu, double> reference;
  Model<Sequential<Input<features>, Dropout<0.3>>, cpu, float> single;
  const std::vector<double> x = positive_input(elements);
  const std::vector<float> xf(x.begin(), x.end());
  const std::vector<double> y = run(reference, 21, 5, x);
  const std::vector<float> yf = run(single, 21, 5, xf);
  long wrong = 0;
  for (long i = 0; i < elements; ++i) wrong += (y[i] == 0) != (yf[i] == 0);
  CHECK(wrong == 0);
}

TEST_CASE("dropout in training mode has gradients matching finite differences at a fixed step") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Dropout<0.5>>>(
      {.batch = 3, .step = 9});
}

TEST_CASE("dropout in eval mode has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, Dropout<0.5>>>(
      {.mode = gradient_check::Mode::eval});
}

TEST_CASE("dropout backward applies the last forward's mask even if the step or mode changed since") {
  using M = Model<Sequential<Input<1000>, Dropout<0.5>>, cpu, double>;
  M model;
  const std::vector<double> x = laminar_test::Random(5).uniform(1000, 0.5, 1.5), dy(1000, 1.0);
  model.train();
  model.set_step(7);
  const std::vector<double> y = laminar_test::forward(model, x.data(), 1);
  model.set_step(8);
  std::vector<double> dx(1000);
  model.backward(laminar_test::output_view<M>{dy.data(), 1}, dx.data());
  long wrong = 0;
  for (int i = 0; i < 1000; ++i) wrong += dx[i] != (y[i] != 0 ? 2.0 : 0.0);
  CHECK(wrong == 0);
  model.eval();
  model.backward(laminar_test::output_view<M>{dy.data(), 1}, dx.data());
  wrong = 0;
  for (int i = 0; i < 1000; ++i) wrong += dx[i] != (y[i] != 0 ? 2.0 : 0.0);
  CHECK(wrong == 0);
}
