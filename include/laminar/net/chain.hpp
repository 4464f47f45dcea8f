// Chain<In, T, B, Layers...>: a flat list of layers (or of the fused ops of
// net/fuse.hpp) instantiated for an input shape, element type and backend. It
// infers every intermediate shape at compile time, owns each layer's output (the
// activations backward needs) and two ping-pong gradient buffers, all grow-only.
// Model and Residual are built on it. Each tensor is in layout_of its shape
// (layers/layer.hpp), input and output included.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../layers/layer.hpp"

namespace laminar {

template <class... Types>
struct type_list {
  static constexpr std::size_t size = sizeof...(Types);
};

namespace detail {

// A chain may hold fused ops (net/fuse.hpp), each standing for `span`
// consecutive layers of the list the user wrote; positions, parameter names
// and layer names stay those of that original list.
template <class L>
consteval int span_of() {
  if constexpr (requires { L::span; })
    return L::span;
  else
    return 1;
}
template <class L>
std::vector<std::string> part_names() {
  if constexpr (requires { L::part_names(); })
    return L::part_names();
  else
    return {L::name()};
}

// Shape inference happens inside LayerInput<position, layer, input shape>, so a
// layer's static_assert is reported "required from LayerInput<7, Dense<10>,
// Shape<64,8,8>>": the position (Input is 0), the layer and the shape it got.
template <int Position, class Layer, class InputShape>
struct LayerInput {
  using output = decltype(Layer::template output_shape<InputShape>());
};

template <int Position, class In, class... Layers>
struct InferShapes {
  using type = std::tuple<In>;
};
template <int Position, class In, class Layer, class... Rest>
struct InferShapes<Position, In, Layer, Rest...> {
  using next = typename LayerInput<Position, Layer, In>::output;
  using type = decltype(std::tuple_cat(std::declval<std::tuple<In>>(),
                                       std::declval<typename InferShapes<Position + span_of<Layer>(), next, Rest...>::type>()));
};

// Whether a runtime layer reads and writes its tensors in whatever layout
// layout_of gives them (layers/layer.hpp), rather than planar only.
template <class L>
consteval bool is_layout_aware() {
  if constexpr (requires { L::layout_aware; })
    return L::layout_aware;
  else
    return false;
}

// Hands out Philox stream numbers to layers that draw random numbers.
template <class L>
void assign_streams(L& layer, std::uint32_t& next) {
  if constexpr (requires { layer.assign_streams(next); })
    layer.assign_streams(next);
  else if constexpr (requires { layer.set_stream(next); })
    layer.set_stream(next++);
}

}  // namespace detail

// The shapes S0 = In, S1, ..., Sn of a layer list, as a tuple type.
template <class In, class... Layers>
using shapes_of = typename detail::InferShapes<1, In, Layers...>::type;

template <class In, class T, class B, class... Layers>
class Chain {
  static_assert(sizeof...(Layers) > 0, "A_NETWORK_NEEDS_AT_LEAST_ONE_LAYER_AFTER_INPUT");

 public:
  static constexpr std::size_t depth = sizeof...(Layers);  // a fused op counts once
  using shapes = shapes_of<In, Layers...>;
  template <std::size_t I>
  using shape_at = std::tuple_element_t<I, shapes>;
  using input = In;
  using output = shape_at<depth>;

 private:
  template <std::size_t... I>
  static auto make_layers(std::index_sequence<I...>)
      -> std::tuple<typename Layers::template Layer<shape_at<I>, T, B>...>;
  using Indices = std::make_index_sequence<depth>;

  template <std::size_t... I>
  static constexpr long largest_inner(std::index_sequence<I...>) {
    long m = 1;
    ((m = shape_at<I + 1>::size > m ? shape_at<I + 1>::size : m), ...);
    return m;
  }

 public:
  using layer_tuple = decltype(make_layers(Indices{}));

  // Whether every layer is layout-aware, so that the chain may keep its
  // activations blocked; a model of any other chain keeps them planar.
  static constexpr bool layout_aware = []<std::size_t... I>(std::index_sequence<I...>) {
    return (detail::is_layout_aware<std::tuple_element_t<I, layer_tuple>>() && ...);
  }(Indices{});

  void assign_streams(std::uint32_t& next) {
    std::apply([&](auto&... layer) { (detail::assign_streams(layer, next), ...); }, layers_);
  }

