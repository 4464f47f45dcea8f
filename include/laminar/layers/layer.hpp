// The layer contract. A layer *spec* (Conv<3,3,64>, ReLU, ...) is a type that
// names its hyper-parameters and provides
//   static std::string name();
//   template <class In> static consteval auto output_shape();   // Shape<...>{}
//   template <class In> static constexpr long parameter_count = ...;
//   template <class In> static constexpr double flops = ...;       // forward, per sample
//   template <class In, class T, class B> class Layer;             // the runtime part
// and the runtime Layer<In, T, B> provides
//   void forward(Context<B>&, const T* x, T* y, int batch);
//   void backward(Context<B>&, const T* x, const T* y, const T* dy, T* dx, int batch);
//   template <class F> void visit(const std::string& prefix, F&& f);  // f(name, Parameter&)
// backward writes (not adds) the parameter gradients, and skips dx when it is null.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "../core/backend.hpp"
#include "../core/buffer.hpp"
#include "../core/precision.hpp"
#include "../core/shape.hpp"
#include "../core/workspace.hpp"
#include "../expr/expr.hpp"

namespace laminar {

// What a parameter is for decides its default initialisation and whether weight
// decay applies to it. Statistics (BatchNorm running mean/var) are state, not
// trained.
enum class Role { weight, bias, scale, shift, statistic };

template <class T, class B>
class Parameter {
 public:
  Parameter(Role role, long size, long fan_in = 1, long fan_out = 1)
      : role(role), size(size), fan_in(fan_in), fan_out(fan_out), value_(std::size_t(size)) {
    if (trainable()) grad_.reserve(std::size_t(size));
  }
  const Role role;
  const long size;
  const long fan_in, fan_out;  // for initialisers: inputs and outputs per weight

  bool trainable() const { return role != Role::statistic; }
  // A frozen parameter keeps its value: optimizers skip it (fine-tuning a head
  // on a pretrained body). Its gradient is still computed, so the layers below
  // it see their input gradients.
  bool frozen = false;
  T* value() { return value_.data(); }
  const T* value() const { return value_.data(); }
  T* grad() { return grad_.data(); }
  const T* grad() const { return grad_.data(); }

 private:
  Buffer<T, B> value_, grad_;
};

// Whether a name prefix selects a parameter name. Prefixes select whole
// components of the dotted names: "1" and "1." select "1.weight" and
// "1.2.gamma" but not "10.weight"; "1.weight" selects that parameter; "" all.
// Initialisers, freezing, per-group learning rates and weight loading share it.
inline bool selects(std::string_view prefix, std::string_view name) {
  if (!name.starts_with(prefix)) return false;
  return prefix.empty() || prefix.back() == '.' || name.size() == prefix.size() || name[prefix.size()] == '.';
}

// Per-step state every layer sees: the mode, the random stream position, how
// convolutions multiply and the shared scratch memory.
template <class B>
struct Context {
  bool training = true;
  std::uint64_t seed = 0;
  std::uint32_t step = 0;
  Arithmetic arithmetic = Arithmetic::native;
  Workspace<B> workspace;
};

// Layers without parameters.
struct Stateless {
  template <class In>
  static constexpr long parameter_count = 0;
  template <class F>
  void visit(const std::string&, F&&) {}
};

template <class...>
inline constexpr bool always_false = false;

// Sentinels for Conv's padding argument.
inline constexpr int same = -1;
inline constexpr int valid = 0;

namespace detail {
inline std::string join_arguments(std::initializer_list<std::string> parts) {
  std::string s;
  for (const auto& p : parts) {
    if (!s.empty()) s += ',';
    s += p;
  }
  return s;
}
inline std::string number(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}
}  // namespace detail

}  // namespace laminar
