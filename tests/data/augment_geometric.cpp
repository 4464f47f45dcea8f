// Geometric and occlusion augmentations: exact outputs on small hand-made
// images, the ranges and distributions of what they draw, identity settings,
// and reproducibility from (seed, epoch, index).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <laminar/data/augment/geometric.hpp>
#include <laminar/data/augment/occlusion.hpp>
#include <numeric>
#include <tuple>
#include <vector>

using namespace laminar;
using augment::Border;
using augment::CropBox;
using augment::Draw;
using augment::Image;

namespace {

using Pixels = std::vector<std::uint8_t>;

// A (C, H, W) image that owns its pixels.
struct Picture {
  int channels, height, width;
  Pixels pixels;
  Image view() { return {pixels.data(), channels, height, width}; }
  std::uint8_t at(int c, int y, int x) const { return pixels[std::size_t((c * height + y) * width + x)]; }
};

// Pixel values from a function of (c, y, x).
template <class F>
Picture picture(int channels, int height, int width, F value) {
  Picture p{channels, height, width, Pixels(std::size_t(channels * height * width))};
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        p.pixels[std::size_t((c * height + y) * width + x)] = std::uint8_t(value(c, y, x));
  return p;
}

Picture noise(int channels, int height, int width) {
  return picture(channels, height, width, [&](int c, int y, int x) {
    return philox::bits(5, 0, 0, std::uint64_t((c * height + y) * width + x)) & 0xff;
  });
}

// The picture through one transform, as sample `index` of (seed, epoch).
template <class T>
Picture augmented(const T& transform, Picture p, std::uint64_t index = 0, std::uint64_t seed = 1,
                  std::uint32_t epoch = 0) {
  Pixels spare(p.pixels.size());
  augment::pipeline(transform).run(p.view(), Image{spare.data(), p.channels, p.height, p.width}, seed, epoch, index);
  return p;
}

// The Draw that the transform of a one-step pipeline gets for that sample.
Draw draw_for(std::uint64_t index, std::uint64_t seed = 1, std::uint32_t epoch = 0) {
  return Draw(seed, epoch, index, 0);
}

// Every H x W window of a padded (C, H + 2 pad, W + 2 pad) picture, row-major
// by offset (y, x).
std::vector<Pixels> windows(const Picture& padded, int height, int width) {
  std::vector<Pixels> all;
  for (int oy = 0; oy + height <= padded.height; ++oy)
    for (int ox = 0; ox + width <= padded.width; ++ox)
      all.push_back(picture(padded.channels, height, width, [&](int c, int y, int x) {
                      return padded.at(c, y + oy, x + ox);
                    }).pixels);
  return all;
}

// The offsets whose window equals the output.
std::vector<int> matching(const std::vector<Pixels>& candidates, const Pixels& output) {
  std::vector<int> found;
  for (std::size_t k = 0; k < candidates.size(); ++k)
    if (candidates[k] == output) found.push_back(int(k));
  return found;
}

// numpy's 'reflect' for one index, by walking: a step past an end turns back
// from the pixel before it.
int mirrored(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

// value = 3 x + 7 y + 10: bilinear interpolation reproduces it exactly, so
// an output pixel tells the point it was sampled at.
Picture ramp(int height, int width) {
  return picture(1, height, width, [](int, int y, int x) { return 3 * x + 7 * y + 10; });
}
double ramp_at(double x, double y) { return 3 * x + 7 * y + 10; }

}  // namespace

TEST_CASE("hflip mirrors each row of each channel") {
  const Picture in = picture(2, 2, 3, [](int c, int y, int x) { return 100 * c + 10 * y + x; });
  const Pixels expected{2, 1, 0, 12, 11, 10, 102, 101, 100, 112, 111, 110};
  CHECK(augmented(augment::hflip(), in).pixels == expected);
}

TEST_CASE("flip_view mirrors every image, whatever its seed and index") {
  const Picture in = noise(3, 5, 7);
  const Pixels flipped = augmented(augment::hflip(), in).pixels;
  for (std::uint64_t index = 0; index < 20; ++index)
    CHECK(augmented(augment::flip_view(), in, index, index * 31 + 1).pixels == flipped);
}

TEST_CASE("alternating_flip shows each image mirrored in exactly one of every two consecutive epochs") {
  const Picture in = noise(3, 4, 5);
  const Pixels mirrored = augmented(augment::hflip(), in).pixels;
  int mirrored_in_epoch0 = 0;
  for (std::uint64_t index = 0; index < 200; ++index) {
    std::vector<bool> flipped;
    for (std::uint32_t epoch = 0; epoch < 6; ++epoch) {
      const Pixels out = augmented(augment::alternating_flip(), in, index, 7, epoch).pixels;
      REQUIRE((out == mirrored || out == in.pixels));
      flipped.push_back(out == mirrored);
    }
    for (std::size_t e = 1; e < flipped.size(); ++e) CHECK(flipped[e] != flipped[e - 1]);
    mirrored_in_epoch0 += flipped[0];
  }
  // The per-image coin is fair: 200 images, mean 100, standard deviation ~7.
  CHECK(mirrored_in_epoch0 > 70);
  CHECK(mirrored_in_epoch0 < 130);
}

TEST_CASE("alternating_flip's coin depends on the seed and the image, not on the epoch it is asked in") {
  const Picture in = noise(1, 3, 3);
  const Pixels mirrored = augmented(augment::hflip(), in).pixels;
  int differ_by_seed = 0;
  for (std::uint64_t index = 0; index < 64; ++index) {
    const bool seed1 = augmented(augment::alternating_flip(), in, index, 1, 0).pixels == mirrored;
    const bool seed2 = augmented(augment::alternating_flip(), in, index, 2, 0).pixels == mirrored;
    differ_by_seed += seed1 != seed2;
    // Epoch 4 has epoch 0's parity, so it repeats epoch 0's choice.
    CHECK((augmented(augment::alternating_flip(), in, index, 1, 4).pixels == mirrored) == seed1);
  }
  CHECK(differ_by_seed > 10);
}

TEST_CASE("pad_crop with a zero border outputs a window of the zero-padded image") {
  const Picture in = picture(1, 3, 4, [](int, int y, int x) { return 1 + 4 * y + x; });
  const Picture padded{1, 5, 6, Pixels{0, 0, 0,  0,  0,  0,  //
                                       0, 1, 2,  3,  4,  0,  //
                                       0, 5, 6,  7,  8,  0,  //
                                       0, 9, 10, 11, 12, 0,  //
                                       0, 0, 0,  0,  0,  0}};
  const auto candidates = windows(padded, 3, 4);
  for (std::uint64_t index = 0; index < 50; ++index)
    CHECK(matching(candidates, augmented(augment::pad_crop(1), in, index).pixels).size() == 1);
}

TEST_CASE("pad_crop with a reflect border outputs a window of the image mirrored without repeating its edge") {
  const Picture in = picture(1, 3, 4, [](int, int y, int x) { return 1 + 4 * y + x; });
  const Picture padded{1, 5, 6, Pixels{6,  5, 6,  7,  8,  7,   //
                                       2,  1, 2,  3,  4,  3,   //
                                       6,  5, 6,  7,  8,  7,   //
                                       10, 9, 10, 11, 12, 11,  //
                                       6,  5, 6,  7,  8,  7}};
  const auto candidates = windows(padded, 3, 4);
  for (std::uint64_t index = 0; index < 50; ++index)
    CHECK(matching(candidates, augmented(augment::pad_crop(1, Border::reflect), in, index).pixels).size() == 1);
}

TEST_CASE("reflect padding wider than the image keeps mirroring, as numpy's 'reflect' does") {
  const Picture in{1, 1, 3, Pixels{1, 2, 3}};
  const Picture padded{1, 1, 11, Pixels{1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3}};  // np.pad([1, 2, 3], 4, 'reflect')
  const auto candidates = windows(padded, 1, 3);
  for (std::uint64_t index = 0; index < 30; ++index)
    CHECK(!matching(candidates, augmented(augment::pad_crop(4, Border::reflect), in, index).pixels).empty());
}

TEST_CASE("pad_crop draws every offset from 0 to 2 pad on both axes") {
  // Two channels and unique values, so exactly one window matches each output.
  const int pad = 2;
  const Picture in = picture(2, 5, 7, [](int c, int y, int x) { return 1 + 100 * c + 7 * y + x; });
  for (Border border : {Border::zero, Border::reflect}) {
    const Picture padded = picture(2, 5 + 2 * pad, 7 + 2 * pad, [&](int c, int y, int x) {
      const int sy = y - pad, sx = x - pad;
      if (border == Border::zero && (sy < 0 || sy >= 5 || sx < 0 || sx >= 7)) return 0;
      return int(in.at(c, mirrored(sy, 5), mirrored(sx, 7)));
    });
    const auto candidates = windows(padded, 5, 7);
    std::vector<int> seen(candidates.size());
    for (std::uint64_t index = 0; index < 400; ++index) {
      const auto found = matching(candidates, augmented(augment::pad_crop(pad, border), in, index).pixels);
      REQUIRE(found.size() == 1);
      ++seen[std::size_t(found[0])];
    }
    for (std::size_t k = 0; k < seen.size(); ++k) CHECK(seen[k] > 0);
  }
}

TEST_CASE("translate moves content by whole pixels and fills the uncovered border") {
  const Picture in = picture(1, 3, 4, [](int, int y, int x) { return 1 + 4 * y + x; });
  const Pixels right_one_up_one{9, 5, 6,  7,   //
                                9, 9, 10, 11,  //
                                9, 9, 9,  9};
  CHECK(augmented(augment::translate(1, -1, 9), in).pixels == right_one_up_one);
  const Pixels left_two_down_one{0, 0, 0, 0,  //
                                 3, 4, 0, 0,  //
                                 7, 8, 0, 0};
  CHECK(augmented(augment::translate(-2, 1), in).pixels == left_two_down_one);
  CHECK(augmented(augment::translate(4, 0, 7), in).pixels == Pixels(12, 7));
}

TEST_CASE("rotate(90) on a square image is the transpose followed by a horizontal flip") {
  const Picture in = noise(2, 6, 6);
  const Picture out = augmented(augment::rotate(90), in);
  // Clockwise on screen: the top-left corner goes to the top-right.
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 6; ++x) CHECK(std::abs(out.at(c, y, x) - in.at(c, 5 - x, y)) <= 1);
}

