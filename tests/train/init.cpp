// Initialisers: what each does to a deep network's signal (the reason they exist),
// their exact distributions and bounds, determinism, prefixes, zero-gamma on residual
// branches, and their errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <laminar/backend/cpu/ops.hpp>
#include <laminar/layers/activation.hpp>
#include <laminar/layers/batchnorm.hpp>
#include <laminar/layers/conv.hpp>
#include <laminar/layers/dense.hpp>
#include <laminar/layers/flatten.hpp>
#include <laminar/net/model.hpp>
#include <laminar/net/residual.hpp>
#include <laminar/net/sequential.hpp>
#include <laminar/train/init.hpp>
#include <map>
#include <string>
#include <vector>

#include "support/model.hpp"

using namespace laminar;

namespace {

// Test numbers from splitmix64, independent of the Philox the initialisers draw from.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  double uniform() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return double((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }
  // Box-Muller.
  std::vector<double> normal(std::size_t n) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; i += 2) {
      const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
      const double angle = 6.283185307179586 * uniform();
      v[i] = radius * std::cos(angle);
      if (i + 1 < n) v[i + 1] = radius * std::sin(angle);
    }
    return v;
  }

 private:
  std::uint64_t state_;
};

using laminar_test::values;

// Every parameter's values by name, for checks that name what changed.
template <class M>
std::map<std::string, std::vector<typename M::value_type>> all_values(const M& model) {
  std::map<std::string, std::vector<typename M::value_type>> all;
  for (const auto& p : model.parameters()) all[p.name] = values(*p.parameter);
  return all;
}

// Output of an evaluation-mode forward on `batch` standard-normal samples.
template <class M>
std::vector<double> forward_normal_input(M& model, int batch) {
  const std::vector<double> x = Random(99).normal(std::size_t(batch) * M::input_shape::size);
  model.eval();
  const auto y = model.forward(View<const double, cpu, typename M::input_shape>{x.data(), batch});
  return {y.data, y.data + y.size()};
}

struct Moments {
  double mean, variance, mean_square;
};
template <class V>
Moments moments(const V& v) {
  double sum = 0, squares = 0;
  for (double x : v) {
    sum += x;
    squares += x * x;
  }
  const double n = double(v.size());
  return {sum / n, squares / n - (sum / n) * (sum / n), squares / n};
}

// The sample mean square of n draws of a zero-mean distribution with variance
// `variance` lies within 5 standard errors of it; the standard error is
// sqrt(Var(w^2) / n), with Var(w^2) = 2 variance^2 for a normal and 0.8 variance^2
// for a uniform (E w^4 = b^4 / 5 against (b^2 / 3)^2).
void check_mean_square(double measured, double variance, double fourth_over_square, std::size_t n) {
  const double standard_error = variance * std::sqrt(fourth_over_square / double(n));
  CHECK(std::abs(measured - variance) < 5 * standard_error);
}
void check_zero_mean(double measured, double variance, std::size_t n) {
  CHECK(std::abs(measured) < 5 * std::sqrt(variance / double(n)));
}

#define TWENTY(...)                                                                              \
  __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__,     \
      __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, \
      __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__

using DeepRelu = Sequential<Input<256>, TWENTY(Dense<256>, ReLU)>;
using DeepSelu = Sequential<Input<256>, TWENTY(Dense<256>, SELU)>;

using Square = Sequential<Input<512>, Dense<512>>;  // 262144 weights, fan_in = fan_out = 512
using Wide = Sequential<Input<512>, Dense<128>>;    // fan_in 512, fan_out 128

}  // namespace

TEST_CASE("kaiming normal keeps the signal of a deep relu stack of order one") {
  // He et al.: Var(W) = 2 / fan_in makes E[h^2] of every ReLU output equal the
  // input's, 1, so the output variance is 1 - E[h]^2 = 1 - 1/pi = 0.68 up to
  // finite-width fluctuation. Measured 0.678 (seeds 0-5: 0.58 to 1.64, the spread
  // of twenty 256-wide random layers). Ten times either side stays far from the
  // collapse of the naive init (1e-38, next case).
  Model<DeepRelu, cpu, double> model;
  init::kaiming_normal(model);
  const Moments m = moments(forward_normal_input(model, 256));
  CHECK(m.variance > 0.1);
  CHECK(m.variance < 10);
}

