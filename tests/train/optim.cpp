// Optimizers: the first steps of SGD, Adam, AdamW, Adadelta and RMSprop equal
// hand-computed values; the shared core's weight decay, no-bias-decay rule,
// max-norm constraint (on every weight or per name prefix), gradient clipping,
// frozen parameters, per-group learning rates and state visiting; decaying state
// flushed to zero rather than left subnormal; and the errors for bad options.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <laminar/laminar.hpp>
#include <string>
#include <utility>
#include <vector>

#include "support/model.hpp"

using namespace laminar;

using Net = Sequential<Input<2>, Dense<1>>;  // 1.weight (1, 2), 1.bias (1)
using Reference = Model<Net, cpu, double>;

namespace {
using laminar_test::parameter;

template <class T>
void set_values(Parameter<T, cpu>& p, std::initializer_list<double> values) {
  long i = 0;
  for (double v : values) p.value()[i++] = T(v);
}

template <class T>
void set_grads(Parameter<T, cpu>& p, std::initializer_list<double> grads) {
  long i = 0;
  for (double g : grads) p.grad()[i++] = T(g);
}

// The optimizer's state as (key, values) pairs in visiting order.
template <class Optimizer>
std::vector<std::pair<std::string, std::vector<double>>> saved_state(Optimizer& opt) {
  std::vector<std::pair<std::string, std::vector<double>>> state;
  opt.visit_state([&](const std::string& key, double* data, long size) {
    state.emplace_back(key, std::vector<double>(data, data + size));
  });
  return state;
}
}  // namespace

// --- SGD ------------------------------------------------------------------------

TEST_CASE("sgd with momentum takes the hand-computed first three steps") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {1.0, -2.0});
  set_values(b, {0.5});
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
    set_grads(w, {1.0, 0.0});
    set_grads(b, {2.0});
    opt.step();
    CHECK(w.value()[0] == doctest::Approx(w0[step]).epsilon(1e-7));
    CHECK(w.value()[1] == doctest::Approx(w1[step]).epsilon(1e-7));
    CHECK(b.value()[0] == doctest::Approx(bias[step]).epsilon(1e-12));
  }
}

TEST_CASE("sgd with nesterov momentum steps along gradient plus momentum times velocity") {
  Reference model;
  auto& b = parameter(model, "1.bias");
  set_values(b, {0.0});
  optim::SGD opt(model, {.lr = 0.5, .momentum = 0.5, .nesterov = true});
  // g = 1 each step: v = 1, 1.5, 1.75; step = g + mu v = 1.5, 1.75, 1.875; b -= 0.5 step.
  const double expected[3] = {-0.75, -1.625, -2.5625};
  for (double e : expected) {
    set_grads(b, {1.0});
    set_grads(parameter(model, "1.weight"), {0.0, 0.0});
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(e).epsilon(1e-12));
  }
}

TEST_CASE("sgd decays biases too when decay_bias_and_bn is set") {
  Reference model;
  auto& b = parameter(model, "1.bias");
  set_values(b, {2.0});
  set_grads(b, {0.0});
  set_grads(parameter(model, "1.weight"), {0.0, 0.0});
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0, .weight_decay = 0.5, .decay_bias_and_bn = true});
  opt.step();
  CHECK(b.value()[0] == doctest::Approx(2.0 - 0.1 * 0.5 * 2.0).epsilon(1e-12));
}

TEST_CASE("by default only weights are decayed, not biases nor batchnorm gamma and beta") {
  using BnNet = Sequential<Input<2>, Dense<2>, BatchNorm>;
  Model<BnNet, cpu, double> model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  auto& gamma = parameter(model, "2.gamma");
  auto& beta = parameter(model, "2.beta");
  set_values(w, {2.0, 2.0, 2.0, 2.0});
  set_values(b, {2.0, 2.0});
  set_values(gamma, {2.0, 2.0});
  set_values(beta, {2.0, 2.0});
  set_grads(w, {0.0, 0.0, 0.0, 0.0});
  set_grads(b, {0.0, 0.0});
  set_grads(gamma, {0.0, 0.0});
  set_grads(beta, {0.0, 0.0});
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0, .weight_decay = 0.5});
  opt.step();
  // w = 2 - 0.1 (0 + 0.5 * 2) = 1.9; the others have zero gradient and no decay.
  for (int i = 0; i < 4; ++i) CHECK(w.value()[i] == doctest::Approx(1.9).epsilon(1e-12));
  for (int i = 0; i < 2; ++i) {
    CHECK(b.value()[i] == 2.0);
    CHECK(gamma.value()[i] == 2.0);
    CHECK(beta.value()[i] == 2.0);
  }
  // Statistics are state, not parameters: the optimizer never writes them.
  CHECK(parameter(model, "2.running_mean").value()[0] == 0.0);
  CHECK(parameter(model, "2.running_var").value()[0] == 1.0);
}