TEST_CASE("affine samples the input bilinearly at the inverse image of each pixel, fill outside") {
  // Independent of the library's algebra: the forward map about the centre is
  // p -> c + t + s R(a) [1 tan(h); 0 1] (p - c), inverted here numerically.
  const int height = 12, width = 16;
  const Picture in = ramp(height, width);
  const auto transform = augment::affine(
      {.scale_low = 0.8f, .scale_high = 1.2f, .translate = 0.2f, .rotate = 25, .shear = 8, .fill = 200});
  for (std::uint64_t index = 0; index < 20; ++index) {
    Draw draw = draw_for(index);
    const augment::AffineParameters p = transform.parameters(height, width, draw);
    const double radians = 3.14159265358979323846 / 180, s = p.scale, angle = p.rotate * radians;
    const double h = std::tan(p.shear * radians);
    const double m00 = s * std::cos(angle), m01 = s * (std::cos(angle) * h - std::sin(angle));
    const double m10 = s * std::sin(angle), m11 = s * (std::sin(angle) * h + std::cos(angle));
    const double cx = (width - 1) / 2.0, cy = (height - 1) / 2.0, det = m00 * m11 - m01 * m10;
    const Picture out = augmented(transform, in, index);
    int inside = 0;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const double u = x - cx - p.translate_x, v = y - cy - p.translate_y;
        const double sx = cx + (m11 * u - m01 * v) / det, sy = cy + (-m10 * u + m00 * v) / det;
        if (sx >= 0 && sx <= width - 1 && sy >= 0 && sy <= height - 1) {
          CHECK(std::abs(out.at(0, y, x) - ramp_at(sx, sy)) <= 1.0);
          ++inside;
        } else if (sx < -1 || sx > width || sy < -1 || sy > height) {
          CHECK(out.at(0, y, x) == 200);
        }
      }
    CHECK(inside > 0);
  }
}

