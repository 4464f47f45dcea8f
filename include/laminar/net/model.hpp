// Model<Net, Backend, Compute>: a network instantiated for a backend and element
// type (float, double, or bf16: float tensors whose convolutions multiply in
// bf16, see core/precision.hpp). It owns the parameters, the activations of the
// last forward (an arena reused across steps) and the per-step context.
// Model<Net, cpu, double> is the reference every fast path is checked against.
//
// Default initialisation (Model(seed) or initialize(seed)): weights He-normal,
// N(0, 2 / fan_in) (He et al. 2015, for ReLU networks); biases and BatchNorm beta 0;
// BatchNorm gamma 1; running mean 0 and running variance 1.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/philox.hpp"
#include "../core/precision.hpp"
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

template <class Net, class B = cpu, class Compute = float>
class Model : detail::RequireDevice<B> {
  static_assert(AvailableBackend<B>,
                "BACKEND_NOT_COMPILED_IN: the cuda backend needs this file compiled by nvcc "
                "with LAMINAR_CUDA on");
  static_assert(Precision<Compute>::arithmetic == Arithmetic::native || std::is_same_v<B, cpu>,
                "BF16_COMPUTE_IS_CPU_ONLY: Model<Net, cuda, bf16> is not built; use float on cuda");
  using T = typename Precision<Compute>::storage;

 public:
  using network = Net;
  using backend = B;
  // The tensors' element type: float for a bf16 model.
  using value_type = T;
  using compute_type = Compute;
  using input_shape = typename Net::input_shape;
  using output_shape = typename Net::output_shape;
  using chain_type = typename Net::template chain<T, B>;

