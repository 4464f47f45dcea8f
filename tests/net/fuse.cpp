// The fusion rewrite (net/fuse.hpp) and the fused ops (layers/fused.hpp,
// net/residual_act.hpp): the fused list of known nets, checked on the types;
// the fused model against the unfused reference (same parameters, copied by
// name) in double and float, in training and evaluation mode; parameter and
// layer names unchanged; and the fused ops' gradients against finite differences.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::parameter;
using laminar_test::Random;

// --- the rewrite, on the types ----------------------------------------------------

namespace {
using Bn = BatchNorm;

// The VGG-style net of the Keras CIFAR-10 questions (benchmarks/nets.cpp, net A):
// Conv, ReLU pairs without BatchNorm, which no rule fuses.
using QuestionVgg = type_list<Conv<3, 3, 32>, ReLU, Conv<3, 3, 32>, ReLU, MaxPool<2>, Dropout<0.2>,
                              Conv<3, 3, 64>, ReLU, Conv<3, 3, 64>, ReLU, MaxPool<2>, Dropout<0.2>,
                              Conv<3, 3, 128>, ReLU, Conv<3, 3, 128>, ReLU, MaxPool<2>, Dropout<0.2>,
                              Flatten, Dense<1024>, ReLU, Dropout<0.5>, Dense<512>, ReLU, Dropout<0.5>,
                              Dense<10>>;

template <class List>
struct FusedOf;
template <class... Layers>
struct FusedOf<type_list<Layers...>> {
  using type = fused_list<Layers...>;
};
}  // namespace

TEST_CASE("the question's VGG net has no batch norm and runs layer by layer") {
  CHECK(std::is_same_v<FusedOf<QuestionVgg>::type, QuestionVgg>);
}

TEST_CASE("a VGG net with batch norm after every convolution fuses each triple into one op") {
  using Fused = fused_list<Conv<3, 3, 32>, Bn, ReLU, Conv<3, 3, 32>, Bn, ReLU, MaxPool<2>, Dropout<0.2>,
                           Conv<3, 3, 64>, Bn, ReLU, Conv<3, 3, 64>, Bn, ReLU, MaxPool<2>, Dropout<0.2>,
                           Flatten, Dense<512>, Bn, ReLU, Dense<10>>;
  using Expected = type_list<ConvBnAct<Conv<3, 3, 32>, Bn, ReLU>, ConvBnAct<Conv<3, 3, 32>, Bn, ReLU>, MaxPool<2>,
                             Dropout<0.2>, ConvBnAct<Conv<3, 3, 64>, Bn, ReLU>, ConvBnAct<Conv<3, 3, 64>, Bn, ReLU>,
                             MaxPool<2>, Dropout<0.2>, Flatten, Dense<512>, BnAct<Bn, ReLU>, Dense<10>>;
  CHECK(std::is_same_v<Fused, Expected>);
  static_assert(fused_spans<Conv<3, 3, 32>, Bn, ReLU, MaxPool<2>, Dense<512>, Bn, ReLU> ==
                std::array<int, 4>{3, 1, 1, 2});
}

TEST_CASE("a ResNet block's branch is rewritten inside the residual") {
  using Block = Residual<Conv<3, 3, 16>, Bn, ReLU, Conv<3, 3, 16>, Bn>;
  using Down = Residual<Conv<3, 3, 32, 2>, Bn, ReLU, Conv<3, 3, 32>, Bn>;
  using Fused = fused_list<Conv<3, 3, 16>, Bn, ReLU, Block, ReLU, Down, ReLU, GlobalAvgPool, Dense<10>>;
  using Expected =
      type_list<ConvBnAct<Conv<3, 3, 16>, Bn, ReLU>,
                ResidualAct<Residual<ConvBnAct<Conv<3, 3, 16>, Bn, ReLU>, ConvBn<Conv<3, 3, 16>, Bn>>, ReLU>,
                ResidualAct<Residual<ConvBnAct<Conv<3, 3, 32, 2>, Bn, ReLU>, ConvBn<Conv<3, 3, 32>, Bn>>, ReLU>,
                GlobalAvgPool, Dense<10>>;
  CHECK(std::is_same_v<Fused, Expected>);
  // The fused block keeps the block's name, shape, shortcut and parameter count.
  using In = Shape<16, 8, 8>;
  using FusedBlock = Residual<ConvBnAct<Conv<3, 3, 32, 2>, Bn, ReLU>, ConvBn<Conv<3, 3, 32>, Bn>>;
  CHECK(FusedBlock::name() == Down::name());
  CHECK(std::is_same_v<decltype(FusedBlock::output_shape<In>()), Shape<32, 4, 4>>);
  CHECK(std::is_same_v<FusedBlock::Projection<In>, Down::Projection<In>>);
  CHECK(FusedBlock::parameter_count<In> == Down::parameter_count<In>);
  CHECK(FusedBlock::flops<In> == Down::flops<In>);
}

TEST_CASE("airbench's conv, pool, batch norm, GELU group fuses the norm after the pool and the second triple") {
  using Fused = fused_list<Conv<2, 2, 24, 1, valid>, GELU, Conv<3, 3, 64>, MaxPool<2>, Bn, GELU, Conv<3, 3, 64>, Bn,
                           GELU, GlobalMaxPool, Dense<10>>;
  using Expected = type_list<Conv<2, 2, 24, 1, valid>, GELU, Conv<3, 3, 64>, MaxPool<2>, BnAct<Bn, GELU>,
                             ConvBnAct<Conv<3, 3, 64>, Bn, GELU>, GlobalMaxPool, Dense<10>>;
  CHECK(std::is_same_v<Fused, Expected>);
}

