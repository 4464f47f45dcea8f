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
// x, y, dy and dx are planar NCHW unless the layer declares
//   static constexpr bool layout_aware = true;
// and then each is in layout_of<its shape>(ctx): a chain keeps its activations
// in the backend's blocked layout only when every layer in it is layout-aware.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "../core/backend.hpp"
#include "../core/buffer.hpp"
#include "../core/layout.hpp"
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
// convolutions multiply, the layout of the chain's image activations and the
// shared scratch memory.
template <class B>
struct Context {
  bool training = true;
  std::uint64_t seed = 0;
  std::uint32_t step = 0;
  Arithmetic arithmetic = Arithmetic::native;
  Layout images = Layout::planar;  // blocked: every image tensor that layout_of allows
  Workspace<B> workspace;
};

// The layout of an activation of shape S under ctx: the backend's blocked
// layout where ctx keeps images blocked and S's channels fill whole blocks,
// else planar. A pure function of the shape and ctx, so the layer that writes
// a tensor and the one that reads it agree without being told.
template <class S, class B>
Layout layout_of(const Context<B>& ctx) {
  if constexpr (ImageShape<S> && requires { ops<B>::channel_block; }) {
    if (ctx.images == Layout::blocked && S::channels % ops<B>::channel_block == 0) return Layout::blocked;
  }
  return Layout::planar;
}

// The channels of a block of backend B's blocked layout (1 where it has none).
template <class B>
inline constexpr int channel_block_of = [] {
  if constexpr (requires { ops<B>::channel_block; })
    return ops<B>::channel_block;
  else
    return 1;
}();

// Channel c and pixel p of the element at offset r of one sample of shape S,
// planar or in the blocked layout of Block-channel blocks: element_offset's inverse.
template <class S, bool Blocked, int Block>
LAMINAR_HD inline void channel_and_pixel(long r, long& c, long& p) {
  if constexpr (Blocked) {
    c = r / (S::pixels * Block) * Block + r % Block, p = r % (S::pixels * Block) / Block;
  } else {
    c = r / S::pixels, p = r % S::pixels;
  }
}

// Where element (n, c, p) of a batch of image shape S lies, p = y * W + x:
// planar (n, c, p), or blocked (n, c / Block, p, c % Block).
template <class S, bool Blocked, int Block>
LAMINAR_HD inline long element_offset(long n, long c, long p) {
  if constexpr (Blocked)
    return ((n * (S::channels / Block) + c / Block) * S::pixels + p) * Block + c % Block;
  else
    return (n * S::channels + c) * S::pixels + p;
}

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
