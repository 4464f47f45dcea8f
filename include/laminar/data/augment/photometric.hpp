// Photometric augmentations: they change pixel values, never positions.
// torchvision's ColorJitter as four transforms, imgaug's LinearContrast, Multiply,
// AdditiveGaussianNoise and GaussianBlur, and AlexNet's PCA lighting noise.
#pragma once

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/philox.hpp"
#include "../batch.hpp"
#include "../dataset.hpp"
#include "transform.hpp"

namespace laminar::augment {

namespace detail {

// ---- argument checks: one sentence naming the transform and the bad value ----

// The shortest text that reads back as x ("1.5", not "1.500000").
inline std::string number(float x) {
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, x).ptr);
}

inline void require(bool ok, const char* transform, const std::string& problem) {
  if (!ok) throw Error(std::string("augment::") + transform + ": " + problem);
}

// No setting may be larger than this: beyond it nothing is an augmentation, and
// the bound keeps every intermediate pixel value far inside int range, which
// to_byte needs.
inline constexpr float largest_setting = 1e6f;

// [low, high] must be finite, ordered, and inside [least, most].
inline void check_range(const char* transform, const char* what, float low, float high, float least,
                        float most = largest_setting) {
  const std::string range = std::string(what) + " range [" + number(low) + ", " + number(high) + "]";
  require(std::isfinite(low) && std::isfinite(high), transform, range + " is not finite");
  require(low <= high, transform, range + " has low > high");
  require(low >= least && high <= most, transform, range + " is outside [" + number(least) + ", " + number(most) + "]");
}

inline void check_strength(const char* transform, float strength, float most = largest_setting) {
  require(strength >= 0.f && std::isfinite(strength), transform,
          "strength " + number(strength) + " is not a finite number >= 0");
  require(strength <= most, transform, "strength " + number(strength) + " is above " + number(most));
}

inline void check_per_channel(const char* transform, float probability) {
  require(probability >= 0.f && probability <= 1.f, transform,
          "per_channel probability " + number(probability) + " is outside [0, 1]");
}

// ---- shared pixel machinery ----

// Round to nearest (ties up) and saturate to [0, 255]: the one way every
// transform here returns to bytes. Rounded in float, clamped in int: a float
// compare stops baseline x86-64 from vectorising the loop (without
// -fno-trapping-math), an int clamp does not. Needs |x| < 2^31.
inline std::uint8_t to_byte(float x) { return std::uint8_t(std::clamp(int(x + 0.5f), 0, 255)); }

// The luma weights of ITU-R BT.601 for red, green and blue, as torchvision's
// rgb_to_grayscale uses them.
inline constexpr float luma[3] = {0.299f, 0.587f, 0.114f};

inline float grey(float red, float green, float blue) { return luma[0] * red + luma[1] * green + luma[2] * blue; }

// out = to_byte(scale in + offset): every per-value transform here. Computed
// rather than looked up in a 256-entry table built per image: the vectorised
// arithmetic takes 0.3 us per CIFAR image with AVX-512 where the table's one
// load per byte takes 1.0 us (with SSE2 alone the table is 10% faster).
inline void scale_and_shift(const std::uint8_t* __restrict in, std::uint8_t* __restrict out, long count, float scale,
                            float offset) {
#pragma omp simd
  for (long i = 0; i < count; ++i) out[i] = to_byte(scale * float(in[i]) + offset);
}

