// Geometric augmentations: flips, pad-and-crop, crop-and-resize, random affine
// maps, and the deterministic views (translate, flip_view, rotate) that
// test-time augmentation averages over. All of them follow transform.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "../../core/error.hpp"
#include "transform.hpp"

namespace laminar::augment {

// How pad_crop fills the padding: zeros, or the image mirrored about its edge
// pixel without repeating it (numpy's 'reflect': 2 1 | 0 1 2 3 | 2 1).
enum class Border { zero, reflect };

// A rectangle of the input, in whole pixels.
struct CropBox {
  int top, left, height, width;
  friend bool operator==(const CropBox&, const CropBox&) = default;
};

// One draw of affine's parameters; translations in pixels, angles in degrees.
struct AffineParameters {
  float scale = 1, translate_x = 0, translate_y = 0, rotate = 0, shear = 0;
};

namespace detail {

// A float as an error message shows it: 0.5, not 0.500000.
inline std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// out(c, y, x) = in(c, y - dy, x - dx): content moves by (dx, dy) whole pixels;
// what it uncovers is `fill` or, with Border::reflect, the mirrored image. Rows
// are copied with memcpy; only the uncovered strips are filled pixel by pixel.
inline void shift(const Image& in, const Image& out, int dx, int dy, Border border, std::uint8_t fill) {
  if (dx == 0 && dy == 0) return copy_image(in, out);
  const int height = in.height, width = in.width;
  // Output columns [begin, end) read input columns [begin - dx, end - dx);
  // begin <= end, and the columns outside that range are uncovered.
  const int begin = std::clamp(dx, 0, width), end = std::clamp(width + dx, 0, width);
  for (int c = 0; c < in.channels; ++c)
    for (int y = 0; y < height; ++y) {
      std::uint8_t* target = &out.at(c, y, 0);
      int source_y = y - dy;
      if (source_y < 0 || source_y >= height) {
        if (border == Border::zero) {
          std::memset(target, fill, std::size_t(width));
          continue;
        }
        source_y = reflect_index(source_y, height);
      }
      const std::uint8_t* source = &in.at(c, source_y, 0);
      if (border == Border::zero) {
        std::memset(target, fill, std::size_t(begin));
        std::memset(target + end, fill, std::size_t(width - end));
      } else {
        for (int x = 0; x < begin; ++x) target[x] = source[reflect_index(x - dx, width)];
        for (int x = end; x < width; ++x) target[x] = source[reflect_index(x - dx, width)];
      }
      if (end > begin) std::memcpy(target + begin, source + begin - dx, std::size_t(end - begin));
    }
}

// Every row reversed; a plain reversed loop, which compilers vectorise.
inline void mirror(const Image& in, const Image& out) {
  const int width = in.width;
  const long rows = long(in.channels) * in.height;
  for (long r = 0; r < rows; ++r) {
    const std::uint8_t* source = in.data + r * width;
    std::uint8_t* target = out.data + r * width;
    for (int x = 0; x < width; ++x) target[x] = source[width - 1 - x];
  }
}

// floor(v) for v >= -2 by truncation, avoiding a libm call in pixel loops.
inline int floor_from_minus_two(float v) { return int(v + 2.f) - 2; }

// Bilinear weights in fixed point: a fraction in [0, 1] becomes an integer in
// [0, 256] (1/256 of a pixel, far below what a uint8 result can show), and the
// four products sum to 2^16, so blending is integer multiply-adds, exact for
// fractions 0 and 1.
inline int fraction_weight(float fraction) { return int(fraction * 256.f + 0.5f); }

struct Weights {
  int w00, w01, w10, w11;  // (top, bottom) x (left, right)
  std::uint8_t blend(int p00, int p01, int p10, int p11) const {
    return std::uint8_t((w00 * p00 + w01 * p01 + w10 * p10 + w11 * p11 + 32768) >> 16);
  }
};

inline Weights weights(int wx, int wy) {
  const int w11 = wx * wy, w01 = wx * (256 - wy), w10 = (256 - wx) * wy;
  return {65536 - w01 - w10 - w11, w01, w10, w11};
}

// Bilinear resize of `box` of in to the whole of out, pixel centres aligned
// (align_corners = false, as torchvision and OpenCV): output pixel x samples
// box coordinate (x + 1/2) w / W - 1/2, clamped to the box, so the crop's edge
// pixels are replicated rather than blended with what lies outside it.
// Separable: each output row first blends its two source rows over the box's
// columns (a contiguous, vectorised loop), then interpolates along that blend
// with a per-column table. Columns go in chunks, so the table and the blended
// row live on the stack for any width; a box is never wider than the image,
// so a chunk of output columns reads at most chunk + 1 box columns (one more
// is room for float rounding on very wide images).
inline void resize_box(const Image& in, const Image& out, CropBox box) {
  if (box == CropBox{0, 0, in.height, in.width}) return copy_image(in, out);
  constexpr int chunk = 256;
  struct Column {
    int left, right, weight;  // box columns (relative to the chunk's first) and weight of the right one
  };
  Column columns[chunk];
  std::uint16_t blended[chunk + 2];
  const int height = in.height, width = in.width;
  const float step_y = float(box.height) / float(height), step_x = float(box.width) / float(width);
  const float last_y = float(box.height - 1), last_x = float(box.width - 1);
  for (int begin = 0; begin < width; begin += chunk) {
    const int end = std::min(begin + chunk, width);
    int first = box.width, last = 0;  // the box columns this chunk reads
    for (int x = begin; x < end; ++x) {
      const float source_x = std::clamp((float(x) + 0.5f) * step_x - 0.5f, 0.f, last_x);
      const int x0 = int(source_x);
      columns[x - begin] = {x0, std::min(x0 + 1, box.width - 1), fraction_weight(source_x - float(x0))};
      first = std::min(first, x0);
      last = std::max(last, columns[x - begin].right);
    }
    for (int x = begin; x < end; ++x) {
      columns[x - begin].left -= first;
      columns[x - begin].right -= first;
    }
    const int span = last - first + 1;
    for (int y = 0; y < height; ++y) {
      const float source_y = std::clamp((float(y) + 0.5f) * step_y - 0.5f, 0.f, last_y);
      const int y0 = int(source_y), y1 = std::min(y0 + 1, box.height - 1);
      const int lower = fraction_weight(source_y - float(y0)), upper = 256 - lower;
      for (int c = 0; c < in.channels; ++c) {
        const std::uint8_t* row0 = &in.at(c, box.top + y0, box.left + first);
        const std::uint8_t* row1 = &in.at(c, box.top + y1, box.left + first);
        for (int k = 0; k < span; ++k) blended[k] = std::uint16_t(row0[k] * upper + row1[k] * lower);
        std::uint8_t* target = &out.at(c, y, 0);
        for (int x = begin; x < end; ++x) {
          const Column& column = columns[x - begin];
          target[x] = std::uint8_t(
              (blended[column.left] * (256 - column.weight) + blended[column.right] * column.weight + 32768) >> 16);
        }
      }
    }
  }
}

// The inverse of an affine map, output pixel -> input coordinates:
//   source_x = xx x + xy y + x0,  source_y = yx x + yy y + y0.
struct InverseMap {
  float xx, xy, x0, yx, yy, y0;
};

// The map of imgaug's Affine about the image centre c = ((W - 1)/2, (H - 1)/2):
//   p_out = c + t + R(rotate) S(shear) scale (p_in - c),  S = [1 tan(shear); 0 1],
// with y pointing down, so a positive angle turns the picture clockwise on
// screen. Inverted in closed form (det = scale^2); double precision so that
// rotate(90) lands on the pixel grid to within 1e-6 of a pixel.
inline InverseMap inverse_map(const AffineParameters& p, int height, int width) {
  constexpr double radians = 3.14159265358979323846 / 180;
  const double cosine = std::cos(p.rotate * radians), sine = std::sin(p.rotate * radians);
  const double shear = std::tan(p.shear * radians);
  const double a = p.scale * cosine, b = p.scale * (cosine * shear - sine);
  const double c = p.scale * sine, d = p.scale * (sine * shear + cosine);
  const double det = a * d - b * c;
  const double xx = d / det, xy = -b / det, yx = -c / det, yy = a / det;
  const double cx = (width - 1) / 2.0 + p.translate_x, cy = (height - 1) / 2.0 + p.translate_y;
  return {float(xx), float(xy), float((width - 1) / 2.0 - xx * cx - xy * cy),
          float(yx), float(yy), float((height - 1) / 2.0 - yx * cx - yy * cy)};
}

// out = in sampled through `map` bilinearly; a tap outside the image reads
// `fill`, so the border fades into it over one pixel (skimage's 'constant'
// mode, as imgaug uses). A map that is a whole-pixel shift takes shift().
inline void warp(const Image& in, const Image& out, const InverseMap& map, std::uint8_t fill) {
  if (map.xx == 1 && map.xy == 0 && map.yx == 0 && map.yy == 1 && map.x0 == std::nearbyint(map.x0) &&
      map.y0 == std::nearbyint(map.y0) && std::abs(map.x0) < 1e6f && std::abs(map.y0) < 1e6f)
    return shift(in, out, -int(map.x0), -int(map.y0), Border::zero, fill);
  const int height = in.height, width = in.width, channels = in.channels;
  const long plane = in.pixels();
  for (int y = 0; y < height; ++y) {
    const float row_x = map.xy * float(y) + map.x0, row_y = map.yy * float(y) + map.y0;
    for (int x = 0; x < width; ++x) {
      // Clamped so that the integer conversion is defined; beyond the clamp
      // every tap is outside anyway.
      const float source_x = std::clamp(map.xx * float(x) + row_x, -2.f, float(width) + 1);
      const float source_y = std::clamp(map.yx * float(x) + row_y, -2.f, float(height) + 1);
      const int x0 = floor_from_minus_two(source_x), y0 = floor_from_minus_two(source_y);
      const Weights w = weights(fraction_weight(source_x - float(x0)), fraction_weight(source_y - float(y0)));
      const long offset = long(y0) * width + x0, target = long(y) * width + x;
      if (unsigned(x0) < unsigned(width - 1) && unsigned(y0) < unsigned(height - 1)) {
        for (int c = 0; c < channels; ++c) {
          const std::uint8_t* p = in.data + c * plane + offset;
          out.data[c * plane + target] = w.blend(p[0], p[1], p[width], p[width + 1]);
        }
      } else {
        const bool left = x0 >= 0 && x0 < width, right = x0 + 1 >= 0 && x0 + 1 < width;
        const bool upper = y0 >= 0 && y0 < height, lower = y0 + 1 >= 0 && y0 + 1 < height;
        for (int c = 0; c < channels; ++c) {
          const std::uint8_t* p = in.data + c * plane;  // indexed only where a tap is inside
          out.data[c * plane + target] =
              w.blend(upper && left ? p[offset] : fill, upper && right ? p[offset + 1] : fill,
                      lower && left ? p[offset + width] : fill, lower && right ? p[offset + width + 1] : fill);
        }
      }
    }
  }
}

}  // namespace detail

// Mirrors the image left to right, always; hflip().with(0.5f) for the usual half.
struct HorizontalFlip : WithProbability<HorizontalFlip> {
  void operator()(const Image& in, const Image& out, Draw&) const { detail::mirror(in, out); }
};

inline HorizontalFlip hflip() { return {}; }

// Jordan 2024 (airbench): instead of a fresh coin every epoch, each image gets
// one coin for the whole run and is mirrored when that coin differs from the
// epoch's parity, so every two consecutive epochs show it both ways.
struct AlternatingFlip : TransformTag {
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const bool coin = draw.same_every_epoch().bernoulli(0.5f);
    if (coin != (draw.epoch() % 2 == 1))
      detail::mirror(in, out);
    else
      copy_image(in, out);
  }
};

