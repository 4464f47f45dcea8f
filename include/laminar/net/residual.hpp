// Residual<Layers...>: y = branch(x) + shortcut(x) (He et al. 2016). The shortcut
// is the identity when the branch keeps the shape, and a 1x1 convolution with
// the branch's stride (a projection, with bias) when it changes channels or size.
// An activation after the sum is the next layer of the enclosing Sequential
// (net/fuse.hpp runs the two as one op, ResidualAct in net/residual_act.hpp).
#pragma once

#include <type_traits>
#include <utility>

#include "../layers/conv.hpp"
#include "chain.hpp"

namespace laminar {

template <class... Layers>
struct Residual {
  template <class In>
  using branch_output = std::tuple_element_t<sizeof...(Layers), shapes_of<In, Layers...>>;
  template <class In>
  static constexpr bool identity = std::is_same_v<branch_output<In>, In>;
  template <class In>
  // ceil: a stride-2 branch takes 5x5 to 3x3.
  static constexpr int stride = (In::height + branch_output<In>::height - 1) / branch_output<In>::height;
  template <class In>
  using Projection = Conv<1, 1, branch_output<In>::channels, stride<In>, 0>;

  // The names of the layers written, also when the branch holds fused ops.
  static std::string name() {
    std::string s;
    (
        [&] {
          for (const auto& part : detail::part_names<Layers>()) s += (s.empty() ? "" : ",") + part;
        }(),
        ...);
    return "Residual<" + s + ">";
  }

  template <class In>
  static consteval auto output_shape() {
    using Out = branch_output<In>;
    if constexpr (!identity<In>) {
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
    long total = 0;
    using Shapes = shapes_of<In, Layers...>;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((total += Layers::template parameter_count<std::tuple_element_t<I, Shapes>>), ...);
    }(std::index_sequence_for<Layers...>{});
    if constexpr (!identity<In>) total += Projection<In>::template parameter_count<In>;
    return total;
  }();

  template <class In>
  static constexpr double flops = [] {
    double total = double(branch_output<In>::size);  // the sum
    using Shapes = shapes_of<In, Layers...>;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((total += Layers::template flops<std::tuple_element_t<I, Shapes>>), ...);
    }(std::index_sequence_for<Layers...>{});
    if constexpr (!identity<In>) total += Projection<In>::template flops<In>;
    return total;
  }();

  template <class In, class T, class B>
  class Layer {
    using Out = branch_output<In>;
    using Shortcut = typename Projection<In>::template Layer<In, T, B>;
    struct None {};

   public:
    void assign_streams(std::uint32_t& next) { branch_.assign_streams(next); }

    // Runs the branch and the shortcut and returns their outputs (branch(x),
    // shortcut(x)) without summing them: the identity's is x itself, the
    // others stay owned by the layer. ResidualAct sums them inside its
    // activation's pass.
    std::pair<const T*, const T*> terms(Context<B>& ctx, const T* x, int batch) {
      const T* b = branch_.forward(ctx, x, batch);
      if constexpr (identity<In>) {
        return {b, x};
      } else {
        T* s = shortcut_out_.reserve(std::size_t(batch) * Out::size);
        projection_.forward(ctx, x, s, batch);
        return {b, s};
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
        projection_.backward(ctx, x, shortcut_out_.data(), dy, d_shortcut, batch);
        if (dx) ops<B>::eval(dx, n, in(dx) + in(d_shortcut));
      }
    }

    template <class F>
    void visit(const std::string& prefix, F&& f) {
      branch_.visit(prefix, f);
      if constexpr (!identity<In>) projection_.visit(prefix + "shortcut.", f);
    }

   private:
    Chain<In, T, B, Layers...> branch_;
    [[no_unique_address]] std::conditional_t<identity<In>, None, Shortcut> projection_;
    Buffer<T, B> shortcut_out_, shortcut_grad_;
  };
};

}  // namespace laminar
