// Pointwise activations. Each is a small functor pair, value(x) and
// derivative(x, y) with y = value(x), written once for every backend; the layer
// Activation<F> evaluates them with the backend's pointwise evaluator.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "layer.hpp"

namespace laminar {

namespace activation {

struct Relu {
  static constexpr const char* name = "ReLU";
  static constexpr bool derivative_from_output = true;
  static constexpr bool cheap_value = true;
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

// A fixed multiplier, Factor x: a temperature on a head's logits (airbench
// divides them by 9), which changes the softmax's sharpness without changing
// the weights' learning dynamics the way a smaller initialisation would.
template <double Factor>
struct Scaling {
  static constexpr const char* name = "Scale";
  static constexpr bool derivative_from_output = true;  // the derivative is the constant
  static constexpr bool cheap_value = true;
  template <class T>
  LAMINAR_HD static T value(T x) { return T(Factor) * x; }
  template <class T>
  LAMINAR_HD static T derivative(T, T) { return T(Factor); }
};

// Klambauer et al. 2017, "Self-Normalizing Neural Networks": lambda * ELU_alpha,
// with the constants that make N(0,1) a fixed point (their eq. 14).
struct Selu {
  static constexpr const char* name = "SELU";
  static constexpr bool costly_derivative = true;  // an exp
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

namespace detail {

// GELU's float math without libm: std::erf and std::exp are calls the vectoriser
// cannot see through, and they made GELU a third of the airbench net's training
// step. Written so that GCC if-converts and vectorises them: no float clamps
// (those stop its if-conversion), integer ones on the bit pattern instead. Every
// multiply-add is an explicit std::fma, so the result does not depend on where
// the compiler chooses to contract. Used where the target has FMA instructions
// (std::fma is a slow library call otherwise) and not under nvcc (which compiles
// these helpers for the host only); those builds keep std::erfc and std::exp.

// e^x for x <= 0 (GELU only takes exponentials of non-positive numbers): 2^n e^r
// with n = round(x / ln 2), ln 2 split exactly (Cody and Waite), and the degree-7
// Taylor polynomial of e^r on |r| <= ln 2 / 2, within 6e-9 relative. Arguments
// below -87 give 0 (no subnormals); a NaN gives a finite value, which is harmless
// where it is used because the GELU multiplies by x, which is then NaN too.
inline float exp_nonpositive(float x) {
  constexpr std::uint32_t floor_bits = 0x42ae0000u;  // 87.0f
  const std::uint32_t magnitude = std::min(std::bit_cast<std::uint32_t>(x) & 0x7fffffffu, floor_bits);
  const float clamped = -std::bit_cast<float>(magnitude);
  const std::int32_t n = std::int32_t(clamped * 1.44269504088896341f - 0.5f);  // rounds: the product is <= 0
  const float r = std::fma(float(n), -1.428606765330187045e-6f, std::fma(float(n), -0.693145751953125f, clamped));
  float p = 1.0f / 5040;
  p = std::fma(p, r, 1.0f / 720);
  p = std::fma(p, r, 1.0f / 120);
  p = std::fma(p, r, 1.0f / 24);
  p = std::fma(p, r, 1.0f / 6);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  return p * std::bit_cast<float>((n + 127) << 23) * float(magnitude < floor_bits);
}

// Phi(x) = erfc(-x / sqrt 2) / 2 with erfc(z), z >= 0, as t exp(-z^2 + P(t)),
// t = 1 / (1 + z / 2): the Chebyshev fit of Press et al., Numerical Recipes,
// section 6.2, fractional error below 1.2e-7 for every z. Taking erfc of |x| on
// both sides keeps the left tail's relative accuracy.
inline float normal_cdf_float(float x) {
  const float z = std::fabs(x) * 0.70710678118654752440f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = std::fma(p, t, -0.82215223f);
  p = std::fma(p, t, 1.48851587f);
  p = std::fma(p, t, -1.13520398f);
  p = std::fma(p, t, 0.27886807f);
  p = std::fma(p, t, -0.18628806f);
  p = std::fma(p, t, 0.09678418f);
  p = std::fma(p, t, 0.37409196f);
  p = std::fma(p, t, 1.00002368f);
  p = std::fma(p, t, -1.26551223f);
  const float tail = 0.5f * t * exp_nonpositive(std::fma(-z, z, p));
  return x < 0.0f ? tail : 1.0f - tail;
}

template <class T>
LAMINAR_HD T normal_cdf(T x) {
#if !defined(__CUDACC__) && defined(__FMA__)  // see above
  if constexpr (std::is_same_v<T, float>) return normal_cdf_float(x);
#endif
  return T(0.5) * std::erfc(-x * T(0.70710678118654752440));
}

template <class T>
LAMINAR_HD T normal_pdf(T x) {
#if !defined(__CUDACC__) && defined(__FMA__)  // see above
  if constexpr (std::is_same_v<T, float>) return 0.39894228040143267794f * exp_nonpositive(-0.5f * x * x);
#endif
  return T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
}

}  // namespace detail

// Hendrycks & Gimpel 2016, exact form: x Phi(x) with Phi the standard normal CDF.
struct Gelu {
  static constexpr const char* name = "GELU";
  static constexpr bool costly_derivative = true;  // the normal CDF and density
  template <class T>
  LAMINAR_HD static T value(T x) {
    return x * detail::normal_cdf(x);
  }
  template <class T>
  LAMINAR_HD static T derivative(T x, T) {
    return detail::normal_cdf(x) + x * detail::normal_pdf(x);
  }
};

struct Sigmoid {
  static constexpr const char* name = "Sigmoid";
  static constexpr bool derivative_from_output = true;
  template <class T>
  LAMINAR_HD static T value(T x) { return T(1) / (T(1) + std::exp(-x)); }
  template <class T>
  LAMINAR_HD static T derivative(T, T y) { return y * (T(1) - y); }
};

struct Tanh {
  static constexpr const char* name = "Tanh";
  static constexpr bool derivative_from_output = true;
  template <class T>
  LAMINAR_HD static T value(T x) { return std::tanh(x); }
  template <class T>
  LAMINAR_HD static T derivative(T, T y) { return T(1) - y * y; }
};

// Whether F::derivative(x, y) reads y alone, so that a fused op may keep only
// the output (ResidualAct). A function declares it beside a derivative written in
// y; one whose derivative reads x (LeakyReLU, ELU, SELU, GELU) does not, even
// where the sign of y would tell the same, so the declaration always describes
// the code as written.
template <class F>
inline constexpr bool derivative_from_output = requires { requires F::derivative_from_output; };

// Whether F::value is a compare or a multiply, cheaper to compute again from
// its input than to read back from memory: a fused op whose derivative reads y
// then recomputes y from the input it recomputes anyway.
template <class F>
inline constexpr bool cheap_value = requires { requires F::cheap_value; };

// Whether F::derivative costs more than a pass over memory (a transcendental
// function), so that batch norm's fused backward evaluates dy f'(z) once and
// stores it rather than recomputing it in each of its two passes.
template <class F>
inline constexpr bool costly_derivative = requires { requires F::costly_derivative; };

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
    static constexpr bool layout_aware = true;  // element by element: any layout

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

template <double Factor>
using Scale = Activation<activation::Scaling<Factor>>;

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
