// Turning uint8 samples into a float batch: per-channel normalisation, a seeded
// permutation per epoch, and gathering a batch of samples into NCHW memory.
#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/philox.hpp"
#include "dataset.hpp"

namespace laminar::data {

// x_float = (x / 255 - mean[c]) / std[c]. The defaults map pixels to [0, 1].
struct Normalization {
  std::vector<float> mean, std;

  static Normalization unit(int channels) {
    return {std::vector<float>(std::size_t(channels), 0.f), std::vector<float>(std::size_t(channels), 1.f)};
  }

  // Per-channel mean and standard deviation of a training set, in [0, 1] units.
  static Normalization standardize(const Dataset& d) {
    if (d.size() == 0) throw Error("Normalization::standardize: " + d.source + " is empty");
    Normalization n;
    const long pixels = long(d.height) * d.width;
    for (int c = 0; c < d.channels; ++c) {
      double sum = 0, sum_sq = 0;
#pragma omp parallel for reduction(+ : sum, sum_sq) schedule(static)
      for (long i = 0; i < d.size(); ++i) {
        const std::uint8_t* p = d.image(i) + c * pixels;
        long s = 0, s2 = 0;
        for (long k = 0; k < pixels; ++k) {
          s += p[k];
          s2 += long(p[k]) * p[k];
        }
        sum += double(s);
        sum_sq += double(s2);
      }
      const double count = double(d.size()) * pixels;
      const double mean = sum / count / 255.0;
      const double var = sum_sq / count / (255.0 * 255.0) - mean * mean;
      n.mean.push_back(float(mean));
      n.std.push_back(float(std::sqrt(var > 1e-12 ? var : 1e-12)));
    }
    return n;
  }
};

// A permutation of [0, n) that depends only on (seed, epoch): Fisher-Yates with
// Philox draws, so it is the same with any standard library or thread count.
inline std::vector<long> permutation(long n, std::uint64_t seed, std::uint32_t epoch) {
  constexpr std::uint32_t shuffle_stream = 0x5348u;  // "SH"
  std::vector<long> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0L);
  for (long i = n - 1; i > 0; --i) {
    const auto j = long(philox::bits(seed, shuffle_stream, epoch, std::uint64_t(i)) % std::uint64_t(i + 1));
    std::swap(order[std::size_t(i)], order[std::size_t(j)]);
  }
  return order;
}

// Writes samples indices[0..count) as normalised floats, (count, C, H, W), and
// their labels.
template <class T>
void gather(const Dataset& d, const long* indices, int count, const Normalization& norm, T* out,
            int* labels) {
  if (int(norm.mean.size()) != d.channels || int(norm.std.size()) != d.channels)
    throw Error("gather: normalisation has " + std::to_string(norm.mean.size()) +
                " channels but " + d.source + " has " + std::to_string(d.channels));
  const long pixels = long(d.height) * d.width, sample = d.sample_size();
#pragma omp parallel for schedule(static) if (count * sample > 32768)
  for (int i = 0; i < count; ++i) {
    const std::uint8_t* src = d.image(indices[i]);
    T* dst = out + long(i) * sample;
    for (int c = 0; c < d.channels; ++c) {
      const T scale = T(1.0 / (255.0 * norm.std[std::size_t(c)]));
      const T shift = T(-norm.mean[std::size_t(c)] / norm.std[std::size_t(c)]);
      for (long k = 0; k < pixels; ++k) dst[c * pixels + k] = T(src[c * pixels + k]) * scale + shift;
    }
    labels[i] = d.labels[std::size_t(indices[i])];
  }
}

}  // namespace laminar::data
