// Optimizers: SGD, Adam, AdamW, Adadelta and RMSprop on one shared core that owns
// the per-parameter state, weight decay, global-norm clipping, the max-norm
// constraint and per-group learning rates. Each step over a parameter tensor is
// one fused pass of the backend's parallel_for.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "../core/buffer.hpp"
#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../expr/expr.hpp"
#include "../layers/batchnorm.hpp"
#include "../layers/layer.hpp"

namespace laminar::optim {

// Every options struct starts with lr, then the rule's own fields, then the
// fields every optimizer shares, in this order:
//   weight_decay            0 = off
//   decoupled_weight_decay  false: L2, g += wd w before the rule;
//                           true: w -= lr wd w beside the rule's update (AdamW)
//   decay_bias_and_bn       false: only Role::weight parameters are decayed, not
//                           biases nor BatchNorm gamma/beta
//   max_norm                0 = off; after the update every output unit's
//                           incoming weight vector is rescaled to L2 norm <= max_norm;
//                           set_max_norm(prefix, value) sets it for some weights only
//   clip_norm               0 = off; before the update all gradients are scaled by
//                           clip_norm / norm when their global L2 norm exceeds it

struct SGDOptions {
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  bool decay_bias_and_bn = false;
  double max_norm = 0.0;
  double clip_norm = 0.0;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  bool decay_bias_and_bn = false;
  double max_norm = 0.0;
  double clip_norm = 0.0;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool decoupled_weight_decay = true;
  bool decay_bias_and_bn = false;
  double max_norm = 0.0;
  double clip_norm = 0.0;
};

// Defaults as Keras gives them; lr multiplies the update as in Keras and PyTorch.
struct AdadeltaOptions {
  double lr = 1.0;
  double rho = 0.95;
  double eps = 1e-7;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  bool decay_bias_and_bn = false;
  double max_norm = 0.0;
  double clip_norm = 0.0;
};

struct RMSpropOptions {
  double lr = 1e-3;
  double alpha = 0.9;  // decay of the squared-gradient average (Keras calls it rho)
  double eps = 1e-7;
  double momentum = 0.0;
  bool centered = false;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  bool decay_bias_and_bn = false;
  double max_norm = 0.0;
  double clip_norm = 0.0;
};

namespace detail {

inline std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// Option checks whose messages name the optimizer, the field and the value.
struct Check {
  const char* optimizer;