TEST_CASE("a list with nothing to fuse is kept as written") {
  using List = type_list<Dense<16>, ReLU, Bn, Dropout<0.5>, Tanh, Conv<3, 3, 4>, Dropout<0.1>, Bn, MaxPool<2>>;
  CHECK(std::is_same_v<FusedOf<List>::type, List>);
}

TEST_CASE("batch norm at the end of a list fuses into the convolution before it or stays alone") {
  CHECK(std::is_same_v<fused_list<Conv<3, 3, 4>, Bn>, type_list<ConvBn<Conv<3, 3, 4>, Bn>>>);
  CHECK(std::is_same_v<fused_list<Dense<4>, Bn>, type_list<Dense<4>, Bn>>);
  CHECK(std::is_same_v<fused_list<Bn>, type_list<Bn>>);
  CHECK(std::is_same_v<fused_list<Conv<3, 3, 4>, Bn, Bn>, type_list<ConvBn<Conv<3, 3, 4>, Bn>, Bn>>);
}

TEST_CASE("the rewrite is greedy from the left and keeps each layer's own constants") {
  using Norm = BatchNormWith<0.2, 1e-3>;
  CHECK(std::is_same_v<fused_list<Conv<1, 1, 4, 2, 0>, Norm, LeakyReLUWith<0.2>, ReLU>,
                       type_list<ConvBnAct<Conv<1, 1, 4, 2, 0>, Norm, LeakyReLUWith<0.2>>, ReLU>>);
  CHECK(std::is_same_v<fused_list<Conv<3, 3, 4>, Bn, Bn, ELU>, type_list<ConvBn<Conv<3, 3, 4>, Bn>, BnAct<Bn, ELU>>>);
  CHECK(ConvBnAct<Conv<3, 3, 64>, Bn, ReLU>::name() == "Conv<3,3,64>+BatchNorm+ReLU");
  CHECK(BnAct<Norm, GELU>::name() == "BatchNormWith<0.2,0.001>+GELU");
}

TEST_CASE("fusion_plan prints which original layers each op covers") {
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, Bn, ReLU, Residual<Conv<3, 3, 4>, Bn, ReLU, Conv<3, 3, 4>, Bn>,
                         MaxPool<2>, Bn, GELU, Flatten, Dense<10>>;
  CHECK(fusion_plan<Net>() ==
        "1-3         Conv<3,3,4>+BatchNorm+ReLU\n"
        "4           Residual<Conv<3,3,4>,BatchNorm,ReLU,Conv<3,3,4>,BatchNorm>\n"
        "  4.1-4.3   Conv<3,3,4>+BatchNorm+ReLU\n"
        "  4.4-4.5   Conv<3,3,4>+BatchNorm\n"
        "5           MaxPool<2>\n"
        "6-7         BatchNorm+GELU\n"
        "8           Flatten\n"
        "9           Dense<10>\n");
}

TEST_CASE("describe marks the layers of each fused op and the unfused reference has no such column") {
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, Bn, ReLU, Residual<Conv<3, 3, 4>, Bn>, Flatten, Dense<2>>;
  const std::string table = describe<Net>();
  auto line = [&](const std::string& position) {
    const std::size_t begin = table.find("\n" + position + " ") + 1;
    return table.substr(begin, table.find('\n', begin) - begin);
  };
  CHECK(line("1").ends_with("  1-3 Conv<3,3,4>+BatchNorm+ReLU"));
  CHECK(line("2").ends_with("  in 1-3"));
  CHECK(line("3").ends_with("  in 1-3"));
  CHECK(line("4.1").ends_with("  4.1-4.2 Conv<3,3,4>+BatchNorm"));
  CHECK(line("4.2").ends_with("  in 4.1-4.2"));
  CHECK(line("5").ends_with("0.000"));  // Flatten runs alone
  CHECK(table.substr(0, table.find('\n')).ends_with("  fused"));
  const std::string reference = describe<Unfused<Net>>();
  CHECK(reference.find("in 1-3") == std::string::npos);
  CHECK(reference.substr(0, reference.find('\n')).ends_with("MFLOP"));
}

// --- the fused model against the unfused reference ---------------------------------

