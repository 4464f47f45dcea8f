// The fused ops that net/fuse.hpp rewrites a layer list into: ConvBnAct (Conv,
// BatchNorm, activation), ConvBn and BnAct, each one layer that normalises and
// activates in a single pointwise pass and keeps no batch-norm output.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "activation.hpp"
#include "batchnorm.hpp"
#include "conv.hpp"

namespace laminar {

namespace detail {

// Stand-ins for the part a fusion lacks: ConvBn has no activation, BnAct no
// convolution.
struct NoConvolution {};
struct NoActivation {};

template <class L>
struct IsConvolution : std::false_type {};
template <int KH, int KW, int Cout, int Stride, int Pad>
struct IsConvolution<Conv<KH, KW, Cout, Stride, Pad>> : std::true_type {};

template <class L>
struct IsBatchNorm : std::false_type {};
template <double Momentum, double Epsilon>
struct IsBatchNorm<BatchNormWith<Momentum, Epsilon>> : std::true_type {};

template <class L>
struct ActivationFunction {};
template <class F>
struct ActivationFunction<Activation<F>> {
  using type = F;
};
template <>
struct ActivationFunction<NoActivation> {
  using type = void;
};
template <class L>
concept IsActivation = requires { typename ActivationFunction<L>::type; } && !std::is_same_v<L, NoActivation>;

// The runtime convolution of a fusion, or nothing.
struct NoLayer {};
template <class Convolution, class In, class T, class B>
struct ConvolutionLayer {
  using type = typename Convolution::template Layer<In, T, B>;
};
template <class In, class T, class B>
struct ConvolutionLayer<NoConvolution, In, T, B> {
  using type = NoLayer;
};

template <class Convolution, class In>
struct NormalizedShape {
  using type = decltype(Convolution::template output_shape<In>());
};
template <class In>
struct NormalizedShape<NoConvolution, In> {
  using type = In;
};

// [convolution] -> BatchNorm -> [activation] as one layer.
//   training: u = conv(x); per-channel mean and inv_std of u; then one pass
//             y = act((u - mean) * inv_std * gamma + beta). Only u, mean and
//             inv_std are kept; backward recomputes x_hat and act's input (and
//             stores g = dy act'(z) between its two passes where act' is costly).
//   eval:     BatchNorm folded into the convolution (w' = w gamma inv_std,
//             b' = (b - running_mean) inv_std gamma + beta), then act in place.
template <class Convolution, class Norm, class Act>
struct NormalizationFusion {
  static constexpr bool has_convolution = !std::is_same_v<Convolution, NoConvolution>;
  static constexpr bool has_activation = !std::is_same_v<Act, NoActivation>;
  static_assert(!has_convolution || IsConvolution<Convolution>::value,
                "FUSED_OP_CONVOLUTION_MUST_BE_A_CONV");
  static_assert(IsBatchNorm<Norm>::value, "FUSED_OP_NORMALIZATION_MUST_BE_A_BATCHNORM");
  static_assert(!has_activation || IsActivation<Act>, "FUSED_OP_ACTIVATION_MUST_BE_AN_ACTIVATION");

  // How many layers of the original list the op stands for; Chain numbers
  // parameters and outputs by original position.
  static constexpr int span = int(has_convolution) + 1 + int(has_activation);

  static std::vector<std::string> part_names() {
    std::vector<std::string> names;
    if constexpr (has_convolution) names.push_back(Convolution::name());
    names.push_back(Norm::name());
    if constexpr (has_activation) names.push_back(Act::name());
    return names;
  }
  static std::string name() {
    std::string s;
    for (const auto& part : part_names()) s += (s.empty() ? "" : "+") + part;
    return s;
  }

  template <class In>
  using normalized_shape = typename NormalizedShape<Convolution, In>::type;

  template <class In>
  static consteval auto output_shape() {
    return normalized_shape<In>{};
  }

