// Test-time augmentation views: which views each kind lists, and what each view
// does to a small hand-made image (mirror, reflect-border shift, both).
#include <doctest/doctest.h>

#include <cstdint>
#include <laminar/data/augment/tta.hpp>
#include <vector>

using namespace laminar;
using augment::Image;
using augment::TestTime;
using augment::TestView;

namespace {

using Pixels = std::vector<std::uint8_t>;

// Two channels of 3 x 4 pixels, value 100 c + 10 y + x, so every pixel tells
// where it came from.
constexpr int channels = 2, height = 3, width = 4;

Pixels source_pixels() {
  Pixels p(std::size_t(channels * height * width));
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) p[std::size_t((c * height + y) * width + x)] = std::uint8_t(100 * c + 10 * y + x);
  return p;
}

Pixels viewed(const TestView& view, Pixels in, int c = channels, int h = height, int w = width) {
  Pixels out(in.size(), 0);
  augment::apply_view(view, Image{in.data(), c, h, w}, Image{out.data(), c, h, w});
  return out;
}

// Channel 1 is channel 0 plus 100 everywhere.
Pixels both_channels(const std::vector<int>& channel_zero) {
  Pixels p;
  for (int c = 0; c < channels; ++c)
    for (const int v : channel_zero) p.push_back(std::uint8_t(v + 100 * c));
  return p;
}

// numpy's 'reflect' written as a walk that bounces off the edges, independent of
// the library's modular form.
int bounce(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

Pixels mirror_then_shift(const Pixels& in, int c_count, int h, int w, int dx, int dy) {
  Pixels mirrored(in.size()), out(in.size());
  for (int c = 0; c < c_count; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        mirrored[std::size_t((c * h + y) * w + x)] = in[std::size_t((c * h + y) * w + (w - 1 - x))];
  for (int c = 0; c < c_count; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        out[std::size_t((c * h + y) * w + x)] =
            mirrored[std::size_t((c * h + bounce(y - dy, h)) * w + bounce(x - dx, w))];
  return out;
}

bool same_view(const TestView& a, const TestView& b) { return a.flip == b.flip && a.dx == b.dx && a.dy == b.dy; }

}  // namespace

TEST_CASE("no test-time augmentation is the one identity view") {
  const auto views = augment::test_views(TestTime::none);
  REQUIRE(views.size() == 1);
  CHECK(same_view(views[0], {false, 0, 0}));
}

TEST_CASE("the flip views are the image as is and mirrored") {
  const auto views = augment::test_views(TestTime::flip);
  REQUIRE(views.size() == 2);
  CHECK(same_view(views[0], {false, 0, 0}));
  CHECK(same_view(views[1], {true, 0, 0}));
}

TEST_CASE("flip_translate lists six views of both flips and three diagonal shifts") {
  const auto views = augment::test_views(TestTime::flip_translate, 2);
  const std::vector<TestView> expected = {{false, 0, 0}, {false, 2, 2}, {false, -2, -2},
                                          {true, 0, 0},  {true, 2, 2},  {true, -2, -2}};
  REQUIRE(views.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("view " << i);
    CHECK(same_view(views[i], expected[i]));
  }
}

TEST_CASE("flip_translate shifts by one pixel by default") {
  const auto views = augment::test_views(TestTime::flip_translate);
  REQUIRE(views.size() == 6);
  CHECK(same_view(views[1], {false, 1, 1}));
  CHECK(same_view(views[5], {true, -1, -1}));
}

TEST_CASE("a negative translation is an error") {
  CHECK_THROWS_AS(augment::test_views(TestTime::flip_translate, -1), Error);
}

TEST_CASE("the identity view copies the image") {
  CHECK(viewed({false, 0, 0}, source_pixels()) == source_pixels());
}

TEST_CASE("the flip-only view is the mirror image") {
  CHECK(viewed({true, 0, 0}, source_pixels()) == both_channels({3, 2, 1, 0,  //
                                                                13, 12, 11, 10,  //
                                                                23, 22, 21, 20}));
}

TEST_CASE("a shift down-right fills the uncovered border by reflection") {
  // out(y, x) = in(reflect(y - 1), reflect(x - 1)); reflect(-1) = 1.
  CHECK(viewed({false, 1, 1}, source_pixels()) == both_channels({11, 10, 11, 12,  //
                                                                 1, 0, 1, 2,  //
                                                                 11, 10, 11, 12}));
}

TEST_CASE("a shift up-left fills the uncovered border by reflection") {
  // out(y, x) = in(reflect(y + 1), reflect(x + 1)); reflect(3) = 1 of 3 rows, reflect(4) = 2 of 4 columns.
  CHECK(viewed({false, -1, -1}, source_pixels()) == both_channels({11, 12, 13, 12,  //
                                                                   21, 22, 23, 22,  //
                                                                   11, 12, 13, 12}));
}

TEST_CASE("a flipped and shifted view is the mirror image shifted") {
  // By hand for the down-right shift: the mirror's rows are 3 2 1 0 (+10 y),
  // then out(y, x) = mirror(reflect(y - 1), reflect(x - 1)).
  CHECK(viewed({true, 1, 1}, source_pixels()) == both_channels({12, 13, 12, 11,  //
                                                                2, 3, 2, 1,  //
                                                                12, 13, 12, 11}));
  for (const TestView view : {TestView{true, 1, 1}, TestView{true, -1, -1}, TestView{true, 2, -1},
                              TestView{true, -3, 2}, TestView{true, 5, 4}}) {
    INFO("dx " << view.dx << ", dy " << view.dy);
    CHECK(viewed(view, source_pixels()) == mirror_then_shift(source_pixels(), channels, height, width, view.dx, view.dy));
  }
}

TEST_CASE("a flipped and shifted view of a single-row image is the mirror shifted") {
  const Pixels row = {10, 20, 30, 40, 50};
  for (const int dx : {1, -1, 2, -2}) {
    INFO("dx " << dx);
    CHECK(viewed({true, dx, dx}, row, 1, 1, 5) == mirror_then_shift(row, 1, 1, 5, dx, dx));
  }
}
