// Learning-rate schedules: a Schedule is a list of time segments, each giving a
// multiplier of the optimizer's base learning rate as a function of the
// fractional epoch; `+` concatenates segments, reduce_on_plateau reacts to metrics.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "../core/error.hpp"
#include "../core/format.hpp"
#include "history.hpp"

namespace laminar::schedule {

// A segment duration meaning "until the end of the run".
inline constexpr double open = -1;

struct PlateauOptions {
  std::string monitor = "valid_loss";
  double factor = 0.1;
  int patience = 10;
  double threshold = 1e-4;  // relative improvement needed
  int cooldown = 0;
  double min_multiplier = 0;
};

namespace detail {

// How describe() shows a segment's length: nothing for open segments.
inline std::string length_text(double duration) { return duration == open ? "" : ", " + shortest(duration) + " epochs"; }

// Where one segment is being evaluated: local time t in [0, length], and the
// absolute epoch (step milestones are absolute).
struct Time {
  double t, length, epoch;
};

struct Constant {
  double multiplier;
  double at(const Time&) const { return multiplier; }
  std::string describe(double duration) const { return "constant(" + shortest(multiplier) + length_text(duration) + ")"; }
};

struct Warmup {
  double from;
  double at(const Time& time) const { return from + (1 - from) * time.t / time.length; }
  std::string describe(double duration) const {
    return "warmup(" + shortest(duration) + (from == 0 ? "" : ", from " + shortest(from)) + ")";
  }
};

struct Step {
  std::vector<double> milestones;  // absolute epochs of the run
  double gamma;
  double at(const Time& time) const {
    int passed = 0;
    for (double milestone : milestones) passed += milestone <= time.epoch;
    return std::pow(gamma, passed);
  }
  std::string describe(double) const {
    std::string text = "step(";
    for (std::size_t i = 0; i < milestones.size(); ++i) text += (i ? ", " : "") + shortest(milestones[i]);
    return text + "; gamma " + shortest(gamma) + ")";
  }
};

struct Exponential {
  double gamma;
  bool staircase;
  double at(const Time& time) const { return std::pow(gamma, staircase ? std::floor(time.t) : time.t); }
  std::string describe(double duration) const {
    return "exponential(gamma " + shortest(gamma) + (staircase ? ", staircase" : ", continuous") + length_text(duration) +
           ")";
  }
};

// Loshchilov & Hutter, SGDR: floor + (1 - floor)(1 + cos(pi t / L)) / 2.
struct Cosine {
  double floor;
  double at(const Time& time) const {
    return floor + (1 - floor) * (1 + std::cos(std::numbers::pi * time.t / time.length)) / 2;
  }
  std::string describe(double duration) const { return "cosine(floor " + shortest(floor) + length_text(duration) + ")"; }
};

struct Linear {
  double to;
  double at(const Time& time) const { return 1 + (to - 1) * time.t / time.length; }
  std::string describe(double duration) const { return "linear(to " + shortest(to) + length_text(duration) + ")"; }
};

struct PiecewiseLinear {
  std::vector<std::pair<double, double>> points;  // increasing local epochs
  double at(const Time& time) const {
    if (time.t <= points.front().first) return points.front().second;
    for (std::size_t i = 1; i < points.size(); ++i) {
      const auto [e0, m0] = points[i - 1];
      const auto [e1, m1] = points[i];
      if (time.t <= e1) return m0 + (m1 - m0) * (time.t - e0) / (e1 - e0);
    }
    return points.back().second;
  }
  std::string describe(double) const {
    std::string text = "piecewise_linear(";
    for (std::size_t i = 0; i < points.size(); ++i)
      text += (i ? ", " : "") + shortest(points[i].first) + ": " + shortest(points[i].second);
    return text + ")";
  }
};

// Smith & Topin, super-convergence: u = t / L; for u < p the multiplier rises
// start -> 1 along (1 - cos(pi u / p)) / 2, then falls 1 -> end along
// (1 + cos(pi (u - p) / (1 - p))) / 2.
struct OneCycle {
  double peak_at, start, end;
  double at(const Time& time) const {
    const double u = time.t / time.length;
    if (u < peak_at) return start + (1 - start) * (1 - std::cos(std::numbers::pi * u / peak_at)) / 2;
    return end + (1 - end) * (1 + std::cos(std::numbers::pi * (u - peak_at) / (1 - peak_at))) / 2;
  }
  std::string describe(double duration) const {
    return "one_cycle(peak at " + shortest(peak_at) + ", start " + shortest(start) + ", end " + shortest(end) +
           length_text(duration) + ")";
  }
};

// The rules of PyTorch's ReduceLROnPlateau (relative threshold): an epoch
// improves when its metric beats the best by more than threshold * |best|; once
// more than `patience` epochs in a row have not improved, the multiplier is cut
// by `factor` and the next `cooldown` epochs are not counted.
struct Plateau {
  PlateauOptions options;
  bool higher_is_better;
  // Mutable state, the whole of what a checkpoint must keep.
  double reductions = 0, best, bad_epochs = 0, cooldown_left = 0;
  static constexpr std::size_t state_size = 4;