// Per-thread scratch floats, grown on demand and kept, so a transform touches
// the heap only when a thread first meets a larger image, never per image.
// One buffer per type serves every transform: none calls another while
// holding it.
template <class T = float>
T* scratch(std::size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// Mean grey level of an image: the BT.601 grey of an RGB image, the plain mean
// of any other. Exact integer sums, so it does not depend on pixel order.
inline float mean_grey(const Image& image) {
  const long pixels = image.pixels();
  if (pixels == 0) return 0.f;
  const auto sum = [&](int channel) {
    const std::uint8_t* values = image.data + channel * pixels;
    std::uint64_t total = 0;
#pragma omp simd reduction(+ : total)
    for (long p = 0; p < pixels; ++p) total += values[p];
    return double(total);
  };
  if (image.channels == 3) return float((luma[0] * sum(0) + luma[1] * sum(1) + luma[2] * sum(2)) / double(pixels));
  double total = 0;
  for (int c = 0; c < image.channels; ++c) total += sum(c);
  return float(total / double(image.size()));
}

// ---- bulk Gaussian noise ----

// A Philox key for one image's bulk noise, drawn from the transform's Draw (62
// random bits), so the noise stays a function of (seed, epoch, index,
// position). Noise runs Philox under this key directly because Draw spends a
// whole Philox block per number (two per normal()), where one block holds four.
inline std::uint64_t draw_key(Draw& draw) {
  const auto high = std::uint64_t(draw.integer(0, 0x7ffffffe));
  const auto low = std::uint64_t(draw.integer(0, 0x7ffffffe));
  return high << 31 | low;
}

// ln x for x in [2^-24, 1], the range of Box-Muller's u1, in plain arithmetic
// so a loop of it vectorises (libm's logf is a call per value). x = m 2^e with
// m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(t), t = (m - 1) / (m + 1), |t| <=
// 0.172, whose series to t^9 is exact to float precision.
inline float log_unit(float x) {
  const auto bits = std::bit_cast<std::uint32_t>(x);
  const bool high = (bits & 0x7fffffu) > 0x3504f3u;  // mantissa above sqrt(2)
  const float exponent = float(int(bits >> 23) - 127 + int(high));
  const float m = std::bit_cast<float>((bits & 0x7fffffu) | (high ? 0x3f000000u : 0x3f800000u));
  const float t = (m - 1.f) / (m + 1.f), t2 = t * t;
  const float atanh = t * (1.f + t2 * (1.f / 3 + t2 * (1.f / 5 + t2 * (1.f / 7 + t2 * (1.f / 9)))));
  return exponent * 0.693147181f + 2.f * atanh;
}

// (cos 2 pi s, sin 2 pi s) for s in [0, 1), likewise in plain arithmetic. s is
// split exactly into the nearest quarter turn q and r in [-1/8, 1/8]; Taylor
// series of degree 9 and 8 in 2 pi r are exact to float precision there.
inline void cos_sin_turn(float s, float& cosine, float& sine) {
  const int quarter = int(4.f * s + 0.5f);  // 0..4, s >= 0 so truncation rounds
  const float a = 6.28318531f * (s - 0.25f * float(quarter)), a2 = a * a;
  const float sin_a = a * (1.f + a2 * (-1.f / 6 + a2 * (1.f / 120 + a2 * (-1.f / 5040 + a2 * (1.f / 362880)))));
  const float cos_a = 1.f + a2 * (-0.5f + a2 * (1.f / 24 + a2 * (-1.f / 720 + a2 * (1.f / 40320))));
  // Rotating by q quarter turns: q = 1 maps (c, s) to (-s, c), q = 2 to (-c, -s).
  const bool swap = quarter & 1;
  const float c = swap ? sin_a : cos_a, d = swap ? cos_a : sin_a;
  cosine = ((quarter + 1) & 2) ? -c : c;
  sine = (quarter & 2) ? -d : d;
}

// sqrt x for x >= 0 (x = 0 gives 0) in plain arithmetic: std::sqrt carries
// an errno branch for negative x (unless -fno-math-errno) that stops a loop
// from vectorising. 1 / sqrt x from the exponent-halving bit estimate (under
// 4% off), then three Newton steps, each squaring the error: float precision.
inline float square_root(float x) {
  float y = std::bit_cast<float>(0x5f3759dfu - (std::bit_cast<std::uint32_t>(x) >> 1));
  y *= 1.5f - 0.5f * x * y * y;  // written out: a loop here is control flow to the vectoriser at -O2
  y *= 1.5f - 0.5f * x * y * y;
  y *= 1.5f - 0.5f * x * y * y;
  return x * y;
}

// Two standard normals from two 32-bit words (Box & Muller 1958):
// sqrt(-2 ln u1) (cos 2 pi u2, sin 2 pi u2), with 24-bit u1 in (0, 1] so the
// log stays finite and u2 in [0, 1).
inline void normal_pair(std::uint32_t word1, std::uint32_t word2, float& z1, float& z2) {
  constexpr float unit = 1.0f / 16777216.0f;
  const float radius = square_root(-2.f * log_unit(float((word1 >> 8) + 1u) * unit));
  float cosine, sine;
  cos_sin_turn(float(word2 >> 8) * unit, cosine, sine);
  z1 = radius * cosine;
  z2 = radius * sine;
}

// The largest |z| normal_pair can produce: its radius at the smallest u1,
// 2^-24. Noise of scale s cannot move a byte when s * largest < 1/2.
inline constexpr float largest_normal = 5.7686f;  // sqrt(48 ln 2) = 5.76811, rounded up

// values[0, count) standard normal, from Philox4x32 blocks under `key`: block
// k gives values 4k .. 4k + 3. Two passes, Philox words into `words` then
// Box-Muller: the second vectorises at any optimisation level, the first
// where the compiler unrolls Philox's ten rounds (GCC at -O3). Both buffers
// must hold count rounded up to a multiple of 4.
inline void fill_normal(float* __restrict values, std::uint32_t* __restrict words, long count, std::uint64_t key) {
  constexpr std::uint32_t noise_stream = 0x4e4f4953u;  // "NOIS"
  const long blocks = (count + 3) / 4;
  const auto key0 = std::uint32_t(key), key1 = std::uint32_t(key >> 32);
  for (long k = 0; k < blocks; ++k) {
    const philox::Block r = philox::philox4x32(
        philox::Block{{std::uint32_t(k), std::uint32_t(std::uint64_t(k) >> 32), 0u, noise_stream}}, key0, key1);
    for (int j = 0; j < 4; ++j) words[4 * k + j] = r.v[j];
  }
#pragma omp simd
  for (long i = 0; i < 2 * blocks; ++i) normal_pair(words[2 * i], words[2 * i + 1], values[2 * i], values[2 * i + 1]);
}

inline void add_noise(const std::uint8_t* __restrict in, std::uint8_t* __restrict out, const float* __restrict noise,
                      float scale, long count) {
#pragma omp simd
  for (long i = 0; i < count; ++i) out[i] = to_byte(float(in[i]) + scale * noise[i]);
}

// ---- blur ----

// One tap of a convolution over a whole plane: sum = weight * values (the
// first tap) or sum += weight * values.
inline void weighted_add(float* __restrict sum, const float* __restrict values, float weight, long count, bool first) {
  if (first) {
#pragma omp simd
    for (long i = 0; i < count; ++i) sum[i] = weight * values[i];
  } else {
#pragma omp simd
    for (long i = 0; i < count; ++i) sum[i] += weight * values[i];
  }
}

// A row of bytes as floats, with `radius` reflected values either side.
inline void pad_row(const std::uint8_t* __restrict row, float* __restrict padded, int width, int radius) {
#pragma omp simd
  for (int x = 0; x < width; ++x) padded[radius + x] = row[x];
  for (int j = 1; j <= radius; ++j) {
    padded[radius - j] = row[reflect_index(-j, width)];
    padded[radius + width - 1 + j] = row[reflect_index(width - 1 + j, width)];
  }
}

inline void bytes_of(const float* __restrict values, std::uint8_t* __restrict out, long count) {
#pragma omp simd
  for (long i = 0; i < count; ++i) out[i] = to_byte(values[i]);
}

// ---- colour planes ----

// v' = f v + (1 - f) grey, grey per pixel.
inline void blend_with_grey(const std::uint8_t* __restrict red, const std::uint8_t* __restrict green,
                            const std::uint8_t* __restrict blue, std::uint8_t* __restrict out_red,
                            std::uint8_t* __restrict out_green, std::uint8_t* __restrict out_blue, float factor,
                            long pixels) {
#pragma omp simd
  for (long p = 0; p < pixels; ++p) {
    const float r = red[p], g = green[p], b = blue[p];
    const float base = (1.f - factor) * grey(r, g, b);
    out_red[p] = to_byte(factor * r + base);
    out_green[p] = to_byte(factor * g + base);
    out_blue[p] = to_byte(factor * b + base);
  }
}

// Hue rotation by `shift` sextants (a sixth of the colour circle each), exact
// in HSV: with V = max, C = max - min, hue h in sextants, the rotated pixel is
//   channel_n = V - C w(k),  w(k) = clamp(min(k, 4 - k), 0, 1),  k = (n + h) mod 6,
// n = 5, 3, 1 for red, green, blue: the closed form of the sextant table in
// torchvision's _hsv2rgb. V and C (so S) are untouched, as HSV demands.
//
// The loop has no float compare and no conditional float arithmetic, so
// baseline x86-64 vectorises it too: max, min and the case choice in int, mod
// 6 by truncating a positive number, and the clamp as max(x, 0) = (x + |x|) / 2,
// min(y, 1) = (y + 1 - |y - 1|) / 2. w is continuous and 6-periodic, so
// rounding at the wrap points cannot make it jump.
inline void rotate_hue(const std::uint8_t* __restrict red, const std::uint8_t* __restrict green,
                       const std::uint8_t* __restrict blue, std::uint8_t* __restrict out_red,
                       std::uint8_t* __restrict out_green, std::uint8_t* __restrict out_blue, float shift,
                       long pixels) {
  const auto channel = [](float value, float chroma, float k) {
    k += 6.f;                                  // (3, 19]: positive, so int() is floor
    k -= 6.f * float(int(k * (1.f / 6.f)));    // [0, 6)
    const float x = 2.f - std::abs(k - 2.f);   // min(k, 4 - k) on [0, 6)
    const float y = 0.5f * (x + std::abs(x));  // max(x, 0)
    return to_byte(value - chroma * 0.5f * (y + 1.f - std::abs(y - 1.f)));
  };
#pragma omp simd
  for (long p = 0; p < pixels; ++p) {
    const int r = red[p], g = green[p], b = blue[p];
    const int value = std::max(r, std::max(g, b)), chroma = value - std::min(r, std::min(g, b));
    // torchvision's hue in sextants, (difference / C + sextant), chosen in int:
    // float arithmetic under a condition would be control flow again.
    const int difference = value == r ? g - b : value == g ? b - r : r - g;
    const int sextant = value == r ? 0 : value == g ? 2 : 4;
    const float inverse = 1.f / float(std::max(chroma, 1));                // grey (C = 0): any hue gives the same pixel
    const float h = shift + float(sextant) + float(difference) * inverse;  // in (-4, 8]
    out_red[p] = channel(float(value), float(chroma), 5.f + h);
    out_green[p] = channel(float(value), float(chroma), 3.f + h);
    out_blue[p] = channel(float(value), float(chroma), 1.f + h);
  }
}

// The three planes of an RGB image.
struct Planes {
  std::uint8_t *red, *green, *blue;
  explicit Planes(const Image& image)
      : red(image.data), green(image.data + image.pixels()), blue(image.data + 2 * image.pixels()) {}
};

}  // namespace detail