TEST_CASE("decoupled weight decay in sgd shrinks the weight beside the momentum step") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  set_values(w, {2.0, 0.0});
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.5, .decoupled_weight_decay = true});
  // g = 1: v1 = 1, w = 2 - 0.1 * 0.5 * 2 - 0.1 * 1 = 1.8;
  //        v2 = 0.9 + 1 = 1.9, w = 1.8 - 0.1 * 0.5 * 1.8 - 0.1 * 1.9 = 1.52.
  // Coupled decay would give g' = 1.9, v2 = 3.7 and w = 1.43 at the second step.
  const double expected[2] = {1.8, 1.52};
  for (double e : expected) {
    set_grads(w, {1.0, 0.0});
    set_grads(parameter(model, "1.bias"), {0.0});
    opt.step();
    CHECK(w.value()[0] == doctest::Approx(e).epsilon(1e-12));
  }
}

// --- Adam and AdamW ---------------------------------------------------------------

TEST_CASE("adam takes the hand-computed bias-corrected first three steps") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {1.0, -1.0});
  set_values(b, {0.0});
  optim::Adam opt(model, {.lr = 0.1});
  // b1 = 0.9, b2 = 0.999, eps = 1e-8; gradients 1, -2, 0.5 on the bias.
  //   t=1: m = 0.1, v = 0.001; m^ = 0.1 / 0.1 = 1, v^ = 0.001 / 0.001 = 1;
  //        b = -0.1 * 1 / (1 + 1e-8) = -0.099999999
  //   t=2: m = 0.09 - 0.2 = -0.11, v = 0.000999 + 0.004 = 0.004999;
  //        m^ = -0.11 / 0.19 = -0.5789474, v^ = 0.004999 / 0.001999 = 2.5007504;
  //        b += 0.1 * 0.5789474 / 1.5813761 -> -0.0633896465
  //   t=3: m = -0.099 + 0.05 = -0.049, v = 0.004994001 + 0.00025 = 0.005244001;
  //        m^ = -0.049 / 0.271 = -0.1808118, v^ = 0.005244001 / 0.002997001 = 1.7497495;
  //        b += 0.1 * 0.1808118 / 1.3227810 -> -0.0497205803
  // Without the bias correction the first step would be 0.1 * 0.1 / sqrt(0.001) = 0.316.
  // The weights' gradient is 0, so m = v = 0 and they do not move.
  const double grads[3] = {1.0, -2.0, 0.5};
  const double expected[3] = {-0.099999999, -0.0633896465279, -0.0497205803262};
  for (int step = 0; step < 3; ++step) {
    set_grads(w, {0.0, 0.0});
    set_grads(b, {grads[step]});
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(expected[step]).epsilon(1e-10));
    CHECK(w.value()[0] == 1.0);
    CHECK(w.value()[1] == -1.0);
  }
  CHECK(opt.step_count() == 3);
}

TEST_CASE("adam's coupled l2 decay passes through the adaptive scaling") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  set_values(w, {1.0, 1.0});
  optim::Adam opt(model, {.lr = 0.1, .weight_decay = 0.1});
  // g = 0, so the rule sees g' = 0.1 w and normalises it to a step of about lr:
  //   t=1: g' = 0.1, m^ = 0.1, v^ = 0.01, w = 1 - 0.1 * 0.1 / (0.1 + 1e-8) = 0.90000001
  //   t=2: g' = 0.090000001, m = 0.0180000001, v = 1.809e-5; m^ = 0.0947368,
  //        v^ = 0.00904952, w = 0.9 - 0.1 * 0.0947368 / 0.0951290 = 0.800412248
  //   t=3: g' = 0.0800412, m = 0.0242041, v = 2.44785e-5; m^ = 0.0893141,
  //        v^ = 0.00816767, w = 0.8004122 - 0.1 * 0.0893141 / 0.0903752 = 0.701586303
  const double expected[3] = {0.90000001, 0.800412248082, 0.701586302555};
  for (double e : expected) {
    set_grads(w, {0.0, 0.0});
    set_grads(parameter(model, "1.bias"), {0.0});
    opt.step();
    CHECK(w.value()[0] == doctest::Approx(e).epsilon(1e-10));
    CHECK(w.value()[1] == doctest::Approx(e).epsilon(1e-10));
  }
}

TEST_CASE("adamw's decoupled decay shrinks the weight by lr times decay beside the adam step") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  set_values(w, {1.0, 1.0});
  optim::AdamW opt(model, {.lr = 0.1, .weight_decay = 0.1});
  // g = 0: the Adam step is 0 / (0 + eps) = 0 and w <- w (1 - 0.1 * 0.1) each step:
  // 0.99, 0.9801, 0.970299 (Adam's coupled decay above gives 0.9, 0.80, 0.70).
  const double expected[3] = {0.99, 0.9801, 0.970299};
  for (double e : expected) {
    set_grads(w, {0.0, 0.0});
    set_grads(parameter(model, "1.bias"), {0.0});
    opt.step();
    CHECK(w.value()[0] == doctest::Approx(e).epsilon(1e-12));
  }
}