TEST_CASE("affine draws scale, translation, rotation and shear uniformly within their ranges") {
  const auto transform =
      augment::affine({.scale_low = 0.8f, .scale_high = 1.2f, .translate = 0.2f, .rotate = 25, .shear = 8});
  const int height = 20, width = 40, draws = 4000;
  double low[5] = {1e9, 1e9, 1e9, 1e9, 1e9}, high[5] = {-1e9, -1e9, -1e9, -1e9, -1e9}, sum[5] = {};
  for (int i = 0; i < draws; ++i) {
    Draw draw = draw_for(std::uint64_t(i));
    const auto p = transform.parameters(height, width, draw);
    const double values[5] = {p.scale, p.translate_x, p.translate_y, p.rotate, p.shear};
    for (int k = 0; k < 5; ++k) {
      low[k] = std::min(low[k], values[k]);
      high[k] = std::max(high[k], values[k]);
      sum[k] += values[k];
    }
  }
  const double bound[5][2] = {{0.8, 1.2}, {-8, 8}, {-4, 4}, {-25, 25}, {-8, 8}};
  for (int k = 0; k < 5; ++k) {
    const double span = bound[k][1] - bound[k][0];
    CHECK(low[k] >= bound[k][0]);
    CHECK(high[k] <= bound[k][1]);
    CHECK(low[k] < bound[k][0] + 0.01 * span);
    CHECK(high[k] > bound[k][1] - 0.01 * span);
    CHECK(sum[k] / draws == doctest::Approx((bound[k][0] + bound[k][1]) / 2).epsilon(0.02 * span));
  }
}