// ---- colour jitter (torchvision ColorJitter, one transform per property) ----
// Each draws one factor per image, uniform in [low, high]; the one-number
// factories give torchvision's [max(0, 1 - x), 1 + x]. Draws: the factor.

// torchvision adjust_brightness: v' = f v.
struct Brightness : WithProbability<Brightness> {
  float low, high;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const float factor = draw.uniform(low, high);
    detail::scale_and_shift(in.data, out.data, in.size(), factor, 0.f);
  }
};

// torchvision adjust_contrast: v' = f v + (1 - f) m, m the image's mean grey
// level (BT.601 luma of RGB; the mean value of any other image). torchvision
// truncates the grey image to bytes before the mean; here m stays exact.
struct Contrast : WithProbability<Contrast> {
  float low, high;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const float factor = draw.uniform(low, high);
    const float mean = detail::mean_grey(in);
    detail::scale_and_shift(in.data, out.data, in.size(), factor, (1.f - factor) * mean);
  }
};

// torchvision adjust_saturation: v' = f v + (1 - f) grey, grey = 0.299 r +
// 0.587 g + 0.114 b of the same pixel (exact, not truncated to a byte first).
// An image that is not RGB has no saturation: it passes unchanged.
struct Saturation : WithProbability<Saturation> {
  float low, high;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    if (in.channels != 3) return copy_image(in, out);
    const float factor = draw.uniform(low, high);
    const detail::Planes source(in), target(out);
    detail::blend_with_grey(source.red, source.green, source.blue, target.red, target.green, target.blue, factor,
                            in.pixels());
  }
};

