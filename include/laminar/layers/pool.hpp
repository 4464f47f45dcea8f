// Pooling without padding: MaxPool<K, S>, AvgPool<K, S> (window K x K, stride S,
// output floor((H - K) / S) + 1), and GlobalAvgPool / GlobalMaxPool, which pool
// each channel's whole plane to one value and so give a flat Shape<C>.
#pragma once

#include "../core/geometry.hpp"
#include "layer.hpp"

namespace laminar {

namespace detail {

template <PoolKind Kind, int KH, int KW, int Stride, class In, class Out, class T, class B>
class PoolLayer : public Stateless {
 public:
  static constexpr PoolGeometry geometry{In::channels, In::height, In::width, Out::height,
                                         Out::width,   KH,         KW,        Stride,
                                         Stride};
  // Input and output have the same channels, so the same layout; a global
  // pool's 1x1 output reads the same blocked or planar.
  static constexpr bool layout_aware = true;

  void forward(Context<B>& ctx, const T* x, T* y, int batch) {
    ops<B>::pool2d_forward(Kind, geometry, batch, x, y, layout_of<In>(ctx));
  }
  void backward(Context<B>& ctx, const T* x, const T*, const T* dy, T* dx, int batch) {
    if (dx) ops<B>::pool2d_backward(Kind, geometry, batch, x, dy, dx, layout_of<In>(ctx));
  }
};

}  // namespace detail

template <PoolKind Kind, int K, int S>
struct Pool : Stateless {
  static_assert(K > 0 && S > 0, "POOL_WINDOW_AND_STRIDE_MUST_BE_POSITIVE");

  static std::string name() {
    return std::string(Kind == PoolKind::max ? "MaxPool<" : "AvgPool<") + std::to_string(K) +
           (S != K ? "," + std::to_string(S) : "") + ">";
  }

  template <class In>
  static consteval auto output_shape() {
    if constexpr (!ImageShape<In>) {
      static_assert(ImageShape<In>, "Pool expects an image input Shape<C,H,W> but gets a flat one");
      return In{};
    } else if constexpr (In::height < K || In::width < K) {
      static_assert(In::height >= K && In::width >= K, "Pool window is larger than its input");
      return In{};
    } else {
      return Shape<In::channels, (In::height - K) / S + 1, (In::width - K) / S + 1>{};
    }
  }

  template <class In>
  static constexpr double flops = double(K) * K * decltype(output_shape<In>())::size;

  template <class In, class T, class B>
  using Layer = detail::PoolLayer<Kind, K, K, S, In, decltype(output_shape<In>()), T, B>;
};

template <int K, int S = K>
using MaxPool = Pool<PoolKind::max, K, S>;
template <int K, int S = K>
using AvgPool = Pool<PoolKind::average, K, S>;

template <PoolKind Kind>
struct GlobalPool : Stateless {
  static std::string name() { return Kind == PoolKind::max ? "GlobalMaxPool" : "GlobalAvgPool"; }

  template <class In>
  static consteval auto output_shape() {
    static_assert(ImageShape<In>, "GlobalPool expects an image input Shape<C,H,W> but gets a flat one");
    return Shape<In::channels>{};
  }

  template <class In>
  static constexpr double flops = double(In::size);

  template <class In, class T, class B>
  using Layer = detail::PoolLayer<Kind, In::height, In::width, 1, In, Shape<In::channels, 1, 1>, T, B>;
};

using GlobalAvgPool = GlobalPool<PoolKind::average>;
using GlobalMaxPool = GlobalPool<PoolKind::max>;

}  // namespace laminar