TEST_CASE("adamw defaults to decoupled weight decay of 0.01 and adam to no decay") {
  Reference model;
  optim::AdamW adamw(model);
  optim::Adam adam(model);
  CHECK(adamw.options().weight_decay == 0.01);
  CHECK(adamw.options().decoupled_weight_decay);
  CHECK(adam.options().weight_decay == 0.0);
  CHECK_FALSE(adam.options().decoupled_weight_decay);
  CHECK(adam.learning_rate() == 1e-3);
  CHECK(std::string(decltype(adamw)::name) == "AdamW");
  CHECK(std::string(decltype(adam)::name) == "Adam");
}

// --- Adadelta ------------------------------------------------------------------------

TEST_CASE("adadelta takes the hand-computed first three steps") {
  Reference model;
  auto& b = parameter(model, "1.bias");
  set_values(b, {0.0});
  optim::Adadelta opt(model, {.lr = 1.0, .rho = 0.5, .eps = 0.25});
  // g = 1 each step; s, a start at 0.
  //   1: s = 0.5;   d = sqrt(0 + 0.25) / sqrt(0.75) = 0.5773503;  a = 0.5 * 0.3333333 = 0.1666667
  //   2: s = 0.75;  d = sqrt(0.4166667) / sqrt(1)   = 0.6454972;  a = 0.0833333 + 0.2083333 = 0.2916667
  //   3: s = 0.875; d = sqrt(0.5416667) / sqrt(1.125) = 0.6938887
  //   b = -0.5773503, -1.2228475, -1.9167362
  const double expected[3] = {-0.57735026919, -1.22284749356, -1.91673616005};
  for (double e : expected) {
    set_grads(b, {1.0});
    set_grads(parameter(model, "1.weight"), {0.0, 0.0});
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(e).epsilon(1e-10));
  }
}

TEST_CASE("adadelta takes the keras defaults lr 1, rho 0.95 and eps 1e-7") {
  Reference model;
  auto& b = parameter(model, "1.bias");
  set_values(b, {0.0});
  optim::Adadelta opt(model);
  CHECK(opt.options().lr == 1.0);
  CHECK(opt.options().rho == 0.95);
  CHECK(opt.options().eps == 1e-7);
  // g = 1: s = 0.05, d = sqrt(1e-7) / sqrt(0.05 + 1e-7) = 0.00141421214816.
  set_grads(b, {1.0});
  set_grads(parameter(model, "1.weight"), {0.0, 0.0});
  opt.step();
  CHECK(b.value()[0] == doctest::Approx(-0.00141421214816).epsilon(1e-10));
}

// --- RMSprop --------------------------------------------------------------------------

TEST_CASE("rmsprop takes the hand-computed first three steps") {
  Reference model;
  auto& b = parameter(model, "1.bias");
  set_values(b, {0.0});
  optim::RMSprop opt(model, {.lr = 0.01});
  // alpha = 0.9, eps = 1e-7; gradients 1, -2, 0.5.
  //   1: s = 0.1;   d = 1 / (0.3162278 + 1e-7) = 3.1622767;   b = -0.0316227666
  //   2: s = 0.09 + 0.4 = 0.49;    d = -2 / 0.7000001 = -2.8571424;  b = -0.0030513421
  //   3: s = 0.441 + 0.025 = 0.466; d = 0.5 / 0.6826419 = 0.7324483; b = -0.0103758252
  const double grads[3] = {1.0, -2.0, 0.5};
  const double expected[3] = {-0.0316227666017, -0.00305134211189, -0.0103758252303};
  for (int step = 0; step < 3; ++step) {
    set_grads(b, {grads[step]});
    set_grads(parameter(model, "1.weight"), {0.0, 0.0});
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(expected[step]).epsilon(1e-10));
  }
}

TEST_CASE("centered rmsprop divides by the root of the gradient's variance") {
  Reference model;
  auto& b = parameter(model, "1.bias");
  set_values(b, {0.0});
  optim::RMSprop opt(model, {.lr = 0.01, .centered = true});
  // c averages g as s averages g^2:
  //   1: s = 0.1,   c = 0.1;    r = sqrt(0.1 - 0.01) = 0.3;         d = 1 / 0.3000001 = 3.3333322
  //   2: s = 0.49,  c = -0.11;  r = sqrt(0.49 - 0.0121) = 0.6913031; d = -2.8930865
  //   3: s = 0.466, c = -0.049; r = sqrt(0.466 - 0.002401) = 0.6808811; d = 0.7343426
  //   b = -0.0333333222, -0.0044024573, -0.0117458828
  const double grads[3] = {1.0, -2.0, 0.5};
  const double expected[3] = {-0.0333333222222, -0.00440245730035, -0.0117458828349};
  for (int step = 0; step < 3; ++step) {
    set_grads(b, {grads[step]});
    set_grads(parameter(model, "1.weight"), {0.0, 0.0});
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(expected[step]).epsilon(1e-10));
  }
}

