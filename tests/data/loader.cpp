// The batch loader — epochs, order, drop_last, augmentation on uint8 before
// normalisation, prefetching equal to inline work, errors and shutdown — and the
// normalisation variants it applies.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/files.hpp"
#include <laminar/data/augment/transform.hpp>
#include <laminar/data/batch.hpp>
#include <laminar/data/loader.hpp>

namespace {

using laminar::Error;
using laminar::data::Dataset;
using laminar::data::Loader;
using laminar::data::Normalization;
using test_files::contains;

// `count` samples of (2, 2, 3); sample i's pixel k is (7i + k) mod 256, its label i mod 3.
Dataset numbered(long count) {
  Dataset d{2, 2, 3, 3, {}, {}, "numbered"};
  for (long i = 0; i < count; ++i) {
    for (long k = 0; k < d.sample_size(); ++k) d.images.push_back(std::uint8_t(7 * i + k));
    d.labels.push_back(std::uint8_t(i % 3));
  }
  return d;
}

// A batch copied out of the loader, which reuses its memory.
struct Copy {
  std::vector<float> images;
  std::vector<int> labels;
  std::vector<long> indices;
  bool operator==(const Copy&) const = default;
};

template <class T>
std::vector<Copy> epoch(Loader<T>& loader, std::uint32_t number) {
  loader.start_epoch(number);
  std::vector<Copy> batches;
  const long sample = loader.dataset().sample_size();
  while (const auto* batch = loader.next())
    batches.push_back({std::vector<float>(batch->images, batch->images + batch->size * sample),
                       std::vector<int>(batch->labels, batch->labels + batch->size),
                       std::vector<long>(batch->indices, batch->indices + batch->size)});
  return batches;
}

std::vector<long> visited(const std::vector<Copy>& batches) {
  std::vector<long> order;
  for (const Copy& batch : batches) order.insert(order.end(), batch.indices.begin(), batch.indices.end());
  return order;
}

std::vector<long> iota(long n) {
  std::vector<long> values(static_cast<std::size_t>(n));
  std::iota(values.begin(), values.end(), 0L);
  return values;
}

// Adds 0..20 to every byte from the sample's own Philox stream.
struct AddNoise : laminar::augment::TransformTag {
  void operator()(const laminar::augment::Image& in, const laminar::augment::Image& out,
                  laminar::augment::Draw& draw) const {
    for (long k = 0; k < in.size(); ++k) out.data[k] = std::uint8_t(in.data[k] + draw.integer(0, 20));
  }
};

}  // namespace

TEST_CASE("Loader visits every sample exactly once per epoch, in the order data::permutation gives") {
  const Dataset d = numbered(37);
  Loader<float> loader(d, Normalization::unit(2), {.batch = 8, .seed = 5});
  const std::vector<long> order = visited(epoch(loader, 3));
  CHECK(order == laminar::data::permutation(37, 5, 3));
  CHECK(order != iota(37));
  std::vector<long> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == iota(37));
}

TEST_CASE("Loader without shuffle serves the samples in dataset order") {
  const Dataset d = numbered(10);
  Loader<float> loader(d, Normalization::unit(2), {.batch = 4, .shuffle = false});
  CHECK(visited(epoch(loader, 7)) == iota(10));
}

TEST_CASE("Loader's batches are data::gather of their indices: the same labels and normalised images") {
  const Dataset d = numbered(20);
  const Normalization norm{{0.2f, 0.6f}, {0.5f, 0.25f}};
  Loader<double> loader(d, norm, {.batch = 6, .seed = 1});
  loader.start_epoch(0);
  while (const auto* batch = loader.next()) {
    std::vector<double> images(std::size_t(batch->size * d.sample_size()));
    std::vector<int> labels(std::size_t(batch->size));
    laminar::data::gather(d, batch->indices, batch->size, norm, images.data(), labels.data());
    CHECK(std::vector<double>(batch->images, batch->images + images.size()) == images);
    CHECK(std::vector<int>(batch->labels, batch->labels + batch->size) == labels);
  }
}

TEST_CASE("Loader with the same seed gives the same batches, and each epoch its own order") {
  const Dataset d = numbered(30);
  Loader<float> first(d, Normalization::unit(2), {.batch = 7, .seed = 11});
  Loader<float> second(d, Normalization::unit(2), {.batch = 7, .seed = 11});
  Loader<float> other(d, Normalization::unit(2), {.batch = 7, .seed = 12});
  const auto batches = epoch(first, 2);
  CHECK(batches == epoch(second, 2));
  CHECK(visited(batches) != visited(epoch(other, 2)));
  CHECK(visited(batches) != visited(epoch(second, 3)));
}

