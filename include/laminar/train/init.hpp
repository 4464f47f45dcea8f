// Initialisers: the standard schemes for a Model's parameters, applied to the whole
// model or to the parameters under a name prefix ("3" is top-level layer 3, "5.2" the
// second layer of the Residual at top-level position 5; positions are 1-based).
//
// The default initialisation (Model(seed), Model::initialize, init::reset), per layer:
//   Conv, Dense, and a Residual's 1x1 projection shortcut: weight He normal, N(0, 2 / fan_in)
//     with fan_in = in_channels * kernel_height * kernel_width (Conv) or the input size
//     (Dense); bias 0.
//   BatchNorm: gamma 1, beta 0; running mean 0, running variance 1.
//   Activations, pooling, Flatten, Dropout: no parameters.
//
// Which initialiser suits which activation (each keeps the signal's variance constant
// through depth for its nonlinearity):
//   ReLU (and roughly ELU, GELU): kaiming, the default. LeakyReLU: kaiming with
//     nonlinearity leaky_relu and the layer's slope.
//   Tanh, Sigmoid, no activation: xavier (Glorot & Bengio 2010); pass gain(tanh) for Tanh.
//   SELU: lecun_normal, the variance 1 / fan_in that SELU's fixed point assumes.
//   Residual networks with BatchNorm: the default, then zero_gamma.
//   normal(model, 0.01) is the naive scheme a deep plain network cannot train from: its
//     signal shrinks by fan_in * 0.01^2 / 2 per ReLU layer.
//
// The random initialisers write weights only (Role::weight) and draw from Philox as
// Model::initialize does (stream initializer_stream_base + the parameter's index in
// parameters()), so a seed gives the same values on every backend and thread count, and
// kaiming_normal with its default options reproduces the default weights exactly.
//
// A prefix selects whole name components: "1" selects "1.weight" and "1.2.gamma" but not
// "10.weight"; "1.weight" selects that one parameter. A prefix that selects nothing the
// initialiser would write is an Error, so a typo never passes for an initialisation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/philox.hpp"
#include "../layers/batchnorm.hpp"
#include "../layers/input.hpp"
#include "../layers/layer.hpp"
#include "../net/model.hpp"
#include "../net/residual.hpp"
#include "../net/sequential.hpp"

