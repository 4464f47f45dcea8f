// Pointwise activations. Each is a small functor pair, value(x) and
// derivative(x, y) with y = value(x), written once for every backend; the layer
// Activation<F> evaluates them with the backend's pointwise evaluator.
#pragma once

#include <cmath>

#include "layer.hpp"

namespace laminar {

namespace activation {

struct Relu {
  static constexpr const char* name = "ReLU";
  // NaN passes through (as in PyTorch), so a NaN upstream is not silently zeroed.
  template <class T>
  LAMINAR_HD static T value(T x) { return x < T(0) ? T(0) : x; }
  template <class T>
  LAMINAR_HD static T derivative(T, T y) { return y > T(0) ? T(1) : T(0); }
};

template <double Slope>
struct LeakyRelu {
  static constexpr const char* name = "LeakyReLU";
  template <class T>
  LAMINAR_HD static T value(T x) { return x > T(0) ? x : T(Slope) * x; }
  template <class T>
  LAMINAR_HD static T derivative(T x, T) { return x > T(0) ? T(1) : T(Slope); }
};

// Clevert et al. 2015: x for x > 0, alpha (e^x - 1) otherwise.
template <double Alpha>
struct Elu {
  static constexpr const char* name = "ELU";
  template <class T>
  LAMINAR_HD static T value(T x) { return x > T(0) ? x : T(Alpha) * (std::exp(x) - T(1)); }
  template <class T>
  LAMINAR_HD static T derivative(T x, T y) { return x > T(0) ? T(1) : y + T(Alpha); }
};

// Klambauer et al. 2017, "Self-Normalizing Neural Networks": lambda * ELU_alpha,
// with the constants that make N(0,1) a fixed point (their eq. 14).
struct Selu {
  static constexpr const char* name = "SELU";
  static constexpr double alpha = 1.6732632423543772848170429916717;
  static constexpr double lambda = 1.0507009873554804934193349852946;
  template <class T>
  LAMINAR_HD static T value(T x) {
    return T(lambda) * (x > T(0) ? x : T(alpha) * (std::exp(x) - T(1)));
  }
  template <class T>
  LAMINAR_HD static T derivative(T x, T) {
    return x > T(0) ? T(lambda) : T(lambda * alpha) * std::exp(x);
  }
};

// Hendrycks & Gimpel 2016, exact form: x Phi(x) with Phi the standard normal CDF.
struct Gelu {
  static constexpr const char* name = "GELU";
  template <class T>
  LAMINAR_HD static T value(T x) {
    return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
  }
  template <class T>
  LAMINAR_HD static T derivative(T x, T) {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
    const T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
    return cdf + x * pdf;
  }
};

struct Sigmoid {
  static constexpr const char* name = "Sigmoid";
  template <class T>
  LAMINAR_HD static T value(T x) { return T(1) / (T(1) + std::exp(-x)); }
  template <class T>
  LAMINAR_HD static T derivative(T, T y) { return y * (T(1) - y); }
};

struct Tanh {
  static constexpr const char* name = "Tanh";
  template <class T>
  LAMINAR_HD static T value(T x) { return std::tanh(x); }
  template <class T>
  LAMINAR_HD static T derivative(T, T y) { return T(1) - y * y; }
};

template <class F>
struct Value {
  template <class T>
  LAMINAR_HD T operator()(T x) const { return F::value(x); }
};

template <class F>
struct Gradient {  // dy * f'(x)
  template <class T>
  LAMINAR_HD T operator()(T x, T y, T dy) const { return dy * F::derivative(x, y); }
};

}  // namespace activation

template <class F>
struct Activation : Stateless {
  static std::string name() { return F::name; }

  template <class In>
  static consteval auto output_shape() {
    return In{};
  }
  template <class In>
  static constexpr double flops = double(In::size);

  template <class In, class T, class B>
  class Layer : public Stateless {
   public:
    void forward(Context<B>&, const T* x, T* y, int batch) {
      ops<B>::eval(y, long(batch) * In::size, expr::map(activation::Value<F>{}, expr::in(x)));
    }
    void backward(Context<B>&, const T* x, const T* y, const T* dy, T* dx, int batch) {
      if (dx)
        ops<B>::eval(dx, long(batch) * In::size,
                     expr::map(activation::Gradient<F>{}, expr::in(x), expr::in(y), expr::in(dy)));
    }
  };
};

template <double Slope = 0.01>
using LeakyReLUWith = Activation<activation::LeakyRelu<Slope>>;
template <double Alpha = 1.0>
using ELUWith = Activation<activation::Elu<Alpha>>;

using ReLU = Activation<activation::Relu>;
using LeakyReLU = LeakyReLUWith<>;
using ELU = ELUWith<>;
using SELU = Activation<activation::Selu>;
using GELU = Activation<activation::Gelu>;
using Sigmoid = Activation<activation::Sigmoid>;
using Tanh = Activation<activation::Tanh>;

// Functional forms for expressions: eval(y, n, relu(in(x))).
namespace expr {
template <Node A>
auto relu(const A& a) {
  return map(activation::Value<activation::Relu>{}, a);
}
template <Node A>
auto sigmoid(const A& a) {
  return map(activation::Value<activation::Sigmoid>{}, a);
}
}  // namespace expr

}  // namespace laminar