TEST_CASE("crop_percent and random_resized_crop resize their box bilinearly with pixel centres aligned") {
  // Output pixel x samples box coordinate (x + 1/2) w / W - 1/2, clamped to the box.
  const int height = 16, width = 16;
  const Picture in = ramp(height, width);
  auto check = [&](const auto& transform, std::uint64_t index) {
    Draw draw = draw_for(index);
    const CropBox box = transform.box(height, width, draw);
    const Picture out = augmented(transform, in, index);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const double bx = std::clamp((x + 0.5) * box.width / width - 0.5, 0.0, box.width - 1.0);
        const double by = std::clamp((y + 0.5) * box.height / height - 0.5, 0.0, box.height - 1.0);
        CHECK(std::abs(out.at(0, y, x) - ramp_at(box.left + bx, box.top + by)) <= 0.5 + 1e-3);
      }
  };
  for (std::uint64_t index = 0; index < 10; ++index) {
    check(augment::crop_percent(0.f, 0.3f), index);
    check(augment::random_resized_crop(0.2f, 1.f), index);
  }
}

TEST_CASE("crop resizing matches a plain bilinear reference on images wider than its column chunk") {
  const int channels = 2, height = 3, width = 600;
  const Picture in = noise(channels, height, width);
  auto check = [&](const auto& transform, std::uint64_t index) {
    Draw draw = draw_for(index);
    const CropBox box = transform.box(height, width, draw);
    const Picture out = augmented(transform, in, index);
    auto axis = [](int i, int box_extent, int extent) {  // (first tap, second tap, weight of the second)
      const double t = std::clamp((i + 0.5) * box_extent / extent - 0.5, 0.0, box_extent - 1.0);
      const int first = int(t);
      return std::tuple{first, std::min(first + 1, box_extent - 1), t - first};
    };
    int worst = 0;
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
          const auto [y0, y1, fy] = axis(y, box.height, height);
          const auto [x0, x1, fx] = axis(x, box.width, width);
          auto p = [&](int by, int bx) { return double(in.at(c, box.top + by, box.left + bx)); };
          const double top = p(y0, x0) + fx * (p(y0, x1) - p(y0, x0));
          const double bottom = p(y1, x0) + fx * (p(y1, x1) - p(y1, x0));
          worst = std::max(worst, int(std::abs(out.at(c, y, x) - (top + fy * (bottom - top)))));
        }
    CHECK(worst <= 1);
  };
  for (std::uint64_t index = 0; index < 4; ++index) {
    check(augment::crop_percent(0.05f, 0.3f), index);
    check(augment::random_resized_crop(0.3f, 1.f, 0.1f, 10.f), index);
  }
}

