// Flatten: Shape<C,H,W> -> Shape<C*H*W> in NCHW order. From a planar input it
// only renames the shape (the copy keeps every layer's output in its own
// buffer); from a blocked one (core/layout.hpp) it is the conversion to planar.
#pragma once

#include "layer.hpp"

namespace laminar {

struct Flatten : Stateless {
  static std::string name() { return "Flatten"; }

  template <class In>
  static consteval auto output_shape() {
    return Shape<int(In::size)>{};
  }
  template <class In>
  static constexpr double flops = 0;

  template <class In, class T, class B>
  class Layer : public Stateless {
   public:
    static constexpr bool layout_aware = true;

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      ops<B>::convert(y, Layout::planar, x, layout_of<In>(ctx), batch, In::channels, In::pixels);
    }
    void backward(Context<B>& ctx, const T*, const T*, const T* dy, T* dx, int batch) {
      if (dx) ops<B>::convert(dx, layout_of<In>(ctx), dy, Layout::planar, batch, In::channels, In::pixels);
    }
  };
};

}  // namespace laminar
