// Residual<Shortcut<...>, branch...>: shortcuts written as layers. Option A
// (ZeroPadShortcut, He et al. 2016) against hand-computed values, option A and
// ResNet-D (AvgPoolShortcut, He et al. 2019) against finite differences, the
// fused model against Unfused<Net>, parameter names, zero-gamma, describe and the
// float and bf16 models.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;
using laminar_test::parameter;
using laminar_test::Random;
using laminar_test::set_parameter;

namespace {
using Bn = BatchNorm;

template <int Width>
using OptionA = Residual<ZeroPadShortcut<Width>, Conv<3, 3, Width, 2>, Bn, ReLU, Conv<3, 3, Width>, Bn>;
template <int Width>
using ResNetD = Residual<AvgPoolShortcut<Width>, Conv<3, 3, Width, 2>, Bn, ReLU, Conv<3, 3, Width>, Bn>;

// Both down-sampling blocks, each followed by ReLU (so each runs as a ResidualAct).
using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, Bn, ReLU,  // 1-3:  4 x 8 x 8
                       ResNetD<6>, ReLU,                          // 4-5:  6 x 4 x 4
                       OptionA<8>, ReLU,                          // 6-7:  8 x 2 x 2
                       GlobalAvgPool, Dense<3>>;                  // 8-9

std::vector<std::string> names_of(const auto& model) {
  std::vector<std::string> names;
  for (const auto& p : model.parameters()) names.push_back(p.name);
  return names;
}

// max |a - b| over the larger of the tensor's own largest |b| and `scale`: a
// normwise relative difference that stays meaningful for a tensor whose entries
// are all rounding noise (a convolution bias in front of a training-mode
// BatchNorm has an exactly zero gradient), measured against the model's scale.
template <class T, class U>
double difference(const T* a, const U* b, long n, double scale) {
  double worst = 0, magnitude = scale;
  for (long i = 0; i < n; ++i) {
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    magnitude = std::max(magnitude, std::abs(double(b[i])));
  }
  return worst / magnitude;
}

template <class M>
double largest_gradient(const M& model) {
  double m = 0;
  for (const auto& p : model.parameters())
    if (p.parameter->trainable())
      for (long k = 0; k < p.parameter->size; ++k) m = std::max(m, std::abs(double(p.parameter->grad()[k])));
  return m;
}

// Gives `model` random biases, shifts, scales and weights, and copies them by name
// into `other`.
template <class M, class N>
void randomize_and_copy(M& model, N& other, std::uint64_t seed) {
  using T = typename M::value_type;
  Random random(seed);
  for (const auto& p : model.parameters()) {
    T* v = p.parameter->value();
    for (long k = 0; k < p.parameter->size; ++k) switch (p.parameter->role) {
        case Role::bias:
        case Role::shift: v[k] = T(random.uniform(-0.5, 0.5)); break;
        case Role::scale: v[k] = T(random.uniform(0.5, 1.5)); break;
        case Role::weight: v[k] = T(random.uniform(-0.3, 0.3)); break;
        case Role::statistic: break;
      }
    auto& target = parameter(other, p.name);
    REQUIRE(target.size == p.parameter->size);
    std::copy(v, v + p.parameter->size, target.value());
  }
}

// One forward and backward of both models on the same input and output gradient:
// the largest difference of output, input gradient and every parameter gradient
// (and every value, so running statistics are compared too).
template <class M, class N>
double step_difference(M& a, N& b, int batch, std::uint64_t seed) {
  using Ta = typename M::value_type;
  using Tb = typename N::value_type;
  Random random(seed);
  const auto x = random.uniform(std::size_t(batch) * M::input_shape::size, -1, 1);
  const auto dy = random.uniform(std::size_t(batch) * M::output_shape::size, -1, 1);
  const std::vector<Ta> xa(x.begin(), x.end()), dya(dy.begin(), dy.end());
  const std::vector<Tb> xb(x.begin(), x.end()), dyb(dy.begin(), dy.end());
  const auto ya = forward(a, xa.data(), batch);
  const auto yb = forward(b, xb.data(), batch);
  std::vector<Ta> dxa(x.size());
  std::vector<Tb> dxb(x.size());
  a.backward({dya.data(), batch}, dxa.data());
  b.backward({dyb.data(), batch}, dxb.data());
  const double scale = largest_gradient(b);
  REQUIRE(scale > 1e-2);  // comparing zeros proves nothing
  double worst = std::max(difference(ya.data(), yb.data(), long(ya.size()), 0),
                          difference(dxa.data(), dxb.data(), long(dxa.size()), 0));
  for (const auto& p : a.parameters()) {
    const auto& q = parameter(b, p.name);
    CAPTURE(p.name);
    worst = std::max(worst, difference(p.parameter->value(), q.value(), q.size, 0));
    if (p.parameter->trainable()) worst = std::max(worst, difference(p.parameter->grad(), q.grad(), q.size, scale));
  }
  return worst;
}

// Three training forwards on inputs in [1, 3], so running statistics leave (0, 1).
template <class M>
void move_running_statistics(M& model) {
  using T = typename M::value_type;
  const auto x = Random(99).uniform(std::size_t(4) * M::input_shape::size, 1, 3);
  const std::vector<T> xt(x.begin(), x.end());
  model.train();
  for (int k = 0; k < 3; ++k) forward(model, xt.data(), 4);
}
}  // namespace