TEST_CASE("normal with stddev 0.01 makes a deep relu stack's signal vanish") {
  // Each Dense<256> + ReLU multiplies E[h^2] by 256 * 0.01^2 / 2 = 0.0128, so after
  // twenty layers the output variance is 0.0128^20 (1 - 1/pi) = 9.5e-39 (measured
  // 1.3e-38, from He weights whose output variance is 0.95 on this seed). The two initialisers draw the same normal numbers for a seed, and
  // with zero biases a ReLU stack is positively homogeneous in each weight matrix,
  // so the naive output is the He output times (0.01 / sqrt(2 / 256))^20 exactly.
  Model<DeepRelu, cpu, double> naive, he;
  init::normal(naive, 0.01, 3);
  init::kaiming_normal(he, {.seed = 3});
  const Moments collapsed = moments(forward_normal_input(naive, 64));
  const Moments kept = moments(forward_normal_input(he, 64));
  CHECK(collapsed.variance < 1e-36);
  CHECK(collapsed.variance / kept.variance == doctest::Approx(std::pow(0.0128, 20)).epsilon(1e-9));
}

TEST_CASE("lecun normal keeps a deep selu stack at mean 0 and variance 1") {
  // Klambauer et al., Theorem 1: with Var(W) = 1 / fan_in, (mean 0, variance 1) is an
  // attracting fixed point of a SELU layer, so finite-width deviations do not build
  // up with depth. Measured mean 0.0015 and variance 0.964 (seeds 0-5: |mean| <
  // 0.018, variance 0.955 to 1.026); kaiming's doubled variance drives the same
  // stack to mean 4 and variance 50.
  Model<DeepSelu, cpu, double> model;
  init::lecun_normal(model);
  const Moments m = moments(forward_normal_input(model, 256));
  CHECK(std::abs(m.mean) < 0.1);
  CHECK(m.variance > 0.8);
  CHECK(m.variance < 1.2);
}

TEST_CASE("kaiming normal with its defaults reproduces the model's default weights") {
  // The Residual changes the size, so it has a projection shortcut: "3.shortcut.weight".
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, ReLU, Residual<Conv<3, 3, 8, 2>, BatchNorm>, Flatten,
                         Dense<5>>;
  Model<Net, cpu, float> fresh(7), redone(1);
  init::kaiming_normal(redone, {.seed = 7});
  std::vector<std::string> weights;
  for (const auto& p : fresh.parameters()) {
    if (p.parameter->role != Role::weight) continue;
    weights.push_back(p.name);
    CHECK_MESSAGE(values(redone, p.name) == values(fresh, p.name), p.name);
  }
  CHECK(weights == std::vector<std::string>{"1.weight", "3.1.weight", "3.shortcut.weight", "5.weight"});
}

TEST_CASE("kaiming uniform lies inside gain sqrt 3 over fan and has variance b squared over 3") {
  Model<Square, cpu, double> model;
  init::kaiming_uniform(model, {.seed = 11});
  const auto w = values(model, "1.weight");
  const double b = std::sqrt(2.0) * std::sqrt(3.0 / 512);
  const auto [low, high] = std::minmax_element(w.begin(), w.end());
  CHECK(*low > -b);
  CHECK(*high < b);
  // The largest of 262144 uniform draws is within b / 1000 of b with probability
  // 1 - e^-131: the bound is not smaller than it should be either.
  CHECK(*high > 0.999 * b);
  CHECK(*low < -0.999 * b);
  const Moments m = moments(w);
  check_zero_mean(m.mean, b * b / 3, w.size());
  check_mean_square(m.mean_square, b * b / 3, 0.8, w.size());
}

TEST_CASE("xavier uniform lies inside gain sqrt 6 over fan in plus fan out") {
  Model<Wide, cpu, double> model;
  init::xavier_uniform(model, {.gain = init::gain(init::Nonlinearity::tanh), .seed = 12});
  const auto w = values(model, "1.weight");
  const double b = 5.0 / 3.0 * std::sqrt(6.0 / (512 + 128));
  const auto [low, high] = std::minmax_element(w.begin(), w.end());
  CHECK(*low > -b);
  CHECK(*high < b);
  CHECK(*high > 0.999 * b);  // 65536 draws: fails with probability e^-32
  CHECK(*low < -0.999 * b);
  const Moments m = moments(w);
  check_zero_mean(m.mean, b * b / 3, w.size());
  check_mean_square(m.mean_square, b * b / 3, 0.8, w.size());
}