  Plateau(PlateauOptions o, bool higher)
      : options(std::move(o)),
        higher_is_better(higher),
        best(higher ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity()) {}

  double multiplier() const { return std::max(std::pow(options.factor, reductions), options.min_multiplier); }
  double at(const Time&) const { return multiplier(); }

  bool improves(double value) const {
    // Before the first observation best is infinite and any finite value wins.
    const double margin = std::isinf(best) ? 0 : options.threshold * std::abs(best);
    return higher_is_better ? value > best + margin : value < best - margin;
  }

  void observe(double value) {
    if (std::isnan(value)) return;
    if (improves(value)) {
      best = value;
      bad_epochs = 0;
    } else {
      bad_epochs += 1;
    }
    if (cooldown_left > 0) {
      cooldown_left -= 1;
      bad_epochs = 0;
    }
    if (bad_epochs > options.patience) {
      if (std::pow(options.factor, reductions) > options.min_multiplier) reductions += 1;
      cooldown_left = options.cooldown;
      bad_epochs = 0;
    }
  }

  std::string describe(double) const {
    return "reduce_on_plateau(" + options.monitor + ", factor " + shortest(options.factor) + ", patience " +
           std::to_string(options.patience) + ", threshold " + shortest(options.threshold) + ", cooldown " +
           std::to_string(options.cooldown) + ", min " + shortest(options.min_multiplier) + ")";
  }
};

using Shape = std::variant<Constant, Warmup, Step, Exponential, Cosine, Linear, PiecewiseLinear, OneCycle, Plateau>;

struct Segment {
  double duration;  // epochs, or open
  Shape shape;

  bool is_open() const { return duration == open; }

  std::string describe() const {
    return std::visit([&](const auto& s) { return s.describe(duration); }, shape);
  }
};

// `epochs` of a segment that may be open: open, or a positive finite length.
inline double checked_duration(const char* function, double epochs) {
  if (epochs == open) return open;
  if (!(epochs > 0) || !std::isfinite(epochs))
    throw Error(std::string(function) + ": epochs must be positive or schedule::open, got " + shortest(epochs));
  return epochs;
}

inline void check_finite_at_least(const char* function, const char* name, double value, double least) {
  if (!std::isfinite(value) || !(value >= least))
    throw Error(std::string(function) + ": " + name + " must be a finite number >= " + shortest(least) + ", got " +
                shortest(value));
}

inline void check_unit_interval(const char* function, const char* name, double value) {
  if (!(value >= 0 && value <= 1))
    throw Error(std::string(function) + ": " + name + " must lie in [0, 1], got " + shortest(value));
}

}  // namespace detail

class Schedule {
 public:
  // No segments: the constant multiplier 1, and the identity of `+`.
  Schedule() = default;