// --- option A by hand ---------------------------------------------------------------

TEST_CASE("an option A shortcut adds every second pixel of each input channel and zeros for the new channels") {
  // x (2 channels of 3x3) = 0 .. 17. The branch Conv<1,1,4,2> has zero weights and
  // bias (0.5, 0.25, -1, 2). Option A keeps pixels (0,0), (0,2), (2,0), (2,2):
  // channel 0 -> 0, 2, 6, 8 and channel 1 -> 9, 11, 15, 17; channels 2 and 3 are 0.
  using Block = Residual<ZeroPadShortcut<4>, Conv<1, 1, 4, 2>>;
  using Tiny = Sequential<Input<2, 3, 3>, Block>;
  static_assert(std::is_same_v<Tiny::output_shape, Shape<4, 2, 2>>);
  Model<Tiny, cpu, double> model;
  set_parameter(model, "1.1.weight", std::vector<double>(8, 0.0));
  set_parameter(model, "1.1.bias", {0.5, 0.25, -1, 2});
  std::vector<double> x(18);
  for (int i = 0; i < 18; ++i) x[i] = i;
  CHECK(forward(model, x.data(), 1) == std::vector<double>{0.5, 2.5, 6.5, 8.5,      //
                                                           9.25, 11.25, 15.25, 17.25,  //
                                                           -1, -1, -1, -1, 2, 2, 2, 2});
}

TEST_CASE("an option A shortcut subsamples each sample of an odd-sized batch from its own pixels") {
  // Subsample<2,2> of three 1x3x3 samples x = 0 .. 26: sample n keeps 9n + {0, 2, 6, 8}.
  using Tiny = Sequential<Input<1, 3, 3>, Subsample<2, 2>>;
  Model<Tiny, cpu, double> model;
  std::vector<double> x(27);
  for (int i = 0; i < 27; ++i) x[i] = i;
  CHECK(forward(model, x.data(), 3) == std::vector<double>{0,  2,  6,  8,  0, 0, 0, 0,  //
                                                           9,  11, 15, 17, 0, 0, 0, 0,  //
                                                           18, 20, 24, 26, 0, 0, 0, 0});
}

TEST_CASE("an option A shortcut routes the gradient of each kept pixel back and gives the others zero") {
  // dx of Subsample<2,3> on 1x3x3 for dy = 1 .. 12: channel 0 of dy (1, 2, 3, 4) lands
  // on pixels (0,0), (0,2), (2,0), (2,2); the zero channels' gradient goes nowhere.
  using Tiny = Sequential<Input<1, 3, 3>, Subsample<2, 3>>;
  Model<Tiny, cpu, double> model;
  const std::vector<double> x(9, 0.5);
  forward(model, x.data(), 1);
  std::vector<double> dy(12), dx(9, -7.0);
  for (int i = 0; i < 12; ++i) dy[i] = i + 1;
  model.backward({dy.data(), 1}, dx.data());
  CHECK(dx == std::vector<double>{1, 0, 2, 0, 0, 0, 3, 0, 4});
}

// --- the types ------------------------------------------------------------------------

