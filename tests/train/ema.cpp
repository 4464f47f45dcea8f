// The exponential moving average of the weights: the first updates by hand with
// the warm-up decay min(decay, (1 + t) / (10 + t)), swapping the averages in and
// out, BatchNorm statistics averaged like weights, and the state it exposes.
#include <doctest/doctest.h>

#include <cmath>
#include <laminar/backend/cpu/ops.hpp>
#include <laminar/layers/batchnorm.hpp>
#include <laminar/layers/dense.hpp>
#include <laminar/net/model.hpp>
#include <laminar/net/sequential.hpp>
#include <laminar/train/ema.hpp>
#include <map>
#include <string>
#include <vector>

#include "support/model.hpp"

using namespace laminar;

namespace {

using Net = Sequential<Input<2>, Dense<1>>;  // weight (1, 2), bias (1)
using M = Model<Net, cpu, double>;
using Average = train::ExponentialMovingAverage<M>;

using laminar_test::parameter;
using laminar_test::values;

// Every average, copied out through visit_state.
template <class Ema>
std::map<std::string, std::vector<double>> state(Ema& ema) {
  std::map<std::string, std::vector<double>> s;
  ema.visit_state([&](const std::string& key, double* data, long size) { s[key].assign(data, data + size); });
  return s;
}

void set(Parameter<double, cpu>& p, const std::vector<double>& values) {
  REQUIRE(long(values.size()) == p.size);
  std::copy(values.begin(), values.end(), p.value());
}

}  // namespace

TEST_CASE("the averages start as a copy of the weights") {
  M model;
  set(parameter(model, "1.weight"), {1, -2});
  set(parameter(model, "1.bias"), {0.5});
  Average ema(model, 0.9);
  const auto s = state(ema);
  CHECK(s.at("ema/1.weight") == std::vector<double>{1, -2});
  CHECK(s.at("ema/1.bias") == std::vector<double>{0.5});
  CHECK(ema.updates() == 0);
}

TEST_CASE("the first three updates follow shadow = d shadow + (1 - d) w with the warm-up decay") {
  // decay 0.9; d = min(0.9, (1 + t) / (10 + t)) = 1/10, 2/11, 3/12 for t = 0, 1, 2.
  // Weight w0 set to 2, 3, 4 before each update, starting from a shadow of 1:
  //   0.1 * 1 + 0.9 * 2 = 1.9;  (2/11) 1.9 + (9/11) 3 = 30.8 / 11 = 2.8;  0.25 * 2.8 + 0.75 * 4 = 3.7.
  // w1 stays -2, so its shadow stays -2; the bias goes 0.5 -> 1.5 once: 0.1 * 0.5 + 0.9 * 1.5 = 1.4,
  //   then (2/11) 1.4 + (9/11) 1.5 = 16.3 / 11, then 0.25 * 16.3 / 11 + 0.75 * 1.5.
  M model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set(w, {1, -2});
  set(b, {0.5});
  Average ema(model, 0.9);
  const double decays[3] = {0.1, 2.0 / 11, 0.25};
  const double shadow_w0[3] = {1.9, 2.8, 3.7};
  const double shadow_b[3] = {1.4, 16.3 / 11, 0.25 * 16.3 / 11 + 0.75 * 1.5};
  set(b, {1.5});
  for (int t = 0; t < 3; ++t) {
    INFO("update " << t);
    CHECK(ema.current_decay() == doctest::Approx(decays[t]).epsilon(1e-15));
    w.value()[0] = 2.0 + t;
    ema.update();
    const auto s = state(ema);
    CHECK(s.at("ema/1.weight")[0] == doctest::Approx(shadow_w0[t]).epsilon(1e-14));
    CHECK(s.at("ema/1.weight")[1] == doctest::Approx(-2.0).epsilon(1e-15));
    CHECK(s.at("ema/1.bias")[0] == doctest::Approx(shadow_b[t]).epsilon(1e-14));
  }
  CHECK(ema.updates() == 3);
}

TEST_CASE("the decay reaches its set value once the warm-up passes it") {
  // (1 + t) / (10 + t) is below 0.9 up to t = 79 and above it from t = 81.
  M model;
  Average ema(model, 0.9);
  ema.set_updates(79);
  CHECK(ema.current_decay() == doctest::Approx(80.0 / 89).epsilon(1e-15));
  ema.set_updates(500);
  CHECK(ema.current_decay() == doctest::Approx(0.9).epsilon(1e-15));
  CHECK(ema.decay() == doctest::Approx(0.9).epsilon(1e-15));
}

TEST_CASE("a small decay caps the warm-up from the first update") {
  // min(0.05, 1/10) = 0.05: shadow = 0.05 * 1 + 0.95 * 3 = 2.9.
  M model;
  auto& w = parameter(model, "1.weight");
  set(w, {1, 0});
  Average ema(model, 0.05);
  CHECK(ema.current_decay() == doctest::Approx(0.05).epsilon(1e-15));
  w.value()[0] = 3;
  ema.update();
  CHECK(state(ema).at("ema/1.weight")[0] == doctest::Approx(2.9).epsilon(1e-14));
}