TEST_CASE("rmsprop with momentum accumulates the normalised gradient") {
  Reference model;
  auto& b = parameter(model, "1.bias");
  set_values(b, {0.0});
  optim::RMSprop opt(model, {.lr = 0.01, .momentum = 0.5});
  // d as in the plain case: 3.1622767, -2.8571424, 0.7324483;
  //   buffer = 3.1622767, 1.5811383 - 2.8571424 = -1.2760041, -0.6380021 + 0.7324483 = 0.0944463
  //   b = -0.0316227666, -0.0188627254, -0.0198071879
  const double grads[3] = {1.0, -2.0, 0.5};
  const double expected[3] = {-0.0316227666017, -0.0188627254127, -0.0198071879367};
  for (int step = 0; step < 3; ++step) {
    set_grads(b, {grads[step]});
    set_grads(parameter(model, "1.weight"), {0.0, 0.0});
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(expected[step]).epsilon(1e-10));
  }
}

TEST_CASE("rmsprop keeps only the state buffers its options need") {
  Reference model;
  optim::RMSprop plain(model);
  optim::RMSprop full(model, {.momentum = 0.9, .centered = true});
  std::vector<std::string> plain_keys, full_keys;
  plain.visit_state([&](const std::string& key, double*, long) { plain_keys.push_back(key); });
  full.visit_state([&](const std::string& key, double*, long) { full_keys.push_back(key); });
  CHECK(plain_keys == std::vector<std::string>{"1.weight/square_avg", "1.bias/square_avg"});
  CHECK(full_keys == std::vector<std::string>{"1.weight/square_avg", "1.weight/momentum_buffer",
                                              "1.weight/grad_avg", "1.bias/square_avg",
                                              "1.bias/momentum_buffer", "1.bias/grad_avg"});
}

// --- the shared core -----------------------------------------------------------------

TEST_CASE("max-norm rescales an over-long weight row and leaves a short one") {
  using WideNet = Sequential<Input<2>, Dense<2>>;  // weight (2 outputs, 2 inputs)
  Model<WideNet, cpu, double> model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {3.0, 4.0, 0.6, 0.8});
  set_values(b, {10.0, 0.0});
  set_grads(w, {0.0, 0.0, 0.0, 0.0});
  set_grads(b, {0.0, 0.0});
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0, .max_norm = 2.0});
  opt.step();
  // Row 0 has norm 5 > 2: scaled by 2 / 5 to (1.2, 1.6). Row 1 has norm 1.
  CHECK(w.value()[0] == doctest::Approx(1.2).epsilon(1e-12));
  CHECK(w.value()[1] == doctest::Approx(1.6).epsilon(1e-12));
  CHECK(w.value()[2] == 0.6);
  CHECK(w.value()[3] == 0.8);
  // Biases are not weights: a bias of 10 stays.
  CHECK(b.value()[0] == 10.0);
}

TEST_CASE("max-norm treats each convolution filter as one row") {
  using ConvNet = Sequential<Input<1, 2, 2>, Conv<2, 2, 2, 1, valid>>;  // weight (2 filters, 1*2*2)
  Model<ConvNet, cpu, double> model;
  auto& w = parameter(model, "1.weight");
  set_values(w, {1.0, 1.0, 1.0, 1.0, 0.1, 0.2, 0.2, 0.4});
  set_grads(w, {0, 0, 0, 0, 0, 0, 0, 0});
  set_grads(parameter(model, "1.bias"), {0.0, 0.0});
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0, .max_norm = 1.0});
  opt.step();
  // Filter 0 has norm 2: every value halves. Filter 1 has norm 0.5 and stays.
  for (int i = 0; i < 4; ++i) CHECK(w.value()[i] == doctest::Approx(0.5).epsilon(1e-12));
  const double short_filter[4] = {0.1, 0.2, 0.2, 0.4};
  for (int i = 0; i < 4; ++i) CHECK(w.value()[4 + i] == short_filter[i]);
}

// Two dense layers: 1.weight (2 outputs, 4 inputs), 1.bias, 3.weight (2, 2), 3.bias.
using TwoDense = Sequential<Input<4>, Dense<2>, ReLU, Dense<2>>;

// Every gradient zero, so a momentum-free SGD step leaves the values to the constraint alone.
template <class M>
void zero_grads(M& model) {
  for (const auto& named : model.parameters())
    if (auto* p = named.parameter; p->trainable()) std::fill(p->grad(), p->grad() + p->size, 0.0);
}

TEST_CASE("set_max_norm rescales a selected row to norm exactly 3 and leaves a row under the bound") {
  Model<TwoDense, cpu, double> model;
  auto& w = parameter(model, "1.weight");
  set_values(w, {1.0, 2.0, 2.0, 4.0, 1.0, 1.0, 1.0, 1.0});
  zero_grads(model);
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0});
  opt.set_max_norm("1", 3.0);
  opt.step();
  // Row 0 has norm sqrt(1 + 4 + 4 + 16) = 5: scaled by 3 / 5. Row 1 has norm 2.
  const double rescaled[4] = {0.6, 1.2, 1.2, 2.4};
  double squares = 0;
  for (int i = 0; i < 4; ++i) {
    CHECK(w.value()[i] == doctest::Approx(rescaled[i]).epsilon(1e-12));
    squares += w.value()[i] * w.value()[i];
  }
  CHECK(std::sqrt(squares) == doctest::Approx(3.0).epsilon(1e-12));
  for (int i = 4; i < 8; ++i) CHECK(w.value()[i] == 1.0);
}