namespace laminar::init {

enum class FanMode { fan_in, fan_out, fan_average };
enum class Nonlinearity { linear, relu, leaky_relu, tanh, sigmoid, selu };

struct KaimingOptions {
  FanMode mode = FanMode::fan_in;
  Nonlinearity nonlinearity = Nonlinearity::relu;
  double negative_slope = 0;  // for leaky_relu only
  std::uint64_t seed = 0;
  std::string prefix;
};

struct XavierOptions {
  double gain = 1;
  std::uint64_t seed = 0;
  std::string prefix;
};

struct LecunOptions {
  std::uint64_t seed = 0;
  std::string prefix;
};

namespace detail {

// The square of the gain: the factor by which a weight variance of 1 / fan must grow so
// the nonlinearity hands the next layer the second moment it got. Kept squared so
// kaiming's N(0, 2 / fan_in) is computed exactly as Model::initialize computes it.
inline double gain_squared(Nonlinearity f, double negative_slope) {
  switch (f) {
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::relu: return 2.0;
    case Nonlinearity::leaky_relu:
      if (!std::isfinite(negative_slope))
        throw Error("init::gain: the leaky_relu negative slope must be finite, got " +
                    std::to_string(negative_slope));
      return 2.0 / (1.0 + negative_slope * negative_slope);
    case Nonlinearity::tanh: return 25.0 / 9.0;
    case Nonlinearity::selu: return 9.0 / 16.0;
  }
  throw Error("init::gain: unknown nonlinearity " + std::to_string(int(f)));
}

inline const char* role_name(Role role) {
  switch (role) {
    case Role::weight: return "weight";
    case Role::bias: return "bias";
    case Role::scale: return "scale";
    case Role::shift: return "shift";
    case Role::statistic: return "statistic";
  }
  return "unknown";
}

using laminar::selects;

template <class M>
std::string some_parameter_names(const M& model) {
  constexpr std::size_t shown = 6;
  const auto& parameters = model.parameters();
  if (parameters.empty()) return "none";
  std::string names;
  for (std::size_t i = 0; i < parameters.size() && i < shown; ++i)
    names += (i ? ", " : "") + parameters[i].name;
  if (parameters.size() > shown) names += " and " + std::to_string(parameters.size() - shown) + " more";
  return names;
}

// Calls write(stream, parameter) for every parameter of `role` under `prefix`; the
// stream is the parameter's Philox stream, fixed by its index in parameters().
template <class M, class Write>
void for_each_selected(M& model, Role role, const std::string& prefix, const char* initialiser,
                       Write&& write) {
  const auto& parameters = model.parameters();
  long written = 0;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const auto& named = parameters[i];
    if (named.parameter->role != role || !selects(prefix, named.name)) continue;
    write(initializer_stream_base + std::uint32_t(i), *named.parameter);
    ++written;
  }
  if (written > 0) return;
  const std::string what = prefix.empty() ? std::string("the model has no ") + role_name(role) + " parameter"
                                          : "prefix \"" + prefix + "\" selects no " + role_name(role) +
                                                " parameter of the model";
  throw Error(std::string("init::") + initialiser + ": " + what + "; its parameters are " +
              some_parameter_names(model));
}

// value(k) for every element k, computed in double on the host, then copied over.
template <class T, class B, class Value>
void write_values(Parameter<T, B>& p, Value&& value) {
  std::vector<T> host(std::size_t(p.size));
  for (long k = 0; k < p.size; ++k) host[std::size_t(k)] = T(value(std::uint64_t(k)));
  ops<B>::copy_to_device(p.value(), host.data(), p.size);
}

// N(0, stddev(p)^2) on every selected weight.
template <class M, class Stddev>
void normal_weights(M& model, std::uint64_t seed, const std::string& prefix, const char* initialiser,
                    Stddev&& stddev) {
  for_each_selected(model, Role::weight, prefix, initialiser, [&](std::uint32_t stream, auto& p) {
    const double sd = stddev(p);
    write_values(p, [&](std::uint64_t k) { return sd * philox::normal(seed, stream, 0, k); });
  });
}

// U(-b, b) with b = bound(p) on every selected weight. Philox's uniform is k / 2^24;
// taking the middle of each bin, (2k + 1) / 2^24 - 1, keeps the values strictly inside
// (-b, b) and their grid symmetric about 0.
template <class M, class Bound>
void uniform_weights(M& model, std::uint64_t seed, const std::string& prefix, const char* initialiser,
                     Bound&& bound) {
  for_each_selected(model, Role::weight, prefix, initialiser, [&](std::uint32_t stream, auto& p) {
    const double b = bound(p);
    write_values(p, [&](std::uint64_t k) {
      const double u = double(philox::uniform(seed, stream, 0, k));
      return b * (2.0 * u + 0x1.0p-24 - 1.0);
    });
  });
}

template <class T, class B>
double fan(const Parameter<T, B>& p, FanMode mode) {
  switch (mode) {
    case FanMode::fan_in: return double(p.fan_in);
    case FanMode::fan_out: return double(p.fan_out);
    case FanMode::fan_average: return double(p.fan_in + p.fan_out) / 2.0;
  }
  throw Error("init: unknown fan mode " + std::to_string(int(mode)));
}

inline double kaiming_gain_squared(const KaimingOptions& o, const char* initialiser) {
  if (o.nonlinearity != Nonlinearity::leaky_relu && o.negative_slope != 0)
    throw Error(std::string("init::") + initialiser + ": negative_slope " + std::to_string(o.negative_slope) +
                " is given but the nonlinearity is not leaky_relu");
  return gain_squared(o.nonlinearity, o.negative_slope);
}

inline void require_positive_gain(double gain, const char* initialiser) {
  if (!(gain > 0) || !std::isfinite(gain))
    throw Error(std::string("init::") + initialiser + ": gain must be positive and finite, got " +
                std::to_string(gain));
}

// The residual branches whose last layer is a BatchNorm, found from the network type.
// Only a BatchNorm that ends its branch is zeroed: one followed by a ReLU would leave
// the branch at relu(0) = 0 where ReLU has zero gradient, and the branch would never
// train.
template <class Layer>
inline constexpr bool is_batchnorm = false;
template <double Momentum, double Epsilon>
inline constexpr bool is_batchnorm<BatchNormWith<Momentum, Epsilon>> = true;

template <class... Layers>
void collect_last_gammas(const std::string& prefix, std::vector<std::string>& names);

template <class Layer>
struct ResidualBranch {
  static void collect(const std::string&, std::vector<std::string>&) {}
};
template <class List>
struct BranchGammas;
template <class... Inner>
struct BranchGammas<type_list<Inner...>> {
  // The residual blocks inside the list under `prefix`, then the list's own last BatchNorm.
  static void collect(const std::string& prefix, std::vector<std::string>& names, bool last_too) {
    collect_last_gammas<Inner...>(prefix, names);
    using Last = std::tuple_element_t<sizeof...(Inner) - 1, std::tuple<Inner...>>;
    if constexpr (is_batchnorm<Last>)
      if (last_too) names.push_back(prefix + std::to_string(sizeof...(Inner)) + ".gamma");
  }
};
template <class... Args>
struct ResidualBranch<Residual<Args...>> {
  // `prefix` names this Residual ("6."); its branch layers are "6.1." ... "6.n.", the
  // layers of a Shortcut<...> "6.shortcut.1." ... . A shortcut's own last BatchNorm
  // (ResNet-D's) is never zeroed: the block would then start as branch(x) alone, not
  // as the identity. Residual blocks nested in either are.
  static void collect(const std::string& prefix, std::vector<std::string>& names) {
    using Block = Residual<Args...>;
    BranchGammas<typename Block::branch>::collect(prefix, names, true);
    if constexpr (Block::explicit_shortcut)
      BranchGammas<typename Block::shortcut::layers>::collect(prefix + "shortcut.", names, false);
  }
};

template <class... Layers>
void collect_last_gammas(const std::string& prefix, std::vector<std::string>& names) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (ResidualBranch<Layers>::collect(prefix + std::to_string(I + 1) + ".", names), ...);
  }(std::index_sequence_for<Layers...>{});
}

