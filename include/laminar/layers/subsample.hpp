// Subsample<Stride, Channels>: every Stride-th pixel of each row and column
// (x[:, :, ::Stride, ::Stride]), with zero channels appended up to Channels.
// It has no parameters: the shortcut "option A" of He et al. 2016's CIFAR
// ResNets, which keeps the down-sampling block's shortcut an identity.
#pragma once

#include <string>

#include "layer.hpp"

namespace laminar {

namespace detail {

// One output element of (N, Cout, OH, OW) from (N, Cin, H, W): the input at
// (n, c, oh * S, ow * S) for c < Cin, 0 for the appended channels. The element
// index runs over the output in memory order; InBlocked and OutBlocked say which
// tensors are in the blocked layout of Block-channel blocks.
template <class In, class Out, int Stride, class T, bool InBlocked, bool OutBlocked, int Block>
struct SubsampleForward {
  const T* x;
  T* y;
  LAMINAR_HD void operator()(long i) const {
    const long n = i / Out::size;
    long c, p;
    channel_and_pixel<Out, OutBlocked, Block>(i % Out::size, c, p);
    const long oh = p / Out::width, ow = p % Out::width;
    y[i] = c < In::channels
               ? x[element_offset<In, InBlocked, Block>(n, c, oh * Stride * In::width + ow * Stride)]
               : T(0);
  }
};

// One input gradient element: the output gradient of the pixel it became, 0 for
// the pixels the stride skips. The appended channels' gradient goes nowhere.
template <class In, class Out, int Stride, class T, bool InBlocked, bool OutBlocked, int Block>
struct SubsampleBackward {
  const T* dy;
  T* dx;
  LAMINAR_HD void operator()(long i) const {
    const long n = i / In::size;
    long c, p;
    channel_and_pixel<In, InBlocked, Block>(i % In::size, c, p);
    const long h = p / In::width, w = p % In::width;
    dx[i] = h % Stride == 0 && w % Stride == 0
                ? dy[element_offset<Out, OutBlocked, Block>(n, c, h / Stride * Out::width + w / Stride)]
                : T(0);
  }
};

}  // namespace detail

template <int Stride, int Channels>
struct Subsample : Stateless {
  static_assert(Stride > 0 && Channels > 0, "SUBSAMPLE_STRIDE_AND_CHANNELS_MUST_BE_POSITIVE");

  static std::string name() { return "Subsample<" + std::to_string(Stride) + "," + std::to_string(Channels) + ">"; }

  // ceil(H / Stride) rows: the pixels a `same`-padded strided convolution centres on.
  template <class In>
  static consteval auto output_shape() {
    if constexpr (!ImageShape<In>) {
      static_assert(ImageShape<In>, "Subsample expects an image input Shape<C,H,W> but gets a flat one");
      return In{};
    } else if constexpr (In::channels > Channels) {
      static_assert(In::channels <= Channels,
                    "Subsample only appends zero channels; its Channels is fewer than its input has");
      return In{};
    } else {
      return Shape<Channels, (In::height + Stride - 1) / Stride, (In::width + Stride - 1) / Stride>{};
    }
  }

  template <class In>
  static constexpr double flops = 0;  // copies, no arithmetic

  template <class In, class T, class B>
  class Layer : public Stateless {
    using Out = decltype(output_shape<In>());

   public:
    static constexpr bool layout_aware = true;

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      with_layouts(ctx, [&]<bool InBlocked, bool OutBlocked>() {
        ops<B>::parallel_for(long(batch) * Out::size,
                             detail::SubsampleForward<In, Out, Stride, T, InBlocked, OutBlocked, block>{x, y});
      });
    }
    void backward(Context<B>& ctx, const T*, const T*, const T* dy, T* dx, int batch) {
      if (!dx) return;
      with_layouts(ctx, [&]<bool InBlocked, bool OutBlocked>() {
        ops<B>::parallel_for(long(batch) * In::size,
                             detail::SubsampleBackward<In, Out, Stride, T, InBlocked, OutBlocked, block>{dy, dx});
      });
    }

   private:
    static constexpr int block = channel_block_of<B>;
    // f.template operator()<InBlocked, OutBlocked>() for the layouts under ctx.
    template <class F>
    static void with_layouts(const Context<B>& ctx, const F& f) {
      const bool in_blocked = layout_of<In>(ctx) == Layout::blocked;
      const bool out_blocked = layout_of<Out>(ctx) == Layout::blocked;
      if (in_blocked && out_blocked)
        f.template operator()<true, true>();
      else if (in_blocked)
        f.template operator()<true, false>();
      else if (out_blocked)
        f.template operator()<false, true>();
      else
        f.template operator()<false, false>();
    }
  };
};

}  // namespace laminar