// torchvision adjust_hue: rotate every pixel's HSV hue by a fraction of the
// colour circle, uniform in [low, high] (at most half a turn either way),
// keeping its value and saturation; computed in closed form, see rotate_hue.
// Not RGB: passes unchanged.
struct Hue : WithProbability<Hue> {
  float low, high;  // fractions of a full turn
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    if (in.channels != 3) return copy_image(in, out);
    const float turn = draw.uniform(low, high);
    if (turn == 0.f) return copy_image(in, out);
    const detail::Planes source(in), target(out);
    detail::rotate_hue(source.red, source.green, source.blue, target.red, target.green, target.blue, 6.f * turn,
                       in.pixels());
  }
};

namespace detail {
// A colour-jitter factor uniform in [low, high], low >= 0 (torchvision's
// (min, max) form), or in [max(0, 1 - strength), 1 + strength].
template <class Jitter>
Jitter jitter(const char* name, float low, float high) {
  check_range(name, "factor", low, high, 0.f);
  return {{}, low, high};
}
template <class Jitter>
Jitter jitter(const char* name, float strength) {
  check_strength(name, strength);
  return jitter<Jitter>(name, std::max(0.f, 1.f - strength), 1.f + strength);
}
}  // namespace detail

inline Brightness brightness(float low, float high) { return detail::jitter<Brightness>("brightness", low, high); }
inline Brightness brightness(float strength) { return detail::jitter<Brightness>("brightness", strength); }
inline Contrast contrast(float low, float high) { return detail::jitter<Contrast>("contrast", low, high); }
inline Contrast contrast(float strength) { return detail::jitter<Contrast>("contrast", strength); }
// Factor 0 gives grey, 1 the image, above 1 stronger colour.
inline Saturation saturation(float low, float high) { return detail::jitter<Saturation>("saturation", low, high); }
inline Saturation saturation(float strength) { return detail::jitter<Saturation>("saturation", strength); }
// Rotation uniform in [low, high] turns, both in [-0.5, 0.5].
inline Hue hue(float low, float high) {
  detail::check_range("hue", "rotation", low, high, -0.5f, 0.5f);
  return {{}, low, high};
}
// Rotation uniform in [-strength, strength] turns, strength <= 0.5.
inline Hue hue(float strength) {
  detail::check_strength("hue", strength, 0.5f);
  return hue(-strength, strength);
}