template <class Net>
struct NetworkLayers;
template <int... Dims, class... Layers>
struct NetworkLayers<Sequential<Input<Dims...>, Layers...>> {
  static std::vector<std::string> last_gammas() {
    std::vector<std::string> names;
    collect_last_gammas<Layers...>("", names);
    return names;
  }
};

}  // namespace detail

// PyTorch's torch.nn.init.calculate_gain.
inline double gain(Nonlinearity f, double negative_slope = 0.01) {
  return std::sqrt(detail::gain_squared(f, negative_slope));
}

// He et al. 2015, "Delving deep into rectifiers": N(0, gain^2 / fan).
template <class M>
void kaiming_normal(M& model, KaimingOptions o = {}) {
  const double gain2 = detail::kaiming_gain_squared(o, "kaiming_normal");
  detail::normal_weights(model, o.seed, o.prefix, "kaiming_normal",
                         [&](const auto& p) { return std::sqrt(gain2 / detail::fan(p, o.mode)); });
}

// He et al. 2015: U(-b, b) with b = gain sqrt(3 / fan), the variance of kaiming_normal.
template <class M>
void kaiming_uniform(M& model, KaimingOptions o = {}) {
  const double gain2 = detail::kaiming_gain_squared(o, "kaiming_uniform");
  detail::uniform_weights(model, o.seed, o.prefix, "kaiming_uniform",
                          [&](const auto& p) { return std::sqrt(3.0 * gain2 / detail::fan(p, o.mode)); });
}

template <class M>
void kaiming(M& model, KaimingOptions o = {}) {
  kaiming_normal(model, std::move(o));
}

// Glorot & Bengio 2010: U(-b, b) with b = gain sqrt(6 / (fan_in + fan_out)).
template <class M>
void xavier_uniform(M& model, XavierOptions o = {}) {
  detail::require_positive_gain(o.gain, "xavier_uniform");
  detail::uniform_weights(model, o.seed, o.prefix, "xavier_uniform", [&](const auto& p) {
    return o.gain * std::sqrt(6.0 / double(p.fan_in + p.fan_out));
  });
}

// Glorot & Bengio 2010: N(0, gain^2 2 / (fan_in + fan_out)).
template <class M>
void xavier_normal(M& model, XavierOptions o = {}) {
  detail::require_positive_gain(o.gain, "xavier_normal");
  detail::normal_weights(model, o.seed, o.prefix, "xavier_normal", [&](const auto& p) {
    return o.gain * std::sqrt(2.0 / double(p.fan_in + p.fan_out));
  });
}

// LeCun et al. 1998, and Klambauer et al. 2017 for SELU: N(0, 1 / fan_in).
template <class M>
void lecun_normal(M& model, LecunOptions o = {}) {
  detail::normal_weights(model, o.seed, o.prefix, "lecun_normal",
                         [](const auto& p) { return std::sqrt(1.0 / double(p.fan_in)); });
}

// N(0, stddev^2) whatever the layer's size.
template <class M>
void normal(M& model, double stddev, std::uint64_t seed = 0, std::string prefix = {}) {
  if (!(stddev >= 0) || !std::isfinite(stddev))
    throw Error("init::normal: stddev must be finite and not negative, got " + std::to_string(stddev));
  detail::normal_weights(model, seed, prefix, "normal", [&](const auto&) { return stddev; });
}