TEST_CASE("crop_percent crops each side independently by a fraction from low to high of its extent") {
  const float low = 0.05f, high = 0.25f;
  const auto transform = augment::crop_percent(low, high);
  const int height = 200, width = 100, draws = 4000;
  double sum[4] = {};
  int unequal = 0;
  for (int i = 0; i < draws; ++i) {
    Draw draw = draw_for(std::uint64_t(i));
    const CropBox box = transform.box(height, width, draw);
    const int sides[4] = {box.top, width - box.left - box.width, height - box.top - box.height, box.left};
    const int extent[4] = {height, width, height, width};
    for (int k = 0; k < 4; ++k) {
      REQUIRE(sides[k] >= int(std::nearbyint(low * float(extent[k]))));
      REQUIRE(sides[k] <= int(std::nearbyint(high * float(extent[k]))));
      sum[k] += double(sides[k]) / extent[k];
    }
    unequal += sides[0] != sides[2];
  }
  for (int k = 0; k < 4; ++k) CHECK(sum[k] / draws == doctest::Approx((low + high) / 2).epsilon(0.05));
  CHECK(unequal > draws / 2);
}

TEST_CASE("random_resized_crop boxes have area fraction and aspect ratio within range, up to rounding") {
  const float scale_low = 0.25f, scale_high = 0.75f, ratio_low = 3 / 4.f, ratio_high = 4 / 3.f;
  const auto transform = augment::random_resized_crop(scale_low, scale_high, ratio_low, ratio_high);
  const int height = 48, width = 64, draws = 4000;
  const double area = double(height) * width;
  double smallest = 1, largest = 0;
  int tall = 0, wide = 0;
  for (int i = 0; i < draws; ++i) {
    Draw draw = draw_for(std::uint64_t(i));
    const CropBox b = transform.box(height, width, draw);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= height);
    REQUIRE(b.left + b.width <= width);
    // w and h are the drawn sqrt(area r) and sqrt(area / r), each rounded.
    CHECK((b.width + 0.5) * (b.height + 0.5) >= scale_low * area);
    CHECK((b.width - 0.5) * (b.height - 0.5) <= scale_high * area);
    CHECK((b.width + 0.5) / (b.height - 0.5) >= ratio_low);
    CHECK((b.width - 0.5) / (b.height + 0.5) <= ratio_high);
    const double fraction = b.width * b.height / area;
    smallest = std::min(smallest, fraction);
    largest = std::max(largest, fraction);
    tall += b.height > b.width;
    wide += b.width > b.height;
  }
  CHECK(smallest < scale_low + 0.02);
  CHECK(largest > scale_high - 0.02);
  CHECK(tall > draws / 5);
  CHECK(wide > draws / 5);
}

TEST_CASE("random_resized_crop falls back to the centred box of the nearest ratio when no attempt fits") {
  // On a square image no box of area >= 90% has a ratio in [2, 3].
  const auto transform = augment::random_resized_crop(0.9f, 1.f, 2.f, 3.f);
  for (std::uint64_t index = 0; index < 20; ++index) {
    Draw draw = draw_for(index);
    CHECK(transform.box(16, 16, draw) == CropBox{4, 0, 8, 16});
  }
}