namespace {

// Conv-BN-ReLU, BN-GELU (after a pool), Conv-BN and a residual block with
// Conv-BN-ReLU-Conv-BN in its branch, at a width of Width channels. (Conv-BN
// straight into pool and BN would make the first BatchNorm's gamma and beta
// gradients zero up to BatchNorm's epsilon, as max pooling commutes with a
// positive per-channel affine map: nothing to compare.)
template <int Width>
using Mixed = Sequential<Input<3, 6, 6>,
                         Conv<3, 3, Width>, BatchNorm, ReLU,                                 // 1-3
                         MaxPool<2>, BatchNorm, GELU,                                        // 4, 5-6: Width x 3 x 3
                         Conv<3, 3, Width>, BatchNorm,                                       // 7-8
                         Residual<Conv<3, 3, Width>, BatchNorm, ReLU, Conv<3, 3, Width>, BatchNorm>,  // 9
                         ReLU, Flatten, Dense<4>>;

static_assert(std::is_same_v<Mixed<3>::plan,
                             type_list<ConvBnAct<Conv<3, 3, 3>, BatchNorm, ReLU>, MaxPool<2>, BnAct<BatchNorm, GELU>,
                                       ConvBn<Conv<3, 3, 3>, BatchNorm>,
                                       ResidualAct<Residual<ConvBnAct<Conv<3, 3, 3>, BatchNorm, ReLU>,
                                                            ConvBn<Conv<3, 3, 3>, BatchNorm>>,
                                                   ReLU>,
                                       Flatten, Dense<4>>>);

// A small ResNet: a stem, an identity block and a strided projection block each
// followed by ReLU (the sum is not kept), then an identity block followed by
// GELU and a channel-widening projection block followed by ELU (both keep the
// sum; ELU's derivative reads its input and its output).
template <int Width>
using SmallResnet = Sequential<Input<3, 6, 6>,
                               Conv<3, 3, Width>, BatchNorm, ReLU,                                   // 1-3
                               Residual<Conv<3, 3, Width>, BatchNorm, ReLU, Conv<3, 3, Width>, BatchNorm>,
                               ReLU,                                                                 // 4-5
                               Residual<Conv<3, 3, 2 * Width, 2>, BatchNorm, ReLU, Conv<3, 3, 2 * Width>, BatchNorm>,
                               ReLU,                                                                 // 6-7: 3 x 3
                               Residual<Conv<3, 3, 2 * Width>, BatchNorm>, GELU,                     // 8-9
                               Residual<Conv<1, 1, 2 * Width + 1>, BatchNorm>, ELU,                  // 10-11
                               Flatten, Dense<4>>;

static_assert(std::is_same_v<SmallResnet<3>::plan,
                             type_list<ConvBnAct<Conv<3, 3, 3>, BatchNorm, ReLU>,
                                       ResidualAct<Residual<ConvBnAct<Conv<3, 3, 3>, BatchNorm, ReLU>,
                                                            ConvBn<Conv<3, 3, 3>, BatchNorm>>,
                                                   ReLU>,
                                       ResidualAct<Residual<ConvBnAct<Conv<3, 3, 6, 2>, BatchNorm, ReLU>,
                                                            ConvBn<Conv<3, 3, 6>, BatchNorm>>,
                                                   ReLU>,
                                       ResidualAct<Residual<ConvBn<Conv<3, 3, 6>, BatchNorm>>, GELU>,
                                       ResidualAct<Residual<ConvBn<Conv<1, 1, 7>, BatchNorm>>, ELU>, Flatten,
                                       Dense<4>>>);

// Conv-BN-GELU, Conv-BN-SELU and BN-GELU after a pool: activations whose
// derivative is costly, so the fused backward stores dy act'(z) between its two
// passes (activation::costly_derivative) instead of recomputing it.
template <int Width>
using Costly = Sequential<Input<3, 6, 6>,
                          Conv<3, 3, Width>, BatchNorm, GELU,  // 1-3
                          Conv<3, 3, Width>, BatchNorm, SELU,  // 4-6
                          MaxPool<2>, BatchNorm, GELU,         // 7, 8-9: Width x 3 x 3
                          Flatten, Dense<4>>;

static_assert(std::is_same_v<Costly<3>::plan,
                             type_list<ConvBnAct<Conv<3, 3, 3>, BatchNorm, GELU>,
                                       ConvBnAct<Conv<3, 3, 3>, BatchNorm, SELU>, MaxPool<2>,
                                       BnAct<BatchNorm, GELU>, Flatten, Dense<4>>>);
static_assert(activation::costly_derivative<activation::Gelu> && activation::costly_derivative<activation::Selu>);
static_assert(!activation::costly_derivative<activation::Relu> && !activation::costly_derivative<activation::Elu<1.0>>);

// The biases of a net's convolutions that sit straight in front of a
// BatchNorm: in training mode their gradient is zero in exact arithmetic (the
// batch mean takes any shift away), so both models leave only rounding there.
template <class Net>
struct BiasesBeforeBatchNorm;
template <int Width>
struct BiasesBeforeBatchNorm<Mixed<Width>> {
  static inline const std::vector<std::string> names{"1.bias", "7.bias", "9.1.bias", "9.4.bias"};
};
template <int Width>
struct BiasesBeforeBatchNorm<Costly<Width>> {
  static inline const std::vector<std::string> names{"1.bias", "4.bias"};
};
template <int Width>
struct BiasesBeforeBatchNorm<SmallResnet<Width>> {
  // Not the projection shortcuts' biases ("6.shortcut.bias"): no BatchNorm follows them.
  static inline const std::vector<std::string> names{"1.bias",   "4.1.bias", "4.4.bias", "6.1.bias",
                                                     "6.4.bias", "8.1.bias", "10.1.bias"};
};

// The largest difference over the largest reference magnitude of a tensor: a
// normwise relative error, which stays meaningful where single elements cancel to
// near zero (a bias gradient in front of a training-mode BatchNorm is zero up to
// rounding).
template <class T, class U>
double relative_difference(const T* actual, const U* expected, long n) {
  double difference = 0, magnitude = 0;
  for (long i = 0; i < n; ++i) {
    difference = std::max(difference, std::abs(double(actual[i]) - double(expected[i])));
    magnitude = std::max(magnitude, std::abs(double(expected[i])));
  }
  return magnitude > 0 ? difference / magnitude : difference;
}

template <class T>
double largest_magnitude(const T* v, long n) {
  double m = 0;
  for (long i = 0; i < n; ++i) m = std::max(m, std::abs(double(v[i])));
  return m;
}

template <class T>
constexpr double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;

// In float the fused and unfused models round differently (the fused op
// recomputes the normalised values, sums in another order, and the compiler
// contracts other multiply-adds), and a gradient that is a sum with heavy
// cancellation (BatchNorm's gamma) can differ by more than 1e-5 between them
// with both right to float precision. So float tensors are held to the exact
// (double) result instead: the fused model's error may be at most twice the
// unfused model's plus the float tolerance.
template <class T>
void check_close(const T* fused, const T* unfused, const double* exact, long n) {
  if constexpr (std::is_same_v<T, double>) {
    (void)exact;
    CHECK(relative_difference(fused, unfused, n) < tolerance<T>);
  } else {
    const double fused_error = relative_difference(fused, exact, n);
    const double unfused_error = relative_difference(unfused, exact, n);
    CAPTURE(unfused_error);
    CHECK(fused_error <= 2 * unfused_error + tolerance<T>);
  }
}

// A fused model and its unfused reference with the same parameters: random
// biases, shifts and scales (so a fused op that drops one is caught), copied
// across by name.
template <class Net, class T>
struct Pair {
  Model<Net, cpu, T> fused;
  Model<Unfused<Net>, cpu, T> reference;
  Model<Unfused<Net>, cpu, double> exact;  // the same parameters in double

