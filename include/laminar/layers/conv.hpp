// Conv<KH, KW, Cout, Stride, Pad>: 2d convolution with bias. Pad is `same`
// (output = ceil(input / stride), with (K - 1) / 2 pixels of padding before the
// image as PyTorch's padding = K // 2 has, so a strided window and a strided
// 1x1 shortcut sample the same pixels; whatever else the output needs is padded
// after), `valid` (no padding), or an explicit number of pixels per side.
#pragma once

#include <algorithm>

#include "../core/geometry.hpp"
#include "layer.hpp"

namespace laminar {

template <int KH, int KW, int Cout, int Stride = 1, int Pad = same>
struct Conv {
  static_assert(KH > 0 && KW > 0 && Cout > 0 && Stride > 0, "CONV_ARGUMENTS_MUST_BE_POSITIVE");
  static_assert(Pad >= 0 || Pad == same, "CONV_PADDING_IS_SAME_VALID_OR_A_PIXEL_COUNT");

  static std::string name() {
    std::string s = "Conv<" + detail::join_arguments({std::to_string(KH), std::to_string(KW), std::to_string(Cout)});
    if (Stride != 1 || Pad != same) {
      s += ',';
      s += std::to_string(Stride);
    }
    if (Pad == valid) s += ",valid";
    if (Pad > 0) {
      s += ',';
      s += std::to_string(Pad);
    }
    return s + ">";
  }

  static constexpr int out_extent(int in, int k) {
    return Pad == same ? (in + Stride - 1) / Stride : (in + 2 * Pad - k) / Stride + 1;
  }
  static constexpr int pad_before(int k) { return Pad == same ? (k - 1) / 2 : Pad; }

  template <class In>
  static consteval auto output_shape() {
    if constexpr (!ImageShape<In>) {
      static_assert(ImageShape<In>, "Conv expects an image input Shape<C,H,W> but gets a flat one");
      return In{};
    } else {
      static_assert(Pad == same || (In::height + 2 * Pad >= KH && In::width + 2 * Pad >= KW),
                    "Conv kernel is larger than its padded input");
      return Shape<Cout, out_extent(In::height, KH), out_extent(In::width, KW)>{};
    }
  }

  template <class In>
  static constexpr long parameter_count = long(Cout) * In::channels * KH * KW + Cout;

  template <class In>
  static constexpr double flops =
      2.0 * Cout * In::channels * KH * KW * decltype(output_shape<In>())::pixels;

  template <class In, class T, class B>
  class Layer {
   public:
    using output = decltype(output_shape<In>());
    static constexpr ConvGeometry geometry{In::channels,        In::height,           In::width,
                                           Cout,                output::height,       output::width,
                                           KH,                  KW,                   Stride,
                                           Stride,              pad_before(KH),
                                           pad_before(KW)};

    static constexpr bool layout_aware = true;

    // Where x, dx (input) and y, dy (output) lie under ctx.
    static ConvLayouts layouts(const Context<B>& ctx) { return {layout_of<In>(ctx), layout_of<output>(ctx)}; }

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      ops<B>::conv2d_forward(geometry, batch, x, weight.value(), bias.value(), y, ctx.workspace, ctx.arithmetic,
                             ConvEpilogue::none, layouts(ctx));
    }

    void backward(Context<B>& ctx, const T* x, const T*, const T* dy, T* dx, int batch) {
      ops<B>::conv2d_backward_weights(geometry, batch, x, dy, weight.grad(), bias.grad(), ctx.workspace,
                                      ctx.arithmetic, layouts(ctx));
      if (dx)
        ops<B>::conv2d_backward_data(geometry, batch, dy, weight.value(), dx, ctx.workspace, ctx.arithmetic,
                                     layouts(ctx));
    }

    template <class F>
    void visit(const std::string& prefix, F&& f) {
      f(prefix + "weight", weight);
      f(prefix + "bias", bias);
    }

    // (Cout, Cin, KH, KW)
    Parameter<T, B> weight{Role::weight, long(Cout) * In::channels * KH * KW,
                           long(In::channels) * KH * KW, long(Cout) * KH * KW};
    Parameter<T, B> bias{Role::bias, Cout};
  };
};

}  // namespace laminar