TEST_CASE("kaiming normal has variance gain squared over fan in") {
  Model<Square, cpu, double> model;
  init::kaiming_normal(model, {.nonlinearity = init::Nonlinearity::leaky_relu, .negative_slope = 0.2,
                               .seed = 13});
  const auto w = values(model, "1.weight");
  const Moments m = moments(w);
  const double variance = 2.0 / (1 + 0.2 * 0.2) / 512;
  check_zero_mean(m.mean, variance, w.size());
  check_mean_square(m.mean_square, variance, 2, w.size());
}

TEST_CASE("xavier normal has variance gain squared times 2 over fan in plus fan out") {
  Model<Square, cpu, double> model;
  init::xavier_normal(model, {.gain = 3, .seed = 14});
  const auto w = values(model, "1.weight");
  const Moments m = moments(w);
  const double variance = 9 * 2.0 / (512 + 512);
  check_zero_mean(m.mean, variance, w.size());
  check_mean_square(m.mean_square, variance, 2, w.size());
}

TEST_CASE("lecun normal has variance one over fan in") {
  Model<Wide, cpu, double> model;
  init::lecun_normal(model, {.seed = 15});
  const auto w = values(model, "1.weight");
  const Moments m = moments(w);
  check_zero_mean(m.mean, 1.0 / 512, w.size());
  check_mean_square(m.mean_square, 1.0 / 512, 2, w.size());
}

TEST_CASE("normal has the variance of its stddev whatever the layer size") {
  Model<Square, cpu, double> model;
  init::normal(model, 0.05, 16);
  const auto w = values(model, "1.weight");
  const Moments m = moments(w);
  check_zero_mean(m.mean, 0.0025, w.size());
  check_mean_square(m.mean_square, 0.0025, 2, w.size());
}

TEST_CASE("kaiming fan modes scale the same draws by the square root of the fan ratio") {
  // Dense<128> on 512 inputs: fan_in 512, fan_out 128, average 320.
  Model<Wide, cpu, double> in, out, average;
  init::kaiming_normal(in, {.mode = init::FanMode::fan_in, .seed = 17});
  init::kaiming_normal(out, {.mode = init::FanMode::fan_out, .seed = 17});
  init::kaiming_normal(average, {.mode = init::FanMode::fan_average, .seed = 17});
  const auto w_in = values(in, "1.weight"), w_out = values(out, "1.weight"), w_average = values(average, "1.weight");
  for (std::size_t k = 0; k < w_in.size(); k += 97) {
    CHECK(w_out[k] == doctest::Approx(2 * w_in[k]).epsilon(1e-14));
    CHECK(w_average[k] == doctest::Approx(std::sqrt(512.0 / 320) * w_in[k]).epsilon(1e-14));
  }
}

TEST_CASE("kaiming uniform on a convolution counts the kernel window in both fans") {
  // Conv<3,3,8> on 4 channels: fan_in 4 * 9 = 36, fan_out 8 * 9 = 72.
  using Net = Sequential<Input<4, 8, 8>, Conv<3, 3, 8>>;
  Model<Net, cpu, double> in, out;
  init::kaiming_uniform(in, {.mode = init::FanMode::fan_in, .seed = 18});
  init::kaiming_uniform(out, {.mode = init::FanMode::fan_out, .seed = 18});
  const auto w_in = values(in, "1.weight"), w_out = values(out, "1.weight");
  REQUIRE(w_in.size() == 8 * 4 * 9);
  const double b_in = std::sqrt(2.0 * 3.0 / 36);
  for (std::size_t k = 0; k < w_in.size(); ++k) {
    CHECK(std::abs(w_in[k]) < b_in);
    CHECK(w_out[k] == doctest::Approx(std::sqrt(36.0 / 72) * w_in[k]).epsilon(1e-14));
  }
  CHECK(*std::max_element(w_in.begin(), w_in.end()) > 0.9 * b_in);  // 288 draws: fails with probability 0.95^288 = 4e-7
}

