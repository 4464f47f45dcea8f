// Carving a validation set out of a training set: seeded, stratified by class,
// and keeping the samples' original order inside each part.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/philox.hpp"
#include "dataset.hpp"

namespace laminar::data {

namespace detail {

// How many samples each label gives to a validation set of `count` out of `total`
// (largest-remainder apportionment): label c with n_c samples gives
// floor(count * n_c / total), and the count - sum(floor) samples left over go one
// each to the labels with the largest remainders (count * n_c mod total), ties to
// the smaller label. The quotas sum to `count`, each is within one of the exact
// share, none exceeds n_c, and they depend on the counts alone, not on the seed.
inline std::array<long, 256> stratified_quotas(const std::array<long, 256>& per_label, long count,
                                               long total) {
  std::array<long, 256> quotas{};
  std::array<long, 256> remainders{};
  long assigned = 0;
  for (int label = 0; label < 256; ++label) {
    // count * n_c fits easily: both are at most the dataset size.
    const long long exact = (long long)count * per_label[std::size_t(label)];
    quotas[std::size_t(label)] = long(exact / total);
    remainders[std::size_t(label)] = long(exact % total);
    assigned += quotas[std::size_t(label)];
  }
  std::array<int, 256> by_remainder{};
  for (int label = 0; label < 256; ++label) by_remainder[std::size_t(label)] = label;
  std::stable_sort(by_remainder.begin(), by_remainder.end(), [&](int a, int b) {
    return remainders[std::size_t(a)] > remainders[std::size_t(b)];
  });
  // The remainders sum to (count - assigned) * total and each is below total, so
  // more than count - assigned labels have a non-zero remainder: every label
  // chosen here has a sample to spare.
  for (long extra = 0; extra < count - assigned; ++extra) ++quotas[std::size_t(by_remainder[std::size_t(extra)])];
  return quotas;
}

inline Dataset empty_like(const Dataset& d, std::string source) {
  return Dataset{d.channels, d.height, d.width, d.classes, {}, {}, std::move(source)};
}

}  // namespace detail

// Splits `train` into train and valid (test is left empty) with `count` samples
// in valid. Stratified: each class gives its share of `count` by the rule of
// detail::stratified_quotas, so the class balance of both parts matches the
// whole to within one sample per class. Which samples of a class go is a seeded
// shuffle (Philox, so the same on every platform); both parts keep the original
// order of their samples.
inline Splits split_validation(const Dataset& train, long count, std::uint64_t seed) {
  const long total = train.size();
  if (count < 0 || count > total)
    throw Error("split_validation: count = " + std::to_string(count) + " is outside 0.." +
                std::to_string(total) + ", the samples in " + train.source);

  std::array<long, 256> per_label{};
  for (const std::uint8_t label : train.labels) ++per_label[label];
  const std::array<long, 256> quotas =
      total == 0 ? std::array<long, 256>{} : detail::stratified_quotas(per_label, count, total);

  // Each label's samples, in order, shuffled by Fisher-Yates on the label's own
  // Philox stream; the first quota of them are chosen.
  constexpr std::uint32_t split_stream = 0x5356u;  // "SV"
  std::vector<std::vector<long>> members(256);
  for (int label = 0; label < 256; ++label) members[std::size_t(label)].reserve(std::size_t(per_label[std::size_t(label)]));
  for (long i = 0; i < total; ++i) members[train.labels[std::size_t(i)]].push_back(i);
  std::vector<std::uint8_t> chosen(std::size_t(total), 0);
  for (int label = 0; label < 256; ++label) {
    std::vector<long>& samples = members[std::size_t(label)];
    const long n = long(samples.size());
    const long quota = quotas[std::size_t(label)];
    // Only the first `quota` places need drawing: a partial Fisher-Yates.
    for (long i = 0; i < quota; ++i) {
      const auto span = std::uint64_t(n - i);
      const long j = i + long(philox::bits(seed, split_stream, std::uint32_t(label), std::uint64_t(i)) % span);
      std::swap(samples[std::size_t(i)], samples[std::size_t(j)]);
      chosen[std::size_t(samples[std::size_t(i)])] = 1;
    }
  }

  const std::string seed_text = "seed " + std::to_string(seed);
  Splits splits;
  splits.train = detail::empty_like(train, train.source + " (training part, " + seed_text + ")");
  splits.valid = detail::empty_like(train, train.source + " (validation part of " +
                                               std::to_string(count) + ", " + seed_text + ")");
  splits.test = detail::empty_like(train, "(no test set: split_validation makes none)");
  const long sample = train.sample_size();
  for (Dataset* part : {&splits.train, &splits.valid}) {
    const long size = part == &splits.valid ? count : total - count;
    part->images.reserve(std::size_t(size * sample));
    part->labels.reserve(std::size_t(size));
  }
  for (long i = 0; i < total; ++i) {
    Dataset& part = chosen[std::size_t(i)] ? splits.valid : splits.train;
    part.images.insert(part.images.end(), train.image(i), train.image(i) + sample);
    part.labels.push_back(train.labels[std::size_t(i)]);
  }
  return splits;
}

// The same with the validation share as a fraction in [0, 1), rounded to the
// nearest whole sample. A template so that split_validation(d, 5000, seed), an
// int, picks the count overload instead of being ambiguous.
template <std::floating_point Fraction>
Splits split_validation(const Dataset& train, Fraction fraction, std::uint64_t seed) {
  if (!(fraction >= 0 && fraction < 1))
    throw Error("split_validation: fraction = " + std::to_string(double(fraction)) +
                " is outside [0, 1)");
  return split_validation(train, long(std::llround(double(fraction) * double(train.size()))), seed);
}

}  // namespace laminar::data
