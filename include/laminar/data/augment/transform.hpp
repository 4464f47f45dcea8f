// The augmentation contract. A transform maps one uint8 image (C, H, W) to
// another of the same shape, drawing its random numbers from a Draw: a Philox
// stream fixed by (seed, epoch, sample index, transform position), so an
// augmented epoch is reproducible and independent of threads and batch order.
// Transforms compose with `|` and run with a probability via `.with(p)`.
//
//   auto light = augment::pad_crop(4) | augment::hflip() | augment::cutout(8);
//   light.apply(batch, n, C, H, W, indices, seed, epoch);
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/philox.hpp"

namespace laminar::augment {

// A non-owning (C, H, W) uint8 image.
struct Image {
  std::uint8_t* data;
  int channels, height, width;
  long pixels() const { return long(height) * width; }
  long size() const { return long(channels) * pixels(); }
  std::uint8_t& at(int c, int y, int x) const { return data[(long(c) * height + y) * width + x]; }
};

// The random source of one transform on one sample. Each call to next_*()
// takes the next element of the stream.
class Draw {
 public:
  Draw(std::uint64_t seed, std::uint32_t epoch, std::uint64_t index, std::uint32_t position)
      : seed_(seed), stream_(0x41000000u | position), epoch_(epoch), base_(index << 20) {}

  float uniform() { return philox::uniform(seed_, stream_, epoch_, base_ + counter_++); }
  float uniform(float low, float high) { return low + (high - low) * uniform(); }
  // An integer in [low, high], inclusive.
  int integer(int low, int high) {
    // In 64 bits: high - low + 1 overflows an int for spans above INT_MAX.
    const auto span = std::uint64_t(std::int64_t(high) - std::int64_t(low) + 1);
    return int(std::int64_t(low) + std::int64_t(philox::bits(seed_, stream_, epoch_, base_ + counter_++) % span));
  }
  bool bernoulli(float p) { return uniform() < p; }
  double normal() { return philox::normal(seed_, stream_, epoch_, base_ + counter_++); }

  std::uint32_t epoch() const { return epoch_; }
  // The stream of the same (seed, sample, transform) that every epoch shares:
  // for choices fixed once per image for the whole run. Its epoch key is one
  // no real epoch uses.
  Draw same_every_epoch() const {
    Draw d = *this;
    d.epoch_ = 0xffffffffu;
    d.counter_ = 0;
    return d;
  }

 private:
  std::uint64_t seed_;
  std::uint32_t stream_, epoch_;
  std::uint64_t base_, counter_ = 0;  // 2^20 draws per sample and transform
};

// Every transform derives from this tag. A transform is a const callable
//   void operator()(const Image& in, const Image& out, Draw& draw) const;
// that writes out (same shape, never the same memory as in) from in.
struct TransformTag {};
template <class T>
concept Transform = std::is_base_of_v<TransformTag, T>;

namespace detail {
// Index i of an axis of n pixels, mirrored about the edge pixels as often as
// needed (numpy 'reflect'): the extension is periodic with period 2 (n - 1).
inline int reflect_index(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}
}  // namespace detail

inline void copy_image(const Image& in, const Image& out) {
  std::memcpy(out.data, in.data, std::size_t(in.size()));
}

// Runs T with probability p; otherwise passes the image through.
template <Transform T>
struct Sometimes : TransformTag {
  T transform;
  float probability;
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    if (draw.bernoulli(probability))
      transform(in, out, draw);
    else
      copy_image(in, out);
  }
};

// Mixin giving every transform `.with(p)`: hflip().with(0.5).
template <class Derived>
struct WithProbability : TransformTag {
  auto with(float p) const {  // deduced: Derived is complete only when this is used
    if (!(p >= 0.f && p <= 1.f)) throw Error("augment: probability " + std::to_string(p) + " is outside [0, 1]");
    return Sometimes<Derived>{{}, static_cast<const Derived&>(*this), p};
  }
};

// A chain of transforms, applied left to right; step k draws from stream k.
template <Transform... Ts>
struct Pipeline : TransformTag {
  std::tuple<Ts...> steps;

  // Augments samples in place: images (n, C, H, W); indices[i] is sample i's
  // index in the dataset, which with (seed, epoch) fixes its random numbers.
  void apply(std::uint8_t* images, int n, int channels, int height, int width, const long* indices,
             std::uint64_t seed, std::uint32_t epoch) const {
    const long size = long(channels) * height * width;
    // An exception must not leave an OpenMP region (that terminates the
    // program): the first one is kept and rethrown after it.
    std::exception_ptr failure;
#pragma omp parallel if (n > 1)
    {
      // Per thread and kept between calls: a loader calling apply every batch
      // allocates only when the image size grows.
      thread_local std::vector<std::uint8_t> scratch;
#pragma omp for schedule(static)
      for (int i = 0; i < n; ++i) {
        try {
          if (scratch.size() < static_cast<std::size_t>(size)) scratch.resize(static_cast<std::size_t>(size));
          run(Image{images + i * size, channels, height, width}, Image{scratch.data(), channels, height, width},
              seed, epoch, std::uint64_t(indices[i]));
        } catch (...) {
#pragma omp critical(laminar_augment_failure)
          if (!failure) failure = std::current_exception();
        }
      }
    }
    if (failure) std::rethrow_exception(failure);
  }

  // The same as apply: a pipeline is a data::Augment for the loader and fit.
  void operator()(std::uint8_t* images, int n, int channels, int height, int width, const long* indices,
                  std::uint64_t seed, std::uint32_t epoch) const {
    apply(images, n, channels, height, width, indices, seed, epoch);
  }

  // One image in place; `spare` is scratch memory of the same shape.
  void run(const Image& image, const Image& spare, std::uint64_t seed, std::uint32_t epoch,
           std::uint64_t index) const {
    Image source = image, target = spare;
    std::uint32_t position = 0;
    std::apply(
        [&](const auto&... step) {
          ((
               [&] {
                 Draw draw(seed, epoch, index, position++);
                 step(source, target, draw);
                 std::swap(source, target);
               }()),
           ...);
        },
        steps);
    if (source.data != image.data) copy_image(source, image);
  }
};

namespace detail {
template <class T>
struct IsPipeline : std::false_type {};
template <class... Ts>
struct IsPipeline<Pipeline<Ts...>> : std::true_type {};

template <Transform T>
auto steps_of(const T& t) {
  if constexpr (IsPipeline<T>::value)
    return t.steps;
  else
    return std::tuple<T>{t};
}
template <class... Ts>
Pipeline<Ts...> make_pipeline(std::tuple<Ts...> steps) {
  return {{}, std::move(steps)};
}
}  // namespace detail

// A single transform as a pipeline, so it can be applied on its own.
template <Transform T>
auto pipeline(const T& t) {
  return detail::make_pipeline(detail::steps_of(t));
}

template <Transform A, Transform B>
auto operator|(const A& a, const B& b) {
  return detail::make_pipeline(std::tuple_cat(detail::steps_of(a), detail::steps_of(b)));
}

}  // namespace laminar::augment