  template <class In>
  static constexpr long parameter_count = [] {
    long total = Norm::template parameter_count<normalized_shape<In>>;
    if constexpr (has_convolution) total += Convolution::template parameter_count<In>;
    return total;
  }();

  // The original layers' forward cost, so a fused plan describes the same work.
  template <class In>
  static constexpr double flops = [] {
    double total = Norm::template flops<normalized_shape<In>>;
    if constexpr (has_convolution) total += Convolution::template flops<In>;
    if constexpr (has_activation) total += Act::template flops<normalized_shape<In>>;
    return total;
  }();

  template <class In, class T, class B>
  class Layer {
    using Mid = normalized_shape<In>;  // the shape BatchNorm sees
    static constexpr int C = Mid::channels;
    static constexpr long P = Mid::pixels;

   public:
    static constexpr bool layout_aware = true;

    Layer() {
      if constexpr (has_convolution) {
        folded_weight_.reserve(std::size_t(convolution_.weight.size));
        folded_bias_.reserve(std::size_t(C));
      }
    }

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      if constexpr (has_convolution) {
        if (!ctx.training) {
          forward_folded(ctx, x, y, batch);
          return;
        }
        T* u = convolution_out_.reserve(std::size_t(batch) * Mid::size);
        convolution_.forward(ctx, x, u, batch);
        normalize(true, u, y, batch, layout_of<Mid>(ctx));
      } else {
        normalize(ctx.training, x, y, batch, layout_of<Mid>(ctx));
      }
    }

    // Whether forward_deferred applies: a convolution and BatchNorm with no
    // activation, whose output an enclosing op can evaluate inside its own pass.
    static constexpr bool defers_output = has_convolution && !has_activation;

    // Training forward without the normalisation pass: the convolution and the
    // batch statistics, returning the output as the per-channel expression
    // BatchNorm(u), for a ResidualAct to sum and activate in the pass it makes
    // anyway. Backward is unchanged, as it reads u, never y.
    auto forward_deferred(Context<B>& ctx, const T* x, int batch)
      requires defers_output
    {
      T* u = convolution_out_.reserve(std::size_t(batch) * Mid::size);
      convolution_.forward(ctx, x, u, batch);
      norm_.statistics(true, u, batch, layout_of<Mid>(ctx));
      return norm_.affine(u);
    }

    // g = dy act'(z) with z = x_hat gamma + beta recomputed from the kept u; then
    // BatchNorm's backward from g (one reduction pass for sum(g), sum(g x_hat),
    // one pass writing du) and the convolution's own backward.
    void backward(Context<B>& ctx, const T* x, const T* y, const T* dy, T* dx, int batch) {
      const Layout layout = layout_of<Mid>(ctx);
      if constexpr (has_convolution) {
        T* u = convolution_out_.data();
        if (!norm_.batch_statistics()) {
          // The folded forward kept no pre-normalisation values; eval-mode
          // backward (fine-tuning with frozen statistics) recomputes them.
          u = convolution_out_.reserve(std::size_t(batch) * Mid::size);
          convolution_.forward(ctx, x, u, batch);
        }
        // du lives only until the convolution's backward has read it, so every
        // fused op shares one buffer (workspace slot 3) rather than keeping its own.
        T* du = ctx.workspace.template get<T>(std::size_t(batch) * Mid::size, 3);
        normalization_backward(output_gradient(u, y, dy), u, du, batch, layout);
        convolution_.backward(ctx, x, nullptr, du, dx, batch);
      } else {
        normalization_backward(output_gradient(x, y, dy), x, dx, batch, layout);
      }
    }

    // Names each part's parameters as the unfused layer at its original position
    // would: the convolution at first_position, BatchNorm after it.
    template <class F>
    void visit(const std::string& prefix, int first_position, F&& f) {
      if constexpr (has_convolution) convolution_.visit(prefix + std::to_string(first_position) + ".", f);
      norm_.visit(prefix + std::to_string(first_position + int(has_convolution)) + ".", f);
    }

