// Flatten: Shape<C,H,W> -> Shape<C*H*W>. Activations are sample-major, so this
// only renames the shape; the copy keeps every layer's output in its own buffer.
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
    void forward(Context<B>&, const T* x, T* y, int batch) {
      ops<B>::copy(y, x, long(batch) * In::size);
    }
    void backward(Context<B>&, const T*, const T*, const T* dy, T* dx, int batch) {
      if (dx) ops<B>::copy(dx, dy, long(batch) * In::size);
    }
  };
};

}  // namespace laminar