TEST_CASE("identity settings return the input unchanged") {
  const Picture in = noise(3, 8, 8);
  for (std::uint64_t index = 0; index < 5; ++index) {
    CHECK(augmented(augment::pad_crop(0), in, index).pixels == in.pixels);
    CHECK(augmented(augment::pad_crop(0, Border::reflect), in, index).pixels == in.pixels);
    CHECK(augmented(augment::crop_percent(0.f, 0.f), in, index).pixels == in.pixels);
    CHECK(augmented(augment::random_resized_crop(1.f, 1.f, 1.f, 1.f), in, index).pixels == in.pixels);
    CHECK(augmented(augment::affine({}), in, index).pixels == in.pixels);
    CHECK(augmented(augment::translate(0, 0), in, index).pixels == in.pixels);
    CHECK(augmented(augment::rotate(0), in, index).pixels == in.pixels);
  }
}

TEST_CASE("cutout sets exactly one square, clipped at the border, to zero and leaves every other pixel") {
  const int height = 10, width = 12;
  const Picture in = picture(3, height, width, [](int c, int y, int x) { return 1 + (c * 89 + y * 13 + x) % 250; });
  // The rows (or columns) that a square of `size` centred at `centre` covers.
  auto span = [](int centre, int size, int extent) {
    return std::pair{std::max(centre - size / 2, 0), std::min(centre - size / 2 + size, extent)};
  };
  for (int size : {4, 5}) {
    int clipped = 0;
    for (std::uint64_t index = 0; index < 300; ++index) {
      const Picture out = augmented(augment::cutout(size), in, index);
      // The bounding box of the zeros of channel 0.
      int top = height, bottom = 0, left = width, right = 0;
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
          if (out.at(0, y, x) == 0) {
            top = std::min(top, y);
            bottom = std::max(bottom, y + 1);
            left = std::min(left, x);
            right = std::max(right, x + 1);
          }
      bool is_square = false;
      for (int cy = 0; cy < height; ++cy)
        for (int cx = 0; cx < width; ++cx)
          is_square |=
              span(cy, size, height) == std::pair{top, bottom} && span(cx, size, width) == std::pair{left, right};
      CHECK(is_square);
      clipped += bottom - top < size || right - left < size;
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < height; ++y)
          for (int x = 0; x < width; ++x) {
            const bool hole = y >= top && y < bottom && x >= left && x < right;
            REQUIRE(out.at(c, y, x) == (hole ? 0 : in.at(c, y, x)));
          }
    }
    CHECK(clipped > 0);
  }
}

TEST_CASE("cutout fills its square with the given value of each channel") {
  const Picture in = picture(3, 8, 8, [](int, int, int) { return 255; });
  const Picture out = augmented(augment::cutout(3, std::array<std::uint8_t, 3>{10, 20, 30}), in);
  const std::uint8_t fill[3] = {10, 20, 30};
  for (int c = 0; c < 3; ++c) {
    int filled = 0;
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        REQUIRE((out.at(c, y, x) == 255 || out.at(c, y, x) == fill[c]));
        filled += out.at(c, y, x) == fill[c];
      }
    CHECK(filled > 0);
    CHECK(filled <= 9);
  }
}

TEST_CASE("cutout's centre is uniform over the whole image") {
  // A single marked pixel per draw: cutout(1) hides exactly its centre.
  const int height = 8, width = 10, draws = 4000;
  const Picture in = picture(1, height, width, [](int, int, int) { return 1; });
  std::vector<int> rows(height), columns(width);
  for (int i = 0; i < draws; ++i) {
    const Picture out = augmented(augment::cutout(1), in, std::uint64_t(i));
    const auto hole = std::find(out.pixels.begin(), out.pixels.end(), 0) - out.pixels.begin();
    ++rows[std::size_t(hole / width)];
    ++columns[std::size_t(hole % width)];
  }
  for (int count : rows) CHECK(count == doctest::Approx(double(draws) / height).epsilon(0.15));
  for (int count : columns) CHECK(count == doctest::Approx(double(draws) / width).epsilon(0.15));
}