  [[noreturn]] void fail(const std::string& sentence) const { throw Error(std::string(optimizer) + ": " + sentence); }
  void require(bool holds, const std::string& sentence) const {
    if (!holds) fail(sentence);
  }
  void non_negative(const char* field, double value) const {
    require(value >= 0 && std::isfinite(value),
            std::string(field) + " must be a finite number >= 0, got " + format_number(value));
  }
  void positive(const char* field, double value) const {
    require(value > 0 && std::isfinite(value),
            std::string(field) + " must be a finite number > 0, got " + format_number(value));
  }
  // The decay rates of running averages: 1 would never forget the first value.
  void fraction(const char* field, double value) const {
    require(value >= 0 && value < 1,
            std::string(field) + " must be at least 0 and below 1, got " + format_number(value));
  }
};

// factor = min(1, limit / ||row||), from the row's sum of squares.
template <class T>
struct MaxNormFactor {
  T limit;
  LAMINAR_HD T operator()(T squared) const {
    const T norm = std::sqrt(squared);
    return norm > limit ? limit / norm : T(1);
  }
};

// The part of an update every rule shares, around the rule's kernel:
//   g' = clip_scale g + l2 w;   w <- w - shrink w - kernel(i, g')
// where l2 = wd for coupled decay and shrink = lr wd for decoupled decay; the
// kernel updates its state at i and returns the step lr * direction.
template <class T, class Kernel>
struct FusedStep {
  T* w;
  const T* g;
  T clip_scale, l2, shrink;
  Kernel kernel;
  LAMINAR_HD void operator()(long i) const {
    const T weight = w[i];
    const T grad = clip_scale * g[i] + l2 * weight;
    w[i] = weight - shrink * weight - kernel(i, grad);
  }
};

// A rule provides: states (the number of state buffers); state_names(options),
// nullptr where these options need no such buffer; validate(options, check) for
// its own fields; and kernel(options, state pointers, lr, step), the
// device-callable functor of one step, where step counts from 1.

// SGD with momentum (Polyak), or Nesterov momentum in PyTorch's form:
//   v <- mu v + g;  w <- w - lr (nesterov ? g + mu v : v)
struct SgdRule {
  using options_type = SGDOptions;
  static constexpr int states = 1;
  static std::array<const char*, states> state_names(const SGDOptions&) { return {"velocity"}; }
  static void validate(const SGDOptions& o, const Check& check) {
    check.fraction("momentum", o.momentum);
    check.require(!o.nesterov || o.momentum > 0, "nesterov momentum needs a momentum above 0, got " +
                                                     format_number(o.momentum));
  }
  template <class T>
  struct Kernel {
    T* velocity;
    T lr, momentum;
    bool nesterov;
    LAMINAR_HD T operator()(long i, T grad) const {
      const T v = momentum * velocity[i] + grad;
      velocity[i] = v;
      return lr * (nesterov ? grad + momentum * v : v);
    }
  };
  template <class T>
  static Kernel<T> kernel(const SGDOptions& o, const std::array<T*, states>& s, T lr, long) {
    return {s[0], lr, T(o.momentum), o.nesterov};
  }
};

// Adam (Kingma & Ba 2015), bias-corrected:
//   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// AdamW (Loshchilov & Hutter 2019) is the same rule with decoupled decay.
template <class Options>
struct AdamRule {
  using options_type = Options;
  static constexpr int states = 2;
  static std::array<const char*, states> state_names(const Options&) { return {"exp_avg", "exp_avg_sq"}; }
  static void validate(const Options& o, const Check& check) {
    check.fraction("beta1", o.beta1);
    check.fraction("beta2", o.beta2);
    check.positive("eps", o.eps);
  }
  template <class T>
  struct Kernel {
    T* exp_avg;
    T* exp_avg_sq;
    T lr, beta1, beta2, eps, correction1, correction2;
    LAMINAR_HD T operator()(long i, T grad) const {
      const T m = beta1 * exp_avg[i] + (T(1) - beta1) * grad;
      const T v = beta2 * exp_avg_sq[i] + (T(1) - beta2) * grad * grad;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      return lr * (m / correction1) / (std::sqrt(v / correction2) + eps);
    }
  };
  template <class T>
  static Kernel<T> kernel(const Options& o, const std::array<T*, states>& s, T lr, long step) {
    const T correction1 = T(1.0 - std::pow(o.beta1, double(step)));
    const T correction2 = T(1.0 - std::pow(o.beta2, double(step)));
    return {s[0], s[1], lr, T(o.beta1), T(o.beta2), T(o.eps), correction1, correction2};
  }
};

// Adadelta (Zeiler 2012), with lr multiplying the update as Keras and PyTorch do:
//   s <- rho s + (1 - rho) g^2;  d = sqrt(a + eps) / sqrt(s + eps) g
//   a <- rho a + (1 - rho) d^2;  w <- w - lr d
struct AdadeltaRule {
  using options_type = AdadeltaOptions;
  static constexpr int states = 2;
  static std::array<const char*, states> state_names(const AdadeltaOptions&) {
    return {"square_avg", "acc_delta"};
  }
  static void validate(const AdadeltaOptions& o, const Check& check) {
    check.fraction("rho", o.rho);
    check.positive("eps", o.eps);
  }
  template <class T>
  struct Kernel {
    T* square_avg;
    T* acc_delta;
    T lr, rho, eps;
    LAMINAR_HD T operator()(long i, T grad) const {
      const T s = rho * square_avg[i] + (T(1) - rho) * grad * grad;
      const T a = acc_delta[i];
      const T delta = std::sqrt(a + eps) / std::sqrt(s + eps) * grad;
      square_avg[i] = s;
      acc_delta[i] = rho * a + (T(1) - rho) * delta * delta;
      return lr * delta;
    }
  };
  template <class T>
  static Kernel<T> kernel(const AdadeltaOptions& o, const std::array<T*, states>& s, T lr, long) {
    return {s[0], s[1], lr, T(o.rho), T(o.eps)};
  }
};

// RMSprop (Hinton, Coursera lecture 6e), in PyTorch's form:
//   s <- a s + (1 - a) g^2;  centered: c <- a c + (1 - a) g, r = sqrt(s - c^2) + eps,
//   else r = sqrt(s) + eps;  momentum: b <- mu b + g / r, w <- w - lr b,
//   else w <- w - lr g / r
struct RmspropRule {
  using options_type = RMSpropOptions;
  static constexpr int states = 3;
  static std::array<const char*, states> state_names(const RMSpropOptions& o) {
    return {"square_avg", o.momentum > 0 ? "momentum_buffer" : nullptr, o.centered ? "grad_avg" : nullptr};
  }
  static void validate(const RMSpropOptions& o, const Check& check) {
    check.fraction("alpha", o.alpha);
    check.positive("eps", o.eps);
    check.fraction("momentum", o.momentum);
  }
  template <class T>
  struct Kernel {
    T* square_avg;
    T* momentum_buffer;  // null without momentum
    T* grad_avg;         // null unless centered
    T lr, alpha, eps, momentum;
    LAMINAR_HD T operator()(long i, T grad) const {
      const T s = alpha * square_avg[i] + (T(1) - alpha) * grad * grad;
      square_avg[i] = s;
      T variance = s;
      if (grad_avg) {
        const T c = alpha * grad_avg[i] + (T(1) - alpha) * grad;
        grad_avg[i] = c;
        // s >= c^2 holds exactly (Cauchy-Schwarz on the averages) but not always
        // after rounding; a negative variance would make the step NaN.
        variance = s - c * c > T(0) ? s - c * c : T(0);
      }
      const T direction = grad / (std::sqrt(variance) + eps);
      if (!momentum_buffer) return lr * direction;
      const T b = momentum * momentum_buffer[i] + direction;
      momentum_buffer[i] = b;
      return lr * b;
    }
  };
  template <class T>
  static Kernel<T> kernel(const RMSpropOptions& o, const std::array<T*, states>& s, T lr, long) {
    return {s[0], s[1], s[2], lr, T(o.alpha), T(o.eps), T(o.momentum)};
  }
};

// The core every optimizer is: one slot per trainable parameter (frozen ones
// included, since freezing is checked at each step), holding the rule's state.
template <class Model, class Rule>
class Optimizer {
  using T = typename Model::value_type;
  using B = typename Model::backend;
  using Options = typename Rule::options_type;