// ---- imgaug arithmetic ----

// imgaug LinearContrast: v' = 128 + a (v - 128), a uniform in [low, high].
// Draws: a.
struct LinearContrast : WithProbability<LinearContrast> {
  float low, high;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const float alpha = draw.uniform(low, high);
    detail::scale_and_shift(in.data, out.data, in.size(), alpha, 128.f * (1.f - alpha));
  }
};

inline LinearContrast linear_contrast(float low, float high) {
  detail::check_range("linear_contrast", "alpha", low, high, -detail::largest_setting);
  return {{}, low, high};
}

// imgaug Multiply: v' = f v, f uniform in [low, high]; one f for the image, or
// with probability per_channel one f per channel.
// Draws: the per-channel coin, then f for channel 0, then (per channel) for
// channels 1..C-1 in order.
struct Multiply : WithProbability<Multiply> {
  float low, high, per_channel;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const bool separate = draw.bernoulli(per_channel);
    const long pixels = in.pixels();
    float factor = draw.uniform(low, high);
    for (int c = 0; c < in.channels; ++c) {
      if (c > 0 && separate) factor = draw.uniform(low, high);
      detail::scale_and_shift(in.data + c * pixels, out.data + c * pixels, pixels, factor, 0.f);
    }
  }
};

inline Multiply multiply(float low, float high, float per_channel = 0.f) {
  detail::check_range("multiply", "factor", low, high, 0.f);
  detail::check_per_channel("multiply", per_channel);
  return {{}, low, high, per_channel};
}