inline AlternatingFlip alternating_flip() { return {}; }

// The test-time flipped view: the same deterministic mirror, named for TTA code.
inline HorizontalFlip flip_view() { return {}; }

// Pads each side by `pad` and takes a random H x W window, offsets uniform in
// [0, 2 pad] on each axis (the standard CIFAR crop; He et al. 2016 with zeros,
// reflect as in the Wide ResNet and Cutout code).
struct PadCrop : WithProbability<PadCrop> {
  int pad;
  Border border;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const int offset_x = draw.integer(0, 2 * pad), offset_y = draw.integer(0, 2 * pad);
    detail::shift(in, out, pad - offset_x, pad - offset_y, border, 0);
  }
};

inline PadCrop pad_crop(int pad, Border border = Border::zero) {
  if (pad < 0) throw Error("pad_crop: the padding " + std::to_string(pad) + " is negative");
  return {{}, pad, border};
}

// imgaug's Crop(percent=(low, high), keep_size=True): each side loses its own
// fraction, uniform in [low, high], of the image's extent along it, rounded to
// whole pixels as imgaug does (Python's round, half to even); the rest is
// resized back to H x W bilinearly.
struct CropPercent : WithProbability<CropPercent> {
  float low, high;

  // The kept rectangle; draws top, right, bottom, left in imgaug's order.
  CropBox box(int height, int width, Draw& draw) const {
    const int top = int(std::nearbyint(draw.uniform(low, high) * float(height)));
    const int right = int(std::nearbyint(draw.uniform(low, high) * float(width)));
    const int bottom = int(std::nearbyint(draw.uniform(low, high) * float(height)));
    const int left = int(std::nearbyint(draw.uniform(low, high) * float(width)));
    // Two sides each under half can still round to the whole extent: keep a pixel.
    const int kept_height = std::max(height - top - bottom, 1), kept_width = std::max(width - left - right, 1);
    return {std::min(top, height - kept_height), std::min(left, width - kept_width), kept_height, kept_width};
  }