TEST_CASE("with(0) leaves every image unchanged and with(1) always applies") {
  const Picture in = noise(3, 8, 8);
  const Pixels flipped = augmented(augment::hflip(), in).pixels;
  for (std::uint64_t index = 0; index < 50; ++index) {
    CHECK(augmented(augment::cutout(4).with(0.f), in, index).pixels == in.pixels);
    CHECK(augmented(augment::pad_crop(2, Border::reflect).with(0.f), in, index).pixels == in.pixels);
    CHECK(augmented(augment::hflip().with(1.f), in, index).pixels == flipped);
    CHECK(augmented(augment::cutout(4).with(1.f), in, index).pixels != in.pixels);
    CHECK(augmented(augment::rotate(90).with(1.f), in, index).pixels == augmented(augment::rotate(90), in).pixels);
  }
}

TEST_CASE("the same seed, epoch and index give the same output, and another index another") {
  const auto everything = augment::pad_crop(2, Border::reflect) | augment::hflip().with(0.5f) |
                          augment::crop_percent(0.f, 0.1f) | augment::random_resized_crop(0.3f) |
                          augment::affine({.scale_low = 0.9f, .scale_high = 1.1f, .translate = 0.1f, .rotate = 15}) |
                          augment::cutout(3);
  const int n = 6, channels = 3, height = 12, width = 12, size = channels * height * width;
  Pixels batch;
  for (int i = 0; i < n; ++i) {
    const Picture p = noise(channels, height, width);
    batch.insert(batch.end(), p.pixels.begin(), p.pixels.end());
  }
  const long indices[n] = {0, 1, 2, 3, 4, 5}, reversed[n] = {5, 4, 3, 2, 1, 0};
  Pixels first = batch, second = batch, swapped = batch;
  everything.apply(first.data(), n, channels, height, width, indices, 17, 3);
  everything.apply(second.data(), n, channels, height, width, indices, 17, 3);
  everything.apply(swapped.data(), n, channels, height, width, reversed, 17, 3);
  CHECK(first == second);
  // The images are equal, so sample i under index 5 - i must match sample 5 - i.
  for (int i = 0; i < n; ++i)
    CHECK(std::equal(first.begin() + i * size, first.begin() + (i + 1) * size, swapped.begin() + (n - 1 - i) * size));
  // Pairwise rather than through std::set<Pixels>, whose comparison GCC 12
  // misreports with -Wstringop-overread at -O3.
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j)
      CHECK_FALSE(std::equal(first.begin() + i * size, first.begin() + (i + 1) * size, first.begin() + j * size));
}

TEST_CASE("invalid arguments are refused with the transform's name and the value") {
  CHECK_THROWS_WITH_AS(augment::pad_crop(-1), doctest::Contains("pad_crop: the padding -1"), Error);
  CHECK_THROWS_WITH_AS(augment::crop_percent(0.2f, 0.1f), doctest::Contains("crop_percent: the range [0.2, 0.1]"),
                       Error);
  CHECK_THROWS_WITH_AS(augment::crop_percent(0.f, 0.5f), doctest::Contains("[0, 0.5]"), Error);
  CHECK_THROWS_WITH_AS(augment::random_resized_crop(0.f), doctest::Contains("random_resized_crop: the scale range [0"),
                       Error);
  CHECK_THROWS_WITH_AS(augment::random_resized_crop(0.5f, 1.f, 2.f, 1.f),
                       doctest::Contains("random_resized_crop: the ratio range [2, 1]"), Error);
  CHECK_THROWS_WITH_AS(augment::affine({.scale_low = 0}), doctest::Contains("affine: the scale range [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(augment::affine({.translate = -0.1f}), doctest::Contains("affine: the translation -0.1"), Error);
  CHECK_THROWS_WITH_AS(augment::affine({.rotate = -5}), doctest::Contains("affine: the rotation -5"), Error);
  CHECK_THROWS_WITH_AS(augment::affine({.shear = 90}), doctest::Contains("affine: the shear 90"), Error);
  CHECK_THROWS_WITH_AS(augment::cutout(0), doctest::Contains("cutout: the square's side 0"), Error);
}
