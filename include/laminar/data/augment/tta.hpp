// Test-time augmentation views: deterministic transforms of an evaluation
// image whose logits evaluate() averages. flip_translate is the six views of
// the fast CIFAR-10 recipes: {as is, mirrored} x {no shift, one pixel down-right,
// one pixel up-left}, the uncovered border reflected.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../core/error.hpp"
#include "geometric.hpp"

namespace laminar::augment {

enum class TestTime { none, flip, flip_translate };

struct TestView {
  bool flip = false;
  int dx = 0, dy = 0;  // content moves right by dx, down by dy
};

inline std::vector<TestView> test_views(TestTime kind, int translate = 1) {
  if (translate < 0) throw Error("test_views: translation " + std::to_string(translate) + " is negative");
  switch (kind) {
    case TestTime::none: return {{}};
    case TestTime::flip: return {{}, {true, 0, 0}};
    case TestTime::flip_translate: {
      std::vector<TestView> views;
      for (const bool flip : {false, true})
        for (const int shift : {0, translate, -translate}) views.push_back({flip, shift, shift});
      return views;
    }
  }
  return {{}};
}

// One view of image `in` written to `out` (same shape, other memory): mirrored
// if asked, then shifted. Mirroring after a shift by -dx is the same map, and
// lets the mirror run in place, so no third buffer is needed.
inline void apply_view(const TestView& view, const Image& in, const Image& out) {
  if (!view.flip) return detail::shift(in, out, view.dx, view.dy, Border::reflect, 0);
  if (view.dx == 0 && view.dy == 0) return detail::mirror(in, out);
  detail::shift(in, out, -view.dx, view.dy, Border::reflect, 0);
  const long rows = long(out.channels) * out.height;
  for (long r = 0; r < rows; ++r) {
    std::uint8_t* row = out.data + r * out.width;
    for (int x = 0, y = out.width - 1; x < y; ++x, --y) std::swap(row[x], row[y]);
  }
}

}  // namespace laminar::augment