  void operator()(const Image& in, const Image& out, Draw& draw) const {
    detail::resize_box(in, out, box(in.height, in.width, draw));
  }
};

inline CropPercent crop_percent(float low, float high) {
  if (!(low >= 0 && low <= high && high < 0.5f))
    throw Error("crop_percent: the range [" + detail::format_number(low) + ", " + detail::format_number(high) +
                "] is not within 0 <= low <= high < 0.5");
  return {{}, low, high};
}

// The Inception crop (Szegedy et al. 2015; as in He et al., "Bag of Tricks",
// 2019, and torchvision's RandomResizedCrop): a box of area fraction uniform in
// [scale_low, scale_high] and aspect ratio w/h log-uniform in [ratio_low,
// ratio_high], placed uniformly; if 10 attempts do not fit, the largest centred
// box whose ratio is within range. Resized back to H x W bilinearly.
struct RandomResizedCrop : WithProbability<RandomResizedCrop> {
  float scale_low, scale_high, ratio_low, ratio_high;

  CropBox box(int height, int width, Draw& draw) const {
    const float area = float(height) * float(width);
    const float log_low = std::log(ratio_low), log_high = std::log(ratio_high);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const float target = area * draw.uniform(scale_low, scale_high);
      const float ratio = std::exp(draw.uniform(log_low, log_high));
      const int w = int(std::nearbyint(std::sqrt(target * ratio)));
      const int h = int(std::nearbyint(std::sqrt(target / ratio)));
      if (w > 0 && w <= width && h > 0 && h <= height)
        return {draw.integer(0, height - h), draw.integer(0, width - w), h, w};
    }
    const float ratio = float(width) / float(height);
    int w = width, h = height;
    if (ratio < ratio_low)
      h = std::max(int(std::nearbyint(float(w) / ratio_low)), 1);
    else if (ratio > ratio_high)
      w = std::max(int(std::nearbyint(float(h) * ratio_high)), 1);
    return {(height - h) / 2, (width - w) / 2, h, w};
  }

  void operator()(const Image& in, const Image& out, Draw& draw) const {
    detail::resize_box(in, out, box(in.height, in.width, draw));
  }
};

