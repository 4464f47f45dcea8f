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
// (n, c, oh * S, ow * S) for c < Cin, 0 for the appended channels.
template <class In, class Out, int Stride, class T>
struct SubsampleForward {
  const T* x;
  T* y;
  LAMINAR_HD void operator()(long i) const {
    const long ow = i % Out::width, oh = (i / Out::width) % Out::height;
    const long c = (i / Out::pixels) % Out::channels, n = i / Out::size;
    y[i] = c < In::channels ? x[n * In::size + (c * In::height + oh * Stride) * In::width + ow * Stride] : T(0);
  }
};

// One input gradient element: the output gradient of the pixel it became, 0 for
// the pixels the stride skips. The appended channels' gradient goes nowhere.
template <class In, class Out, int Stride, class T>
struct SubsampleBackward {
  const T* dy;
  T* dx;
  LAMINAR_HD void operator()(long i) const {
    const long w = i % In::width, h = (i / In::width) % In::height;
    const long c = (i / In::pixels) % In::channels, n = i / In::size;
    dx[i] = h % Stride == 0 && w % Stride == 0
                ? dy[n * Out::size + (c * Out::height + h / Stride) * Out::width + w / Stride]
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
    void forward(Context<B>&, const T* x, T* y, int batch) {
      ops<B>::parallel_for(long(batch) * Out::size, detail::SubsampleForward<In, Out, Stride, T>{x, y});
    }
    void backward(Context<B>&, const T*, const T*, const T* dy, T* dx, int batch) {
      if (dx) ops<B>::parallel_for(long(batch) * In::size, detail::SubsampleBackward<In, Out, Stride, T>{dy, dx});
    }
  };
};

}  // namespace laminar
