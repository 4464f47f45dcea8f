// Pointwise expression templates. An expression is a small value (a node) whose
// operator()(i, c) produces element i, which lies in channel c; a backend
// evaluates it into memory in one pass:
//   ops<B>::eval(out, n, expr)                         flat: c is always 0
//   ops<B>::eval(out, batch, channels, pixels, expr)   over (N, C, pixels)
// The evaluator's loops know the channel, so a per-channel broadcast costs a
// load, not a division. Nodes hold pointers and scalars only, so the same node
// runs in a CPU loop or a CUDA kernel.
//
//   eval(y, N, C, HW, relu(in(x) * per_channel(scale) + per_channel(shift)));
#pragma once

#include <cmath>
#include <concepts>
#include <type_traits>

#include "../core/config.hpp"

namespace laminar::expr {

template <class E>
concept Node = requires { typename E::expr_node; };

// --- leaves ----------------------------------------------------------------

template <class T>
struct Input {
  using expr_node = void;
  static constexpr bool per_channel = false;
  const T* data;
  LAMINAR_HD T operator()(long i, int) const { return data[i]; }
};

template <class T>
struct Constant {
  using expr_node = void;
  static constexpr bool per_channel = false;
  T value;
  LAMINAR_HD T operator()(long, int) const { return value; }
};

// Broadcasts a per-channel vector over an (N, C, pixels) evaluation.
template <class T>
struct PerChannel {
  using expr_node = void;
  static constexpr bool per_channel = true;
  const T* data;
  LAMINAR_HD T operator()(long, int c) const { return data[c]; }
};

// --- interior nodes ----------------------------------------------------------

// A node is per-channel when any leaf below it is: it may then only be
// evaluated over (N, C, pixels), never flat.
template <class F, class A>
struct Unary {
  using expr_node = void;
  static constexpr bool per_channel = A::per_channel;
  F f;
  A a;
  LAMINAR_HD auto operator()(long i, int ch) const { return f(a(i, ch)); }
};

template <class F, class A, class B>
struct Binary {
  using expr_node = void;
  static constexpr bool per_channel = A::per_channel || B::per_channel;
  F f;
  A a;
  B b;
  LAMINAR_HD auto operator()(long i, int ch) const { return f(a(i, ch), b(i, ch)); }
};

template <class F, class A, class B, class C>
struct Ternary {
  using expr_node = void;
  static constexpr bool per_channel = A::per_channel || B::per_channel || C::per_channel;
  F f;
  A a;
  B b;
  C c;
  LAMINAR_HD auto operator()(long i, int ch) const { return f(a(i, ch), b(i, ch), c(i, ch)); }
};

template <Node E>
using value_t = std::remove_cvref_t<decltype(std::declval<const E&>()(0L, 0))>;

// --- building nodes ----------------------------------------------------------

template <class T>
Input<T> in(const T* data) {
  return {data};
}
template <class T>
PerChannel<T> per_channel(const T* data) {
  return {data};
}

template <class F, Node A>
Unary<F, A> map(F f, A a) {
  return {f, a};
}
template <class F, Node A, Node B>
Binary<F, A, B> map(F f, A a, B b) {
  return {f, a, b};
}
template <class F, Node A, Node B, Node C>
Ternary<F, A, B, C> map(F f, A a, B b, C c) {
  return {f, a, b, c};
}

// A scalar beside a node becomes a Constant of the node's value type.
template <class E, class Other>
auto as_node(const Other& x) {
  if constexpr (Node<Other>)
    return x;
  else
    return Constant<value_t<E>>{value_t<E>(x)};
}

struct Plus {
  template <class A, class B>
  LAMINAR_HD auto operator()(A a, B b) const { return a + b; }
};
struct Minus {
  template <class A, class B>
  LAMINAR_HD auto operator()(A a, B b) const { return a - b; }
};
struct Multiplies {
  template <class A, class B>
  LAMINAR_HD auto operator()(A a, B b) const { return a * b; }
};
struct Divides {
  template <class A, class B>
  LAMINAR_HD auto operator()(A a, B b) const { return a / b; }
};
struct Square {
  template <class A>
  LAMINAR_HD auto operator()(A a) const { return a * a; }
};
struct Negate {
  template <class A>
  LAMINAR_HD auto operator()(A a) const { return -a; }
};
struct Select {
  template <class M, class A, class B>
  LAMINAR_HD auto operator()(M m, A a, B b) const { return m ? a : b; }
};
struct Greater {
  template <class A, class B>
  LAMINAR_HD bool operator()(A a, B b) const { return a > b; }
};

// At least one side of an operator must be a node, so these never capture
// arithmetic on plain numbers.
template <class A, class B>
concept Operands = (Node<A> || Node<B>) && (Node<A> || std::is_arithmetic_v<A>) &&
                   (Node<B> || std::is_arithmetic_v<B>);

template <class A, class B>
using node_side = std::conditional_t<Node<A>, A, B>;

#define LAMINAR_EXPR_BINARY(op, functor)                                                   \
  template <class A, class B>                                                              \
    requires Operands<A, B>                                                                \
  auto operator op(const A& a, const B& b) {                                               \
    using E = node_side<A, B>;                                                             \
    return map(functor{}, as_node<E>(a), as_node<E>(b));                                   \
  }
LAMINAR_EXPR_BINARY(+, Plus)
LAMINAR_EXPR_BINARY(-, Minus)
LAMINAR_EXPR_BINARY(*, Multiplies)
LAMINAR_EXPR_BINARY(/, Divides)
LAMINAR_EXPR_BINARY(>, Greater)
#undef LAMINAR_EXPR_BINARY

template <Node A>
auto operator-(const A& a) {
  return map(Negate{}, a);
}

// where(mask, a, b): a where mask holds, else b.
template <Node M, class A, class B>
auto where(const M& mask, const A& a, const B& b) {
  using E = std::conditional_t<Node<A>, A, std::conditional_t<Node<B>, B, M>>;
  return map(Select{}, mask, as_node<E>(a), as_node<E>(b));
}

}  // namespace laminar::expr