inline RandomResizedCrop random_resized_crop(float scale_low = 0.08f, float scale_high = 1.f, float ratio_low = 3 / 4.f,
                                             float ratio_high = 4 / 3.f) {
  if (!(scale_low > 0 && scale_low <= scale_high && scale_high <= 1))
    throw Error("random_resized_crop: the scale range [" + detail::format_number(scale_low) + ", " +
                detail::format_number(scale_high) + "] is not within 0 < low <= high <= 1");
  if (!(ratio_low > 0 && ratio_low <= ratio_high && std::isfinite(ratio_high)))
    throw Error("random_resized_crop: the ratio range [" + detail::format_number(ratio_low) + ", " +
                detail::format_number(ratio_high) + "] is not within 0 < low <= high");
  return {{}, scale_low, scale_high, ratio_low, ratio_high};
}

struct AffineOptions {
  float scale_low = 1, scale_high = 1;
  float translate = 0;  // +- fraction of the size; x and y drawn independently
  float rotate = 0;     // +- degrees
  float shear = 0;      // +- degrees
  std::uint8_t fill = 0;
};

// One random affine map about the image centre (imgaug's Affine with order=1,
// mode='constant'): scale uniform in [scale_low, scale_high], translation
// uniform in +- translate of the width and of the height, rotation and shear
// uniform in +- their degrees. Sampled by the inverse map, bilinearly.
struct Affine : WithProbability<Affine> {
  AffineOptions options;