TEST_CASE("Loader ends an epoch with a short batch, or without it under drop_last") {
  const Dataset d = numbered(10);
  Loader<float> keep(d, Normalization::unit(2), {.batch = 4});
  Loader<float> drop(d, Normalization::unit(2), {.batch = 4, .drop_last = true});
  CHECK(keep.batches_per_epoch() == 3);
  CHECK(drop.batches_per_epoch() == 2);
  const auto kept = epoch(keep, 0), dropped = epoch(drop, 0);
  REQUIRE(kept.size() == 3);
  REQUIRE(dropped.size() == 2);
  CHECK(kept[2].indices.size() == 2);
  CHECK(dropped[1].indices.size() == 4);
  const std::vector<long> all = visited(kept);
  CHECK(visited(dropped) == std::vector<long>(all.begin(), all.begin() + 8));
  keep.start_epoch(1);
  for (int i = 0; i < 3; ++i) REQUIRE(keep.next() != nullptr);
  CHECK(keep.next() == nullptr);
  CHECK(keep.next() == nullptr);  // and stays at the end
}

TEST_CASE("Loader with prefetch gives the same batches as inline, augmentation included") {
  const Dataset d = numbered(45);
  const auto noise = laminar::augment::pipeline(AddNoise{});
  const auto augment = [&](auto... arguments) { noise.apply(arguments...); };
  const Normalization norm = Normalization::symmetric(2);
  Loader<float> background(d, norm, {.batch = 8, .seed = 3, .prefetch = true}, augment);
  Loader<float> inline_(d, norm, {.batch = 8, .seed = 3, .prefetch = false}, augment);
  Loader<float> plain(d, norm, {.batch = 8, .seed = 3, .prefetch = false});
  for (std::uint32_t number = 0; number < 3; ++number) {
    const auto batches = epoch(background, number);
    CHECK(batches.size() == 6);
    CHECK(batches == epoch(inline_, number));
    CHECK(batches != epoch(plain, number));  // the augmentation did something
  }
}

TEST_CASE("Loader's augmentation sees the uint8 samples and its effect shows up normalised") {
  const Dataset d = numbered(12);
  bool saw_dataset_bytes = true;
  const auto augment = [&](std::uint8_t* images, int n, int channels, int height, int width, const long* indices,
                           std::uint64_t, std::uint32_t) {
    const long sample = long(channels) * height * width;
    for (int i = 0; i < n; ++i) {
      saw_dataset_bytes &= std::equal(images + i * sample, images + (i + 1) * sample, d.image(indices[i]));
      images[i * sample] = 255;  // channel 0, pixel 0
      images[i * sample + sample - 1] = 0;
    }
  };
  for (const bool prefetch : {false, true}) {
    CAPTURE(prefetch);
    Loader<float> loader(d, Normalization::symmetric(2), {.batch = 5, .prefetch = prefetch}, augment);
    const auto batches = epoch(loader, 0);
    for (const Copy& batch : batches)
      for (std::size_t i = 0; i < batch.indices.size(); ++i) {
        CHECK(batch.images[i * 12] == doctest::Approx(1.0));
        CHECK(batch.images[i * 12 + 11] == doctest::Approx(-1.0));
        const std::uint8_t untouched = d.image(batch.indices[i])[5];
        CHECK(batch.images[i * 12 + 5] == doctest::Approx(untouched / 127.5 - 1.0).epsilon(1e-6));
      }
    CHECK(saw_dataset_bytes);
  }
}

TEST_CASE("Loader rethrows an exception from the augmentation in next(), after the batches before it") {
  const Dataset d = numbered(20);
  for (const bool prefetch : {false, true}) {
    CAPTURE(prefetch);
    std::atomic<int> calls = 0;
    const auto augment = [&](std::uint8_t*, int, int, int, int, const long*, std::uint64_t, std::uint32_t) {
      if (++calls == 3) throw Error("augment: broken on purpose");
    };
    Loader<float> loader(d, Normalization::unit(2), {.batch = 4, .prefetch = prefetch}, augment);
    loader.start_epoch(0);
    CHECK(loader.next() != nullptr);
    CHECK(loader.next() != nullptr);
    CHECK_THROWS_WITH_AS(loader.next(), "augment: broken on purpose", Error);
    CHECK_THROWS_WITH_AS(loader.next(), "augment: broken on purpose", Error);  // until a new epoch
    loader.start_epoch(1);
    CHECK(loader.next() != nullptr);
  }
}

TEST_CASE("Loader::start_epoch mid-epoch abandons the rest and serves the new epoch whole") {
  const Dataset d = numbered(40);
  Loader<float> interrupted(d, Normalization::unit(2), {.batch = 6, .seed = 9});
  Loader<float> fresh(d, Normalization::unit(2), {.batch = 6, .seed = 9});
  interrupted.start_epoch(0);
  REQUIRE(interrupted.next() != nullptr);
  REQUIRE(interrupted.next() != nullptr);
  CHECK(epoch(interrupted, 1) == epoch(fresh, 1));
}