TEST_CASE("set_max_norm constrains only the weights its prefix selects, not their bias nor other layers") {
  Model<TwoDense, cpu, double> model;
  auto& first = parameter(model, "1.weight");
  auto& bias = parameter(model, "1.bias");
  auto& second = parameter(model, "3.weight");
  set_values(first, {4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5});
  set_values(bias, {10.0, -10.0});
  set_values(second, {6.0, 8.0, 0.0, 20.0});
  zero_grads(model);
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0});
  opt.set_max_norm("1", 3.0);
  CHECK(opt.max_norm("1.weight") == 3.0);
  CHECK(opt.max_norm("1.bias") == 0.0);
  CHECK(opt.max_norm("3.weight") == 0.0);
  opt.step();
  // 1.weight row 0 (norm 4) becomes (3, 0, 0, 0); row 1 (norm 0.5) stays.
  CHECK(first.value()[0] == doctest::Approx(3.0).epsilon(1e-12));
  CHECK(first.value()[7] == 0.5);
  CHECK(bias.value()[0] == 10.0);
  CHECK(bias.value()[1] == -10.0);
  const double unselected[4] = {6.0, 8.0, 0.0, 20.0};  // norms 10 and 20, both above 3
  for (int i = 0; i < 4; ++i) CHECK(second.value()[i] == unselected[i]);
}

TEST_CASE("set_max_norm overrides the options' max_norm for the weights it selects, zero lifting it") {
  Model<TwoDense, cpu, double> model;
  auto& first = parameter(model, "1.weight");
  auto& second = parameter(model, "3.weight");
  set_values(first, {0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0});
  set_values(second, {3.0, 4.0, 0.0, 0.0});
  zero_grads(model);
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0, .max_norm = 1.0});
  opt.set_max_norm("1.weight", 0.0);
  opt.set_max_norm("3", 2.5);
  opt.step();
  // 1.weight is free: its row of norm 5 stays. 3.weight's row of norm 5 goes to 2.5, not to 1.
  CHECK(first.value()[2] == 3.0);
  CHECK(first.value()[3] == 4.0);
  CHECK(second.value()[0] == doctest::Approx(1.5).epsilon(1e-12));
  CHECK(second.value()[1] == doctest::Approx(2.0).epsilon(1e-12));
}

TEST_CASE("the per-prefix max-norm rescales the weights adam has just updated") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  set_values(w, {3.0, 4.0});
  set_grads(w, {-1.0, -1.0});
  set_grads(parameter(model, "1.bias"), {0.0});
  optim::Adam opt(model, {.lr = 1.0});
  opt.set_max_norm("1", 3.0);
  opt.step();
  // Adam's first step is lr g / (|g| + eps) against the gradient: each weight
  // grows by d = 1 / (1 + 1e-8), to (3 + d, 4 + d), which is then scaled to norm 3.
  const double d = 1.0 / (1.0 + 1e-8);
  const double norm = std::sqrt((3 + d) * (3 + d) + (4 + d) * (4 + d));
  CHECK(w.value()[0] == doctest::Approx(3 * (3 + d) / norm).epsilon(1e-12));
  CHECK(w.value()[1] == doctest::Approx(3 * (4 + d) / norm).epsilon(1e-12));
}

TEST_CASE("clipping scales every gradient by clip over norm when the global norm is above it") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {0.0, 0.0});
  set_values(b, {0.0});
  set_grads(w, {2.0, 4.0});
  set_grads(b, {4.0});
  optim::SGD opt(model, {.lr = 1.0, .momentum = 0.0, .clip_norm = 3.0});
  opt.step();
  // Norm sqrt(4 + 16 + 16) = 6 over all parameters; scale 3 / 6 = 0.5.
  CHECK(opt.last_gradient_norm() == doctest::Approx(6.0).epsilon(1e-12));
  CHECK(w.value()[0] == doctest::Approx(-1.0).epsilon(1e-12));
  CHECK(w.value()[1] == doctest::Approx(-2.0).epsilon(1e-12));
  CHECK(b.value()[0] == doctest::Approx(-2.0).epsilon(1e-12));
}

TEST_CASE("clipping leaves gradients whose global norm is below the limit") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {0.0, 0.0});
  set_values(b, {0.0});
  set_grads(w, {2.0, 4.0});
  set_grads(b, {4.0});
  optim::SGD opt(model, {.lr = 1.0, .momentum = 0.0, .clip_norm = 10.0});
  opt.step();
  CHECK(opt.last_gradient_norm() == doctest::Approx(6.0).epsilon(1e-12));
  CHECK(w.value()[0] == -2.0);
  CHECK(w.value()[1] == -4.0);
  CHECK(b.value()[0] == -4.0);
}