template <class M>
void constant(M& model, double value, Role role = Role::weight, std::string prefix = {}) {
  using T = typename M::value_type;
  using B = typename M::backend;
  if (!std::isfinite(value)) throw Error("init::constant: value must be finite, got " + std::to_string(value));
  detail::for_each_selected(model, role, prefix, "constant", [&](std::uint32_t, Parameter<T, B>& p) {
    ops<B>::fill(p.value(), p.size, T(value));
  });
}

template <class M>
void zeros(M& model, Role role = Role::weight, std::string prefix = {}) {
  constant(model, 0.0, role, std::move(prefix));
}

template <class M>
void ones(M& model, Role role = Role::weight, std::string prefix = {}) {
  constant(model, 1.0, role, std::move(prefix));
}

// Goyal et al. 2017, "Accurate, large minibatch SGD", and He et al. 2019, "Bag of
// tricks": gamma = 0 in the BatchNorm that ends each residual branch, so every block
// starts as the identity and the network trains as a shallower one at first.
template <class M>
void zero_gamma(M& model) {
  using T = typename M::value_type;
  using B = typename M::backend;
  const std::vector<std::string> names = detail::NetworkLayers<typename M::network>::last_gammas();
  if (names.empty())
    throw Error("init::zero_gamma: the network has no Residual branch ending in a BatchNorm, so zero-gamma "
                "would change nothing");
  for (const std::string& name : names) {
    Parameter<T, B>* gamma = nullptr;
    for (const auto& named : model.parameters())
      if (named.name == name) gamma = named.parameter;
    if (!gamma)
      throw Error("init::zero_gamma: the model has no parameter " + name +
                  " although its network type puts a BatchNorm there");
    ops<B>::fill(gamma->value(), gamma->size, T(0));
  }
}

namespace detail {

// The side of a square convolution kernel (1 for a Dense weight), from the
// fans laminar records: fan_in = Cin k^2, fan_out = Cout k^2, size = Cout Cin k^2.
template <class T, class B>
int square_kernel_side(const Parameter<T, B>& p, const std::string& name, const char* initialiser) {
  const long outputs = p.size / p.fan_in;
  const long taps = p.fan_out / outputs;
  int side = 1;
  while (long(side) * side < taps) ++side;
  if (long(side) * side != taps)
    throw Error(std::string("init::") + initialiser + ": weight " + name + " has " + std::to_string(taps) +
                " taps per filter, not a square kernel");
  return side;
}

}  // namespace detail

// The identity ("dirac") initialisation of convolutions (Zagoruyko & Komodakis
// 2017; airbench's convolutions): filter o passes input channel o through its
// centre tap, for o < min(Cout, Cin). Filters beyond Cin keep the values they
// have, so call this after the random initialiser. Kernels must be square and
// odd-sized (a centre tap); a Dense weight becomes a partial identity matrix.
template <class M>
void dirac(M& model, std::string prefix = {}) {
  using T = typename M::value_type;
  using B = typename M::backend;
  struct Selected {
    Parameter<T, B>* p;
    long taps;
  };
  std::vector<Selected> selected;  // every weight is checked before any is written
  for (const auto& named : model.parameters()) {
    Parameter<T, B>& p = *named.parameter;
    if (p.role != Role::weight || !selects(prefix, named.name)) continue;
    const int side = detail::square_kernel_side(p, named.name, "dirac");
    if (side % 2 == 0)
      throw Error("init::dirac: weight " + named.name + " has an even " + std::to_string(side) + "x" +
                  std::to_string(side) + " kernel, which has no centre tap");
    selected.push_back({&p, long(side) * side});
  }
  if (selected.empty())
    throw Error("init::dirac: prefix \"" + prefix + "\" selects no weight parameter of the model; its parameters are " +
                detail::some_parameter_names(model));
  for (const auto& [p, taps] : selected) {
    const long inputs = p->fan_in / taps, outputs = p->size / p->fan_in, centre = taps / 2;
    std::vector<T> host(std::size_t(p->size));
    ops<B>::copy_to_host(host.data(), p->value(), p->size);
    for (long o = 0; o < std::min(outputs, inputs); ++o)
      for (long i = 0; i < inputs; ++i)
        for (long t = 0; t < taps; ++t) host[std::size_t((o * inputs + i) * taps + t)] = T(o == i && t == centre);
    ops<B>::copy_to_device(p->value(), host.data(), p->size);
  }
}

// The default initialisation, every parameter and statistic included.
template <class M>
void reset(M& model, std::uint64_t seed) {
  model.initialize(seed);
}

}  // namespace laminar::init
