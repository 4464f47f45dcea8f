// Batch-level mixing on normalised float batches, producing soft targets for
// loss::SoftTargetCrossEntropy:
//   mixup  (Zhang et al. 2018): x = l x_i + (1 - l) x_j,  l ~ Beta(a, a);
//   CutMix (Yun et al. 2019):   a box of x_j pasted into x_i, l = 1 - box area.
// The partner j and l come from Philox(seed, step), so a run is reproducible.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/philox.hpp"
#include "../batch.hpp"

namespace laminar::augment {

namespace detail {

// Gamma(shape, 1) by Marsaglia & Tsang (2000), with the shape < 1 boost
// G(a) = G(a + 1) U^(1/a). `next` yields independent draws.
template <class Uniform, class Normal>
double gamma(double shape, Uniform&& uniform, Normal&& normal) {
  if (shape < 1) return gamma(shape + 1, uniform, normal) * std::pow(std::max(uniform(), 1e-300), 1 / shape);
  const double d = shape - 1.0 / 3.0, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = uniform();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(std::max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
  }
}

}  // namespace detail

enum class MixKind { mixup, cutmix };

struct MixOptions {
  MixKind kind = MixKind::mixup;
  double alpha = 1.0;        // Beta(alpha, alpha)
  double probability = 1.0;  // of mixing a given batch at all
  double label_smoothing = 0.0;
};

// Mixes batches of T in place and writes their soft targets. Holds a copy of
// the batch, grown once and reused.
template <class T>
class Mixer {
 public:
  explicit Mixer(MixOptions options) : options_(options) {
    if (!(options.alpha > 0)) throw Error("Mixer: alpha must be positive, got " + std::to_string(options.alpha));
    if (!(options.probability >= 0 && options.probability <= 1))
      throw Error("Mixer: probability must be in [0, 1], got " + std::to_string(options.probability));
  }

  const MixOptions& options() const { return options_; }

  // The mixing weight l of a step, ~ Beta(alpha, alpha); 1 when the step is not mixed.
  double lambda(std::uint64_t seed, std::uint32_t step) const {
    std::uint64_t k = 0;
    auto uniform = [&] { return double(philox::bits(seed, stream, step, k++)) / 4294967296.0; };
    auto normal = [&] { return philox::normal(seed, stream + 1, step, k++); };
    if (uniform() >= options_.probability) return 1.0;
    const double a = detail::gamma(options_.alpha, uniform, normal);
    const double b = detail::gamma(options_.alpha, uniform, normal);
    return a / (a + b);
  }

  // images (n, C, H, W), labels (n) -> mixed images and targets (n, classes),
  // each row a distribution. Returns the l actually used (for CutMix, the
  // area-corrected one). Partner of sample i: perm[i], a permutation from (seed, step).
  double apply(T* images, const int* labels, int n, int channels, int height, int width, int classes,
               std::uint64_t seed, std::uint32_t step, T* targets) {
    partner_ = data::permutation(n, seed ^ 0x4d49585550ull, step);  // "MIXUP"
    double l = lambda(seed, step);
    const long sample = long(channels) * height * width;
    if (l < 1.0) {
      copy_.assign(images, images + n * sample);
      if (options_.kind == MixKind::mixup) {
        const T a = T(l), b = T(1 - l);
        for (int i = 0; i < n; ++i) {
          T* x = images + i * sample;
          const T* y = copy_.data() + partner_[std::size_t(i)] * sample;
          for (long k = 0; k < sample; ++k) x[k] = a * x[k] + b * y[k];
        }
      } else {
        const Box box = cutmix_box(l, height, width, seed, step);
        l = 1.0 - double(box.area()) / (double(height) * width);
        for (int i = 0; i < n; ++i)
          for (int c = 0; c < channels; ++c)
            for (int y = box.top; y < box.bottom; ++y) {
              const long row = (long(c) * height + y) * width;
              std::copy(copy_.data() + partner_[std::size_t(i)] * sample + row + box.left,
                        copy_.data() + partner_[std::size_t(i)] * sample + row + box.right,
                        images + i * sample + row + box.left);
            }
      }
    }
    const double s = options_.label_smoothing;
    for (int i = 0; i < n; ++i) {
      T* t = targets + long(i) * classes;
      std::fill(t, t + classes, T(s / classes));
      t[labels[i]] += T(l * (1 - s));
      t[labels[partner_[std::size_t(i)]]] += T((1 - l) * (1 - s));
    }
    return l;
  }

  struct Box {
    int top, left, bottom, right;
    long area() const { return long(bottom - top) * (right - left); }
  };

  // CutMix's box: side sqrt(1 - l) of the image, centre uniform, clipped.
  Box cutmix_box(double l, int height, int width, std::uint64_t seed, std::uint32_t step) const {
    const double r = std::sqrt(1 - l);
    const int h = int(height * r), w = int(width * r);
    const int cy = int(philox::bits(seed, stream + 2, step, 0) % std::uint32_t(height));
    const int cx = int(philox::bits(seed, stream + 2, step, 1) % std::uint32_t(width));
    return {std::clamp(cy - h / 2, 0, height), std::clamp(cx - w / 2, 0, width), std::clamp(cy + h - h / 2, 0, height),
            std::clamp(cx + w - w / 2, 0, width)};
  }

 private:
  static constexpr std::uint32_t stream = 0x4d495800u;  // "MIX"
  MixOptions options_;
  std::vector<long> partner_;
  std::vector<T> copy_;
};

}  // namespace laminar::augment