 public:
  Optimizer(Model& model, const Options& options, const char* name) : options_(options), check_{name} {
    check_.non_negative("lr", options.lr);
    check_.non_negative("weight_decay", options.weight_decay);
    check_.non_negative("max_norm", options.max_norm);
    check_.non_negative("clip_norm", options.clip_norm);
    Rule::validate(options, check_);
    const auto state_names = Rule::state_names(options);
    long widest = 1;
    for (const auto& named : model.parameters()) {
      Parameter<T, B>* p = named.parameter;
      if (!p->trainable()) continue;
      Slot slot;
      slot.parameter = p;
      slot.name = named.name;
      slot.decayed = p->role == Role::weight || options.decay_bias_and_bn;
      slot.rows = p->fan_in > 0 && p->size % p->fan_in == 0 ? p->size / p->fan_in : 1;
      if (p->role == Role::weight) {
        slot.max_norm = options.max_norm;
        check_rows(slot);
      }
      for (int k = 0; k < Rule::states; ++k) {
        if (!state_names[k]) continue;
        ops<B>::fill(slot.state[k].reserve(std::size_t(p->size)), p->size, T(0));
        slot.keys[k] = named.name + "/" + state_names[k];
      }
      widest = std::max(widest, slot.rows);
      slots_.push_back(std::move(slot));
    }
    row_sums_.reserve(std::size_t(widest));
    totals_.reserve(std::max<std::size_t>(slots_.size(), 1));
    host_totals_.resize(std::max<std::size_t>(slots_.size(), 1));
  }

  double learning_rate() const { return options_.lr; }
  void set_learning_rate(double lr) {
    check_.non_negative("lr", lr);
    options_.lr = lr;
  }
  const Options& options() const { return options_; }

  // Adam's bias-correction counter; a checkpoint restores it beside the state.
  long step_count() const { return step_count_; }
  void set_step_count(long count) {
    check_.require(count >= 0, "the step count must be >= 0, got " + std::to_string(count));
    step_count_ = count;
  }

  // The global L2 norm of the gradients at the last step, before clipping;
  // measured only when clip_norm is on, NaN otherwise.
  double last_gradient_norm() const { return last_gradient_norm_; }