TEST_CASE("swap exchanges the weights and the averages") {
  M model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set(w, {1, -2});
  set(b, {0.5});
  Average ema(model, 0.9);
  set(w, {3, 4});
  set(b, {-1});
  ema.swap();
  CHECK(values(w) == std::vector<double>{1, -2});
  CHECK(values(b) == std::vector<double>{0.5});
  const auto s = state(ema);
  CHECK(s.at("ema/1.weight") == std::vector<double>{3, 4});
  CHECK(s.at("ema/1.bias") == std::vector<double>{-1});
}

TEST_CASE("swapping twice restores the weights and the averages") {
  M model;
  auto& w = parameter(model, "1.weight");
  set(w, {1, -2});
  Average ema(model, 0.9);
  set(w, {3, 4});
  ema.update();
  const auto weights = values(w);
  const auto averages = state(ema);
  ema.swap();
  ema.swap();
  CHECK(values(w) == weights);
  CHECK(state(ema) == averages);
}

TEST_CASE("batch-norm running statistics are averaged like the weights") {
  // One update with d = 0.1 from the initial statistics (mean 0, variance 1).
  Model<Sequential<Input<2>, BatchNorm>, cpu, double> model;
  auto& mean = parameter(model, "1.running_mean");
  auto& variance = parameter(model, "1.running_var");
  train::ExponentialMovingAverage ema(model, 0.99);
  set(mean, {2, -4});
  set(variance, {3, 0.5});
  ema.update();
  const auto s = state(ema);
  CHECK(s.at("ema/1.running_mean")[0] == doctest::Approx(0.9 * 2).epsilon(1e-15));
  CHECK(s.at("ema/1.running_mean")[1] == doctest::Approx(0.9 * -4).epsilon(1e-15));
  CHECK(s.at("ema/1.running_var")[0] == doctest::Approx(0.1 + 0.9 * 3).epsilon(1e-15));
  CHECK(s.at("ema/1.running_var")[1] == doctest::Approx(0.1 + 0.9 * 0.5).epsilon(1e-15));
}

TEST_CASE("the state is keyed ema/ and the parameter name, with each parameter's size") {
  Model<Sequential<Input<2>, BatchNorm, Dense<3>>, cpu, double> model;
  train::ExponentialMovingAverage ema(model, 0.9);
  std::vector<std::string> keys;
  std::vector<long> sizes;
  ema.visit_state([&](const std::string& key, double*, long size) {
    keys.push_back(key);
    sizes.push_back(size);
  });
  CHECK(keys == std::vector<std::string>{"ema/1.gamma", "ema/1.beta", "ema/1.running_mean", "ema/1.running_var",
                                         "ema/2.weight", "ema/2.bias"});
  CHECK(sizes == std::vector<long>{2, 2, 2, 2, 6, 3});
}

TEST_CASE("written state is what the next update starts from") {
  // A resume loads the averages through visit_state's pointers and the count through set_updates.
  M model;
  auto& w = parameter(model, "1.weight");
  set(w, {0, 0});
  Average ema(model, 0.9);
  ema.visit_state([](const std::string& key, double* data, long) {
    if (key == "ema/1.weight") data[0] = 10;
  });
  ema.set_updates(2);  // d = 3/12
  w.value()[0] = 2;
  ema.update();
  CHECK(state(ema).at("ema/1.weight")[0] == doctest::Approx(0.25 * 10 + 0.75 * 2).epsilon(1e-15));
}

TEST_CASE("a decay outside the open interval from 0 to 1 is an error") {
  M model;
  CHECK_THROWS_AS(Average(model, 0.0), Error);
  CHECK_THROWS_AS(Average(model, 1.0), Error);
  CHECK_THROWS_AS(Average(model, -0.5), Error);
  CHECK_THROWS_AS(Average(model, std::nan("")), Error);
}

TEST_CASE("lookahead moves the slow copy towards the weights by the given decay and loads it back") {
  M model;
  set(parameter(model, "1.weight"), {1, -2});
  set(parameter(model, "1.bias"), {0.5});
  train::Lookahead<M> lookahead(model);
  set(parameter(model, "1.weight"), {3, 2});
  set(parameter(model, "1.bias"), {-0.5});
  lookahead.update(0.75);  // 0.75 * slow + 0.25 * fast
  CHECK(values(parameter(model, "1.weight")) == std::vector<double>{1.5, -1});
  CHECK(values(parameter(model, "1.bias")) == std::vector<double>{0.25});
  set(parameter(model, "1.weight"), {7, 7});
  lookahead.update(1.0);  // back to the slow copy
  CHECK(values(parameter(model, "1.weight")) == std::vector<double>{1.5, -1});
  set(parameter(model, "1.weight"), {7, 7});
  lookahead.update(0.0);  // the slow copy becomes the weights
  CHECK(values(parameter(model, "1.weight")) == std::vector<double>{7, 7});
  CHECK_THROWS_WITH_AS(lookahead.update(1.5), doctest::Contains("decay 1.500000 is not in [0, 1]"), Error);
}

TEST_CASE("lookahead carries BatchNorm running statistics like weights") {
  using BnNet = Sequential<Input<2>, BatchNorm>;
  Model<BnNet, cpu, double> model;
  train::Lookahead<Model<BnNet, cpu, double>> lookahead(model);
  const std::vector<double> mean_before = values(parameter(model, "1.running_mean"));
  set(parameter(model, "1.running_mean"), {4, 8});
  lookahead.update(0.5);
  CHECK(values(parameter(model, "1.running_mean")) ==
        std::vector<double>{0.5 * mean_before[0] + 2, 0.5 * mean_before[1] + 4});
}