TEST_CASE("gain has pytorch's calculate_gain values") {
  using init::Nonlinearity;
  CHECK(init::gain(Nonlinearity::linear) == 1);
  CHECK(init::gain(Nonlinearity::sigmoid) == 1);
  CHECK(init::gain(Nonlinearity::relu) == doctest::Approx(std::sqrt(2.0)).epsilon(1e-15));
  CHECK(init::gain(Nonlinearity::leaky_relu) == doctest::Approx(std::sqrt(2.0 / 1.0001)).epsilon(1e-15));
  CHECK(init::gain(Nonlinearity::leaky_relu, 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)).epsilon(1e-15));
  CHECK(init::gain(Nonlinearity::tanh) == doctest::Approx(5.0 / 3.0).epsilon(1e-15));
  CHECK(init::gain(Nonlinearity::selu) == 0.75);
}

TEST_CASE("a random initialiser gives the same weights for a seed and different ones for another") {
  using Net = Sequential<Input<16>, Dense<16>>;
  Model<Net, cpu, float> first, second, other;
  init::kaiming_uniform(first, {.seed = 5});
  init::kaiming_uniform(second, {.seed = 5});
  init::kaiming_uniform(other, {.seed = 6});
  const auto a = values(first, "1.weight"), b = values(second, "1.weight"), c = values(other, "1.weight");
  CHECK(a == b);
  long equal = 0;
  for (std::size_t k = 0; k < a.size(); ++k) equal += a[k] == c[k];
  CHECK(equal == 0);
}

TEST_CASE("a prefix selects one layer and not the layers whose number starts with it") {
  using Net = Sequential<Input<3>, Dense<3>, Dense<3>, Dense<3>, Dense<3>, Dense<3>, Dense<3>, Dense<3>,
                         Dense<3>, Dense<3>, Dense<3>>;
  Model<Net, cpu, double> model;
  init::constant(model, 0.25);
  init::xavier_normal(model, {.seed = 4, .prefix = "1"});
  for (double w : values(model, "1.weight")) CHECK(w != 0.25);
  for (const auto& p : model.parameters()) {
    if (p.name == "1.weight") continue;
    const double expected = p.parameter->role == Role::weight ? 0.25 : 0.0;
    for (double v : values(model, p.name)) CHECK_MESSAGE(v == expected, p.name);
  }
}

TEST_CASE("random initialisers leave biases and batchnorm parameters untouched") {
  using Net = Sequential<Input<6>, Dense<6>, BatchNorm, ReLU, Dense<2>>;
  Model<Net, cpu, double> model;
  init::constant(model, 0.5, Role::bias);
  init::constant(model, 0.75, Role::scale);
  init::constant(model, -0.5, Role::shift);
  const auto before = all_values(model);
  init::kaiming_normal(model, {.seed = 1});
  init::kaiming_uniform(model, {.seed = 2});
  init::xavier_uniform(model, {.seed = 3});
  init::xavier_normal(model, {.seed = 4});
  init::lecun_normal(model, {.seed = 5});
  init::normal(model, 0.1, 6);
  for (const auto& p : model.parameters())
    if (p.parameter->role != Role::weight) CHECK_MESSAGE(values(model, p.name) == before.at(p.name), p.name);
  CHECK(values(model, "2.running_var") == std::vector<double>(6, 1.0));
}

TEST_CASE("constant, zeros and ones write only the role they are given under the prefix") {
  using Net = Sequential<Input<4>, Dense<4>, BatchNorm, Dense<4>, BatchNorm>;
  Model<Net, cpu, double> model;
  const auto before = all_values(model);
  init::constant(model, 0.125, Role::bias, "3");
  init::zeros(model, Role::scale, "4");
  init::ones(model, Role::weight, "1");
  for (const auto& p : model.parameters()) {
    const auto v = values(model, p.name);
    if (p.name == "3.bias")
      CHECK(v == std::vector<double>(4, 0.125));
    else if (p.name == "4.gamma")
      CHECK(v == std::vector<double>(4, 0.0));
    else if (p.name == "1.weight")
      CHECK(v == std::vector<double>(16, 1.0));
    else
      CHECK_MESSAGE(v == before.at(p.name), p.name);
  }
}

TEST_CASE("reset restores the default initialisation with the batchnorm statistics") {
  using Net = Sequential<Input<4>, Dense<4>, BatchNorm, ReLU, Dense<2>>;
  Model<Net, cpu, double> model(9), fresh(9);
  init::normal(model, 3.0, 1);
  init::constant(model, 2.0, Role::bias);
  init::constant(model, 5.0, Role::statistic);
  init::reset(model, 9);
  CHECK(all_values(model) == all_values(fresh));
}