TEST_CASE("the gradient norm counts only unfrozen parameters and is not measured without clipping") {
  Reference model;
  set_grads(parameter(model, "1.weight"), {2.0, 4.0});
  set_grads(parameter(model, "1.bias"), {4.0});
  parameter(model, "1.bias").frozen = true;
  optim::SGD clipped(model, {.lr = 0.0, .momentum = 0.0, .clip_norm = 100.0});
  clipped.step();
  CHECK(clipped.last_gradient_norm() == doctest::Approx(std::sqrt(20.0)).epsilon(1e-12));
  optim::SGD unclipped(model, {.lr = 0.0, .momentum = 0.0});
  unclipped.step();
  CHECK(std::isnan(unclipped.last_gradient_norm()));
}

TEST_CASE("a parameter frozen after the optimizer is built keeps its value and its state") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {1.0, 1.0});
  set_values(b, {1.0});
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
  b.frozen = true;
  for (int step = 0; step < 2; ++step) {
    set_grads(w, {1.0, 1.0});
    set_grads(b, {1.0});
    opt.step();
  }
  CHECK(b.value()[0] == 1.0);
  CHECK(w.value()[0] < 1.0);
  const auto state = saved_state(opt);
  REQUIRE(state.size() == 2);
  REQUIRE(state[1].first == "1.bias/velocity");
  CHECK(state[1].second[0] == 0.0);
  // Unfrozen, it steps again: v = 1, b = 1 - 0.1.
  b.frozen = false;
  set_grads(b, {1.0});
  opt.step();
  CHECK(b.value()[0] == doctest::Approx(0.9).epsilon(1e-12));
}

TEST_CASE("set_lr_scale gives parameters matching a prefix a scaled learning rate, last call winning") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {0.0, 0.0});
  set_values(b, {0.0});
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0});
  opt.set_lr_scale("1.", 2.0);
  opt.set_lr_scale("1.bias", 0.5);
  CHECK(opt.lr_scale("1.weight") == 2.0);
  CHECK(opt.lr_scale("1.bias") == 0.5);
  set_grads(w, {1.0, 1.0});
  set_grads(b, {1.0});
  opt.step();
  CHECK(w.value()[0] == doctest::Approx(-0.2).epsilon(1e-12));
  CHECK(b.value()[0] == doctest::Approx(-0.05).epsilon(1e-12));
}

