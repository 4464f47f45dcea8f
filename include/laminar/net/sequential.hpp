// Sequential<Input<...>, Layers...>: a network as a type. Every shape is inferred
// at compile time; a layer that cannot take its input is a static_assert naming
// the layer's position, type and input shape. It runs as the fused list of its
// layers (net/fuse.hpp); Unfused<Net> runs every layer on its own, the
// reference the fused ops are checked against.
#pragma once

#include "../layers/input.hpp"
#include "chain.hpp"
#include "fuse.hpp"

namespace laminar {

template <class First, class... Layers>
struct Sequential {
  static_assert(always_false<First>,
                "SEQUENTIAL_MUST_START_WITH_INPUT: write Sequential<Input<C,H,W>, Layers...>");
};

template <int... Dims, class... Layers>
struct Sequential<Input<Dims...>, Layers...> {
  static_assert(sizeof...(Layers) > 0, "A_NETWORK_NEEDS_AT_LEAST_ONE_LAYER_AFTER_INPUT");
  using input_shape = Shape<Dims...>;
  using shapes = shapes_of<input_shape, Layers...>;
  using output_shape = std::tuple_element_t<sizeof...(Layers), shapes>;
  static constexpr std::size_t depth = sizeof...(Layers);  // top-level layers as written

  // The ops the network runs as.
  using plan = fused_list<Layers...>;
  static constexpr bool fused = true;

  template <class T, class B>
  using chain = chain_of<input_shape, T, B, plan>;
  template <class T, class B>
  using chain_unfused = Chain<input_shape, T, B, Layers...>;
};

template <class Net>
struct Unfused {
  static_assert(always_false<Net>, "UNFUSED_TAKES_A_SEQUENTIAL: write Unfused<Sequential<Input<C,H,W>, Layers...>>");
};

// The same network, parameters and names, with every layer (residual branches
// included) run on its own.
template <int... Dims, class... Layers>
struct Unfused<Sequential<Input<Dims...>, Layers...>> : Sequential<Input<Dims...>, Layers...> {
  using plan = type_list<Layers...>;
  static constexpr bool fused = false;

  template <class T, class B>
  using chain = typename Sequential<Input<Dims...>, Layers...>::template chain_unfused<T, B>;
};

}  // namespace laminar
