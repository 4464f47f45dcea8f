// Residual<Layers...>: y = branch(x) + shortcut(x) (He et al. 2016). The shortcut
// is the identity when the branch keeps the shape, and a 1x1 convolution with
// the branch's stride (a projection, with bias) when it changes channels or size.
// Residual<Shortcut<S...>, Layers...> takes its shortcut from the layers S...
// instead, checked at compile time to give the branch's shape:
//   ZeroPadShortcut<64>  option A of He et al. 2016: Subsample<2, 64>, no parameters;
//   AvgPoolShortcut<64>  ResNet-D of He et al. 2019: AvgPool<2>, Conv<1,1,64>, BatchNorm.
// An activation after the sum is the next layer of the enclosing Sequential
// (net/fuse.hpp runs the two as one op, ResidualAct in net/residual_act.hpp).
#pragma once

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../layers/batchnorm.hpp"
#include "../layers/conv.hpp"
#include "../layers/pool.hpp"
#include "../layers/subsample.hpp"
#include "chain.hpp"

namespace laminar {

namespace detail {

// The summed parameter count and forward FLOPs of a layer list on input In.
template <class In, class... Layers>
inline constexpr long list_parameter_count = [] {
  long total = 0;
  using Shapes = shapes_of<In, Layers...>;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((total += Layers::template parameter_count<std::tuple_element_t<I, Shapes>>), ...);
  }(std::index_sequence_for<Layers...>{});
  return total;
}();
template <class In, class... Layers>
inline constexpr double list_flops = [] {
  double total = 0;
  using Shapes = shapes_of<In, Layers...>;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((total += Layers::template flops<std::tuple_element_t<I, Shapes>>), ...);
  }(std::index_sequence_for<Layers...>{});
  return total;
}();

// The original layers' names of a list that may hold fused ops, comma-joined.
template <class... Layers>
std::string joined_part_names() {
  std::string s;
  (
      [&] {
        for (const auto& part : part_names<Layers>()) s += (s.empty() ? "" : ",") + part;
      }(),
      ...);
  return s;
}

}  // namespace detail

// The layers of a residual block's shortcut, written as Residual's first argument.
// They run as a chain of their own; their parameters are named "shortcut.1.",
// "shortcut.2.", ... under the block.
template <class... Layers>
struct Shortcut {
  static_assert(sizeof...(Layers) > 0, "A_SHORTCUT_NEEDS_AT_LEAST_ONE_LAYER");
  using layers = type_list<Layers...>;

  static std::string name() { return "Shortcut<" + detail::joined_part_names<Layers...>() + ">"; }

  template <class In>
  using output = std::tuple_element_t<sizeof...(Layers), shapes_of<In, Layers...>>;
  template <class In>
  static constexpr long parameter_count = detail::list_parameter_count<In, Layers...>;
  template <class In>
  static constexpr double flops = detail::list_flops<In, Layers...>;
  template <class In, class T, class B>
  using chain = Chain<In, T, B, Layers...>;
};

// Option A of He et al. 2016 (their CIFAR ResNets): the input at every Stride-th
// pixel, zero channels appended up to Channels; the block adds no parameters.
template <int Channels, int Stride = 2>
using ZeroPadShortcut = Shortcut<Subsample<Stride, Channels>>;

// ResNet-D of He et al. 2019, "Bag of Tricks" section 4: a 2x2 average pool with
// stride 2 before a stride-1 1x1 convolution, so the shortcut reads every pixel
// rather than one in four, then BatchNorm.
template <int Channels, int Stride = 2>
using AvgPoolShortcut = Shortcut<AvgPool<Stride>, Conv<1, 1, Channels>, BatchNorm>;

template <class... Layers>
struct Residual;