TEST_CASE("set_weight_decay_scale scales the decay of the parameters it selects, and only of decayed ones") {
  Reference model;
  auto& w = parameter(model, "1.weight");
  auto& b = parameter(model, "1.bias");
  set_values(w, {1.0, 2.0});
  set_values(b, {4.0});
  // Biases undecayed by the options stay undecayed whatever their scale.
  optim::SGD coupled(model, {.lr = 0.1, .momentum = 0.0, .weight_decay = 0.5});
  coupled.set_weight_decay_scale("1.weight", 0.25);
  coupled.set_weight_decay_scale("1.bias", 3.0);
  CHECK(coupled.weight_decay_scale("1.weight") == 0.25);
  set_grads(w, {0.0, 0.0});
  set_grads(b, {0.0});
  coupled.step();  // w -= 0.1 * (0.5 * 0.25) w
  CHECK(w.value()[0] == doctest::Approx(1.0 - 0.0125).epsilon(1e-12));
  CHECK(w.value()[1] == doctest::Approx(2.0 - 0.025).epsilon(1e-12));
  CHECK(b.value()[0] == 4.0);

  set_values(b, {4.0});
  optim::SGD all(model, {.lr = 0.1, .momentum = 0.0, .weight_decay = 0.5, .decay_bias_and_bn = true});
  all.set_lr_scale("1.bias", 64.0);
  all.set_weight_decay_scale("1.bias", 1.0 / 64);
  set_grads(b, {0.0});
  all.step();  // b -= (0.1 * 64) * (0.5 / 64) b: the product of the two scales is 1
  CHECK(b.value()[0] == doctest::Approx(4.0 - 0.2).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(all.set_weight_decay_scale("8.", 1.0),
                       "SGD: the prefix selects no trainable parameter: \"8.\"", Error);
}

TEST_CASE("restoring visited state and step count makes a second optimizer step identically") {
  Reference first, second;
  optim::Adam a(first, {.lr = 0.05, .weight_decay = 0.01});
  const double grads[2][3] = {{0.3, -0.7, 1.1}, {-0.2, 0.4, 0.9}};
  for (const auto& g : grads) {
    set_grads(parameter(first, "1.weight"), {g[0], g[1]});
    set_grads(parameter(first, "1.bias"), {g[2]});
    a.step();
  }
  const auto state = saved_state(a);
  std::vector<std::string> keys;
  for (const auto& entry : state) keys.push_back(entry.first);
  CHECK(keys == std::vector<std::string>{"1.weight/exp_avg", "1.weight/exp_avg_sq", "1.bias/exp_avg",
                                         "1.bias/exp_avg_sq"});

  for (const char* name : {"1.weight", "1.bias"}) {
    auto& from = parameter(first, name);
    ops<cpu>::copy(parameter(second, name).value(), from.value(), from.size);
  }
  optim::Adam b(second, {.lr = 0.05, .weight_decay = 0.01});
  std::size_t next = 0;
  b.visit_state([&](const std::string& key, double* data, long size) {
    REQUIRE(key == state[next].first);
    REQUIRE(std::size_t(size) == state[next].second.size());
    std::copy(state[next].second.begin(), state[next].second.end(), data);
    ++next;
  });
  b.set_step_count(a.step_count());

  for (auto* model : {&first, &second}) {
    set_grads(parameter(*model, "1.weight"), {0.5, 0.5});
    set_grads(parameter(*model, "1.bias"), {-0.5});
  }
  a.step();
  b.step();
  for (const char* name : {"1.weight", "1.bias"})
    for (long i = 0; i < parameter(first, name).size; ++i)
      CHECK(parameter(second, name).value()[i] == parameter(first, name).value()[i]);
  CHECK(b.step_count() == 3);
}

TEST_CASE("every optimizer moves a float model's parameters against their gradient") {
  Model<Net, cpu> model;
  auto check_descends = [&](auto& opt) {
    set_values(parameter(model, "1.weight"), {0.0, 0.0});
    set_values(parameter(model, "1.bias"), {0.0});
    set_grads(parameter(model, "1.weight"), {1.0, -1.0});
    set_grads(parameter(model, "1.bias"), {1.0});
    opt.step();
    CHECK(parameter(model, "1.weight").value()[0] < 0.0f);
    CHECK(parameter(model, "1.weight").value()[1] > 0.0f);
    CHECK(parameter(model, "1.bias").value()[0] < 0.0f);
  };
  optim::SGD sgd(model, {.lr = 0.1, .clip_norm = 1.0});
  optim::Adam adam(model, {.max_norm = 1.0});
  optim::AdamW adamw(model);
  optim::Adadelta adadelta(model);
  optim::RMSprop rmsprop(model, {.momentum = 0.9, .centered = true});
  check_descends(sgd);
  check_descends(adam);
  check_descends(adamw);
  check_descends(adadelta);
  check_descends(rmsprop);
}

// --- subnormals ------------------------------------------------------------------------

namespace {
bool any_subnormal(optim::Adam<Model<Net, cpu>>& opt) {
  bool found = false;
  opt.visit_state([&](const std::string&, float* data, long size) {
    for (long i = 0; i < size; ++i) found = found || std::fpclassify(data[i]) == FP_SUBNORMAL;
  });
  return found;
}

float times_one(float x) {
  volatile float one = 1.0f;  // not folded at compile time: the multiply runs under the thread's mode
  return x * one;
}
}  // namespace

TEST_CASE("adam's moments decaying under zero gradients go from normal straight to zero, never subnormal") {
  // One gradient of 1 sets the bias's first moment to 0.1; then zero gradients
  // scale it by 0.9 a step. Unflushed it turns subnormal (below 1.18e-38) near
  // step 810 and stays so for good: a few units of the last place times 0.9 round
  // back to themselves. Flushed, it is never subnormal and is 0 by step 1000.
  Model<Net, cpu> model;
  auto& b = parameter(model, "1.bias");
  optim::Adam opt(model, {.lr = 0.1});
  set_grads(parameter(model, "1.weight"), {0.0, 0.0});
  set_grads(b, {1.0});
  opt.step();
  set_grads(b, {0.0});
  bool subnormal = false;
  for (int step = 0; step < 1000; ++step) {
    opt.step();
    subnormal = subnormal || any_subnormal(opt);
  }
  CHECK_FALSE(subnormal);
  float first_moment = -1;
  opt.visit_state([&](const std::string& key, float* data, long) {
    if (key == "1.bias/exp_avg") first_moment = data[0];
  });
  CHECK(first_moment == 0.0f);
  // The flush is scoped to the update: the calling thread's own arithmetic keeps subnormals.
  CHECK(std::fpclassify(times_one(std::numeric_limits<float>::denorm_min())) == FP_SUBNORMAL);
}

TEST_CASE("parallel_for reads and writes subnormals as zero on every thread, normal values unchanged") {
  const long n = 100000;  // above the serial cut-off, so the loop runs on every thread
  std::vector<float> x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n), -1.0f);
  for (long i = 0; i < n; ++i) x[std::size_t(i)] = i % 2 ? 1.5f : std::numeric_limits<float>::min() / 4;
  struct Halve {
    const float* x;
    float* y;
    void operator()(long i) const { y[i] = x[i] * 0.5f; }
  };
  ops<cpu>::parallel_for(n, Halve{x.data(), y.data()});
  long wrong = 0;
  for (long i = 0; i < n; ++i) wrong += y[std::size_t(i)] != (i % 2 ? 0.75f : 0.0f);
  CHECK(wrong == 0);
  CHECK(std::fpclassify(times_one(std::numeric_limits<float>::min() / 4)) == FP_SUBNORMAL);
}

// --- errors ------------------------------------------------------------------------------