TEST_CASE("option A adds no parameters and ResNet-D adds a 1x1 convolution and a batch norm") {
  // On 4 x 8 x 8 with width 6: branch Conv<3,3,6,2> 6*4*9 + 6 = 222, BatchNorm 12,
  // Conv<3,3,6> 6*6*9 + 6 = 330, BatchNorm 12: 576. ResNet-D's shortcut: Conv<1,1,6>
  // 6*4 + 6 = 30 and BatchNorm 12.
  using In = Shape<4, 8, 8>;
  CHECK(OptionA<6>::parameter_count<In> == 576);
  CHECK(ResNetD<6>::parameter_count<In> == 576 + 42);
  CHECK(std::is_same_v<decltype(OptionA<6>::output_shape<In>()), Shape<6, 4, 4>>);
  CHECK(std::is_same_v<decltype(ResNetD<6>::output_shape<In>()), Shape<6, 4, 4>>);
  CHECK(std::is_same_v<ZeroPadShortcut<6>, Shortcut<Subsample<2, 6>>>);
  CHECK(std::is_same_v<AvgPoolShortcut<6>, Shortcut<AvgPool<2>, Conv<1, 1, 6>, BatchNorm>>);
}

TEST_CASE("a shortcut's convolution and batch norm fuse into one op and its block with the ReLU after it") {
  using Fused = fused_list<ResNetD<6>, ReLU, OptionA<8>>;
  using Expected = type_list<
      ResidualAct<Residual<Shortcut<AvgPool<2>, ConvBn<Conv<1, 1, 6>, Bn>>, ConvBnAct<Conv<3, 3, 6, 2>, Bn, ReLU>,
                           ConvBn<Conv<3, 3, 6>, Bn>>,
                  ReLU>,
      Residual<Shortcut<Subsample<2, 8>>, ConvBnAct<Conv<3, 3, 8, 2>, Bn, ReLU>, ConvBn<Conv<3, 3, 8>, Bn>>>;
  CHECK(std::is_same_v<Fused, Expected>);
}

TEST_CASE("a residual block's name lists its shortcut first, fused or not") {
  const std::string written =
      "Residual<Shortcut<AvgPool<2>,Conv<1,1,6>,BatchNorm>,Conv<3,3,6,2>,BatchNorm,ReLU,Conv<3,3,6>,BatchNorm>";
  CHECK(ResNetD<6>::name() == written);
  CHECK(Model<Net, cpu, double>::layer_names()[3] == written);
  CHECK(Model<Unfused<Net>, cpu, double>::layer_names()[3] == written);
  CHECK(OptionA<8>::name() == "Residual<Shortcut<Subsample<2,8>>,Conv<3,3,8,2>,BatchNorm,ReLU,Conv<3,3,8>,BatchNorm>");
}

// --- names, describe, zero-gamma ----------------------------------------------------

TEST_CASE("a shortcut's parameters are named by their position in it under the block's shortcut prefix") {
  const auto norm = [](const std::string& at) {
    return std::vector<std::string>{at + "gamma", at + "beta", at + "running_mean", at + "running_var"};
  };
  std::vector<std::string> expected{"1.weight", "1.bias"};
  const auto append = [&](const std::vector<std::string>& names) {
    expected.insert(expected.end(), names.begin(), names.end());
  };
  append(norm("2."));
  for (const std::string block : {"4.", "6."}) {
    append({block + "1.weight", block + "1.bias"});
    append(norm(block + "2."));
    append({block + "4.weight", block + "4.bias"});
    append(norm(block + "5."));
    if (block == "4.") {  // ResNet-D: AvgPool<2> at shortcut position 1 has none
      append({"4.shortcut.2.weight", "4.shortcut.2.bias"});
      append(norm("4.shortcut.3."));
    }
  }
  append({"9.weight", "9.bias"});
  CHECK(names_of(Model<Net, cpu, double>{}) == expected);
  CHECK(names_of(Model<Unfused<Net>, cpu, double>{}) == expected);
}