namespace {
using Block = Residual<Dense<8>, BatchNorm, ReLU, Dense<8>, BatchNorm>;
// A branch holding a Residual (whose own branch ends in a BatchNorm) and ending in a
// BatchNorm; and a branch whose last BatchNorm is followed by a ReLU, which zero-gamma
// leaves alone (gamma = beta = 0 before a ReLU would give a branch with no gradient).
using Nested = Residual<Dense<8>, BatchNorm, Residual<Dense<8>, BatchNorm, ReLU, Dense<8>, BatchNorm>, BatchNorm>;
using ReluEnded = Residual<Dense<8>, BatchNorm, ReLU>;
using ResidualNet = Sequential<Input<8>, Dense<8>, BatchNorm, ReLU, Block, ReLU, Nested, ReLU, ReluEnded, Block,
                               Dense<2>>;
}  // namespace

TEST_CASE("zero gamma zeros the last batchnorm gamma of every residual branch and nothing else") {
  Model<ResidualNet, cpu, double> model(2);
  const auto before = all_values(model);
  init::zero_gamma(model);
  // Top level: 4 Block, 6 Nested (its inner Residual at 6.3), 8 ReluEnded, 9 Block.
  const std::vector<std::string> zeroed = {"4.5.gamma", "6.3.5.gamma", "6.4.gamma", "9.5.gamma"};
  long gammas_kept = 0;
  for (const auto& p : model.parameters()) {
    const auto v = values(model, p.name);
    if (std::find(zeroed.begin(), zeroed.end(), p.name) != zeroed.end()) {
      CHECK_MESSAGE(v == std::vector<double>(8, 0.0), p.name);
    } else {
      CHECK_MESSAGE(v == before.at(p.name), p.name);
      gammas_kept += p.name.ends_with("gamma");
    }
  }
  // 2, 4.2, 6.2, 6.3.2, 8.2 and 9.2 keep gamma = 1.
  CHECK(gammas_kept == 6);
}

TEST_CASE("zero gamma makes every residual block start as the identity") {
  using Net = Sequential<Input<8>, Block, Nested, Block>;
  Model<Net, cpu, double> model(3);
  init::zero_gamma(model);
  model.eval();
  const std::vector<double> x = Random(5).normal(8 * 4);
  const auto y = model.forward(View<const double, cpu, Shape<8>>{x.data(), 4});
  CHECK(std::vector<double>(y.data, y.data + y.size()) == x);
}

TEST_CASE("zero gamma on a network without a residual branch ending in batchnorm is an error") {
  using Net = Sequential<Input<8>, Dense<8>, BatchNorm, ReLU, ReluEnded, Dense<2>>;
  Model<Net, cpu, double> model;
  CHECK_THROWS_WITH_AS(init::zero_gamma(model),
                       "init::zero_gamma: the network has no Residual branch ending in a BatchNorm, so "
                       "zero-gamma would change nothing",
                       Error);
}

TEST_CASE("a prefix that selects no parameter is an error naming it and the parameters") {
  using Net = Sequential<Input<4>, Dense<4>, ReLU, Dense<2>>;
  Model<Net, cpu, double> model;
  CHECK_THROWS_WITH_AS(init::kaiming_normal(model, {.prefix = "7"}),
                       "init::kaiming_normal: prefix \"7\" selects no weight parameter of the model; its "
                       "parameters are 1.weight, 1.bias, 3.weight, 3.bias",
                       Error);
  // Layer 2 is a ReLU, and layer 3's bias is not a weight.
  CHECK_THROWS_AS(init::normal(model, 0.1, 0, "2"), Error);
  CHECK_THROWS_AS(init::xavier_uniform(model, {.prefix = "3.bias"}), Error);
}

TEST_CASE("initialiser arguments that cannot be meant are errors") {
  Model<Sequential<Input<4>, Dense<4>>, cpu, double> model;
  CHECK_THROWS_WITH_AS(init::normal(model, -0.1),
                       doctest::Contains("init::normal: stddev must be finite and not negative"), Error);
  CHECK_THROWS_WITH_AS(init::kaiming_uniform(model, {.negative_slope = 0.1}),
                       doctest::Contains("is given but the nonlinearity is not leaky_relu"), Error);
  CHECK_THROWS_WITH_AS(init::xavier_normal(model, {.gain = 0}),
                       doctest::Contains("init::xavier_normal: gain must be positive"), Error);
}