// imgaug AdditiveGaussianNoise(loc = 0, scale): v' = v + s z, z ~ N(0, 1), s
// uniform in [scale_low, scale_high] per image, in byte units (0.05 * 255 is
// imgaug's usual top). With probability per_channel every value gets its own
// z, else each pixel gets one z shared by its channels.
// Draws: the per-channel coin, s, then the 62-bit key of the noise (see
// draw_key); z is Philox under that key, so it is per pixel and reproducible.
struct GaussianNoise : WithProbability<GaussianNoise> {
  float scale_low, scale_high, per_channel;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const bool separate = draw.bernoulli(per_channel);
    const float scale = draw.uniform(scale_low, scale_high);
    // Below this no value can move by half a level: skip the Philox work.
    if (scale * detail::largest_normal < 0.49f) return copy_image(in, out);
    const std::uint64_t key = detail::draw_key(draw);
    const long pixels = in.pixels(), count = separate ? in.size() : pixels;
    const auto whole_blocks = std::size_t(count + 3) & ~std::size_t(3);
    float* noise = detail::scratch(whole_blocks);
    detail::fill_normal(noise, detail::scratch<std::uint32_t>(whole_blocks), count, key);
    for (int c = 0; c < in.channels; ++c)
      detail::add_noise(in.data + c * pixels, out.data + c * pixels, separate ? noise + c * pixels : noise, scale,
                        pixels);
  }
};

inline GaussianNoise gaussian_noise(float scale_low, float scale_high, float per_channel = 0.f) {
  detail::check_range("gaussian_noise", "scale", scale_low, scale_high, 0.f);
  detail::check_per_channel("gaussian_noise", per_channel);
  return {{}, scale_low, scale_high, per_channel};
}

// Gaussian blur as imgaug's GaussianBlur (OpenCV's kernel): separable weights
// w_k proportional to exp(-k^2 / (2 sigma^2)), |k| <= ceil(3 sigma), summing to
// 1; borders mirrored without repeating the edge (OpenCV's default
// BORDER_REFLECT_101, which imgaug keeps). sigma uniform per image.
//
// Identity cut-off: a blurred value differs from the pixel by at most
// 255 (1 - w_0^2), w_0 the centre weight, since the other 2-D weights sum to
// 1 - w_0^2. When that is below half a level no byte can change, so the image
// is copied: this holds for every sigma below 0.2558 (half of the imgaug
// table's 0-0.5 range), a proof rather than a tuned threshold.
// Draws: sigma.
struct GaussianBlur : WithProbability<GaussianBlur> {
  float sigma_low, sigma_high;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const float sigma = draw.uniform(sigma_low, sigma_high);
    if (!(sigma > 0.f)) return copy_image(in, out);
    const int radius = int(std::ceil(3.f * sigma)), taps = 2 * radius + 1;
    const double spread = 2.0 * double(sigma) * double(sigma);
    double total = 1;
    for (int k = 1; k <= radius; ++k) total += 2 * std::exp(-k * k / spread);
    const double centre = 1 / total;
    if (255 * (1 - centre * centre) < 0.49) return copy_image(in, out);