  explicit Pair(std::uint64_t seed) : fused(seed), reference(seed + 1), exact(seed + 2) {
    Random random(seed);
    for (const auto& p : fused.parameters()) {
      T* v = p.parameter->value();
      for (long k = 0; k < p.parameter->size; ++k) switch (p.parameter->role) {
          case Role::bias:
          case Role::shift: v[k] = T(random.uniform(-0.5, 0.5)); break;
          case Role::scale: v[k] = T(random.uniform(0.5, 1.5)); break;
          case Role::weight: v[k] = T(random.uniform(-0.3, 0.3)); break;
          case Role::statistic: break;
        }
      auto& target = parameter(reference, p.name);
      REQUIRE(target.size == p.parameter->size);
      std::copy(v, v + p.parameter->size, target.value());
      auto& exact_target = parameter(exact, p.name);
      std::copy(v, v + p.parameter->size, exact_target.value());
    }
  }

  void train(bool on) {
    fused.train(on);
    reference.train(on);
    exact.train(on);
  }

  // Training forwards on inputs in [1, 3], so running statistics move well
  // away from (0, 1).
  void move_running_statistics(int batch) {
    const std::vector<T> x = converted(Random(99).uniform(std::size_t(batch) * Net::input_shape::size, 1, 3));
    train(true);
    const std::vector<double> x_exact(x.begin(), x.end());
    for (int k = 0; k < 3; ++k) {
      fused.forward({x.data(), batch});
      reference.forward({x.data(), batch});
      exact.forward({x_exact.data(), batch});
    }
  }

  // One forward and backward of both on the same input and output gradient;
  // checks the outputs, the input gradients and every parameter gradient.
  void check_step(int batch, std::uint64_t seed) {
    Random random(seed);
    const std::vector<T> x = converted(random.uniform(std::size_t(batch) * Net::input_shape::size, -1, 1));
    const std::vector<T> dy = converted(random.uniform(std::size_t(batch) * Net::output_shape::size, -1, 1));
    const std::vector<double> x_exact(x.begin(), x.end()), dy_exact(dy.begin(), dy.end());
    const auto y_fused = fused.forward({x.data(), batch});
    const auto y_reference = reference.forward({x.data(), batch});
    const auto y_exact = exact.forward({x_exact.data(), batch});
    check_close(y_fused.data, y_reference.data, y_exact.data, y_fused.size());
    std::vector<T> dx_fused(x.size()), dx_reference(x.size());
    std::vector<double> dx_exact(x.size());
    fused.backward({dy.data(), batch}, dx_fused.data());
    reference.backward({dy.data(), batch}, dx_reference.data());
    exact.backward({dy_exact.data(), batch}, dx_exact.data());
    check_close(dx_fused.data(), dx_reference.data(), dx_exact.data(), long(x.size()));
    double largest = 0;
    for (const auto& p : fused.parameters()) {
      if (!p.parameter->trainable()) continue;
      CAPTURE(p.name);
      const auto& r = parameter(reference, p.name);
      const bool zero = fused.training() && std::ranges::count(BiasesBeforeBatchNorm<Net>::names, p.name) == 1;
      if (zero) {
        // Rounding only: below the tolerance relative to the same layer's weight gradient.
        const std::string weight = p.name.substr(0, p.name.size() - 4) + "weight";
        const double scale = largest_magnitude(parameter(reference, weight).grad(), parameter(reference, weight).size);
        CHECK(largest_magnitude(p.parameter->grad(), p.parameter->size) < tolerance<T> * scale);
        CHECK(largest_magnitude(r.grad(), r.size) < tolerance<T> * scale);
      } else {
        check_close(p.parameter->grad(), r.grad(), parameter(exact, p.name).grad(), p.parameter->size);
        CHECK(largest_magnitude(r.grad(), r.size) > 1e-3);  // comparing zeros proves nothing
      }
      largest = std::max(largest, largest_magnitude(r.grad(), r.size));
    }
    CHECK(largest > 1e-2);
  }

  static std::vector<T> converted(const std::vector<double>& v) { return {v.begin(), v.end()}; }
};

template <class T, int Width, template <int> class Net = Mixed>
void check_training(int batch) {
  CAPTURE(Width);
  CAPTURE(batch);
  Pair<Net<Width>, T> pair(7);
  pair.train(true);
  pair.check_step(batch, 11);
}

template <class T, int Width, template <int> class Net = Mixed>
void check_eval(int batch) {
  CAPTURE(Width);
  CAPTURE(batch);
  Pair<Net<Width>, T> pair(7);
  pair.move_running_statistics(4);
  pair.train(false);
  pair.check_step(batch, 13);
}

}  // namespace

