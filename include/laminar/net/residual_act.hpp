// ResidualAct<Residual<...>, Activation<F>>: a residual block and the activation
// after it as one op, y = f(branch(x) + shortcut(x)) in one pass (net/fuse.hpp
// rewrites `Residual<...>, Activation<F>` into it).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../layers/activation.hpp"
#include "residual.hpp"

namespace laminar {

namespace detail {

// s = branch + shortcut and y = f(s), both written in one pass: for an
// activation whose derivative needs its input.
template <class F, class T>
struct SumAndActivate {
  const T* branch;
  const T* shortcut;
  T* sum;
  T* out;
  LAMINAR_HD void operator()(long i) const {
    const T s = branch[i] + shortcut[i];
    sum[i] = s;
    out[i] = F::value(s);
  }
};

// dy f'(y) for an activation whose derivative reads y alone
// (activation::derivative_from_output): y stands in for the input it never reads.
template <class F>
struct GradientFromOutput {
  template <class T>
  LAMINAR_HD T operator()(T y, T dy) const { return dy * F::derivative(y, y); }
};

}  // namespace detail

template <class Block, class Act>
struct ResidualAct {
  static_assert(always_false<Block, Act>, "RESIDUAL_ACT_TAKES_A_RESIDUAL_AND_AN_ACTIVATION");
};

// forward:  one pass y = f(b + s) over the branch's output b and the
//           shortcut's s. The sum s is kept only when f' needs it; for ReLU,
//           Sigmoid and Tanh y is enough. Where the branch ends in Conv and
//           BatchNorm (a basic block), training evaluates b = BatchNorm(u) in
//           that pass too, and b is never written.
// backward: one pass ds = dy f'(s or y), then the block's backward from ds
//           (the branch, and the shortcut's gradient added to dx).
template <class... Layers, class F>
struct ResidualAct<Residual<Layers...>, Activation<F>> {
  using Block = Residual<Layers...>;
  using Act = Activation<F>;

  // Whether forward keeps the sum for backward (f's derivative reads its input).
  static constexpr bool keeps_sum = !activation::derivative_from_output<F>;

  // The block's position and the activation's; Chain numbers parameters and
  // outputs by original position.
  static constexpr int span = 2;

  static std::vector<std::string> part_names() { return {Block::name(), Act::name()}; }
  static std::string name() { return Block::name() + "+" + Act::name(); }

  template <class In>
  using output = typename Block::template branch_output<In>;

  template <class In>
  static consteval auto output_shape() {
    return Block::template output_shape<In>();
  }

  template <class In>
  static constexpr long parameter_count = Block::template parameter_count<In>;

  // The original layers' forward cost, so a fused plan describes the same work.
  template <class In>
  static constexpr double flops = Block::template flops<In> + Act::template flops<output<In>>;

  template <class In, class T, class B>
  class Layer {
    static constexpr long size = output<In>::size;
    struct None {};
    using Sum = std::conditional_t<keeps_sum, Buffer<T, B>, None>;

   public:
    static constexpr bool layout_aware = detail::is_layout_aware<typename Block::template Layer<In, T, B>>();

    void assign_streams(std::uint32_t& next) { block_.assign_streams(next); }

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      using Runtime = typename Block::template Layer<In, T, B>;
      if constexpr (Runtime::defers_branch && !keeps_sum) {
        // The branch ends in Conv-BatchNorm: its normalisation happens here, in
        // the pass that sums and activates, and its output is never written.
        if (ctx.training) {
          using Out = output<In>;
          const auto [branch, shortcut] = block_.deferred_terms(ctx, x, batch);
          ops<B>::eval(y, batch, Out::channels, Out::pixels,
                       expr::map(activation::Value<F>{}, branch + expr::in(shortcut)), layout_of<Out>(ctx));
          return;
        }
      }
      const auto [branch, shortcut] = block_.terms(ctx, x, batch);
      const long n = long(batch) * size;
      if constexpr (keeps_sum)
        ops<B>::parallel_for(n, detail::SumAndActivate<F, T>{branch, shortcut, sum_.reserve(std::size_t(n)), y});
      else
        ops<B>::eval(y, n, expr::map(activation::Value<F>{}, expr::in(branch) + expr::in(shortcut)));
    }

    void backward(Context<B>& ctx, const T* x, const T* y, const T* dy, T* dx, int batch) {
      using namespace expr;
      const long n = long(batch) * size;
      T* ds = sum_grad_.reserve(std::size_t(n));
      if constexpr (keeps_sum)
        ops<B>::eval(ds, n, map(activation::Gradient<F>{}, in(static_cast<const T*>(sum_.data())), in(y), in(dy)));
      else
        ops<B>::eval(ds, n, map(detail::GradientFromOutput<F>{}, in(y), in(dy)));
      block_.backward(ctx, x, nullptr, ds, dx, batch);
    }

    // The block's parameters under its own position, as the unfused Residual
    // names them ("5.1.weight", "5.shortcut.weight"); the activation has none.
    template <class G>
    void visit(const std::string& prefix, int first_position, G&& f) {
      block_.visit(prefix + std::to_string(first_position) + ".", f);
    }

   private:
    typename Block::template Layer<In, T, B> block_;
    [[no_unique_address]] Sum sum_;
    Buffer<T, B> sum_grad_;
  };
};

}  // namespace laminar