namespace detail {

template <class L>
inline constexpr bool is_shortcut = false;
template <class... Layers>
inline constexpr bool is_shortcut<Shortcut<Layers...>> = true;

// Instantiated where a Shortcut's output is compared with the branch's, so the
// compiler's "required from ShortcutMatchesBranch<Shape<...>, Shape<...>>" names both.
template <class ShortcutOutput, class BranchOutput>
struct ShortcutMatchesBranch {
  static_assert(std::is_same_v<ShortcutOutput, BranchOutput>,
                "RESIDUAL_SHORTCUT_AND_BRANCH_GIVE_DIFFERENT_SHAPES: the Shortcut's output shape (the first "
                "argument of ShortcutMatchesBranch) must be the branch's (the second), since the two are summed");
  static constexpr bool value = true;
};

// The runtime shortcut of a block: the chain of an explicit Shortcut, the
// projection convolution, or nothing for the identity.
struct IdentityShortcut {};
struct NoShortcutLayer {};
template <class Spec, class In, class T, class B>
struct ShortcutRuntime {
  using type = typename Spec::template Layer<In, T, B>;
};
template <class... Layers, class In, class T, class B>
struct ShortcutRuntime<Shortcut<Layers...>, In, T, B> {
  using type = Chain<In, T, B, Layers...>;
};
template <class In, class T, class B>
struct ShortcutRuntime<IdentityShortcut, In, T, B> {
  using type = NoShortcutLayer;
};

// A residual block whose shortcut is `Explicit` (a Shortcut<...>), or chosen from
// the shapes when `Explicit` is void.
template <class Explicit, class... Layers>
struct ResidualBlock {
  static_assert(sizeof...(Layers) > 0, "A_RESIDUAL_BLOCK_NEEDS_AT_LEAST_ONE_BRANCH_LAYER");
  static_assert((!is_shortcut<Layers> && ...),
                "SHORTCUT_MUST_BE_THE_FIRST_ARGUMENT_OF_RESIDUAL: write Residual<Shortcut<...>, branch layers...>");

  using branch = type_list<Layers...>;
  using shortcut = Explicit;  // void: the identity or the projection
  static constexpr bool explicit_shortcut = !std::is_void_v<Explicit>;

  template <class In>
  using branch_output = std::tuple_element_t<sizeof...(Layers), shapes_of<In, Layers...>>;
  template <class In>
  static constexpr bool identity = !explicit_shortcut && std::is_same_v<branch_output<In>, In>;
  template <class In>
  // ceil: a stride-2 branch takes 5x5 to 3x3.
  static constexpr int stride = (In::height + branch_output<In>::height - 1) / branch_output<In>::height;
  template <class In>
  using Projection = Conv<1, 1, branch_output<In>::channels, stride<In>, 0>;
  // What the shortcut of input In is: Explicit, IdentityShortcut or Projection<In>.
  template <class In>
  using shortcut_of =
      std::conditional_t<explicit_shortcut, Explicit, std::conditional_t<identity<In>, IdentityShortcut, Projection<In>>>;

  // The names of the layers written, also when the branch holds fused ops.
  static std::string name() {
    std::string s = joined_part_names<Layers...>();
    if constexpr (explicit_shortcut) s = Explicit::name() + "," + s;
    return "Residual<" + s + ">";
  }

  template <class In>
  static consteval auto output_shape() {
    using Out = branch_output<In>;
    if constexpr (explicit_shortcut) {
      static_assert(ShortcutMatchesBranch<typename Explicit::template output<In>, Out>::value);
    } else if constexpr (!identity<In>) {
      static_assert(ImageShape<In> && ImageShape<Out>,
                    "Residual branch changes a flat shape; only image branches get a projection "
                    "shortcut");
      if constexpr (ImageShape<In> && ImageShape<Out>)
        static_assert(std::is_same_v<decltype(Projection<In>::template output_shape<In>()), Out>,
                      "Residual branch output is not the input downsampled by an integer stride, "
                      "so no 1x1 strided projection shortcut can match it");
    }
    return Out{};
  }

  template <class In>
  static constexpr long parameter_count = [] {
    long total = list_parameter_count<In, Layers...>;
    if constexpr (!identity<In>) total += shortcut_of<In>::template parameter_count<In>;
    return total;
  }();

  template <class In>
  static constexpr double flops = [] {
    double total = double(branch_output<In>::size) + list_flops<In, Layers...>;  // the sum and the branch
    if constexpr (!identity<In>) total += shortcut_of<In>::template flops<In>;
    return total;
  }();

  template <class In, class T, class B>
  class Layer {
    using Out = branch_output<In>;
    using ShortcutLayer = typename ShortcutRuntime<shortcut_of<In>, In, T, B>::type;