  explicit Model(std::uint64_t seed = 0) {
    context_.arithmetic = Precision<Compute>::arithmetic;
    context_.images = default_image_layout();
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

  // How convolutions multiply: Model<Net, B, bf16> starts in Arithmetic::bf16,
  // a float model in native float; either may switch, to train in one and
  // evaluate in the other. Only float models have the bf16 arithmetic.
  Arithmetic arithmetic() const { return context_.arithmetic; }
  void set_arithmetic(Arithmetic arithmetic) {
    if (arithmetic == Arithmetic::bf16 && !(std::is_same_v<T, float> && std::is_same_v<B, cpu>))
      throw Error("Model::set_arithmetic: bf16 arithmetic needs a float model on the cpu backend");
    context_.arithmetic = arithmetic;
    // The backend's layout for the new arithmetic, unless set_image_layout chose one.
    if (!layout_chosen_ && context_.images != default_image_layout()) {
      context_.images = default_image_layout();
      last_input_ = nullptr;
      last_batch_ = 0;
    }
  }

  // How the model keeps its image activations between layers (core/layout.hpp):
  // by default the backend's choice for the arithmetic (blocked for float on an
  // AVX-512 cpu; planar for bf16 where the bf16 kernels read planar tensors)
  // where every layer can take it, else planar. Inputs, outputs and gradients
  // at the model's edges are planar NCHW either way, and so are the results,
  // up to the order of floating-point sums. Setting it discards the last
  // forward, and the layout then stays as set whatever the arithmetic.
  Layout image_layout() const { return context_.images; }
  void set_image_layout(Layout layout) {
    if (layout == Layout::blocked && !can_block())
      throw Error(std::string("Model::set_image_layout: blocked activations need a backend with a blocked layout "
                              "and layers that all take it; this model's ") +
                  (chain_type::layout_aware ? "backend (" + std::string(B::name) + ") has none"
                                            : "network has a layer that is not layout-aware"));
    context_.images = layout;
    layout_chosen_ = true;
    last_input_ = nullptr;
    last_batch_ = 0;
  }

  // The random stream position: dropout masks are a function of (seed, step).
  void set_seed(std::uint64_t seed) { context_.seed = seed; }
  void set_step(std::uint32_t step) { context_.step = step; }
  std::uint32_t step() const { return context_.step; }

  // Output of the last forward, valid until the next forward. The input must stay
  // alive until backward.
  View<const T, B, output_shape> forward(View<const T, B, input_shape> x) {
    if (x.batch <= 0) throw Error("Model::forward: batch size must be positive, got " + std::to_string(x.batch));
    last_input_ = to_layout<input_shape>(x.data, x.batch, input_, false);
    last_batch_ = x.batch;
    const T* y = chain_.forward(context_, last_input_, x.batch);
    return {to_layout<output_shape>(y, x.batch, output_, true), x.batch};
  }

  // Writes every parameter gradient for d(loss)/d(output) = dy of the last
  // forward; writes d(loss)/d(input) too when dx is given.
  void backward(View<const T, B, output_shape> dy, T* dx = nullptr) {
    if (!last_input_ || dy.batch != last_batch_)
      throw Error("Model::backward: gradient batch " + std::to_string(dy.batch) +
                  " does not match the last forward's batch " + std::to_string(last_batch_));
    const T* gradient = to_layout<output_shape>(dy.data, dy.batch, output_gradient_, false);
    const bool blocked_input = dx && layout_of<input_shape>(context_) == Layout::blocked;
    T* chain_dx = blocked_input ? input_gradient_.reserve(std::size_t(dy.batch) * input_shape::size) : dx;
    chain_.backward(context_, last_input_, gradient, chain_dx, dy.batch);
    if (blocked_input)
      ops<B>::convert(dx, Layout::planar, chain_dx, Layout::blocked, dy.batch, input_shape::channels,
                      input_shape::pixels);
  }

  // Every parameter and statistic, named by position ("3.weight", "5.2.gamma").
  const std::vector<NamedParameter<T, B>>& parameters() const { return parameters_; }

  long parameter_count() const {
    long n = 0;
    for (const auto& p : parameters_)
      if (p.parameter->trainable()) n += p.parameter->size;
    return n;
  }

  // The default initialisation above, of every parameter, or only of those
  // `prefix` selects (laminar::selects: "12" re-initialises layer 12, a new head).
  void initialize(std::uint64_t seed, std::string_view prefix = {}) {
    std::vector<T> host;
    bool matched = false;
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      if (!selects(prefix, parameters_[i].name)) continue;
      matched = true;
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
    if (!matched && !prefix.empty())
      throw Error("Model::initialize: the prefix \"" + std::string(prefix) + "\" selects no parameter; the first is " +
                  (parameters_.empty() ? std::string("(none)") : parameters_.front().name));
  }

  // The name of each top-level layer: layer_names()[k - 1] is layer k.
  static std::vector<std::string> layer_names() { return chain_type::names(); }

  // Where non-finite numbers first appear, for a message after the loss turned
  // NaN or infinite: a parameter (weights that an earlier step blew up), else
  // the first layer whose output of the last forward is non-finite; empty when
  // everything is finite. Copies to the host, so it is for the failure path only.
  std::string first_non_finite() const {
    std::vector<T> host;
    const auto finite = [&](const T* data, long n) {
      host.resize(std::size_t(n));
      ops<B>::copy_to_host(host.data(), data, n);
      for (const T v : host)
        if (!std::isfinite(v)) return false;
      return true;
    };
    const auto names = layer_names();
    for (const auto& named : parameters_) {
      if (finite(named.parameter->value(), named.parameter->size)) continue;
      const int position = std::stoi(named.name.substr(0, named.name.find('.')));
      return "parameter " + named.name + " of layer " + std::to_string(position) + " (" +
             names[std::size_t(position - 1)] + ")";
    }
    std::string found;
    chain_.visit_outputs(last_batch_, [&](int position, const std::string& name, const T* data, long n) {
      if (found.empty() && !finite(data, n))
        found = "the output of layer " + std::to_string(position) + " (" + name + ")";
    });
    return found;
  }

  static std::string describe() { return laminar::describe<Net>(); }

 private:
  static constexpr bool can_block() {
    return chain_type::layout_aware && requires { ops<B>::channel_block; };
  }
  Layout default_image_layout() const {
    if constexpr (can_block())
      return ops<B>::template image_layout_for<T>(context_.arithmetic);
    else
      return Layout::planar;
  }

  // A tensor of shape S at the model's edge: where the chain keeps S blocked,
  // its copy in `staging` converted from planar (to_planar false: an input or
  // output gradient handed in) or to planar (true: an output handed out).
  template <class S>
  const T* to_layout(const T* tensor, int batch, Buffer<T, B>& staging, bool to_planar) {
    if (layout_of<S>(context_) == Layout::planar) return tensor;
    T* copy = staging.reserve(std::size_t(batch) * S::size);
    if (to_planar)
      ops<B>::convert(copy, Layout::planar, tensor, Layout::blocked, batch, S::channels, S::pixels);
    else
      ops<B>::convert(copy, Layout::blocked, tensor, Layout::planar, batch, S::channels, S::pixels);
    return copy;
  }

  chain_type chain_;
  Context<B> context_;
  std::vector<NamedParameter<T, B>> parameters_;
  const T* last_input_ = nullptr;
  int last_batch_ = 0;
  // The edges' conversions where the network's input or output shape is kept blocked.
  Buffer<T, B> input_, output_, output_gradient_, input_gradient_;
  bool layout_chosen_ = false;  // by set_image_layout, rather than the backend's default
};

}  // namespace laminar
