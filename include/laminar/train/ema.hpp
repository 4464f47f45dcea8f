// An exponential moving average of a model's weights (Polyak & Juditsky 1992;
// the "EMA" of modern recipes): after every optimizer step
//   shadow <- d shadow + (1 - d) w,   d = min(decay, (1 + t) / (10 + t))
// where t counts updates, so the first shadows are not dominated by the
// initial weights. BatchNorm running statistics are averaged the same way.
// Validation swaps the shadow in, measures, and swaps it back.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../core/buffer.hpp"
#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../layers/layer.hpp"

namespace laminar::train {

namespace detail {
template <class T>
struct AverageInto {
  T* shadow;
  const T* value;
  T keep;
  LAMINAR_HD void operator()(long i) const { shadow[i] = keep * shadow[i] + (T(1) - keep) * value[i]; }
};
template <class T>
struct Exchange {
  T* a;
  T* b;
  LAMINAR_HD void operator()(long i) const {
    const T t = a[i];
    a[i] = b[i];
    b[i] = t;
  }
};
}  // namespace detail

template <class Model>
class ExponentialMovingAverage {
  using T = typename Model::value_type;
  using B = typename Model::backend;

 public:
  ExponentialMovingAverage(Model& model, double decay) : decay_(decay) {
    if (!(decay > 0 && decay < 1))
      throw Error("ExponentialMovingAverage: decay " + std::to_string(decay) + " is not in (0, 1)");
    for (const auto& named : model.parameters()) {
      Slot slot{named.name, named.parameter, Buffer<T, B>(std::size_t(named.parameter->size))};
      ops<B>::copy(slot.shadow.data(), named.parameter->value(), named.parameter->size);
      slots_.push_back(std::move(slot));
    }
  }

  // The decay the next update uses.
  double current_decay() const { return std::min(decay_, (1.0 + double(updates_)) / (10.0 + double(updates_))); }

  void update() {
    const T keep = T(current_decay());
    for (auto& s : slots_)
      ops<B>::parallel_for(s.parameter->size, detail::AverageInto<T>{s.shadow.data(), s.parameter->value(), keep});
    ++updates_;
  }

  // Exchanges the model's values and the averages; twice is the identity.
  void swap() {
    for (auto& s : slots_)
      ops<B>::parallel_for(s.parameter->size, detail::Exchange<T>{s.shadow.data(), s.parameter->value()});
  }

  double decay() const { return decay_; }
  long updates() const { return updates_; }
  void set_updates(long updates) { updates_ = updates; }

  // f(key, data, size) for every average, keyed "ema/<parameter name>".
  template <class F>
  void visit_state(F&& f) {
    for (auto& s : slots_) f("ema/" + s.name, s.shadow.data(), s.parameter->size);
  }

 private:
  struct Slot {
    std::string name;
    Parameter<T, B>* parameter;
    Buffer<T, B> shadow;
  };
  double decay_;
  long updates_ = 0;
  std::vector<Slot> slots_;
};

// Lookahead (Zhang et al. 2019) in the form airbench uses: a slow copy of the
// weights and BatchNorm statistics that, when asked (every few steps), moves
//   slow <- d slow + (1 - d) fast,   fast <- slow
// so training continues from the average. d = 1 returns the model to the slow
// weights; d = 0 leaves it as it is. The caller chooses d at each call.
template <class Model>
class Lookahead {
  using T = typename Model::value_type;
  using B = typename Model::backend;

 public:
  explicit Lookahead(Model& model) {
    for (const auto& named : model.parameters()) {
      Slot slot{named.parameter, Buffer<T, B>(std::size_t(named.parameter->size))};
      ops<B>::copy(slot.slow.data(), named.parameter->value(), named.parameter->size);
      slots_.push_back(std::move(slot));
    }
  }

  void update(double decay) {
    if (!(decay >= 0 && decay <= 1)) throw Error("Lookahead::update: decay " + std::to_string(decay) + " is not in [0, 1]");
    for (auto& s : slots_) {
      ops<B>::parallel_for(s.parameter->size, detail::AverageInto<T>{s.slow.data(), s.parameter->value(), T(decay)});
      ops<B>::copy(s.parameter->value(), s.slow.data(), s.parameter->size);
    }
  }

 private:
  struct Slot {
    Parameter<T, B>* parameter;
    Buffer<T, B> slow;
  };
  std::vector<Slot> slots_;
};

}  // namespace laminar::train