TEST_CASE("describe lists a shortcut and its layers under the block with hand-counted parameters") {
  // 4.shortcut on 4 x 8 x 8: AvgPool<2> -> 4 x 4 x 4, Conv<1,1,6> 6*4 + 6 = 30, BatchNorm 12.
  const std::string table = describe<Net>();
  INFO(table);
  const auto line = [&](const std::string& position) {
    const std::size_t begin = table.find("\n" + position + " ") + 1;
    REQUIRE(begin > 0);
    return table.substr(begin, table.find('\n', begin) - begin);
  };
  const auto words = [](const std::string& s) {
    std::vector<std::string> w;
    std::size_t at = 0;
    while ((at = s.find_first_not_of(' ', at)) != std::string::npos) {
      const std::size_t end = s.find(' ', at);
      w.push_back(s.substr(at, end - at));
      at = end;
    }
    return w;
  };
  CHECK(words(line("4.shortcut")) ==
        std::vector<std::string>{"4.shortcut", "Shortcut<AvgPool<2>,Conv<1,1,6>,BatchNorm>", "Shape<6,4,4>", "42",
                                 "0.001"});
  CHECK(words(line("4.shortcut.1")) ==
        std::vector<std::string>{"4.shortcut.1", "AvgPool<2>", "Shape<4,4,4>", "0", "0.000"});
  CHECK(words(line("4.shortcut.2")) ==
        std::vector<std::string>{"4.shortcut.2", "Conv<1,1,6>", "Shape<6,4,4>", "30", "0.001", "4.shortcut.2-4.shortcut.3",
                                 "Conv<1,1,6>+BatchNorm"});
  CHECK(words(line("4.shortcut.3")) ==
        std::vector<std::string>{"4.shortcut.3", "BatchNorm", "Shape<6,4,4>", "12", "0.000", "in",
                                 "4.shortcut.2-4.shortcut.3"});
  CHECK(words(line("6.shortcut.1")) ==
        std::vector<std::string>{"6.shortcut.1", "Subsample<2,8>", "Shape<8,2,2>", "0", "0.000"});
  CHECK(fusion_plan<Net>().find("\n  4.shortcut.2-4.shortcut.3 Conv<1,1,6>+BatchNorm\n") != std::string::npos);
  CHECK(NetworkCost<Net>::parameters == Model<Net, cpu, float>{}.parameter_count());
}

TEST_CASE("zero gamma zeroes the last batch norm of the branch and never the shortcut's") {
  Model<Net, cpu, double> model(4);
  init::zero_gamma(model);
  CHECK(laminar_test::values(model, "4.5.gamma") == std::vector<double>(6, 0.0));
  CHECK(laminar_test::values(model, "6.5.gamma") == std::vector<double>(8, 0.0));
  CHECK(laminar_test::values(model, "4.shortcut.3.gamma") == std::vector<double>(6, 1.0));
  CHECK(laminar_test::values(model, "4.2.gamma") == std::vector<double>(6, 1.0));
}

TEST_CASE("zero gamma reaches a residual block nested inside a shortcut") {
  using Inner = Residual<Conv<1, 1, 2>, Bn>;
  using Outer = Residual<Shortcut<Inner, Bn>, Conv<3, 3, 2>, Bn>;
  Model<Sequential<Input<2, 4, 4>, Outer>, cpu, double> model(5);
  init::zero_gamma(model);
  CHECK(laminar_test::values(model, "1.2.gamma") == std::vector<double>(2, 0.0));
  CHECK(laminar_test::values(model, "1.shortcut.1.2.gamma") == std::vector<double>(2, 0.0));
  CHECK(laminar_test::values(model, "1.shortcut.2.gamma") == std::vector<double>(2, 1.0));
}

TEST_CASE("with zero gamma an option A block starts as its shortcut") {
  // eval mode, running statistics (0, 1), gamma 0 and beta 0: the branch gives 0,
  // so y is x at the even pixels, then two zero channels.
  using Tiny = Sequential<Input<2, 4, 4>, OptionA<4>>;
  Model<Tiny, cpu, double> model(6);
  init::zero_gamma(model);
  model.eval();
  std::vector<double> x(32);
  for (int i = 0; i < 32; ++i) x[i] = i;
  std::vector<double> expected{0, 2, 8, 10, 16, 18, 24, 26};
  expected.resize(16, 0.0);
  CHECK(forward(model, x.data(), 1) == expected);
}

// --- gradients ------------------------------------------------------------------------

