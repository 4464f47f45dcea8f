// Fine-tuning: freezing and unfreezing by name prefix and by a range of
// top-level layers, the count of values an optimizer will train, re-initialising
// a head, and an optimizer leaving frozen parameters where they are.
#include <doctest/doctest.h>

#include <laminar/backend/cpu/ops.hpp>
#include <laminar/layers/activation.hpp>
#include <laminar/layers/batchnorm.hpp>
#include <laminar/layers/dense.hpp>
#include <laminar/net/model.hpp>
#include <laminar/net/residual.hpp>
#include <laminar/net/sequential.hpp>
#include <laminar/train/finetune.hpp>
#include <laminar/train/optim.hpp>
#include <string>
#include <vector>

#include "support/model.hpp"

using namespace laminar;

namespace {

// Twelve top-level layers, so that layer 1's names are prefixes of layer 12's
// as strings. Trainable values: layer 1 12, 2 8 (plus 8 statistics), 4 15,
// 5 12 (its branch's Dense, "5.1."), 7, 9 and 11 12 each, 12 8: 91 in 16 tensors.
using Net = Sequential<Input<2>,
                       Dense<4>, BatchNorm, ReLU,               // 1 2 3
                       Dense<3>, Residual<Dense<3>>, ReLU,      // 4 5 6
                       Dense<3>, ReLU, Dense<3>, ReLU,          // 7 8 9 10
                       Dense<3>, Dense<2>>;                     // 11 12
using M = Model<Net, cpu, double>;

using laminar_test::parameter;
using laminar_test::values;

// The names of the frozen parameters, in model order.
std::vector<std::string> frozen(const M& model) {
  std::vector<std::string> names;
  for (const auto& p : model.parameters())
    if (p.parameter->frozen) names.push_back(p.name);
  return names;
}

}  // namespace

TEST_CASE("every trainable value counts until something is frozen, and statistics never do") {
  M model;
  CHECK(train::trainable_count(model) == 91);
  CHECK(model.parameter_count() == 91);
}

TEST_CASE("freeze by prefix freezes the parameters the prefix selects and returns how many") {
  M model;
  CHECK(train::freeze(model, "4.") == 2);
  CHECK(frozen(model) == std::vector<std::string>{"4.weight", "4.bias"});
  CHECK(train::trainable_count(model) == 91 - 15);
}

TEST_CASE("the prefix of layer 1 does not select layer 12") {
  M model;
  CHECK(train::freeze(model, "1.") == 2);
  CHECK(frozen(model) == std::vector<std::string>{"1.weight", "1.bias"});
  train::unfreeze(model);
  CHECK(train::freeze(model, "1") == 2);
  CHECK(frozen(model) == std::vector<std::string>{"1.weight", "1.bias"});
}

TEST_CASE("a prefix selects the parameters of a residual branch by their nested names") {
  M model;
  CHECK(train::freeze(model, "5.") == 2);
  CHECK(frozen(model) == std::vector<std::string>{"5.1.weight", "5.1.bias"});
}

TEST_CASE("freezing a batch-norm layer freezes its scale and shift but not its statistics") {
  M model;
  CHECK(train::freeze(model, "2.") == 2);
  CHECK(frozen(model) == std::vector<std::string>{"2.gamma", "2.beta"});
  CHECK(train::trainable_count(model) == 91 - 8);
}

TEST_CASE("freeze without a prefix freezes every trainable parameter") {
  M model;
  CHECK(train::freeze(model) == 16);
  CHECK(train::trainable_count(model) == 0);
  CHECK_FALSE(parameter(model, "2.running_mean").frozen);
  CHECK_FALSE(parameter(model, "2.running_var").frozen);
}

TEST_CASE("unfreeze by prefix thaws only what the prefix selects") {
  M model;
  train::freeze(model);
  CHECK(train::unfreeze(model, "12.") == 2);
  CHECK(train::trainable_count(model) == 8);
  CHECK(parameter(model, "11.weight").frozen);
  CHECK_FALSE(parameter(model, "12.weight").frozen);
  CHECK(train::unfreeze(model) == 16);
  CHECK(frozen(model).empty());
}

TEST_CASE("a prefix that selects no trainable parameter is an error") {
  M model;
  CHECK_THROWS_AS(train::freeze(model, "3."), Error);  // ReLU
  CHECK_THROWS_AS(train::freeze(model, "13"), Error);
  CHECK_THROWS_AS(train::freeze(model, "2.running_mean"), Error);  // a statistic
  CHECK_THROWS_AS(train::unfreeze(model, "head."), Error);
  CHECK(frozen(model).empty());
}

TEST_CASE("freeze_layers freezes a range of top-level layers, skipping those without parameters") {
  M model;
  CHECK(train::freeze_layers(model, 1, 3) == 4);  // layers 1 and 2; 3 is a ReLU
  CHECK(frozen(model) == std::vector<std::string>{"1.weight", "1.bias", "2.gamma", "2.beta"});
  CHECK(train::trainable_count(model) == 91 - 12 - 8);
}