  // Parameters the prefix selects (laminar::selects) step with lr * scale; a later
  // call overrides an earlier one for the parameters both match.
  void set_lr_scale(std::string_view name_prefix, double scale) {
    check_.non_negative("the learning-rate scale", scale);
    for_each_selected(name_prefix, [&](Slot& s) { s.lr_scale = scale; });
  }
  double lr_scale(std::string_view parameter_name) const { return slot(parameter_name).lr_scale; }

  // Parameters the prefix selects are decayed by weight_decay * scale (airbench
  // gives BatchNorm biases 64x the rate and 1/64 the decay); later calls override.
  // Parameters the options leave undecayed stay so.
  void set_weight_decay_scale(std::string_view name_prefix, double scale) {
    check_.non_negative("the weight-decay scale", scale);
    for_each_selected(name_prefix, [&](Slot& s) { s.decay_scale = scale; });
  }
  double weight_decay_scale(std::string_view parameter_name) const { return slot(parameter_name).decay_scale; }

  // The max-norm constraint for the weights the prefix selects, as Keras's
  // kernel_constraint puts it on chosen layers only (0 = none); it overrides
  // options().max_norm there, and a later call an earlier one. Biases and
  // BatchNorm parameters the prefix also selects stay unconstrained.
  void set_max_norm(std::string_view name_prefix, double value) {
    check_.non_negative("max_norm", value);
    bool matched = false;
    for (auto& s : slots_)
      if (s.parameter->role == Role::weight && selects(name_prefix, s.name)) {
        s.max_norm = value;
        check_rows(s);
        matched = true;
      }
    check_.require(matched, "the prefix selects no trainable weight: \"" + std::string(name_prefix) + "\"");
  }
  // 0 where the parameter is unconstrained.
  double max_norm(std::string_view parameter_name) const { return slot(parameter_name).max_norm; }

  // f(key, data, size) for every state buffer, keyed "<parameter>/<buffer>", in
  // parameter order and then the rule's order.
  template <class F>
  void visit_state(F&& f) {
    for (auto& s : slots_)
      for (int k = 0; k < Rule::states; ++k)
        if (const std::string& key = s.keys[k]; !key.empty()) f(key, s.state[k].data(), s.parameter->size);
  }

  void step() {
    const T clip_scale = T(gradient_clip_scale());
    ++step_count_;
    for (auto& s : slots_) {
      if (s.parameter->frozen) continue;
      const double lr = options_.lr * s.lr_scale;
      const double decay = s.decayed ? options_.weight_decay * s.decay_scale : 0.0;
      const bool decoupled = options_.decoupled_weight_decay;
      std::array<T*, Rule::states> state;
      for (int k = 0; k < Rule::states; ++k) state[k] = s.state[k].data();
      ops<B>::parallel_for(s.parameter->size,
                           FusedStep<T, typename Rule::template Kernel<T>>{
                               s.parameter->value(), s.parameter->grad(), clip_scale,
                               T(decoupled ? 0.0 : decay), T(decoupled ? lr * decay : 0.0),
                               Rule::kernel(options_, state, T(lr), step_count_)});
      if (s.max_norm > 0) constrain(s);
    }
  }

 private:
  struct Slot {
    Parameter<T, B>* parameter = nullptr;
    std::string name;
    bool decayed = false;
    long rows = 1;  // output units: size / fan_in rows of fan_in values
    double lr_scale = 1.0, decay_scale = 1.0;
    double max_norm = 0.0;  // 0 = unconstrained
    std::array<Buffer<T, B>, Rule::states> state;  // empty where the rule needs none
    std::array<std::string, Rule::states> keys;     // "" where the rule needs none
  };

  // f(slot) for every trainable parameter the prefix selects; none is an error.
  template <class F>
  void for_each_selected(std::string_view name_prefix, F&& f) {
    bool matched = false;
    for (auto& s : slots_)
      if (selects(name_prefix, s.name)) {
        f(s);
        matched = true;
      }
    check_.require(matched, "the prefix selects no trainable parameter: \"" + std::string(name_prefix) + "\"");
  }

  const Slot& slot(std::string_view parameter_name) const {
    for (const auto& s : slots_)
      if (s.name == parameter_name) return s;
    check_.fail("there is no trainable parameter named \"" + std::string(parameter_name) + "\"");
  }