    // Each pass is `taps` long loops over a whole plane, not short loops per
    // row: on a 32 x 32 image the per-loop overhead would dominate.
    const int height = in.height, width = in.width, stride = width + 2 * radius;
    const long pixels = in.pixels(), padded_size = long(height) * stride;
    float* kernel = detail::scratch(std::size_t(taps + 2 * padded_size + long(height + 2 * radius) * width + pixels));
    float* padded = kernel + taps;                          // (H, W + 2 radius): rows mirrored sideways
    float* across = padded + padded_size;                   // (H, W + 2 radius): horizontal pass, left-aligned
    float* rows = across + padded_size;                     // (H + 2 radius, W): its rows, mirrored up and down
    float* sum = rows + long(height + 2 * radius) * width;  // (H, W): vertical pass
    for (int k = -radius; k <= radius; ++k) kernel[k + radius] = float(std::exp(-k * k / spread) / total);

    for (int c = 0; c < in.channels; ++c) {
      const std::uint8_t* source = in.data + c * pixels;
      for (int y = 0; y < height; ++y)
        detail::pad_row(source + long(y) * width, padded + long(y) * stride, width, radius);
      // Output x of row y lands at y * stride + x; the 2 radius values after
      // each row mix two rows and are never read.
      for (int k = 0; k < taps; ++k)
        detail::weighted_add(across, padded + k, kernel[k], padded_size - 2 * radius, k == 0);
      for (int i = 0; i < height + 2 * radius; ++i) {
        const float* line = across + long(detail::reflect_index(i - radius, height)) * stride;
        std::copy(line, line + width, rows + long(i) * width);
      }
      for (int k = 0; k < taps; ++k) detail::weighted_add(sum, rows + long(k) * width, kernel[k], pixels, k == 0);
      detail::bytes_of(sum, out.data + c * pixels, pixels);
    }
  }
};

inline GaussianBlur gaussian_blur(float sigma_low, float sigma_high) {
  detail::check_range("gaussian_blur", "sigma", sigma_low, sigma_high, 0.f);
  return {{}, sigma_low, sigma_high};
}

// ---- PCA lighting (Krizhevsky, Sutskever & Hinton 2012, section 4.1) ----

// The principal components of a dataset's RGB pixels in [0, 1] units:
// eigenvalues[i] belongs to the unit vector eigenvectors[i] = (r, g, b),
// largest first.
struct Lighting {
  std::array<float, 3> eigenvalues;
  std::array<std::array<float, 3>, 3> eigenvectors;
};