  double operator()(double epoch, double total_epochs) const {
    if (!(total_epochs > 0) || !std::isfinite(total_epochs))
      throw Error("schedule: total_epochs must be positive and finite, got " + shortest(total_epochs));
    if (!(epoch >= 0)) throw Error("schedule: epoch must be >= 0, got " + shortest(epoch));
    if (epoch > total_epochs)
      throw Error("schedule: epoch " + shortest(epoch) + " is past total_epochs " + shortest(total_epochs));
    if (segments_.empty()) return 1;
    // An open segment that starts at or after the run's end means the schedule
    // does not fit the run; say so at the first step rather than when it is reached.
    if (segments_.back().is_open()) {
      double open_start = 0;
      for (std::size_t k = 0; k + 1 < segments_.size(); ++k) open_start += segments_[k].duration;
      if (open_start >= total_epochs)
        throw Error("schedule: the open segment " + segments_.back().describe() + " starts at epoch " +
                    shortest(open_start) + ", leaving it no time in a run of " + shortest(total_epochs) +
                    " epochs");
    }
    double start = 0;
    for (std::size_t k = 0; k < segments_.size(); ++k) {
      const detail::Segment& segment = segments_[k];
      if (segment.is_open()) return value(segment, epoch - start, total_epochs - start, epoch);
      const double end = start + segment.duration;
      if (epoch < end || k + 1 == segments_.size())
        return value(segment, std::min(epoch - start, segment.duration), segment.duration, epoch);
      start = end;
    }
    return 1;  // unreachable: the loop returns at the last segment
  }

  // Appends `next`'s segments after this schedule's; only the last may be open.
  Schedule operator+(const Schedule& next) const {
    if (!segments_.empty() && segments_.back().is_open() && !next.segments_.empty())
      throw Error("schedule: cannot append " + next.describe() + " after " + segments_.back().describe() +
                  ", which is open (lasts to the end of the run); give it a length in epochs");
    Schedule sum = *this;
    sum.segments_.insert(sum.segments_.end(), next.segments_.begin(), next.segments_.end());
    return sum;
  }

  // Feeds record.metric(monitor) to each reduce-on-plateau segment the epoch
  // (which covers [epoch - 1, epoch)) reached; segments not yet begun ignore it.
  void observe(const train::EpochRecord& record) {
    if (record.epoch < 1)
      throw Error("schedule::observe: record.epoch must be a 1-based epoch number, got " +
                  std::to_string(record.epoch));
    double start = 0;
    for (detail::Segment& segment : segments_) {
      if (!(record.epoch > start)) break;
      if (auto* plateau = std::get_if<detail::Plateau>(&segment.shape))
        plateau->observe(record.metric(plateau->options.monitor));
      if (segment.is_open()) break;
      start += segment.duration;
    }
  }

  // Each plateau segment's (reductions, best, bad epochs, cooldown left), in
  // segment order.
  std::vector<double> state() const {
    std::vector<double> values;
    for (const detail::Segment& segment : segments_)
      if (const auto* plateau = std::get_if<detail::Plateau>(&segment.shape))
        values.insert(values.end(), {plateau->reductions, plateau->best, plateau->bad_epochs, plateau->cooldown_left});
    return values;
  }