TEST_CASE("fused and unfused models name the same parameters in the same order") {
  const Pair<Mixed<3>, double> pair(1);
  std::vector<std::string> fused, reference;
  for (const auto& p : pair.fused.parameters()) fused.push_back(p.name);
  for (const auto& p : pair.reference.parameters()) reference.push_back(p.name);
  CHECK(fused == reference);
  CHECK(fused == std::vector<std::string>{
                     "1.weight",         "1.bias",           "2.gamma",          "2.beta",
                     "2.running_mean",   "2.running_var",    "5.gamma",          "5.beta",
                     "5.running_mean",   "5.running_var",    "7.weight",         "7.bias",
                     "8.gamma",          "8.beta",           "8.running_mean",   "8.running_var",
                     "9.1.weight",       "9.1.bias",         "9.2.gamma",        "9.2.beta",
                     "9.2.running_mean", "9.2.running_var",  "9.4.weight",       "9.4.bias",
                     "9.5.gamma",        "9.5.beta",         "9.5.running_mean", "9.5.running_var",
                     "12.weight",        "12.bias"});
}

TEST_CASE("fused and unfused models report the original layers by position") {
  using Fused = Model<Mixed<3>, cpu, double>;
  using Reference = Model<Unfused<Mixed<3>>, cpu, double>;
  CHECK(Fused::layer_names() == Reference::layer_names());
  CHECK(Fused::layer_names().size() == Mixed<3>::depth);
  CHECK(Fused::layer_names()[4] == "BatchNorm");
  CHECK(Fused::layer_names()[8] == "Residual<Conv<3,3,3>,BatchNorm,ReLU,Conv<3,3,3>,BatchNorm>");
}

TEST_CASE("in training mode in double the fused model's output and gradients equal the unfused model's") {
  for (const int batch : {1, 3}) {
    check_training<double, 3>(batch);
    check_training<double, 20>(batch);
  }
}

TEST_CASE("in eval mode in double the fused model's output and gradients equal the unfused model's") {
  for (const int batch : {1, 3}) {
    check_eval<double, 3>(batch);
    check_eval<double, 20>(batch);
  }
}

TEST_CASE("in training mode in float the fused model's output and gradients equal the unfused model's") {
  for (const int batch : {1, 3}) {
    check_training<float, 3>(batch);
    check_training<float, 20>(batch);
  }
}

TEST_CASE("in eval mode in float the fused model's output and gradients equal the unfused model's") {
  for (const int batch : {1, 3}) {
    check_eval<float, 3>(batch);
    check_eval<float, 20>(batch);
  }
}

TEST_CASE("behind GELU and SELU the fused batch norm's stored gradient gives the unfused model's gradients") {
  for (const int batch : {1, 3}) {
    check_training<double, 3, Costly>(batch);
    check_training<double, 17, Costly>(batch);
    check_eval<double, 17, Costly>(batch);
    check_training<float, 3, Costly>(batch);
    check_training<float, 17, Costly>(batch);
    check_eval<float, 17, Costly>(batch);
  }
}

TEST_CASE("fused and unfused small ResNets name the same parameters in the same order") {
  const Pair<SmallResnet<3>, double> pair(1);
  std::vector<std::string> fused, reference;
  for (const auto& p : pair.fused.parameters()) fused.push_back(p.name);
  for (const auto& p : pair.reference.parameters()) reference.push_back(p.name);
  CHECK(fused == reference);
  const auto norm = [](const std::string& at) {
    return std::vector<std::string>{at + "gamma", at + "beta", at + "running_mean", at + "running_var"};
  };
  std::vector<std::string> expected{"1.weight", "1.bias"};
  const auto append = [&](const std::vector<std::string>& names) {
    expected.insert(expected.end(), names.begin(), names.end());
  };
  append(norm("2."));
  append({"4.1.weight", "4.1.bias"});
  append(norm("4.2."));
  append({"4.4.weight", "4.4.bias"});
  append(norm("4.5."));
  append({"6.1.weight", "6.1.bias"});
  append(norm("6.2."));
  append({"6.4.weight", "6.4.bias"});
  append(norm("6.5."));
  append({"6.shortcut.weight", "6.shortcut.bias", "8.1.weight", "8.1.bias"});
  append(norm("8.2."));
  append({"10.1.weight", "10.1.bias"});
  append(norm("10.2."));
  append({"10.shortcut.weight", "10.shortcut.bias", "13.weight", "13.bias"});
  CHECK(fused == expected);
  CHECK(Model<SmallResnet<3>, cpu, double>::layer_names() ==
        Model<Unfused<SmallResnet<3>>, cpu, double>::layer_names());
}

TEST_CASE("in training mode in double a small ResNet's fused blocks and activations equal the unfused layers") {
  for (const int batch : {1, 3}) {
    check_training<double, 3, SmallResnet>(batch);
    check_training<double, 8, SmallResnet>(batch);
  }
}

TEST_CASE("in eval mode in double a small ResNet's fused blocks and activations equal the unfused layers") {
  for (const int batch : {1, 3}) {
    check_eval<double, 3, SmallResnet>(batch);
    check_eval<double, 8, SmallResnet>(batch);
  }
}

TEST_CASE("in training mode in float a small ResNet's fused blocks and activations equal the unfused layers") {
  for (const int batch : {1, 3}) check_training<float, 8, SmallResnet>(batch);
}

TEST_CASE("in eval mode in float a small ResNet's fused blocks and activations equal the unfused layers") {
  for (const int batch : {1, 3}) check_eval<float, 8, SmallResnet>(batch);
}

TEST_CASE("a non-finite output of a residual block and its activation is reported at the activation's position") {
  using Net = Sequential<Input<1, 4, 4>, Residual<Conv<3, 3, 1>>, ReLU, Flatten, Dense<2>>;
  Model<Net, cpu, double> model;
  std::vector<double> x(16, 1.0);
  x[5] = std::nan("");
  model.forward({x.data(), 1});
  CHECK(model.first_non_finite() == "the output of layer 2 (Residual<Conv<3,3,1>>+ReLU)");
}

// --- a residual block and the activation after it ------------------------------------

