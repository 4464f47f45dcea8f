// Random search over hyper-parameters: each trial draws every dimension
// independently (uniformly, or uniformly in log space), runs a short objective,
// and the trials come back best first, writable as CSV.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/format.hpp"
#include "../core/philox.hpp"
#include "../io/atomic_file.hpp"
#include "log.hpp"

namespace laminar::train {

struct Dimension {
  std::string name;
  double low, high;  // samples lie in [low, high)
  bool log_scale;    // uniform in log(value): for rates and decays spanning decades
};

namespace detail::tuning {

inline void check_dimension(const Dimension& d, const char* caller) {
  if (d.name.empty()) throw Error(std::string(caller) + ": a dimension has an empty name");
  if (!(std::isfinite(d.low) && std::isfinite(d.high) && d.low < d.high))
    throw Error(std::string(caller) + ": dimension " + d.name + " has low = " + shortest(d.low) +
                " and high = " + shortest(d.high) + "; both must be finite and low below high");
  if (d.log_scale && !(d.low > 0))
    throw Error(std::string(caller) + ": log-scale dimension " + d.name + " has low = " + shortest(d.low) +
                "; it must be positive");
}

// Uniform in [0, 1) with 53 random bits (27 from one Philox word, 26 from the
// next): every double of that grid is equally likely.
inline double uniform53(std::uint64_t seed, std::uint32_t stream, std::uint32_t step, std::uint64_t element) {
  const std::uint32_t high = philox::bits(seed, stream, step, 2 * element) >> 5;
  const std::uint32_t low = philox::bits(seed, stream, step, 2 * element + 1) >> 6;
  return (double(high) * 67108864.0 + double(low)) * (1.0 / 9007199254740992.0);
}

inline constexpr std::uint32_t search_stream = 0x5253u;  // "RS"

}  // namespace detail::tuning

inline Dimension uniform(std::string name, double low, double high) {
  Dimension d{std::move(name), low, high, false};
  detail::tuning::check_dimension(d, "uniform");
  return d;
}

inline Dimension log_uniform(std::string name, double low, double high) {
  Dimension d{std::move(name), low, high, true};
  detail::tuning::check_dimension(d, "log_uniform");
  return d;
}

using Point = std::map<std::string, double>;

struct Trial {
  Point point;
  double score;
};

// Bergstra & Bengio 2012, "Random search for hyper-parameter optimization": with
// a budget of n trials, independent draws try n distinct values of every
// dimension where a grid tries n^(1/d), and only a few dimensions usually
// matter. Trial t's value of dimension j is a pure function of (seed, t, j), so
// the same seed gives the same points and more trials extend a search. Returns
// every trial, best first (highest score when maximize, lowest otherwise); ties
// keep trial order and NaN scores (failed runs) sort last.
inline std::vector<Trial> random_search(const std::vector<Dimension>& space, int trials, std::uint64_t seed,
                                        const std::function<double(const Point&)>& objective, bool maximize = true) {
  if (space.empty()) throw Error("random_search: the search space has no dimensions");
  std::set<std::string> names;
  for (const auto& d : space) {
    detail::tuning::check_dimension(d, "random_search");
    if (!names.insert(d.name).second) throw Error("random_search: dimension " + d.name + " appears twice");
  }
  if (trials < 1) throw Error("random_search: trials = " + std::to_string(trials) + " must be at least 1");
  if (!objective) throw Error("random_search: the objective is empty");

  std::vector<Trial> result;
  result.reserve(std::size_t(trials));
  for (int t = 0; t < trials; ++t) {
    Point point;
    for (std::size_t j = 0; j < space.size(); ++j) {
      const Dimension& d = space[j];
      const double u = detail::tuning::uniform53(seed, detail::tuning::search_stream, std::uint32_t(t), j);
      const double value = d.log_scale ? std::exp(std::log(d.low) + u * (std::log(d.high) - std::log(d.low)))
                                       : d.low + u * (d.high - d.low);
      // Rounding in exp or the product may land on or past high.
      point[d.name] = std::clamp(value, d.low, std::nextafter(d.high, d.low));
    }
    const double score = objective(point);
    result.push_back({std::move(point), score});
  }
  std::stable_sort(result.begin(), result.end(), [maximize](const Trial& a, const Trial& b) {
    if (std::isnan(a.score) || std::isnan(b.score)) return !std::isnan(a.score) && std::isnan(b.score);
    return maximize ? a.score > b.score : a.score < b.score;
  });
  return result;
}

// One row per trial in the given order: the dimensions in name order, then the
// score, each in the shortest form that reads back to the same double.
inline void write_trials_csv(const std::string& path, const std::vector<Trial>& trials) {
  if (trials.empty()) throw Error("write_trials_csv: there are no trials to write to " + path);
  const Point& first = trials.front().point;
  std::string text;
  for (const auto& [name, value] : first) {
    if (name.find_first_of(",\"\n\r") != std::string::npos)
      throw Error("write_trials_csv: dimension name \"" + name + "\" holds a comma, quote or line break, so " + path +
                  " could not be read back");
    text += name;
    text += ',';
  }
  text += "score\n";
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const Point& point = trials[i].point;
    if (point.size() != first.size() || !std::equal(point.begin(), point.end(), first.begin(),
                                                    [](const auto& a, const auto& b) { return a.first == b.first; }))
      throw Error("write_trials_csv: trial " + std::to_string(i) + " has other dimensions than trial 0, so " + path +
                  " would have no single header");
    for (const auto& [name, value] : point) {
      text += shortest(value) + ',';
    }
    text += shortest(trials[i].score) + '\n';
  }
  io::write_atomically(path, text);
}

}  // namespace laminar::train
