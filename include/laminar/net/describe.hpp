// describe<Net>(): the layer table of a network — position, layer, output shape,
// parameter count, forward FLOPs per sample, and the fused op each layer runs in
// (net/fuse.hpp) — computed from the type alone.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "fuse.hpp"
#include "residual.hpp"
#include "sequential.hpp"

namespace laminar {

namespace detail {

struct DescribeRow {
  std::string position, layer, output;
  long parameters;
  double flops;
  std::string fused = {};  // "1-3 Conv<3,3,4>+BatchNorm+ReLU" on an op's first layer, "in 1-3" on the others
};

template <class... Layers>
struct IsResidual : std::false_type {};
template <class... Layers>
struct IsResidual<Residual<Layers...>> : std::true_type {};

template <class In, class... Layers>
void describe_rows(std::vector<DescribeRow>& rows, const std::string& prefix, int depth);

template <class In, class... Layers>
void describe_list(std::vector<DescribeRow>& rows, const std::string& prefix, int depth, type_list<Layers...>*) {
  describe_rows<In, Layers...>(rows, prefix, depth);
}

// A residual block's row, its branch's rows under it, then its shortcut's: the
// projection as one row "4.shortcut", a Shortcut<...> as that row and its own
// layers' rows, "4.shortcut.1", ..., as their parameters are named.
template <class L, class In>
void describe_layer(std::vector<DescribeRow>& rows, const std::string& position, int depth) {
  using Out = decltype(L::template output_shape<In>());
  rows.push_back({position, std::string(2 * depth, ' ') + L::name(), Out::name(),
                  L::template parameter_count<In>, L::template flops<In>});
  if constexpr (IsResidual<L>::value) {
    describe_list<In>(rows, position + ".", depth + 1, static_cast<typename L::branch*>(nullptr));
    if constexpr (!L::template identity<In>) {
      using S = typename L::template shortcut_of<In>;
      rows.push_back({position + ".shortcut", std::string(2 * depth + 2, ' ') + S::name(),
                      Out::name(), S::template parameter_count<In>, S::template flops<In>});
      if constexpr (L::explicit_shortcut)
        describe_list<In>(rows, position + ".shortcut.", depth + 2, static_cast<typename S::layers*>(nullptr));
    }
  }
}

template <class In, class... Layers>
void describe_rows(std::vector<DescribeRow>& rows, const std::string& prefix, int depth) {
  using Shapes = shapes_of<In, Layers...>;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (describe_layer<Layers, std::tuple_element_t<I, Shapes>>(rows, prefix + std::to_string(I + 1),
                                                             depth),
     ...);
  }(std::index_sequence_for<Layers...>{});
}

// Marks the rows of layers that run inside a fused op of `plan`.
inline void mark_fused(std::vector<DescribeRow>& rows, const std::vector<PlanEntry>& plan) {
  std::map<std::string, std::string> marks;
  for (const auto& op : plan) {
    if (op.first == op.last) continue;
    const std::string range = op.first + "-" + op.last;
    const std::size_t dot = op.first.rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : op.first.substr(0, dot + 1);
    const int first = std::stoi(op.first.substr(prefix.size())), last = std::stoi(op.last.substr(prefix.size()));
    marks[op.first] = range + " " + op.op;
    for (int k = first + 1; k <= last; ++k) marks[prefix + std::to_string(k)] = "in " + range;
  }
  for (auto& row : rows)
    if (const auto it = marks.find(row.position); it != marks.end()) row.fused = it->second;
}

inline std::string format_table(const std::string& input, const std::vector<DescribeRow>& rows,
                                 long total_parameters, double total_flops, bool fused) {
  std::size_t wp = 3, wl = 5, wo = 6;
  for (const auto& r : rows) {
    wp = std::max(wp, r.position.size());
    wl = std::max(wl, r.layer.size());
    wo = std::max(wo, r.output.size());
  }
  auto line = [&](const std::string& p, const std::string& l, const std::string& o,
                  const std::string& params, const std::string& flops, const std::string& op = {}) {
    char buffer[512];
    std::snprintf(buffer, sizeof buffer, "%-*s  %-*s  %-*s  %12s  %12s", int(wp), p.c_str(),
                  int(wl), l.c_str(), int(wo), o.c_str(), params.c_str(), flops.c_str());
    return std::string(buffer) + (op.empty() ? "" : "  " + op) + "\n";
  };
  auto mflops = [](double f) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3f", f / 1e6);
    return std::string(buffer);
  };
  std::string s = line("#", "layer", "output", "parameters", "MFLOP", fused ? "fused" : "");
  s += line("0", "Input", input, "", "");
  for (const auto& r : rows)
    s += line(r.position, r.layer, r.output, std::to_string(r.parameters), mflops(r.flops), r.fused);
  s += line("", "total", "", std::to_string(total_parameters), mflops(total_flops));
  return s;
}

}  // namespace detail

// Parameters (trainable) and forward FLOPs per sample of a whole network.
template <class Net>
struct NetworkCost;
template <int... Dims, class... Layers>
struct NetworkCost<Sequential<Input<Dims...>, Layers...>> {
  static constexpr long parameters = detail::list_parameter_count<Shape<Dims...>, Layers...>;
  static constexpr double flops = detail::list_flops<Shape<Dims...>, Layers...>;
};

template <class Net>
struct NetworkCost<Unfused<Net>> : NetworkCost<Net> {};

template <class Net>
std::string describe() {
  return [&]<int... Dims, class... Layers>(Sequential<Input<Dims...>, Layers...>*) {
    std::vector<detail::DescribeRow> rows;
    detail::describe_rows<Shape<Dims...>, Layers...>(rows, "", 0);
    if constexpr (Net::fused) detail::mark_fused(rows, plan_of<Layers...>());
    return detail::format_table(Shape<Dims...>::name(), rows, NetworkCost<Net>::parameters,
                                NetworkCost<Net>::flops, Net::fused);
  }(static_cast<Net*>(nullptr));
}

}  // namespace laminar