TEST_CASE("a basic block followed by ReLU runs as one op over both positions that keeps no sum") {
  using Block = Residual<Conv<3, 3, 16>, Bn, ReLU, Conv<3, 3, 16>, Bn>;
  using Op = ResidualAct<Residual<ConvBnAct<Conv<3, 3, 16>, Bn, ReLU>, ConvBn<Conv<3, 3, 16>, Bn>>, ReLU>;
  CHECK(std::is_same_v<fused_list<Block, ReLU>, type_list<Op>>);
  static_assert(fused_spans<Block, ReLU, Dense<10>> == std::array<int, 2>{2, 1});
  CHECK(!Op::keeps_sum);
  CHECK(Op::name() == "Residual<Conv<3,3,16>,BatchNorm,ReLU,Conv<3,3,16>,BatchNorm>+ReLU");
  CHECK(Op::part_names() == std::vector<std::string>{Block::name(), "ReLU"});
  using In = Shape<16, 8, 8>;
  CHECK(std::is_same_v<decltype(Op::output_shape<In>()), In>);
  CHECK(Op::parameter_count<In> == Block::parameter_count<In>);
  CHECK(Op::flops<In> == Block::flops<In> + ReLU::flops<In>);
}

TEST_CASE("a projection block followed by ReLU fuses with its shortcut, parameters and work unchanged") {
  using Down = Residual<Conv<3, 3, 32, 2>, Bn, ReLU, Conv<3, 3, 32>, Bn>;
  using Op = ResidualAct<Residual<ConvBnAct<Conv<3, 3, 32, 2>, Bn, ReLU>, ConvBn<Conv<3, 3, 32>, Bn>>, ReLU>;
  CHECK(std::is_same_v<fused_list<Conv<3, 3, 16>, Down, ReLU, GlobalAvgPool>,
                       type_list<Conv<3, 3, 16>, Op, GlobalAvgPool>>);
  using In = Shape<16, 8, 8>;
  using Out = Shape<32, 4, 4>;
  CHECK(std::is_same_v<decltype(Op::output_shape<In>()), Out>);
  CHECK(std::is_same_v<Op::Block::Projection<In>, Conv<1, 1, 32, 2, valid>>);
  // 32*16*9 + 32 + 2*32 + 32*32*9 + 32 + 2*32 + (32*16 + 32) for the shortcut
  CHECK(Op::parameter_count<In> == 14560);
  CHECK(Op::parameter_count<In> == Down::parameter_count<In> + ReLU::parameter_count<Out>);
  CHECK(Op::flops<In> == Down::flops<In> + ReLU::flops<Out>);
  CHECK(ReLU::flops<Out> == 512);
}

TEST_CASE("a residual block not followed by an activation stays a residual") {
  using Block = Residual<Conv<3, 3, 4>, Bn>;
  using Fused = Residual<ConvBn<Conv<3, 3, 4>, Bn>>;
  CHECK(std::is_same_v<fused_list<Block>, type_list<Fused>>);
  CHECK(std::is_same_v<fused_list<Block, MaxPool<2>, ReLU>, type_list<Fused, MaxPool<2>, ReLU>>);
  CHECK(std::is_same_v<fused_list<Block, Dropout<0.5>, ReLU>, type_list<Fused, Dropout<0.5>, ReLU>>);
  CHECK(std::is_same_v<fused_list<Block, Bn, ReLU>, type_list<Fused, BnAct<Bn, ReLU>>>);
  CHECK(std::is_same_v<fused_list<ReLU, Block>, type_list<ReLU, Fused>>);
}

TEST_CASE("a residual block followed by GELU fuses and keeps the sum that GELU's derivative reads") {
  using Block = Residual<Conv<3, 3, 4>, Bn>;
  using Op = ResidualAct<Residual<ConvBn<Conv<3, 3, 4>, Bn>>, GELU>;
  CHECK(std::is_same_v<fused_list<Block, GELU>, type_list<Op>>);
  CHECK(Op::keeps_sum);
  CHECK(Op::name() == "Residual<Conv<3,3,4>,BatchNorm>+GELU");
  // The same decision for every activation: the sum is dropped only where the
  // derivative is written in the output alone.
  CHECK(ResidualAct<Block, LeakyReLU>::keeps_sum);
  CHECK(ResidualAct<Block, ELU>::keeps_sum);
  CHECK(ResidualAct<Block, SELU>::keeps_sum);
  CHECK(!ResidualAct<Block, Sigmoid>::keeps_sum);
  CHECK(!ResidualAct<Block, Tanh>::keeps_sum);
}

TEST_CASE("the activations declaring a derivative from the output give it whatever input is passed") {
  const auto independent_of_input = []<class F>(F*) {
    for (const double x : {-3.0, -0.5, 0.0, 0.25, 2.0}) {
      const double y = F::value(x);
      for (const double other : {-7.0, 0.0, 3.5, std::nan("")}) CHECK(F::derivative(other, y) == F::derivative(x, y));
    }
  };
  static_assert(activation::derivative_from_output<activation::Relu>);
  static_assert(activation::derivative_from_output<activation::Sigmoid>);
  static_assert(activation::derivative_from_output<activation::Tanh>);
  independent_of_input(static_cast<activation::Relu*>(nullptr));
  independent_of_input(static_cast<activation::Sigmoid*>(nullptr));
  independent_of_input(static_cast<activation::Tanh*>(nullptr));
  // The others read x: given the output of x = 1, another x changes the derivative.
  const auto reads_input = []<class F>(F*) {
    const double y = F::value(1.0);
    CHECK(F::derivative(-1.0, y) != F::derivative(1.0, y));
  };
  static_assert(!activation::derivative_from_output<activation::LeakyRelu<0.01>>);
  static_assert(!activation::derivative_from_output<activation::Elu<1.0>>);
  static_assert(!activation::derivative_from_output<activation::Selu>);
  static_assert(!activation::derivative_from_output<activation::Gelu>);
  reads_input(static_cast<activation::LeakyRelu<0.01>*>(nullptr));
  reads_input(static_cast<activation::Elu<1.0>*>(nullptr));
  reads_input(static_cast<activation::Selu*>(nullptr));
  reads_input(static_cast<activation::Gelu*>(nullptr));
}

