// BatchNorm (Ioffe & Szegedy 2015), per channel over batch and pixels; on a flat
// Shape<N> input each feature is a channel (BatchNorm1d).
//   train: y = gamma (x - mean_B) / sqrt(var_B + eps) + beta, and the running
//          statistics move towards the batch's by `Momentum` (running variance
//          takes the unbiased batch variance, as PyTorch does);
//   eval:  the same with the running statistics.
// BatchNormWith<Momentum, Epsilon> sets the constants; BatchNorm is
// BatchNormWith<0.1, 1e-5>.
#pragma once

#include <cmath>

#include "../core/error.hpp"
#include "layer.hpp"

namespace laminar {

namespace detail {
struct InverseSqrt {
  double epsilon;
  template <class T>
  LAMINAR_HD T operator()(T variance) const { return T(1) / std::sqrt(variance + T(epsilon)); }
};
struct Square {
  template <class T>
  LAMINAR_HD T operator()(T x) const { return x * x; }
};
}  // namespace detail

template <double Momentum = 0.1, double Epsilon = 1e-5>
struct BatchNormWith {
  static_assert(Momentum >= 0.0 && Momentum <= 1.0, "BATCHNORM_MOMENTUM_MUST_BE_IN_0_1");
  static_assert(Epsilon > 0.0, "BATCHNORM_EPSILON_MUST_BE_POSITIVE");

  static std::string name() {
    if (Momentum == 0.1 && Epsilon == 1e-5) return "BatchNorm";
    return "BatchNormWith<" + detail::number(Momentum) + "," + detail::number(Epsilon) + ">";
  }

  template <class In>
  static consteval auto output_shape() {
    return In{};
  }
  template <class In>
  static constexpr long parameter_count = 2L * In::channels;  // gamma, beta (statistics are state)
  template <class In>
  static constexpr double flops = 4.0 * In::size;

  template <class In, class T, class B>
  class Layer {
   public:
    static constexpr int C = In::channels;
    static constexpr long P = In::pixels;

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      using namespace expr;
      const double count = double(batch) * P;
      T* mean = mean_.data();
      T* inv_std = inv_std_.data();
      batch_statistics_ = ctx.training;
      if (ctx.training) {
        if (count < 2)
          throw Error(name() + " in training mode needs more than one value per channel, got batch " +
                      std::to_string(batch) + " of " + In::name());
        T* variance = variance_.data();
        ops<B>::sum_per_channel(mean, batch, C, P, in(x));
        ops<B>::eval(mean, C, in(mean) * T(1.0 / count));
        ops<B>::sum_per_channel(variance, batch, C, P,
                                 map(detail::Square{}, in(x) - per_channel(mean)));
        ops<B>::eval(inv_std, C, map(detail::InverseSqrt{Epsilon}, in(variance) * T(1.0 / count)));
        T* run_mean = running_mean.value();
        T* run_var = running_var.value();
        ops<B>::eval(run_mean, C, in(run_mean) * T(1 - Momentum) + in(mean) * T(Momentum));
        ops<B>::eval(run_var, C,
                     in(run_var) * T(1 - Momentum) + in(variance) * T(Momentum / (count - 1)));
      } else {
        ops<B>::copy(mean, running_mean.value(), C);
        ops<B>::eval(inv_std, C, map(detail::InverseSqrt{Epsilon}, in(running_var.value())));
      }
      ops<B>::eval(y, batch, C, P,
                   (in(x) - per_channel(mean)) * per_channel(inv_std) * per_channel(gamma.value()) +
                       per_channel(beta.value()));
    }

    // With batch statistics the mean and variance depend on x, which gives the
    // two extra terms; with running statistics BatchNorm is an affine map.
    void backward(Context<B>&, const T* x, const T*, const T* dy, T* dx, int batch) {
      using namespace expr;
      const double count = double(batch) * P;
      const auto mean = per_channel(mean_.data());
      const auto inv_std = per_channel(inv_std_.data());
      const auto x_hat = (in(x) - mean) * inv_std;
      ops<B>::sum_per_channel(beta.grad(), batch, C, P, in(dy));
      ops<B>::sum_per_channel(gamma.grad(), batch, C, P, in(dy) * x_hat);
      if (!dx) return;
      const auto scale = per_channel(gamma.value()) * inv_std;
      if (batch_statistics_) {
        const auto mean_dy = per_channel(beta.grad()) * T(1.0 / count);
        const auto mean_dy_x_hat = per_channel(gamma.grad()) * T(1.0 / count);
        ops<B>::eval(dx, batch, C, P, scale * (in(dy) - mean_dy - x_hat * mean_dy_x_hat));
      } else {
        ops<B>::eval(dx, batch, C, P, scale * in(dy));
      }
    }

    template <class F>
    void visit(const std::string& prefix, F&& f) {
      f(prefix + "gamma", gamma);
      f(prefix + "beta", beta);
      f(prefix + "running_mean", running_mean);
      f(prefix + "running_var", running_var);
    }

    Parameter<T, B> gamma{Role::scale, C};
    Parameter<T, B> beta{Role::shift, C};
    Parameter<T, B> running_mean{Role::statistic, C};
    Parameter<T, B> running_var{Role::statistic, C};

   private:
    Buffer<T, B> mean_{C}, variance_{C}, inv_std_{C};
    bool batch_statistics_ = true;
  };
};

using BatchNorm = BatchNormWith<>;

}  // namespace laminar