TEST_CASE("each optimizer refuses a negative learning rate and names itself") {
  Reference model;
  CHECK_THROWS_WITH_AS(optim::SGD(model, {.lr = -1.0}), "SGD: lr must be a finite number >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(model, {.lr = -1.0}), "Adam: lr must be a finite number >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(model, {.lr = -1.0}), "AdamW: lr must be a finite number >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(optim::Adadelta(model, {.lr = -1.0}), "Adadelta: lr must be a finite number >= 0, got -1",
                       Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(model, {.lr = -1.0}), "RMSprop: lr must be a finite number >= 0, got -1",
                       Error);
}

TEST_CASE("set_learning_rate refuses a negative or NaN rate") {
  Reference model;
  optim::SGD opt(model);
  CHECK_THROWS_WITH_AS(opt.set_learning_rate(-0.5), "SGD: lr must be a finite number >= 0, got -0.5", Error);
  CHECK_THROWS_AS(opt.set_learning_rate(std::nan("")), Error);
  CHECK(opt.learning_rate() == 0.1);
}

TEST_CASE("adam refuses a beta of one or below zero and a non-positive eps") {
  Reference model;
  CHECK_THROWS_WITH_AS(optim::Adam(model, {.beta1 = 1.0}), "Adam: beta1 must be at least 0 and below 1, got 1",
                       Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(model, {.beta2 = -0.1}),
                       "AdamW: beta2 must be at least 0 and below 1, got -0.1", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(model, {.eps = 0.0}), "Adam: eps must be a finite number > 0, got 0", Error);
}

TEST_CASE("adadelta and rmsprop refuse decay rates and momenta outside zero to one") {
  Reference model;
  CHECK_THROWS_WITH_AS(optim::Adadelta(model, {.rho = 1.5}),
                       "Adadelta: rho must be at least 0 and below 1, got 1.5", Error);
  CHECK_THROWS_WITH_AS(optim::Adadelta(model, {.eps = -1e-7}),
                       "Adadelta: eps must be a finite number > 0, got -1e-07", Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(model, {.alpha = 1.0}),
                       "RMSprop: alpha must be at least 0 and below 1, got 1", Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(model, {.momentum = -0.5}),
                       "RMSprop: momentum must be at least 0 and below 1, got -0.5", Error);
}

TEST_CASE("sgd refuses a negative momentum and nesterov without momentum") {
  Reference model;
  CHECK_THROWS_WITH_AS(optim::SGD(model, {.momentum = -0.1}), "SGD: momentum must be at least 0 and below 1, got -0.1",
                       Error);
  CHECK_THROWS_WITH_AS(optim::SGD(model, {.momentum = 0.0, .nesterov = true}),
                       "SGD: nesterov momentum needs a momentum above 0, got 0", Error);
}

TEST_CASE("the shared options refuse a negative weight decay, max_norm or clip_norm") {
  Reference model;
  CHECK_THROWS_WITH_AS(optim::SGD(model, {.weight_decay = -5e-4}),
                       "SGD: weight_decay must be a finite number >= 0, got -0.0005", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(model, {.max_norm = -3.0}), "Adam: max_norm must be a finite number >= 0, got -3",
                       Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(model, {.clip_norm = -1.0}),
                       "RMSprop: clip_norm must be a finite number >= 0, got -1", Error);
}

TEST_CASE("set_lr_scale refuses a prefix no parameter has, and lr_scale an unknown name") {
  Reference model;
  optim::SGD opt(model);
  CHECK_THROWS_WITH_AS(opt.set_lr_scale("7.", 0.1), "SGD: the prefix selects no trainable parameter: \"7.\"", Error);
  CHECK_THROWS_WITH_AS(opt.lr_scale("9.weight"), "SGD: there is no trainable parameter named \"9.weight\"", Error);
  CHECK_THROWS_WITH_AS(opt.set_lr_scale("1.", -1.0),
                       "SGD: the learning-rate scale must be a finite number >= 0, got -1", Error);
  CHECK(opt.lr_scale("1.weight") == 1.0);
}

TEST_CASE("set_step_count refuses a negative count") {
  Reference model;
  optim::Adam opt(model);
  CHECK_THROWS_WITH_AS(opt.set_step_count(-1), "Adam: the step count must be >= 0, got -1", Error);
  CHECK(opt.step_count() == 0);
}

TEST_CASE("set_max_norm refuses a prefix that selects no weight and a negative bound") {
  Model<TwoDense, cpu, double> model;
  optim::Adam opt(model);
  CHECK_THROWS_WITH_AS(opt.set_max_norm("1.bias", 3.0), "Adam: the prefix selects no trainable weight: \"1.bias\"",
                       Error);
  CHECK_THROWS_WITH_AS(opt.set_max_norm("5", 3.0), "Adam: the prefix selects no trainable weight: \"5\"", Error);
  CHECK_THROWS_WITH_AS(opt.set_max_norm("1", -3.0), "Adam: max_norm must be a finite number >= 0, got -3", Error);
  CHECK_THROWS_WITH_AS(opt.max_norm("2.weight"), "Adam: there is no trainable parameter named \"2.weight\"", Error);
  CHECK(opt.max_norm("1.weight") == 0.0);
}