TEST_CASE("an option A block has gradients matching finite differences in training mode") {
  using Block = Residual<ZeroPadShortcut<4>, Conv<3, 3, 4, 2>, Bn, Tanh, Conv<3, 3, 4>, Bn>;
  for (const int batch : {1, 3}) {
    CAPTURE(batch);
    gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, Block, Tanh>>({.batch = batch});
  }
}

TEST_CASE("an option A block on an odd-sized input has gradients matching finite differences") {
  using Block = Residual<ZeroPadShortcut<3>, Conv<3, 3, 3, 2>, Tanh, Conv<3, 3, 3>>;
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, Block>>({.batch = 3});
}

TEST_CASE("a ResNet-D block has gradients matching finite differences in training mode") {
  using Block = Residual<AvgPoolShortcut<3>, Conv<3, 3, 3, 2>, Bn, Tanh, Conv<3, 3, 3>, Bn>;
  for (const int batch : {1, 3}) {
    CAPTURE(batch);
    gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, Block, Tanh>>({.batch = batch});
  }
}

TEST_CASE("a ResNet-D block has gradients matching finite differences in eval mode") {
  using Block = Residual<AvgPoolShortcut<3>, Conv<3, 3, 3, 2>, Bn, Tanh, Conv<3, 3, 3>, Bn>;
  gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, Block, Tanh>>(
      {.batch = 3, .mode = gradient_check::Mode::eval}, gradient_check::TrainStatisticsFirst{});
}

TEST_CASE("a shortcut of dense layers on flat inputs has gradients matching finite differences") {
  using Block = Residual<Shortcut<Dense<3>, Tanh>, Dense<3>, Sigmoid>;
  gradient_check::require_gradients_match<Sequential<Input<4>, Block>>({.batch = 3});
}

// --- fused against unfused, double against float and bf16 ---------------------------

TEST_CASE("in training mode the fused shortcut blocks equal the unfused layers in double") {
  for (const int batch : {1, 3}) {
    CAPTURE(batch);
    Model<Net, cpu, double> fused;
    Model<Unfused<Net>, cpu, double> reference;
    randomize_and_copy(fused, reference, 7);
    CHECK(step_difference(fused, reference, batch, 11) < 1e-12);
  }
}

TEST_CASE("in eval mode the fused shortcut blocks, batch norm folded, equal the unfused layers in double") {
  for (const int batch : {1, 3}) {
    CAPTURE(batch);
    Model<Net, cpu, double> fused;
    Model<Unfused<Net>, cpu, double> reference;
    randomize_and_copy(fused, reference, 7);
    move_running_statistics(fused);
    move_running_statistics(reference);
    fused.eval();
    reference.eval();
    CHECK(step_difference(fused, reference, batch, 13) < 1e-12);
  }
}

TEST_CASE("a float model with both shortcuts agrees with the double reference") {
  // Normwise per tensor, float's rounding (6e-8) grown through two blocks.
  for (const bool training : {true, false}) {
    CAPTURE(training);
    Model<Net, cpu, float> single;
    Model<Net, cpu, double> reference;
    randomize_and_copy(single, reference, 8);  // float values, exact in double
    if (!training) {
      move_running_statistics(single);
      move_running_statistics(reference);
    }
    single.train(training);
    reference.train(training);
    CHECK(step_difference(single, reference, 3, 17) < 1e-5);
  }
}

TEST_CASE("a bf16 model runs both shortcuts with bf16 convolutions within 2e-2 of float") {
  // Smooth activations, as tests/backend/bf16.cpp explains: through ReLU's kink a
  // bf16 perturbation moves gradients by about its square root.
  using Smooth = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, Bn, Tanh,
                            Residual<AvgPoolShortcut<6>, Conv<3, 3, 6, 2>, Bn, Tanh, Conv<3, 3, 6>, Bn>, Tanh,
                            Residual<ZeroPadShortcut<8>, Conv<3, 3, 8, 2>, Bn, Tanh, Conv<3, 3, 8>, Bn>, Tanh,
                            GlobalAvgPool, Dense<3>>;
  Model<Smooth, cpu, bf16> half;
  Model<Smooth, cpu, float> single;
  randomize_and_copy(single, half, 9);
  CHECK(names_of(half) == names_of(single));
  const double d = step_difference(half, single, 3, 19);
  CHECK(d < 2e-2);
  CHECK(d > 1e-5);  // the bf16 path did run
}