  // The constraint rescales rows of fan_in values, so a weight must be made of them.
  void check_rows(const Slot& s) const {
    const Parameter<T, B>& p = *s.parameter;
    check_.require(!(s.max_norm > 0) || s.rows * p.fan_in == p.size,
                   "max_norm needs weight " + s.name + " of " + std::to_string(p.size) +
                       " values to be whole rows of fan_in " + std::to_string(p.fan_in));
  }

  // Sums of squares per row, then per parameter, on the backend; only the
  // per-parameter totals come to the host.
  double gradient_clip_scale() {
    using namespace expr;
    if (!(options_.clip_norm > 0)) {
      last_gradient_norm_ = std::numeric_limits<double>::quiet_NaN();
      return 1.0;
    }
    int counted = 0;
    for (auto& s : slots_) {
      if (s.parameter->frozen) continue;
      const long columns = s.parameter->size / s.rows;
      ops<B>::sum_per_channel(row_sums_.data(), 1, int(s.rows), columns,
                              map(expr::Square{}, in(s.parameter->grad())));
      ops<B>::sum_per_channel(totals_.data() + counted, 1, 1, s.rows, in(row_sums_.data()));
      ++counted;
    }
    ops<B>::copy_to_host(host_totals_.data(), totals_.data(), counted);
    double total = 0;
    for (int k = 0; k < counted; ++k) total += double(host_totals_[std::size_t(k)]);
    last_gradient_norm_ = std::sqrt(total);
    return last_gradient_norm_ > options_.clip_norm ? options_.clip_norm / last_gradient_norm_ : 1.0;
  }

  // Keras's max-norm constraint, without its epsilon, so a row within the limit
  // is left exactly as it is.
  void constrain(Slot& s) {
    using namespace expr;
    T* w = s.parameter->value();
    T* factor = row_sums_.data();
    const long columns = s.parameter->size / s.rows;
    ops<B>::sum_per_channel(factor, 1, int(s.rows), columns, map(expr::Square{}, in(w)));
    ops<B>::eval(factor, s.rows, map(MaxNormFactor<T>{T(s.max_norm)}, in(factor)));
    ops<B>::eval(w, 1, int(s.rows), columns, in(w) * per_channel(factor));
  }

  Options options_;
  Check check_;
  std::vector<Slot> slots_;
  Buffer<T, B> row_sums_, totals_;
  std::vector<T> host_totals_;  // totals_ on the host, sized once: a step allocates nothing
  long step_count_ = 0;
  double last_gradient_norm_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace detail

// Each optimizer is `X opt(model, XOptions{...})`; the model's parameters must
// outlive it.

template <class Model>
class SGD : public detail::Optimizer<Model, detail::SgdRule> {
 public:
  static constexpr const char* name = "SGD";
  SGD(Model& model, SGDOptions options = {}) : detail::Optimizer<Model, detail::SgdRule>(model, options, name) {}
};

template <class Model>
class Adam : public detail::Optimizer<Model, detail::AdamRule<AdamOptions>> {
 public:
  static constexpr const char* name = "Adam";
  Adam(Model& model, AdamOptions options = {})
      : detail::Optimizer<Model, detail::AdamRule<AdamOptions>>(model, options, name) {}
};

template <class Model>
class AdamW : public detail::Optimizer<Model, detail::AdamRule<AdamWOptions>> {
 public:
  static constexpr const char* name = "AdamW";
  AdamW(Model& model, AdamWOptions options = {})
      : detail::Optimizer<Model, detail::AdamRule<AdamWOptions>>(model, options, name) {}
};

template <class Model>
class Adadelta : public detail::Optimizer<Model, detail::AdadeltaRule> {
 public:
  static constexpr const char* name = "Adadelta";
  Adadelta(Model& model, AdadeltaOptions options = {})
      : detail::Optimizer<Model, detail::AdadeltaRule>(model, options, name) {}
};

template <class Model>
class RMSprop : public detail::Optimizer<Model, detail::RmspropRule> {
 public:
  static constexpr const char* name = "RMSprop";
  RMSprop(Model& model, RMSpropOptions options = {})
      : detail::Optimizer<Model, detail::RmspropRule>(model, options, name) {}
};

}  // namespace laminar::optim