  void restore(const std::vector<double>& state) {
    std::size_t plateaus = 0;
    for (const detail::Segment& segment : segments_) plateaus += std::holds_alternative<detail::Plateau>(segment.shape);
    if (state.size() != plateaus * detail::Plateau::state_size)
      throw Error("schedule::restore: the state has " + std::to_string(state.size()) + " values but " + describe() +
                  " keeps " + std::to_string(plateaus * detail::Plateau::state_size));
    // Reductions, bad epochs and cooldown are counts; best may be any double.
    for (std::size_t i = 0; i < state.size(); ++i) {
      const bool count = i % detail::Plateau::state_size != 1;
      if (count && !(std::isfinite(state[i]) && state[i] >= 0 && state[i] == std::floor(state[i])))
        throw Error("schedule::restore: state value " + std::to_string(i) + " must be a count, got " +
                    shortest(state[i]));
    }
    std::size_t next = 0;
    for (detail::Segment& segment : segments_)
      if (auto* plateau = std::get_if<detail::Plateau>(&segment.shape)) {
        plateau->reductions = state[next];
        plateau->best = state[next + 1];
        plateau->bad_epochs = state[next + 2];
        plateau->cooldown_left = state[next + 3];
        next += detail::Plateau::state_size;
      }
  }

  std::string describe() const {
    if (segments_.empty()) return "constant(1)";
    std::string text;
    for (const detail::Segment& segment : segments_) text += (text.empty() ? "" : " + ") + segment.describe();
    return text;
  }

  // The one way the factory functions below build a schedule.
  static Schedule of(double duration, detail::Shape shape) {
    Schedule single;
    single.segments_.push_back({duration, std::move(shape)});
    return single;
  }

 private:
  static double value(const detail::Segment& segment, double t, double length, double epoch) {
    const detail::Time time{t, length, epoch};
    return std::visit([&](const auto& shape) { return shape.at(time); }, segment.shape);
  }

  std::vector<detail::Segment> segments_;
};

inline Schedule constant(double multiplier = 1.0, double epochs = open) {
  detail::check_finite_at_least("constant", "multiplier", multiplier, 0);
  return Schedule::of(detail::checked_duration("constant", epochs), detail::Constant{multiplier});
}

// Goyal et al., "Accurate, Large Minibatch SGD": linear from `from` to 1 over
// `epochs`, so a large batch's raised learning rate is reached gradually.
inline Schedule warmup(double epochs, double from = 0.0) {
  if (epochs == open || !(epochs > 0) || !std::isfinite(epochs))
    throw Error("warmup: epochs must be positive and finite, got " + shortest(epochs));
  detail::check_finite_at_least("warmup", "from", from, 0);
  return Schedule::of(epochs, detail::Warmup{from});
}

// gamma^(number of milestones <= epoch). The milestones are epochs of the whole
// run, not of the segment, as papers state them: the Bag-of-Tricks recipe
// (divide by 10 at 30, 60 and 90 after a 5-epoch warmup) is
// warmup(5) + step({30, 60, 90}). Open-ended.
inline Schedule step(std::vector<double> milestones, double gamma = 0.1) {
  if (!(gamma > 0) || !std::isfinite(gamma))
    throw Error("step: gamma must be positive and finite, got " + shortest(gamma));
  for (std::size_t i = 0; i < milestones.size(); ++i) {
    if (!(milestones[i] >= 0) || !std::isfinite(milestones[i]))
      throw Error("step: milestone " + shortest(milestones[i]) + " is not a finite epoch >= 0");
    if (i > 0 && !(milestones[i] > milestones[i - 1]))
      throw Error("step: milestones must increase, but " + shortest(milestones[i]) + " follows " +
                  shortest(milestones[i - 1]));
  }
  return Schedule::of(open, detail::Step{std::move(milestones), gamma});
}

// gamma^t in the segment's local time t (epochs); staircase uses gamma^floor(t),
// one drop per whole epoch.
inline Schedule exponential(double gamma = 0.94, bool staircase = true, double epochs = open) {
  if (!(gamma > 0) || !std::isfinite(gamma))
    throw Error("exponential: gamma must be positive and finite, got " + shortest(gamma));
  return Schedule::of(detail::checked_duration("exponential", epochs), detail::Exponential{gamma, staircase});
}

inline Schedule cosine(double floor = 0.0, double epochs = open) {
  detail::check_unit_interval("cosine", "floor", floor);
  return Schedule::of(detail::checked_duration("cosine", epochs), detail::Cosine{floor});
}

// 1 -> `to` linearly over the segment.
inline Schedule linear(double to = 0.0, double epochs = open) {
  detail::check_finite_at_least("linear", "to", to, 0);
  return Schedule::of(detail::checked_duration("linear", epochs), detail::Linear{to});
}

// Straight lines between (local epoch, multiplier) knots; the segment ends at
// the last knot and holds the first knot's multiplier before the first.
inline Schedule piecewise_linear(std::vector<std::pair<double, double>> points) {
  if (points.size() < 2)
    throw Error("piecewise_linear: needs at least two points, got " + std::to_string(points.size()));
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto [epoch, multiplier] = points[i];
    if (!(epoch >= 0) || !std::isfinite(epoch))
      throw Error("piecewise_linear: point epoch " + shortest(epoch) + " is not a finite epoch >= 0");
    if (i > 0 && !(epoch > points[i - 1].first))
      throw Error("piecewise_linear: point epochs must increase, but " + shortest(epoch) + " follows " +
                  shortest(points[i - 1].first));
    detail::check_finite_at_least("piecewise_linear", "a point's multiplier", multiplier, 0);
  }
  const double duration = points.back().first;
  return Schedule::of(duration, detail::PiecewiseLinear{std::move(points)});
}

