// The learning-rate range test: train for a short sweep of exponentially
// growing learning rates, record the loss at each, and suggest where the loss
// falls fastest; the model and optimizer are put back afterwards.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/format.hpp"
#include "../data/batch.hpp"
#include "../data/dataset.hpp"
#include "../io/atomic_file.hpp"
#include "log.hpp"
#include "sanity.hpp"

namespace laminar::train {

struct LrFinderOptions {
  double start = 1e-7, end = 10;  // the first and last learning rate of the sweep
  int steps = 100;                // one batch, one optimizer step each
  int batch = 128;
  double smoothing = 0.98;  // beta of the exponential moving average of the loss
  double divergence = 4.0;  // stop when the smoothed loss exceeds divergence x its best so far
  std::uint64_t seed = 0;   // of the batch order
  std::string csv;          // when non-empty: lr,loss,smoothed per step, written atomically
};

struct LrFinderResult {
  std::vector<double> lrs, losses, smoothed;  // one entry per step taken
  double suggested;                           // where the smoothed loss falls fastest against log(lr)
  double min_loss_lr;                         // where the smoothed loss is lowest
  bool diverged;                              // the sweep stopped early: the loss blew up or was not finite
};

namespace detail::tuning {

inline void check_lr_finder_options(const LrFinderOptions& o) {
  const auto fail = [](const std::string& problem) { return Error("lr_finder: " + problem); };
  if (!(std::isfinite(o.start) && std::isfinite(o.end) && o.start > 0))
    throw fail("start = " + shortest(o.start) + " and end = " + shortest(o.end) + " must be finite and start positive");
  if (!(o.start < o.end)) throw fail("start = " + shortest(o.start) + " must be below end = " + shortest(o.end));
  if (o.steps < 2) throw fail("steps = " + std::to_string(o.steps) + " must be at least 2");
  if (o.batch < 1) throw fail("batch = " + std::to_string(o.batch) + " must be at least 1");
  if (!(o.smoothing >= 0 && o.smoothing < 1)) throw fail("smoothing = " + shortest(o.smoothing) + " is not in [0, 1)");
  if (!(o.divergence > 1)) throw fail("divergence = " + shortest(o.divergence) + " must exceed 1");
}

// The index of the steepest descent of y against x among the finite points:
// central differences inside, one-sided at the ends (numpy.gradient's rule).
inline std::size_t steepest_descent(const std::vector<double>& x, const std::vector<double>& y) {
  std::size_t n = 0;
  while (n < y.size() && std::isfinite(y[n])) ++n;
  if (n < 2) return 0;
  std::size_t best = 0;
  double best_slope = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t lo = i == 0 ? 0 : i - 1, hi = i + 1 == n ? i : i + 1;
    const double slope = (y[hi] - y[lo]) / (x[hi] - x[lo]);
    if (slope < best_slope) best_slope = slope, best = i;
  }
  return best;
}

}  // namespace detail::tuning

// Smith 2017, "Cyclical learning rates for training neural networks" (the LR
// range test): step i of n uses lr_i = start (end / start)^(i / (n - 1)), one
// training batch each, batches in a seeded shuffled order (full batches only,
// epoch after epoch). The recorded loss is each batch's before its step; it is
// smoothed by the debiased exponential moving average
//   a_i = beta a_{i-1} + (1 - beta) loss_i,  a_{-1} = 0,   smoothed_i = a_i / (1 - beta^(i+1)),
// and the sweep stops, diverged, once smoothed_i > divergence x min_{j<=i} smoothed_j
// or a loss is not finite (that step is still recorded). Afterwards the model's
// parameters and statistics, its mode and step, the optimizer's learning rate
// and (when it offers them) its state buffers and step count are all as they were.
template <class Model, class Opt>
LrFinderResult lr_finder(Model& model, Opt& opt, const data::Dataset& d, const data::Normalization& n,
                         LrFinderOptions o = {}) {
  detail::tuning::check_lr_finder_options(o);
  detail::tuning::check_data<Model>(d, n, "lr_finder");
  const int size = int(std::min<long>(o.batch, d.size()));
  const long batches_per_epoch = d.size() / size;

  const Snapshot<Model> snapshot(model, opt);
  const double original_lr = opt.learning_rate();
  const bool was_training = model.training();
  const std::uint32_t original_step = model.step();
  const auto put_back = [&] {
    snapshot.restore(model, opt);
    opt.set_learning_rate(original_lr);
    model.train(was_training);
    model.set_step(original_step);
  };

  LrFinderResult result{{}, {}, {}, o.start, o.start, false};
  try {
    detail::tuning::Batch<Model> staged;
    std::vector<long> order;
    const double log_ratio = std::log(o.end / o.start);
    double average = 0, debias = 1, best = std::numeric_limits<double>::infinity();
    model.train();
    for (int i = 0; i < o.steps; ++i) {
      const long k = i % batches_per_epoch;
      if (k == 0) order = data::permutation(d.size(), o.seed, std::uint32_t(i / batches_per_epoch));
      const double lr = o.start * std::exp(log_ratio * double(i) / double(o.steps - 1));
      opt.set_learning_rate(lr);
      staged.load(d, order.data() + k * size, size, n);
      model.set_step(std::uint32_t(i));
      const auto r = detail::tuning::forward_loss(model, staged, true);
      average = o.smoothing * average + (1 - o.smoothing) * r.loss;
      debias *= o.smoothing;
      const double smoothed = average / (1 - debias);
      result.lrs.push_back(lr);
      result.losses.push_back(r.loss);
      result.smoothed.push_back(smoothed);
      if (!std::isfinite(smoothed) || smoothed > o.divergence * best) {
        result.diverged = true;
        break;
      }
      best = std::min(best, smoothed);
      if (i + 1 < o.steps) {
        model.backward(staged.dlogits);
        opt.step();
      }
    }
  } catch (...) {
    put_back();
    throw;
  }
  put_back();

  // Searched in log(lr): the sweep is uniform there.
  std::vector<double> log_lrs(result.lrs.size());
  for (std::size_t i = 0; i < log_lrs.size(); ++i) log_lrs[i] = std::log(result.lrs[i]);
  result.suggested = result.lrs[detail::tuning::steepest_descent(log_lrs, result.smoothed)];
  std::size_t lowest = 0;
  for (std::size_t i = 0; i < result.smoothed.size() && std::isfinite(result.smoothed[i]); ++i)
    if (result.smoothed[i] < result.smoothed[lowest]) lowest = i;
  result.min_loss_lr = result.lrs[lowest];

  if (!o.csv.empty()) {
    std::string text = "lr,loss,smoothed\n";
    for (std::size_t i = 0; i < result.lrs.size(); ++i)
      text += shortest(result.lrs[i]) + ',' + shortest(result.losses[i]) + ',' +
              shortest(result.smoothed[i]) + '\n';
    io::write_atomically(o.csv, text);
  }
  return result;
}

}  // namespace laminar::train