  // Draws scale, x and y translation, rotation, shear, in that order.
  AffineParameters parameters(int height, int width, Draw& draw) const {
    AffineParameters p;
    p.scale = draw.uniform(options.scale_low, options.scale_high);
    p.translate_x = draw.uniform(-options.translate, options.translate) * float(width);
    p.translate_y = draw.uniform(-options.translate, options.translate) * float(height);
    p.rotate = draw.uniform(-options.rotate, options.rotate);
    p.shear = draw.uniform(-options.shear, options.shear);
    return p;
  }

  void operator()(const Image& in, const Image& out, Draw& draw) const {
    detail::warp(in, out, detail::inverse_map(parameters(in.height, in.width, draw), in.height, in.width),
                 options.fill);
  }
};

inline Affine affine(AffineOptions options) {
  const auto& o = options;
  if (!(o.scale_low > 0 && o.scale_low <= o.scale_high && std::isfinite(o.scale_high)))
    throw Error("affine: the scale range [" + detail::format_number(o.scale_low) + ", " +
                detail::format_number(o.scale_high) + "] is not within 0 < low <= high");
  if (!(o.translate >= 0 && o.translate <= 1))
    throw Error("affine: the translation " + detail::format_number(o.translate) + " is not a fraction in [0, 1]");
  if (!(o.rotate >= 0 && o.rotate <= 360))
    throw Error("affine: the rotation " + detail::format_number(o.rotate) + " is not in [0, 360] degrees");
  if (!(o.shear >= 0 && o.shear < 90))
    throw Error("affine: the shear " + detail::format_number(o.shear) + " is not in [0, 90) degrees");
  return {{}, options};
}

// Test-time view: the content moved right by dx and down by dy whole pixels,
// the uncovered border set to fill.
struct Translate : WithProbability<Translate> {
  int dx, dy;
  std::uint8_t fill;
  void operator()(const Image& in, const Image& out, Draw&) const {
    detail::shift(in, out, dx, dy, Border::zero, fill);
  }
};

inline Translate translate(int dx, int dy, std::uint8_t fill = 0) { return {{}, dx, dy, fill}; }

// A fixed rotation about the centre, clockwise on screen for positive degrees,
// sampled as affine() samples; rotate(90) on a square image is exact.
struct Rotate : WithProbability<Rotate> {
  float degrees;
  std::uint8_t fill;
  void operator()(const Image& in, const Image& out, Draw&) const {
    detail::warp(in, out, detail::inverse_map({.rotate = degrees}, in.height, in.width), fill);
  }
};

inline Rotate rotate(float degrees, std::uint8_t fill = 0) {
  if (!std::isfinite(degrees)) throw Error("rotate: the angle " + detail::format_number(degrees) + " is not finite");
  return {{}, degrees, fill};
}

}  // namespace laminar::augment