inline Schedule one_cycle(double peak_at = 0.3, double start = 1.0 / 25, double end = 1.0 / 25e4,
                          double epochs = open) {
  if (!(peak_at > 0 && peak_at < 1))
    throw Error("one_cycle: peak_at must lie strictly between 0 and 1, got " + shortest(peak_at));
  detail::check_unit_interval("one_cycle", "start", start);
  detail::check_unit_interval("one_cycle", "end", end);
  return Schedule::of(detail::checked_duration("one_cycle", epochs), detail::OneCycle{peak_at, start, end});
}

// Open-ended: the multiplier is factor^(reductions), never below min_multiplier.
inline Schedule reduce_on_plateau(PlateauOptions options = {}) {
  bool known = false;
  std::string names;
  for (std::string_view name : train::EpochRecord::metric_names) {
    known = known || name == options.monitor;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  if (!known) throw Error("reduce_on_plateau: unknown monitor \"" + options.monitor + "\"; the metrics are " + names);
  if (!(options.factor > 0 && options.factor < 1))
    throw Error("reduce_on_plateau: factor must lie strictly between 0 and 1, got " + shortest(options.factor));
  if (options.patience < 0)
    throw Error("reduce_on_plateau: patience must be >= 0, got " + std::to_string(options.patience));
  detail::check_finite_at_least("reduce_on_plateau", "threshold", options.threshold, 0);
  if (options.cooldown < 0)
    throw Error("reduce_on_plateau: cooldown must be >= 0, got " + std::to_string(options.cooldown));
  detail::check_unit_interval("reduce_on_plateau", "min_multiplier", options.min_multiplier);
  const bool higher = train::EpochRecord::higher_is_better(options.monitor);
  return Schedule::of(open, detail::Plateau{std::move(options), higher});
}

// Goyal et al.: the learning rate grows in proportion to the batch,
// base_lr * batch / reference_batch.
inline double linear_scaling(double base_lr, int batch, int reference_batch = 256) {
  if (!(base_lr > 0) || !std::isfinite(base_lr))
    throw Error("linear_scaling: base_lr must be positive and finite, got " + shortest(base_lr));
  if (batch <= 0) throw Error("linear_scaling: batch must be positive, got " + std::to_string(batch));
  if (reference_batch <= 0)
    throw Error("linear_scaling: reference_batch must be positive, got " + std::to_string(reference_batch));
  return base_lr * batch / reference_batch;
}

}  // namespace laminar::schedule