TEST_CASE("destroying a prefetching Loader mid-epoch, or mid-batch, returns cleanly") {
  const Dataset d = numbered(64);
  std::atomic<int> calls = 0;
  const auto slow = [&](std::uint8_t*, int, int, int, int, const long*, std::uint64_t, std::uint32_t) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  };
  {
    Loader<float> never_started(d, Normalization::unit(2), {.batch = 4}, slow);
  }
  CHECK(calls == 0);
  {
    Loader<float> just_started(d, Normalization::unit(2), {.batch = 4}, slow);
    just_started.start_epoch(0);  // the worker is now inside its first batch
  }
  {
    Loader<float> mid_epoch(d, Normalization::unit(2), {.batch = 4}, slow);
    mid_epoch.start_epoch(0);
    REQUIRE(mid_epoch.next() != nullptr);
  }
  // One batch ahead at most: the loaders above prepared at most 1 and 2 batches.
  CHECK(calls <= 3);
}

TEST_CASE("Loader::next before start_epoch is an error") {
  const Dataset d = numbered(4);
  Loader<float> loader(d, Normalization::unit(2), {.batch = 2});
  CHECK_THROWS_WITH_AS(loader.next(), contains("call start_epoch(epoch) before the first batch of numbered"), Error);
}

TEST_CASE("Loader rejects a batch size below 1 and a normalisation for other channels") {
  const Dataset d = numbered(4);
  CHECK_THROWS_WITH_AS(Loader<float>(d, Normalization::unit(2), {.batch = 0}),
                       contains("batch = 0 for numbered must be at least 1"), Error);
  CHECK_THROWS_WITH_AS(Loader<float>(d, Normalization::unit(3), {.batch = 2}),
                       contains("normalisation has 3 means and 3 standard deviations but numbered has 2 channels"),
                       Error);
}

TEST_CASE("Loader over an empty dataset has no batches") {
  const Dataset d = numbered(0);
  Loader<float> loader(d, Normalization::unit(2), {.batch = 4});
  CHECK(loader.batches_per_epoch() == 0);
  CHECK(epoch(loader, 0).empty());
}

TEST_CASE("Normalization::symmetric maps 0 to -1 and 255 to 1") {
  Dataset d{3, 1, 2, 1, {0, 255, 0, 255, 0, 255}, {0}, "extremes"};
  float out[6];
  int label;
  const long index = 0;
  laminar::data::gather(d, &index, 1, Normalization::symmetric(3), out, &label);
  for (int k = 0; k < 6; ++k) CHECK(out[k] == doctest::Approx(k % 2 ? 1.0 : -1.0));
}

TEST_CASE("Normalization::save and load round-trip every bit, and load stops after its own lines") {
  const Normalization saved{{0.4914f, 0.48216f, 1.0f / 3.0f}, {0.24703f, 0.24349f, 1e-7f}};
  std::stringstream stream;
  saved.save(stream);
  stream << "next record\n";
  CHECK(stream.str().rfind("laminar-normalization 1\n3\n", 0) == 0);
  const Normalization loaded = Normalization::load(stream);
  CHECK(loaded.mean == saved.mean);
  CHECK(loaded.std == saved.std);
  std::string rest;
  std::getline(stream, rest);
  CHECK(rest == "next record");
}

TEST_CASE("Normalization::load of a malformed stream is an error saying what is wrong") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "Normalization::load: the stream is empty"},
      {"laminar-checkpoint 1\n", "is not \"laminar-normalization 1\""},
      {"laminar-normalization 2\n1\n0\n1\n", "version \"2\" is not 1"},
      {"laminar-normalization 1\n", "ends before the channel count"},
      {"laminar-normalization 1\nthree\n", "channel count \"three\" is not a whole number"},
      {"laminar-normalization 1\n0\n\n\n", "channel count \"0\" is not a whole number in 1..65536"},
      {"laminar-normalization 1\n2\n0.5\n", "means line holds 1 values, expected 2"},
      {"laminar-normalization 1\n2\n0.5 0.5\n", "ends before the line of standard deviations"},
      {"laminar-normalization 1\n1\n0.5x\n1\n", "means line \"0.5x\" holds something that is not a finite number"},
      {"laminar-normalization 1\n1\n0.5\ninf\n", "standard deviations line \"inf\" holds something"},
      {"laminar-normalization 1\n1\n0.5\n0\n", "standard deviation of channel 0 is zero"},
  };
  for (const auto& [text, message] : cases) {
    CAPTURE(text);
    std::istringstream stream(text);
    CHECK_THROWS_WITH_AS(Normalization::load(stream), contains(message), Error);
  }
}