  // Runs every layer; returns the output, owned by the chain until the next call.
  const T* forward(Context<B>& ctx, const T* x, int batch) {
    reserve(batch);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (std::get<I>(layers_).forward(ctx, input_of<I>(x), outputs_[I].data(), batch), ...);
    }(Indices{});
    return outputs_[depth - 1].data();
  }

  // Whether the last op hands its output over as an expression (forward_deferred).
  static constexpr bool defers_output = [] {
    if constexpr (requires { std::tuple_element_t<depth - 1, layer_tuple>::defers_output; })
      return std::tuple_element_t<depth - 1, layer_tuple>::defers_output;
    else
      return false;
  }();

  // forward, but the last op's output is returned as its expression and never
  // written (see NormalizationFusion::forward_deferred); training only.
  auto forward_deferred(Context<B>& ctx, const T* x, int batch)
    requires defers_output
  {
    reserve(batch);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (std::get<I>(layers_).forward(ctx, input_of<I>(x), outputs_[I].data(), batch), ...);
    }(std::make_index_sequence<depth - 1>{});
    return std::get<depth - 1>(layers_).forward_deferred(ctx, input_of<depth - 1>(x), batch);
  }

  // Backpropagates dy through the layers of the last forward (whose input was x),
  // writing every parameter gradient and, unless dx is null, the input gradient.
  void backward(Context<B>& ctx, const T* x, const T* dy, T* dx, int batch) {
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (backward_layer<depth - 1 - R>(ctx, x, dy, dx, batch), ...);
    }(Indices{});
  }

  // f(name, parameter) for every parameter, named by original position: a
  // fused op spanning positions 3-5 names its parts "3.weight", "4.gamma".
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (visit_layer<I>(prefix, f), ...);
    }(Indices{});
  }

  // The original layers' names in order (position k is names()[k - 1]).
  static std::vector<std::string> names() {
    std::vector<std::string> all;
    (
        [&] {
          for (auto& part : detail::part_names<Layers>()) all.push_back(std::move(part));
        }(),
        ...);
    return all;
  }

  // f(position, layer name, output, element count) for each layer's output of
  // the last forward of `batch` samples, in order: what a NaN hunt inspects. A
  // fused op reports its last original position and its fused name.
  template <class F>
  void visit_outputs(int batch, F&& f) const {
    if (batch > reserved_batch_) return;  // no forward of that size yet
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(first_position[I] + detail::span_of<Layers>() - 1, Layers::name(),
         static_cast<const T*>(outputs_[I].data()), long(batch) * shape_at<I + 1>::size),
       ...);
    }(Indices{});
  }

 private:
  // The original position of each op's first layer.
  static constexpr std::array<int, depth> first_position = [] {
    std::array<int, depth> first{};
    int next = 1, i = 0;
    ((first[std::size_t(i++)] = next, next += detail::span_of<Layers>()), ...);
    return first;
  }();

  template <std::size_t I, class F>
  void visit_layer(const std::string& prefix, F& f) {
    using L = std::tuple_element_t<I, std::tuple<Layers...>>;
    if constexpr (detail::span_of<L>() > 1)
      std::get<I>(layers_).visit(prefix, first_position[I], f);
    else
      std::get<I>(layers_).visit(prefix + std::to_string(first_position[I]) + ".", f);
  }

  template <std::size_t I>
  const T* input_of(const T* x) const {
    if constexpr (I == 0)
      return x;
    else
      return outputs_[I - 1].data();
  }

  template <std::size_t I>
  void backward_layer(Context<B>& ctx, const T* x, const T* dy, T* dx, int batch) {
    const T* dy_i = I == depth - 1 ? dy : gradients_[(I + 1) % 2].data();
    T* dx_i = I == 0 ? dx : gradients_[I % 2].data();
    std::get<I>(layers_).backward(ctx, input_of<I>(x), outputs_[I].data(), dy_i, dx_i, batch);
  }

  void reserve(int batch) {
    if (batch <= reserved_batch_) return;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (outputs_[I].reserve(std::size_t(batch) * shape_at<I + 1>::size), ...);
    }(Indices{});
    if constexpr (depth > 1)
      for (auto& g : gradients_) g.reserve(std::size_t(batch) * largest_inner(Indices{}));
    reserved_batch_ = batch;
  }

  layer_tuple layers_;
  std::array<Buffer<T, B>, depth> outputs_;
  std::array<Buffer<T, B>, 2> gradients_;
  int reserved_batch_ = 0;
};

}  // namespace laminar
