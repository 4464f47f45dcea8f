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
    static constexpr bool layout_aware = true;

    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      const Layout layout = layout_of<In>(ctx);
      statistics(ctx.training, x, batch, layout);
      ops<B>::eval(y, batch, C, P, affine(x), layout);
    }

    void backward(Context<B>& ctx, const T* x, const T*, const T* dy, T* dx, int batch) {
      backward_from(expr::in(dy), x, dx, batch, layout_of<In>(ctx));
    }

    template <class F>
    void visit(const std::string& prefix, F&& f) {
      f(prefix + "gamma", gamma);
      f(prefix + "beta", beta);
      f(prefix + "running_mean", running_mean);
      f(prefix + "running_var", running_var);
    }

    // The pieces of forward and backward, public so that the fused ops of
    // layers/fused.hpp normalise and differentiate exactly as this layer does.
    // Their tensors are (N, C, pixels) in `layout`.

    // Sets the mean and inverse deviation that normalisation uses: the batch's
    // in training (moving the running statistics towards them), else the running ones.
    void statistics(bool training, const T* x, int batch, Layout layout) {
      using namespace expr;
      const double count = double(batch) * P;
      T* mean = mean_.data();
      T* inv_std = inv_std_.data();
      batch_statistics_ = training;
      if (training) {
        if (count < 2)
          throw Error(name() + " in training mode needs more than one value per channel, got batch " +
                      std::to_string(batch) + " of " + In::name());
        T* variance = variance_.data();  // until the running update, the sum of squared deviations
        if constexpr (requires { ops<B>::centered_sums_per_channel(mean, variance, batch, C, P, in(x), layout); }) {
          ops<B>::centered_sums_per_channel(mean, variance, batch, C, P, in(x), layout);
          ops<B>::eval(mean, C, in(mean) * T(1.0 / count));
        } else {  // a backend without the one-call form: the sum, then the squares about the mean
          ops<B>::sum_per_channel(mean, batch, C, P, in(x), layout);
          ops<B>::eval(mean, C, in(mean) * T(1.0 / count));
          ops<B>::sum_per_channel(variance, batch, C, P, map(Square{}, in(x) - per_channel(mean)), layout);
        }
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
    }

    // Whether the last statistics() took the batch's statistics.
    bool batch_statistics() const { return batch_statistics_; }

    // x_hat = (x - mean) * inv_std, gamma * inv_std, and y = x_hat * gamma + beta,
    // as per-channel expressions over (N, C, pixels) for the last statistics().
    auto normalized(const T* x) const {
      using namespace expr;
      return (in(x) - per_channel(mean_.data())) * per_channel(inv_std_.data());
    }
    auto scale() const { return expr::per_channel(gamma.value()) * expr::per_channel(inv_std_.data()); }
    auto affine(const T* x) const {
      return normalized(x) * expr::per_channel(gamma.value()) + expr::per_channel(beta.value());
    }

    // Backpropagates dy = d(loss)/d(affine(x)), an expression over (N, C, pixels),
    // writing gamma's and beta's gradients and, unless dx is null, dx. With batch
    // statistics the mean and variance depend on x, which gives the two extra
    // terms; with running statistics BatchNorm is an affine map.
    template <class G>
    void backward_from(const G& dy, const T* x, T* dx, int batch, Layout layout) {
      ops<B>::sum2_per_channel(beta.grad(), gamma.grad(), batch, C, P, dy, dy * normalized(x), layout);
      if (dx) input_gradient(dy, x, dx, batch, layout);
    }

    // backward_from for a dy that is costly to evaluate (dy act'(z) behind GELU):
    // dy is evaluated once, written to dx as its sums are taken, and dx is then
    // finished in place. backward_from evaluates it for each sum and again for dx,
    // which suits a cheap dy (ReLU's) better: one pass writes less.
    template <class G>
    void backward_from_evaluated(const G& dy, const T* x, T* dx, int batch, Layout layout) {
      if (!dx) return backward_from(dy, x, dx, batch, layout);
      ops<B>::eval_sum2_per_channel(dx, beta.grad(), gamma.grad(), batch, C, P, dy, normalized(x), layout);
      input_gradient(expr::in(dx), x, dx, batch, layout);  // element by element, so in place is safe
    }

    Parameter<T, B> gamma{Role::scale, C};
    Parameter<T, B> beta{Role::shift, C};
    Parameter<T, B> running_mean{Role::statistic, C};
    Parameter<T, B> running_var{Role::statistic, C};

   private:
    // dx from dy once beta's and gamma's gradients hold sum(dy) and sum(dy x_hat).
    template <class G>
    void input_gradient(const G& dy, const T* x, T* dx, int batch, Layout layout) {
      using namespace expr;
      if (batch_statistics_) {
        const double count = double(batch) * P;
        const auto mean_dy = per_channel(beta.grad()) * T(1.0 / count);
        const auto mean_dy_x_hat = per_channel(gamma.grad()) * T(1.0 / count);
        ops<B>::eval(dx, batch, C, P, scale() * (dy - mean_dy - normalized(x) * mean_dy_x_hat), layout);
      } else {
        ops<B>::eval(dx, batch, C, P, scale() * dy, layout);
      }
    }

    Buffer<T, B> mean_{C}, variance_{C}, inv_std_{C};
    bool batch_statistics_ = true;
  };
};

using BatchNorm = BatchNormWith<>;

}  // namespace laminar
