// Optimizers. An optimizer walks the model's trainable parameters; each step
// over a parameter tensor is one pass of the backend's parallel_for.
#pragma once

#include <vector>

#include "../core/buffer.hpp"
#include "../core/config.hpp"
#include "../layers/layer.hpp"

namespace laminar::optim {

struct SGDOptions {
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;        // L2, added to the gradient
  bool decay_bias_and_bn = false;   // false: biases and BatchNorm gamma/beta are not decayed
};

namespace detail {
// v <- mu v + (g + wd w);  w <- w - lr (nesterov ? g + wd w + mu v : v)
template <class T>
struct SgdUpdate {
  T* w;
  const T* g;
  T* v;
  T lr, mu, wd;
  bool nesterov;
  LAMINAR_HD void operator()(long i) const {
    const T grad = g[i] + wd * w[i];
    const T velocity = mu * v[i] + grad;
    v[i] = velocity;
    w[i] -= lr * (nesterov ? grad + mu * velocity : velocity);
  }
};
}  // namespace detail

// Stochastic gradient descent with momentum (Polyak) or Nesterov momentum in the
// form PyTorch uses.
template <class Model>
class SGD {
  using T = typename Model::value_type;
  using B = typename Model::backend;

 public:
  SGD(Model& model, SGDOptions options) : options_(options) {
    for (const auto& named : model.parameters()) {
      Parameter<T, B>* p = named.parameter;
      if (!p->trainable()) continue;
      Slot slot{p, Buffer<T, B>(std::size_t(p->size)), p->role == Role::weight || options.decay_bias_and_bn};
      ops<B>::fill(slot.velocity.data(), p->size, T(0));
      slots_.push_back(std::move(slot));
    }
  }

  double learning_rate() const { return options_.lr; }
  void set_learning_rate(double lr) { options_.lr = lr; }
  const SGDOptions& options() const { return options_; }

  void step() {
    for (auto& s : slots_) {
      const T wd = s.decay ? T(options_.weight_decay) : T(0);
      ops<B>::parallel_for(s.parameter->size,
                           detail::SgdUpdate<T>{s.parameter->value(), s.parameter->grad(),
                                                s.velocity.data(), T(options_.lr),
                                                T(options_.momentum), wd, options_.nesterov});
    }
  }

 private:
  struct Slot {
    Parameter<T, B>* parameter;
    Buffer<T, B> velocity;
    bool decay;
  };
  SGDOptions options_;
  std::vector<Slot> slots_;
};

}  // namespace laminar::optim
