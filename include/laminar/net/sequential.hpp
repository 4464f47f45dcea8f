// Sequential<Input<...>, Layers...>: a network as a type. Every shape is inferred
// at compile time; a layer that cannot take its input is a static_assert naming
// the layer's position, type and input shape.
#pragma once

#include "../layers/input.hpp"
#include "chain.hpp"

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
  static constexpr std::size_t depth = sizeof...(Layers);

  template <class T, class B>
  using chain = Chain<input_shape, T, B, Layers...>;
};

}  // namespace laminar
