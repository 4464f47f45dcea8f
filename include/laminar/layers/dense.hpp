// Dense<N>: fully connected layer y = x W^T + b on a flat input.
#pragma once

#include "layer.hpp"

namespace laminar {

template <int N>
struct Dense {
  static_assert(N > 0, "DENSE_WIDTH_MUST_BE_POSITIVE");

  static std::string name() { return "Dense<" + std::to_string(N) + ">"; }

  template <class In>
  static consteval auto output_shape() {
    static_assert(FlatShape<In>,
                  "Dense expects a flat input Shape<N>; add Flatten or GlobalAvgPool before it");
    return Shape<N>{};
  }

  template <class In>
  static constexpr long parameter_count = long(N) * In::size + N;

  template <class In>
  static constexpr double flops = 2.0 * N * In::size;

  template <class In, class T, class B>
  class Layer {
   public:
    static constexpr int K = int(In::size);
    static constexpr bool layout_aware = true;  // its tensors are flat, so planar

    // y (batch, N) = x (batch, K) W^T (K, N) + b
    void forward(Context<B>&, const T* x, T* y, int batch) {
      ops<B>::gemm(false, true, batch, N, K, T(1), x, K, weight.value(), K, T(0), y, N);
      ops<B>::eval(y, batch, N, 1, expr::in(y) + expr::per_channel(bias.value()));
    }

    void backward(Context<B>&, const T* x, const T*, const T* dy, T* dx, int batch) {
      ops<B>::gemm(true, false, N, K, batch, T(1), dy, N, x, K, T(0), weight.grad(), K);
      ops<B>::sum_per_channel(bias.grad(), batch, N, 1, expr::in(dy));
      if (dx) ops<B>::gemm(false, false, batch, K, N, T(1), dy, N, weight.value(), K, T(0), dx, K);
    }

    template <class F>
    void visit(const std::string& prefix, F&& f) {
      f(prefix + "weight", weight);
      f(prefix + "bias", bias);
    }

    Parameter<T, B> weight{Role::weight, long(N) * K, K, N};  // (N, K)
    Parameter<T, B> bias{Role::bias, N};
  };
};

}  // namespace laminar