   private:
    // u (N, C, pixels) -> y: statistics, then normalisation and activation in one pass.
    void normalize(bool training, const T* u, T* y, int batch, Layout layout) {
      norm_.statistics(training, u, batch, layout);
      if constexpr (has_activation)
        ops<B>::eval(y, batch, C, P, expr::map(activation::Value<Function>{}, norm_.affine(u)), layout);
      else
        ops<B>::eval(y, batch, C, P, norm_.affine(u), layout);
    }

    void forward_folded(Context<B>& ctx, const T* x, T* y, int batch) {
      using namespace expr;
      norm_.statistics(false, nullptr, batch, Layout::planar);  // the running statistics need no input
      constexpr ConvGeometry geometry = ConvolutionOp::geometry;
      T* weight = folded_weight_.data();
      T* bias = folded_bias_.data();
      // weight (Cout, Cin*KH*KW): one channel per output row.
      ops<B>::eval(weight, 1, C, geometry.patch(), in(convolution_.weight.value()) * norm_.scale());
      ops<B>::eval(bias, 1, C, 1, norm_.affine(convolution_.bias.value()));
      // ReLU is applied as the convolution writes y; other activations take a pass.
      constexpr bool relu = std::is_same_v<Function, activation::Relu>;
      ops<B>::conv2d_forward(geometry, batch, x, weight, bias, y, ctx.workspace, ctx.arithmetic,
                             relu ? ConvEpilogue::relu : ConvEpilogue::none, ConvolutionOp::layouts(ctx));
      if constexpr (has_activation && !relu)
        ops<B>::eval(y, long(batch) * Mid::size, map(activation::Value<Function>{}, in(y)));
    }

    // BatchNorm's backward from g = d(loss)/d(its output). Behind GELU or SELU g
    // is evaluated once and stored; behind ReLU recomputing it is cheaper.
    template <class G>
    void normalization_backward(const G& g, const T* u, T* du, int batch, Layout layout) {
      if constexpr (activation::costly_derivative<Function>)
        norm_.backward_from_evaluated(g, u, du, batch, layout);
      else
        norm_.backward_from(g, u, du, batch, layout);
    }

    // d(loss)/d(BatchNorm's output) as an expression. The activation's input
    // z is recomputed from u; so is its output where that is cheaper than
    // reading y back (ReLU: one read fewer in each of BatchNorm's two passes).
    auto output_gradient(const T* u, const T* y, const T* dy) const {
      using namespace expr;
      if constexpr (has_activation && activation::cheap_value<Function>)
        return map(activation::Gradient<Function>{}, norm_.affine(u),
                   map(activation::Value<Function>{}, norm_.affine(u)), in(dy));
      else if constexpr (has_activation)
        return map(activation::Gradient<Function>{}, norm_.affine(u), in(y), in(dy));
      else
        return in(dy);
    }

    using Function = typename ActivationFunction<Act>::type;
    using ConvolutionOp = typename ConvolutionLayer<Convolution, In, T, B>::type;

    [[no_unique_address]] ConvolutionOp convolution_;
    typename Norm::template Layer<Mid, T, B> norm_;
    Buffer<T, B> convolution_out_, folded_weight_, folded_bias_;
  };
};

}  // namespace detail

// The fusion tags net/fuse.hpp rewrites a layer list into (after CUTLASS's
// epilogue tags: the type names what runs as one op).
template <class Convolution, class Norm, class Act>
struct ConvBnAct : detail::NormalizationFusion<Convolution, Norm, Act> {};
template <class Convolution, class Norm>
struct ConvBn : detail::NormalizationFusion<Convolution, Norm, detail::NoActivation> {};
template <class Norm, class Act>
struct BnAct : detail::NormalizationFusion<detail::NoConvolution, Norm, Act> {};

}  // namespace laminar
