// The fusion rewrite of a layer list: every fusion laminar does, in one place.
// fused_list<Layers...> is the list a network actually runs; fusion_plan<Net>()
// prints which original layers each of its ops covers.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "../layers/fused.hpp"
#include "../layers/input.hpp"
#include "chain.hpp"
#include "residual.hpp"
#include "residual_act.hpp"

namespace laminar {

template <class First, class... Layers>
struct Sequential;

namespace detail {

// Greedy, left to right, first rule that matches:
//   Conv, BatchNorm, activation      -> ConvBnAct
//   Conv, BatchNorm                  -> ConvBn
//   BatchNorm, activation            -> BnAct   (airbench's conv - pool - BN - GELU)
//   Residual<branch...>, activation  -> ResidualAct<Residual<fused branch...>, activation>
//   Residual<branch...>              -> Residual<fused branch...>
//   Shortcut<layers...>              -> Shortcut<fused layers...>  (a Residual's first argument)
//   anything else                    -> itself
// A more specialised pattern wins, so the three-layer rule beats the two-layer one.
template <class Done, class... Rest>
struct Fuse {
  using type = Done;
};

template <class L>
struct FuseInside {
  using type = L;
};

template <class... Done, class L, class... Rest>
struct Fuse<type_list<Done...>, L, Rest...>
    : Fuse<type_list<Done..., typename FuseInside<L>::type>, Rest...> {};

template <class... Done, int KH, int KW, int Cout, int Stride, int Pad, double Momentum,
          double Epsilon, class F, class... Rest>
struct Fuse<type_list<Done...>, Conv<KH, KW, Cout, Stride, Pad>, BatchNormWith<Momentum, Epsilon>,
            Activation<F>, Rest...>
    : Fuse<type_list<Done..., ConvBnAct<Conv<KH, KW, Cout, Stride, Pad>,
                                        BatchNormWith<Momentum, Epsilon>, Activation<F>>>,
           Rest...> {};

template <class... Done, int KH, int KW, int Cout, int Stride, int Pad, double Momentum,
          double Epsilon, class... Rest>
struct Fuse<type_list<Done...>, Conv<KH, KW, Cout, Stride, Pad>, BatchNormWith<Momentum, Epsilon>,
            Rest...>
    : Fuse<type_list<Done..., ConvBn<Conv<KH, KW, Cout, Stride, Pad>,
                                     BatchNormWith<Momentum, Epsilon>>>,
           Rest...> {};

template <class... Done, double Momentum, double Epsilon, class F, class... Rest>
struct Fuse<type_list<Done...>, BatchNormWith<Momentum, Epsilon>, Activation<F>, Rest...>
    : Fuse<type_list<Done..., BnAct<BatchNormWith<Momentum, Epsilon>, Activation<F>>>, Rest...> {};

template <class List>
struct ResidualOf;
template <class... Ops>
struct ResidualOf<type_list<Ops...>> {
  using type = Residual<Ops...>;
};

template <class... Layers>
struct FuseInside<Residual<Layers...>> {
  using type = typename ResidualOf<typename Fuse<type_list<>, Layers...>::type>::type;
};

template <class List>
struct ShortcutOf;
template <class... Ops>
struct ShortcutOf<type_list<Ops...>> {
  using type = Shortcut<Ops...>;
};

// A Residual's Shortcut is the first element of its list, so the rule above
// reaches it; it fuses on its own, never with the branch layers after it.
template <class... Layers>
struct FuseInside<Shortcut<Layers...>> {
  using type = typename ShortcutOf<typename Fuse<type_list<>, Layers...>::type>::type;
};

template <class... Done, class... Layers, class F, class... Rest>
struct Fuse<type_list<Done...>, Residual<Layers...>, Activation<F>, Rest...>
    : Fuse<type_list<Done..., ResidualAct<typename FuseInside<Residual<Layers...>>::type, Activation<F>>>,
           Rest...> {};

template <class In, class T, class B, class List>
struct ChainOf;
template <class In, class T, class B, class... Ops>
struct ChainOf<In, T, B, type_list<Ops...>> {
  using type = Chain<In, T, B, Ops...>;
};

}  // namespace detail

// The ops a layer list runs as, a type_list.
template <class... Layers>
using fused_list = typename detail::Fuse<type_list<>, Layers...>::type;

// The chain that runs an op list: chain_of<In, T, B, fused_list<Layers...>>.
template <class In, class T, class B, class List>
using chain_of = typename detail::ChainOf<In, T, B, List>::type;

// How many original layers each op of fused_list<Layers...> covers, usable in
// constant expressions: fused_spans<Conv<3,3,8>, BatchNorm, ReLU, Dense<10>> is {3, 1}.
template <class... Layers>
inline constexpr auto fused_spans = []<class... Ops>(type_list<Ops...>*) {
  return std::array<int, sizeof...(Ops)>{detail::span_of<Ops>()...};
}(static_cast<fused_list<Layers...>*>(nullptr));

// One op of a fused plan: the original positions it covers (dotted inside
// residual branches, "4.1", and shortcuts, "4.shortcut.2"), its name and its
// nesting depth.
struct PlanEntry {
  std::string first, last;
  std::string op;
  int depth = 0;
};

namespace detail {

// The residual block an op runs, alone or with its activation.
template <class Op>
struct BlockOf {};
template <class... Layers>
struct BlockOf<Residual<Layers...>> {
  using type = Residual<Layers...>;
};
template <class... Layers, class Act>
struct BlockOf<ResidualAct<Residual<Layers...>, Act>> {
  using type = Residual<Layers...>;
};

template <class... Ops>
void plan_entries(std::vector<PlanEntry>& entries, const std::string& prefix, int depth, type_list<Ops...>*) {
  int position = 1;
  const auto add = [&]<class Op>(Op*) {
    const int last = position + span_of<Op>() - 1;
    const std::string at = prefix + std::to_string(position);
    entries.push_back({at, prefix + std::to_string(last), Op::name(), depth});
    if constexpr (requires { typename BlockOf<Op>::type; }) {
      using Block = typename BlockOf<Op>::type;
      plan_entries(entries, at + ".", depth + 1, static_cast<typename Block::branch*>(nullptr));
      if constexpr (Block::explicit_shortcut)
        plan_entries(entries, at + ".shortcut.", depth + 1, static_cast<typename Block::shortcut::layers*>(nullptr));
    }
    position = last + 1;
  };
  (add(static_cast<Ops*>(nullptr)), ...);
}

}  // namespace detail

// The fused plan of a network's layer list, op by op, branches nested.
template <class... Layers>
std::vector<PlanEntry> plan_of() {
  std::vector<PlanEntry> entries;
  detail::plan_entries(entries, "", 0, static_cast<fused_list<Layers...>*>(nullptr));
  return entries;
}

// One line per op: "1-3  Conv<3,3,64>+BatchNorm+ReLU", a residual block's ops
// indented under it.
template <class Net>
std::string fusion_plan() {
  const std::vector<PlanEntry> entries = []<int... Dims, class... Layers>(Sequential<Input<Dims...>, Layers...>*) {
    return plan_of<Layers...>();
  }(static_cast<Net*>(nullptr));
  std::string s;
  for (const auto& e : entries) {
    std::string positions = std::string(2 * e.depth, ' ') + e.first;
    if (e.last != e.first) positions += "-" + e.last;
    s += positions + std::string(positions.size() < 12 ? 12 - positions.size() : 1, ' ') + e.op + "\n";
  }
  return s;
}

}  // namespace laminar
