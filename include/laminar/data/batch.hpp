// Turning uint8 samples into a float batch: per-channel normalisation (and its
// text form for checkpoints), a seeded permutation per epoch, and gathering a
// batch of samples into NCHW memory.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <istream>
#include <numeric>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
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

  // Maps [0, 255] to [-1, 1]: mean 0.5 and std 0.5 in [0, 1] units, what GAN and
  // many pretrained-model recipes expect.
  static Normalization symmetric(int channels) {
    return {std::vector<float>(std::size_t(channels), 0.5f), std::vector<float>(std::size_t(channels), 0.5f)};
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

  // Checks that this normalisation fits `channels` channels and divides by no
  // zero. Views, so that a check on every batch allocates nothing.
  void check(int channels, std::string_view caller, std::string_view source) const {
    if (int(mean.size()) != channels || int(std.size()) != channels)
      throw Error(std::string(caller) + ": normalisation has " + std::to_string(mean.size()) + " means and " +
                  std::to_string(std.size()) + " standard deviations but " + std::string(source) + " has " +
                  std::to_string(channels) + " channels");
    for (std::size_t c = 0; c < std.size(); ++c)
      if (!(std::isfinite(std[c]) && std[c] != 0.f && std::isfinite(mean[c])))
        throw Error(std::string(caller) + ": normalisation of channel " + std::to_string(c) + " has mean " +
                    std::to_string(mean[c]) + " and std " + std::to_string(std[c]) +
                    "; both must be finite and std non-zero");
  }

  // A small versioned text form, so a checkpoint can store the normalisation its
  // model was trained with:
  //   laminar-normalization 1
  //   <channels>
  //   <mean 0> ... <mean C-1>
  //   <std 0> ... <std C-1>
  // Floats are written in their shortest form that reads back to the same bits.
  void save(std::ostream& out) const {
    if (mean.size() != std.size())
      throw Error("Normalization::save: " + std::to_string(mean.size()) + " means but " +
                  std::to_string(std.size()) + " standard deviations");
    // to_chars, not <<, so that a locale imbued in the stream changes nothing.
    char text[32];
    out << "laminar-normalization 1\n";
    out.write(text, std::to_chars(text, text + sizeof text, mean.size()).ptr - text);
    out << '\n';
    const auto write_line = [&](const std::vector<float>& values) {
      for (std::size_t c = 0; c < values.size(); ++c) {
        if (c) out << ' ';
        out.write(text, std::to_chars(text, text + sizeof text, values[c]).ptr - text);
      }
      out << '\n';
    };
    write_line(mean);
    write_line(std);
    if (!out) throw Error("Normalization::save: the stream failed while writing");
  }

  // Reads what save() wrote, up to and including its last newline, so more data
  // may follow in the same stream.
  static Normalization load(std::istream& in) {
    const auto fail = [](const std::string& problem) -> Error {
      return Error("Normalization::load: " + problem);
    };
    std::string line;
    if (!std::getline(in, line)) throw fail("the stream is empty, expected \"laminar-normalization 1\"");
    const std::string magic = "laminar-normalization ";
    if (line.compare(0, magic.size(), magic) != 0)
      throw fail("first line \"" + line + "\" is not \"laminar-normalization 1\"");
    if (line != magic + "1")
      throw fail("version \"" + line.substr(magic.size()) + "\" is not 1, the only one this build reads");

    if (!std::getline(in, line)) throw fail("the stream ends before the channel count");
    long channels = 0;
    const char* first = line.data();
    const char* last = line.data() + line.size();
    const auto parsed = std::from_chars(first, last, channels);
    if (parsed.ec != std::errc() || parsed.ptr != last || channels < 1 || channels > 65536)
      throw fail("channel count \"" + line + "\" is not a whole number in 1..65536");

    const auto read_line = [&](const char* what) {
      std::vector<float> values;
      if (!std::getline(in, line))
        throw fail("the stream ends before the line of " + std::string(what));
      const char* cursor = line.data();
      const char* end = line.data() + line.size();
      for (;;) {
        while (cursor != end && *cursor == ' ') ++cursor;
        if (cursor == end) break;
        float value = 0.f;
        const auto result = std::from_chars(cursor, end, value);
        if (result.ec != std::errc() || (result.ptr != end && *result.ptr != ' ') || !std::isfinite(value))
          throw fail(std::string(what) + " line \"" + line + "\" holds something that is not a finite number");
        values.push_back(value);
        cursor = result.ptr;
      }
      if (long(values.size()) != channels)
        throw fail(std::string(what) + " line holds " + std::to_string(values.size()) + " values, expected " +
                   std::to_string(channels));
      return values;
    };
    Normalization n;
    n.mean = read_line("means");
    n.std = read_line("standard deviations");
    for (std::size_t c = 0; c < n.std.size(); ++c)
      if (n.std[c] == 0.f) throw fail("standard deviation of channel " + std::to_string(c) + " is zero");
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

namespace detail {

// One sample, (C, H, W) uint8 to T.
template <class T>
void normalize_sample(const std::uint8_t* source, int channels, long pixels, const Normalization& norm,
                      T* target) {
  for (int c = 0; c < channels; ++c) {
    const T scale = T(1.0 / (255.0 * norm.std[std::size_t(c)]));
    const T shift = T(-norm.mean[std::size_t(c)] / norm.std[std::size_t(c)]);
    for (long k = 0; k < pixels; ++k) target[c * pixels + k] = T(source[c * pixels + k]) * scale + shift;
  }
}

}  // namespace detail

// Writes samples indices[0..count) as normalised floats, (count, C, H, W), and
// their labels.
template <class T>
void gather(const Dataset& d, const long* indices, int count, const Normalization& norm, T* out,
            int* labels) {
  norm.check(d.channels, "gather", d.source);
  const long pixels = long(d.height) * d.width, sample = d.sample_size();
#pragma omp parallel for schedule(static) if (count * sample > 32768)
  for (int i = 0; i < count; ++i) {
    detail::normalize_sample(d.image(indices[i]), d.channels, pixels, norm, out + long(i) * sample);
    labels[i] = d.labels[std::size_t(indices[i])];
  }
}

// The two halves of gather, for when the uint8 samples are augmented in between.
// Copies samples indices[0..count) as uint8, (count, C, H, W), and their labels.
inline void gather_bytes(const Dataset& d, const long* indices, int count, std::uint8_t* out, int* labels) {
  const long sample = d.sample_size();
#pragma omp parallel for schedule(static) if (count * sample > 262144)
  for (int i = 0; i < count; ++i) {
    std::memcpy(out + long(i) * sample, d.image(indices[i]), std::size_t(sample));
    labels[i] = d.labels[std::size_t(indices[i])];
  }
}

// Normalises `count` uint8 samples (count, C, H, W) into T, the same arithmetic as
// gather, so both paths give bit-identical batches.
template <class T>
void normalize(const std::uint8_t* images, int count, int channels, int height, int width,
               const Normalization& norm, T* out) {
  norm.check(channels, "normalize", "the batch");
  const long pixels = long(height) * width, sample = channels * pixels;
#pragma omp parallel for schedule(static) if (count * sample > 32768)
  for (int i = 0; i < count; ++i)
    detail::normalize_sample(images + long(i) * sample, channels, pixels, norm, out + long(i) * sample);
}

}  // namespace laminar::data