TEST_CASE("freeze_layers over the body leaves only the head trainable") {
  M model;
  CHECK(train::freeze_layers(model, 1, 11) == 14);
  CHECK(train::trainable_count(model) == 8);
  CHECK_FALSE(parameter(model, "12.weight").frozen);
  CHECK_FALSE(parameter(model, "12.bias").frozen);
}

TEST_CASE("freeze_layers of the last layer alone freezes layer 12, not layer 1") {
  M model;
  CHECK(train::freeze_layers(model, 12, 12) == 2);
  CHECK(frozen(model) == std::vector<std::string>{"12.weight", "12.bias"});
}

TEST_CASE("freeze_layers rejects a range outside the network or backwards") {
  M model;
  CHECK_THROWS_AS(train::freeze_layers(model, 0, 2), Error);
  CHECK_THROWS_AS(train::freeze_layers(model, 1, 13), Error);
  CHECK_THROWS_AS(train::freeze_layers(model, 5, 4), Error);
  CHECK(frozen(model).empty());
}

TEST_CASE("freeze_layers over layers without parameters is an error") {
  M model;
  CHECK_THROWS_AS(train::freeze_layers(model, 3, 3), Error);
  CHECK_THROWS_AS(train::freeze_layers(model, 6, 6), Error);
}

TEST_CASE("reinitialize draws fresh values for the prefix's parameters only") {
  M model;
  for (const auto& p : model.parameters()) std::fill(p.parameter->value(), p.parameter->value() + p.parameter->size, 0.25);
  train::reinitialize(model, "12.", 7);
  // The default initialisation with seed 7, as a model built with that seed has it.
  const M fresh(7);
  CHECK(values(parameter(model, "12.weight")) == values(parameter(fresh, "12.weight")));
  CHECK(values(parameter(model, "12.bias")) == std::vector<double>(2, 0.0));
  for (const auto& p : model.parameters()) {
    if (p.name.starts_with("12.")) continue;
    INFO(p.name);
    CHECK(values(*p.parameter) == std::vector<double>(std::size_t(p.parameter->size), 0.25));
  }
}

TEST_CASE("reinitialize of a batch-norm layer resets its scale, shift and statistics") {
  M model;
  for (const auto& p : model.parameters()) std::fill(p.parameter->value(), p.parameter->value() + p.parameter->size, 0.25);
  train::reinitialize(model, "2", 3);
  CHECK(values(parameter(model, "2.gamma")) == std::vector<double>(4, 1.0));
  CHECK(values(parameter(model, "2.beta")) == std::vector<double>(4, 0.0));
  CHECK(values(parameter(model, "2.running_mean")) == std::vector<double>(4, 0.0));
  CHECK(values(parameter(model, "2.running_var")) == std::vector<double>(4, 1.0));
  CHECK(values(parameter(model, "1.bias")) == std::vector<double>(4, 0.25));
}

TEST_CASE("reinitialize with a prefix that selects nothing is an error") {
  M model;
  CHECK_THROWS_AS(train::reinitialize(model, "13.", 1), Error);
}

TEST_CASE("an optimizer step leaves frozen parameters unchanged and moves the others") {
  Model<Sequential<Input<2>, Dense<2>, Dense<1>>, cpu, double> model;
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0});
  train::freeze(model, "1.");  // after the optimizer was made: freezing is checked at each step
  std::vector<std::vector<double>> before;
  for (const auto& p : model.parameters()) {
    before.push_back(values(*p.parameter));
    std::fill(p.parameter->grad(), p.parameter->grad() + p.parameter->size, 1.0);
  }
  opt.step();
  for (std::size_t i = 0; i < model.parameters().size(); ++i) {
    const auto& p = model.parameters()[i];
    INFO(p.name);
    std::vector<double> expected = before[i];
    if (!p.parameter->frozen)
      for (auto& v : expected) v -= 0.1;  // w - lr g with g = 1
    const auto now = values(*p.parameter);
    REQUIRE(now.size() == expected.size());
    for (std::size_t k = 0; k < now.size(); ++k) CHECK(now[k] == doctest::Approx(expected[k]).epsilon(1e-15));
  }
  CHECK(values(*model.parameters()[0].parameter) == before[0]);  // 1.weight, exactly
}

TEST_CASE("an unfrozen parameter moves again at the next optimizer step") {
  Model<Sequential<Input<2>, Dense<1>>, cpu, double> model;
  auto& bias = *model.parameters()[1].parameter;  // 1.bias
  bias.value()[0] = 1.0;
  optim::SGD opt(model, {.lr = 0.5, .momentum = 0.0});
  train::freeze(model);
  bias.grad()[0] = 1.0;
  model.parameters()[0].parameter->grad()[0] = model.parameters()[0].parameter->grad()[1] = 0.0;
  opt.step();
  CHECK(bias.value()[0] == 1.0);
  train::unfreeze(model);
  opt.step();
  CHECK(bias.value()[0] == doctest::Approx(0.5).epsilon(1e-15));
}