   public:
    // The sums are element by element over tensors of one shape, so one layout.
    static constexpr bool layout_aware =
        Chain<In, T, B, Layers...>::layout_aware &&
        (std::is_same_v<ShortcutLayer, NoShortcutLayer> || is_layout_aware<ShortcutLayer>());

    void assign_streams(std::uint32_t& next) {
      branch_.assign_streams(next);
      if constexpr (explicit_shortcut) shortcut_.assign_streams(next);
    }

    // Runs the branch and the shortcut and returns their outputs (branch(x),
    // shortcut(x)) without summing them: the identity's is x itself, the
    // others stay owned by the layer. ResidualAct sums them inside its
    // activation's pass.
    std::pair<const T*, const T*> terms(Context<B>& ctx, const T* x, int batch) {
      const T* b = branch_.forward(ctx, x, batch);
      if constexpr (identity<In>) {
        return {b, x};
      } else if constexpr (explicit_shortcut) {
        return {b, shortcut_.forward(ctx, x, batch)};
      } else {
        T* s = shortcut_out_.reserve(std::size_t(batch) * Out::size);
        shortcut_.forward(ctx, x, s, batch);
        return {b, s};
      }
    }

    // Whether the branch's last op can hand its output over unwritten.
    static constexpr bool defers_branch = Chain<In, T, B, Layers...>::defers_output;

    // terms, with the branch's output as an expression its last op never
    // writes (Chain::forward_deferred): for ResidualAct's pass in training.
    auto deferred_terms(Context<B>& ctx, const T* x, int batch)
      requires defers_branch
    {
      auto b = branch_.forward_deferred(ctx, x, batch);
      if constexpr (identity<In>) {
        return std::pair{b, x};
      } else if constexpr (explicit_shortcut) {
        return std::pair{b, shortcut_.forward(ctx, x, batch)};
      } else {
        T* s = shortcut_out_.reserve(std::size_t(batch) * Out::size);
        shortcut_.forward(ctx, x, s, batch);
        return std::pair{b, static_cast<const T*>(s)};
      }
    }

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      using namespace expr;
      const auto [b, s] = terms(ctx, x, batch);
      ops<B>::eval(y, long(batch) * Out::size, in(b) + in(s));
    }

    // Reads no y (the sum is linear), so ResidualAct, which keeps none, calls
    // it with the gradient of the sum.
    void backward(Context<B>& ctx, const T* x, const T*, const T* dy, T* dx, int batch) {
      using namespace expr;
      branch_.backward(ctx, x, dy, dx, batch);
      const long n = long(batch) * In::size;
      if constexpr (identity<In>) {
        if (dx) ops<B>::eval(dx, n, in(dx) + in(dy));
      } else {
        T* d_shortcut = dx ? shortcut_grad_.reserve(std::size_t(n)) : nullptr;
        if constexpr (explicit_shortcut)
          shortcut_.backward(ctx, x, dy, d_shortcut, batch);
        else
          shortcut_.backward(ctx, x, shortcut_out_.data(), dy, d_shortcut, batch);
        if (dx) ops<B>::eval(dx, n, in(dx) + in(d_shortcut));
      }
    }

    // The projection's parameters are "shortcut.weight" and "shortcut.bias"; an
    // explicit Shortcut's are numbered by position, "shortcut.2.weight".
    template <class F>
    void visit(const std::string& prefix, F&& f) {
      branch_.visit(prefix, f);
      if constexpr (!identity<In>) shortcut_.visit(prefix + "shortcut.", f);
    }

   private:
    Chain<In, T, B, Layers...> branch_;
    [[no_unique_address]] ShortcutLayer shortcut_;
    Buffer<T, B> shortcut_out_, shortcut_grad_;
  };
};

}  // namespace detail

template <class... Layers>
struct Residual : detail::ResidualBlock<void, Layers...> {};
template <class... ShortcutLayers, class... Layers>
struct Residual<Shortcut<ShortcutLayers...>, Layers...>
    : detail::ResidualBlock<Shortcut<ShortcutLayers...>, Layers...> {};

}  // namespace laminar
