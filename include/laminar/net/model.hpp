// Model<Net, Backend, T>: a network instantiated for a backend and element type.
// It owns the parameters, the activations of the last forward (an arena reused
// across steps) and the per-step context. Model<Net, cpu, double> is the
// reference every fast path is checked against.
//
// Default initialisation (Model(seed) or initialize(seed)): weights He-normal,
// N(0, 2 / fan_in) (He et al. 2015, for ReLU networks); biases and BatchNorm beta 0;
// BatchNorm gamma 1; running mean 0 and running variance 1.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/philox.hpp"
#include "../core/tensor.hpp"
#include "describe.hpp"
#include "sequential.hpp"

namespace laminar {

template <class T, class B>
struct NamedParameter {
  std::string name;
  Parameter<T, B>* parameter;
};

// Philox streams at and above this number belong to initialisers; dropout
// layers count up from 0.
inline constexpr std::uint32_t initializer_stream_base = 0x80000000u;

namespace detail {
// Constructed before any member allocates, so a missing device is reported as
// such rather than as a failed allocation.
template <class B>
struct RequireDevice {
  RequireDevice() {
    if constexpr (requires { ops<B>::require_device(); }) ops<B>::require_device();
  }
};
}  // namespace detail

template <class Net, class B = cpu, class T = float>
class Model : detail::RequireDevice<B> {
  static_assert(AvailableBackend<B>,
                "BACKEND_NOT_COMPILED_IN: the cuda backend needs this file compiled by nvcc "
                "with LAMINAR_CUDA on");

 public:
  using network = Net;
  using backend = B;
  using value_type = T;
  using input_shape = typename Net::input_shape;
  using output_shape = typename Net::output_shape;
  using chain_type = typename Net::template chain<T, B>;

  explicit Model(std::uint64_t seed = 0) {
    std::uint32_t next_stream = 0;
    chain_.assign_streams(next_stream);
    chain_.visit("", [&](const std::string& name, Parameter<T, B>& p) {
      parameters_.push_back({name, &p});
    });
    initialize(seed);
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Training mode: BatchNorm uses batch statistics, Dropout drops.
  void train(bool on = true) { context_.training = on; }
  void eval() { context_.training = false; }
  bool training() const { return context_.training; }

  // The random stream position: dropout masks are a function of (seed, step).
  void set_seed(std::uint64_t seed) { context_.seed = seed; }
  void set_step(std::uint32_t step) { context_.step = step; }
  std::uint32_t step() const { return context_.step; }

  // Output of the last forward, valid until the next forward. The input must stay
  // alive until backward.
  View<const T, B, output_shape> forward(View<const T, B, input_shape> x) {
    if (x.batch <= 0) throw Error("Model::forward: batch size must be positive, got " + std::to_string(x.batch));
    last_input_ = x.data;
    last_batch_ = x.batch;
    return {chain_.forward(context_, x.data, x.batch), x.batch};
  }

  // Writes every parameter gradient for d(loss)/d(output) = dy of the last
  // forward; writes d(loss)/d(input) too when dx is given.
  void backward(View<const T, B, output_shape> dy, T* dx = nullptr) {
    if (!last_input_ || dy.batch != last_batch_)
      throw Error("Model::backward: gradient batch " + std::to_string(dy.batch) +
                  " does not match the last forward's batch " + std::to_string(last_batch_));
    chain_.backward(context_, last_input_, dy.data, dx, dy.batch);
  }

  // Every parameter and statistic, named by position ("3.weight", "5.2.gamma").
  const std::vector<NamedParameter<T, B>>& parameters() const { return parameters_; }

  long parameter_count() const {
    long n = 0;
    for (const auto& p : parameters_)
      if (p.parameter->trainable()) n += p.parameter->size;
    return n;
  }

  void initialize(std::uint64_t seed) {
    std::vector<T> host;
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      Parameter<T, B>& p = *parameters_[i].parameter;
      host.assign(std::size_t(p.size), T(0));
      switch (p.role) {
        case Role::weight: {
          const double sd = std::sqrt(2.0 / double(p.fan_in));
          for (long k = 0; k < p.size; ++k)
            host[k] = T(sd * philox::normal(seed, initializer_stream_base + std::uint32_t(i), 0,
                                            std::uint64_t(k)));
          break;
        }
        case Role::scale: std::fill(host.begin(), host.end(), T(1)); break;
        case Role::statistic:
          if (parameters_[i].name.ends_with("running_var")) std::fill(host.begin(), host.end(), T(1));
          break;
        case Role::bias:
        case Role::shift: break;
      }
      ops<B>::copy_to_device(p.value(), host.data(), p.size);
    }
  }

  static std::string describe() { return laminar::describe<Net>(); }

 private:
  chain_type chain_;
  Context<B> context_;
  std::vector<NamedParameter<T, B>> parameters_;
  const T* last_input_ = nullptr;
  int last_batch_ = 0;
};

}  // namespace laminar