TEST_CASE("a residual block inside a branch fuses with the activation after it there") {
  using Inner = Residual<Conv<3, 3, 2>>;
  using Outer = Residual<Inner, Tanh>;
  CHECK(std::is_same_v<fused_list<Outer, Sigmoid>,
                       type_list<ResidualAct<Residual<ResidualAct<Inner, Tanh>>, Sigmoid>>>);
  CHECK(Residual<ResidualAct<Inner, Tanh>>::name() == Outer::name());
  using Net = Sequential<Input<2, 3, 3>, Outer, Sigmoid>;
  CHECK(fusion_plan<Net>() ==
        "1-2         Residual<Residual<Conv<3,3,2>>,Tanh>+Sigmoid\n"
        "  1.1-1.2   Residual<Conv<3,3,2>>+Tanh\n"
        "    1.1.1   Conv<3,3,2>\n");
}

TEST_CASE("fusion_plan shows a residual block and its activation as one op with the branch nested") {
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, Bn, ReLU, Dropout<0.5>,
                         Residual<Conv<3, 3, 4>, Bn, ReLU, Conv<3, 3, 4>, Bn>, ReLU, Flatten, Dense<10>>;
  CHECK(fusion_plan<Net>() ==
        "1-3         Conv<3,3,4>+BatchNorm+ReLU\n"
        "4           Dropout<0.5>\n"
        "5-6         Residual<Conv<3,3,4>,BatchNorm,ReLU,Conv<3,3,4>,BatchNorm>+ReLU\n"
        "  5.1-5.3   Conv<3,3,4>+BatchNorm+ReLU\n"
        "  5.4-5.5   Conv<3,3,4>+BatchNorm\n"
        "7           Flatten\n"
        "8           Dense<10>\n");
}

TEST_CASE("describe marks a residual block and its activation as one op and keeps the totals") {
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, Residual<Conv<3, 3, 8, 2>, Bn>, GELU, Flatten, Dense<2>>;
  const std::string table = describe<Net>();
  auto line = [&](const std::string& position) {
    const std::size_t begin = table.find("\n" + position + " ") + 1;
    return table.substr(begin, table.find('\n', begin) - begin);
  };
  CHECK(line("2").ends_with("  2-3 Residual<Conv<3,3,8,2>,BatchNorm>+GELU"));
  CHECK(line("3").ends_with("  in 2-3"));
  CHECK(line("2.1").ends_with("  2.1-2.2 Conv<3,3,8,2>+BatchNorm"));
  CHECK(line("2.shortcut").ends_with("0.001"));  // 2 * 8 * 4 * 16 = 1024 FLOPs, run inside the block
  CHECK(describe<Unfused<Net>>().find("in 2-3") == std::string::npos);
  // The fused ops' costs add up to the layers' costs.
  using Shapes = Net::shapes;
  using Op = ResidualAct<Residual<ConvBn<Conv<3, 3, 8, 2>, Bn>>, GELU>;
  using In = std::tuple_element_t<1, Shapes>;
  CHECK(Op::flops<In> ==
        Residual<Conv<3, 3, 8, 2>, Bn>::flops<In> + GELU::flops<std::tuple_element_t<2, Shapes>>);
  CHECK(Op::parameter_count<In> == Residual<Conv<3, 3, 8, 2>, Bn>::parameter_count<In>);
}

TEST_CASE("the unfused reference runs a residual block and its activation as two layers") {
  using Block = Residual<Conv<3, 3, 3>, BatchNorm, ReLU, Conv<3, 3, 3>, BatchNorm>;
  using Reference = Model<Unfused<SmallResnet<3>>, cpu, double>::chain_type;
  CHECK(std::is_same_v<std::tuple_element_t<3, Reference::layer_tuple>, Block::Layer<Shape<3, 6, 6>, double, cpu>>);
  CHECK(std::is_same_v<std::tuple_element_t<4, Reference::layer_tuple>, ReLU::Layer<Shape<3, 6, 6>, double, cpu>>);
  CHECK(Reference::depth == SmallResnet<3>::depth);
  CHECK(Model<SmallResnet<3>, cpu, double>::chain_type::depth == 7);
}

TEST_CASE("running statistics after three training forwards are identical in the fused and unfused models") {
  // Training forward runs the unfused layers' arithmetic in the same order.
  Pair<Mixed<20>, double> pair(3);
  pair.move_running_statistics(3);
  for (const auto& p : pair.fused.parameters()) {
    if (p.parameter->trainable()) continue;
    CAPTURE(p.name);
    CHECK(laminar_test::values(*p.parameter) == laminar_test::values(parameter(pair.reference, p.name)));
  }
}