// The 3x3 covariance of every pixel of up to max_samples images (a fixed,
// seeded random subset when the dataset is larger), in [0, 1] units, and its
// eigen-decomposition. Sums are exact integers, so the result does not depend
// on the order of the pixels.
inline Lighting lighting_from(const data::Dataset& d, long max_samples = 10000) {
  if (d.channels != 3)
    throw Error("augment::lighting_from: " + d.source + " has " + std::to_string(d.channels) +
                " channels, but PCA lighting needs RGB (3)");
  if (d.size() == 0) throw Error("augment::lighting_from: " + d.source + " is empty");
  if (max_samples < 1)
    throw Error("augment::lighting_from: max_samples " + std::to_string(max_samples) + " is below 1");
  constexpr std::uint64_t subset_seed = 0x4c49474854ull;  // "LIGHT"
  const long count = std::min(d.size(), max_samples);
  std::vector<long> chosen;
  if (count < d.size()) chosen = data::permutation(d.size(), subset_seed, 0);

  const long pixels = long(d.height) * d.width;
  std::int64_t sum[3] = {}, product[3][3] = {};
  for (long i = 0; i < count; ++i) {
    const std::uint8_t* image = d.image(chosen.empty() ? i : chosen[std::size_t(i)]);
    for (int a = 0; a < 3; ++a) {
      const std::uint8_t* u = image + a * pixels;
      std::int64_t total = 0;
#pragma omp simd reduction(+ : total)
      for (long p = 0; p < pixels; ++p) total += u[p];
      sum[a] += total;
      for (int b = a; b < 3; ++b) {
        const std::uint8_t* v = image + b * pixels;
        std::int64_t cross = 0;
#pragma omp simd reduction(+ : cross)
        for (long p = 0; p < pixels; ++p) cross += std::int32_t(u[p]) * std::int32_t(v[p]);
        product[a][b] += cross;
      }
    }
  }
  const double n = double(count) * double(pixels), unit = 255.0 * 255.0;
  Eigen::Matrix3d covariance;
  for (int a = 0; a < 3; ++a)
    for (int b = a; b < 3; ++b)
      covariance(a, b) = covariance(b, a) =
          (double(product[a][b]) / n - double(sum[a]) / n * (double(sum[b]) / n)) / unit;

  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> solver(covariance);
  Lighting lighting;
  for (int i = 0; i < 3; ++i) {  // Eigen sorts ascending; lighting lists largest first
    lighting.eigenvalues[std::size_t(i)] =
        float(std::max(solver.eigenvalues()(2 - i), 0.0));  // no rounding-negative variance
    for (int c = 0; c < 3; ++c)
      lighting.eigenvectors[std::size_t(i)][std::size_t(c)] = float(solver.eigenvectors()(c, 2 - i));
  }
  return lighting;
}

// AlexNet's lighting noise: to every RGB pixel add sum_i a_i l_i v_i (times 255,
// the pixels being bytes), a_i ~ N(0, alphastd^2) drawn once per image, l_i
// and v_i the eigenvalues and eigenvectors of the training set's pixel
// covariance. An image that is not RGB passes unchanged.
// Draws: a_0, a_1, a_2 as alphastd * normal().
struct PcaLighting : WithProbability<PcaLighting> {
  Lighting lighting;
  float alphastd;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    if (in.channels != 3) return copy_image(in, out);
    float shift[3] = {};
    for (std::size_t i = 0; i < 3; ++i) {
      const float weight = alphastd * float(draw.normal()) * lighting.eigenvalues[i];
      for (std::size_t c = 0; c < 3; ++c) shift[c] += weight * lighting.eigenvectors[i][c];
    }
    const long pixels = in.pixels();
    for (int c = 0; c < 3; ++c)  // a shift beyond a full level range changes nothing more; clamped, it fits to_byte
      detail::scale_and_shift(in.data + c * pixels, out.data + c * pixels, pixels, 1.f,
                              std::clamp(255.f * shift[c], -256.f, 256.f));
  }
};

inline PcaLighting pca_lighting(const Lighting& lighting, float alphastd = 0.1f) {
  const auto largest = detail::number(detail::largest_setting);
  detail::require(alphastd >= 0.f && alphastd <= detail::largest_setting, "pca_lighting",
                  "alphastd " + detail::number(alphastd) + " is outside [0, " + largest + "]");
  for (float value : lighting.eigenvalues)
    detail::require(value >= 0.f && value <= detail::largest_setting, "pca_lighting",
                    "eigenvalue " + detail::number(value) + " is outside [0, " + largest + "]");
  for (const auto& vector : lighting.eigenvectors)
    for (float component : vector)
      detail::require(component >= -1.f && component <= 1.f, "pca_lighting",
                      "eigenvector component " + detail::number(component) + " is outside [-1, 1]");
  return {{}, lighting, alphastd};
}

}  // namespace laminar::augment