TEST_CASE("running statistics after three training steps agree in the fused and unfused models") {
  // Backward computes g = dy act'(z) inside the reductions instead of storing
  // it, so the compiler may contract differently and gradients, hence the
  // weights of later steps, agree to rounding rather than bit for bit.
  Pair<Mixed<20>, double> pair(3);
  pair.train(true);
  for (std::uint64_t step = 0; step < 3; ++step) {
    pair.check_step(3, 20 + step);
    // The same plain gradient step on both, so the next forward sees new weights.
    for (const auto& p : pair.fused.parameters()) {
      if (!p.parameter->trainable()) continue;
      auto& r = parameter(pair.reference, p.name);
      for (long k = 0; k < r.size; ++k) {
        p.parameter->value()[k] -= 0.1 * p.parameter->grad()[k];
        r.value()[k] -= 0.1 * r.grad()[k];
      }
    }
  }
  for (const auto& p : pair.fused.parameters()) {
    if (p.parameter->trainable()) continue;
    CAPTURE(p.name);
    const auto& r = parameter(pair.reference, p.name);
    CHECK(relative_difference(p.parameter->value(), r.value(), r.size) < tolerance<double>);
    const double initial = p.name.ends_with("running_var") ? 1.0 : 0.0;
    double moved = 0;
    for (long k = 0; k < r.size; ++k) moved = std::max(moved, std::abs(r.value()[k] - initial));
    CHECK(moved > 1e-2);
  }
}

TEST_CASE("eval forward folds batch norm into the convolution without changing the stored parameters") {
  Pair<Mixed<3>, double> pair(5);
  pair.move_running_statistics(4);
  const auto before = laminar_test::all_values(pair.fused);
  pair.train(false);
  const std::vector<double> x = Random(8).uniform(2 * Mixed<3>::input_shape::size, -1, 1);
  const auto first = laminar_test::forward(pair.fused, x.data(), 2);
  CHECK(laminar_test::all_values(pair.fused) == before);
  CHECK(laminar_test::forward(pair.fused, x.data(), 2) == first);
}

TEST_CASE("a fused batch norm in training mode with one value per channel throws") {
  using Net = Sequential<Input<4>, Dense<3>, BatchNorm, ReLU>;
  static_assert(std::is_same_v<Net::plan, type_list<Dense<3>, BnAct<BatchNorm, ReLU>>>);
  Model<Net, cpu, double> model;
  const std::vector<double> x(4, 1.0);
  CHECK_THROWS_WITH_AS(model.forward({x.data(), 1}),
                       "BatchNorm in training mode needs more than one value per channel, got batch 1 of Shape<3>",
                       Error);
}

TEST_CASE("a non-finite output of a fused op is reported at its last position under its fused name") {
  using Net = Sequential<Input<1, 4, 4>, Conv<3, 3, 2>, BatchNorm, ReLU, Flatten, Dense<2>>;
  Model<Net, cpu, double> model;
  model.eval();  // a NaN batch in training would reach the running statistics first
  std::vector<double> x(16, 1.0);
  x[5] = std::nan("");
  model.forward({x.data(), 1});
  CHECK(model.first_non_finite() == "the output of layer 3 (Conv<3,3,2>+BatchNorm+ReLU)");
  parameter(model, "2.gamma").value()[1] = INFINITY;
  CHECK(model.first_non_finite() == "parameter 2.gamma of layer 2 (BatchNorm)");
}

// --- the fused ops alone against finite differences ---------------------------------

TEST_CASE("conv, batch norm, GELU as one op in training mode has gradients matching finite differences") {
  using Net = Sequential<Input<2, 4, 4>, Conv<3, 3, 3>, BatchNorm, GELU>;
  static_assert(std::is_same_v<Net::plan, type_list<ConvBnAct<Conv<3, 3, 3>, BatchNorm, GELU>>>);
  gradient_check::require_gradients_match<Net>({.batch = 2, .seed = 3});
}

TEST_CASE("conv, batch norm, GELU as one op in eval mode has gradients matching finite differences") {
  using Net = Sequential<Input<2, 4, 4>, Conv<3, 3, 3>, BatchNorm, GELU>;
  gradient_check::require_gradients_match<Net>({.batch = 2, .seed = 3, .mode = gradient_check::Mode::eval},
                                               gradient_check::TrainStatisticsFirst{});
}

TEST_CASE("strided conv and batch norm as one op has gradients matching finite differences") {
  using Net = Sequential<Input<2, 5, 5>, Conv<3, 3, 3, 2>, BatchNorm>;
  static_assert(std::is_same_v<Net::plan, type_list<ConvBn<Conv<3, 3, 3, 2>, BatchNorm>>>);
  gradient_check::require_gradients_match<Net>({.batch = 3, .seed = 5});
}

TEST_CASE("batch norm and tanh as one op has gradients matching finite differences") {
  using Net = Sequential<Input<3, 3, 3>, BatchNorm, Tanh>;
  static_assert(std::is_same_v<Net::plan, type_list<BnAct<BatchNorm, Tanh>>>);
  gradient_check::require_gradients_match<Net>({.batch = 2, .seed = 6});
}

TEST_CASE("a residual block and sigmoid as one op has gradients matching finite differences") {
  using Net = Sequential<Input<2, 4, 4>, Residual<Conv<3, 3, 2>, Tanh, Conv<3, 3, 2>>, Sigmoid>;
  static_assert(
      std::is_same_v<Net::plan, type_list<ResidualAct<Residual<Conv<3, 3, 2>, Tanh, Conv<3, 3, 2>>, Sigmoid>>>);
  gradient_check::require_gradients_match<Net>({.batch = 2, .seed = 4});
}

TEST_CASE("a projection block and GELU as one op has gradients matching finite differences") {
  using Net = Sequential<Input<2, 4, 4>, Residual<Conv<3, 3, 3, 2>, Tanh, Conv<3, 3, 3>>, GELU>;
  static_assert(
      std::is_same_v<Net::plan, type_list<ResidualAct<Residual<Conv<3, 3, 3, 2>, Tanh, Conv<3, 3, 3>>, GELU>>>);
  gradient_check::require_gradients_match<Net>({.batch = 2, .seed = 4});
}
