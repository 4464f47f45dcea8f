// Callbacks run by fit after every epoch, once the epoch's record (with its
// validation metrics) is in the history. The built-in ones decide from the
// history alone, so after a resume they behave exactly as in an uninterrupted
// run: early stopping, saving the best weights, the overfitting warning.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "../core/error.hpp"
#include "history.hpp"

namespace laminar::train {

// What a callback may do to the run.
class FitControl {
 public:
  // Ends training after this epoch; the reason lands in History::stop_reason.
  void stop(std::string reason) {
    if (reason_.empty()) reason_ = std::move(reason);
  }
  bool stopping() const { return !reason_.empty(); }
  const std::string& reason() const { return reason_; }

  // Writes the weights that validation just measured (the averaged ones when
  // fit keeps an EMA) and the normalisation, loadable with io::load_weights.
  std::function<void(const std::string& path)> save_weights;
  bool verbose = true;

 private:
  std::string reason_;
};

struct Callback {
  std::string name;
  std::function<void(const History&, FitControl&)> on_epoch_end;
};

// The index into h.epochs of the best epoch by `monitor`: a later epoch counts
// as better only when it beats the best so far by more than min_delta. NaN
// values never count. Empty when no epoch has a finite value.
inline std::optional<std::size_t> best_epoch(const History& h, std::string_view monitor, double min_delta = 0) {
  const bool higher = EpochRecord::higher_is_better(monitor);
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < h.epochs.size(); ++i) {
    const double v = h.epochs[i].metric(monitor);
    if (!std::isfinite(v)) continue;
    if (!best) {
      best = i;
      continue;
    }
    const double b = h.epochs[*best].metric(monitor);
    if (higher ? v > b + min_delta : v < b - min_delta) best = i;
  }
  return best;
}

struct EarlyStoppingOptions {
  std::string monitor = "valid_loss";
  int patience = 5;       // epochs without improvement before stopping
  double min_delta = 0;   // the smallest change that counts as improvement
};

// Stops once `patience` epochs have passed since the best epoch.
inline Callback early_stopping(EarlyStoppingOptions options = {}) {
  if (options.patience < 1) throw Error("early_stopping: patience " + std::to_string(options.patience) + " must be at least 1");
  if (!(options.min_delta >= 0)) throw Error("early_stopping: min_delta " + std::to_string(options.min_delta) + " is negative");
  EpochRecord{}.metric(options.monitor);  // an unknown metric fails here, not after the first epoch
  return {"early_stopping", [options](const History& h, FitControl& control) {
            const auto best = best_epoch(h, options.monitor, options.min_delta);
            if (!best) return;
            const long since = long(h.epochs.size()) - 1 - long(*best);
            if (since >= options.patience)
              control.stop("early stopping: " + options.monitor + " has not improved for " + std::to_string(since) +
                           (since == 1 ? " epoch" : " epochs") + " since epoch " + std::to_string(h.epochs[*best].epoch));
          }};
}

// Saves the weights whenever the epoch just finished is the best so far.
inline Callback save_best(std::string path, std::string monitor = "valid_accuracy") {
  if (path.empty()) throw Error("save_best: the path is empty");
  EpochRecord{}.metric(monitor);
  return {"save_best", [path = std::move(path), monitor = std::move(monitor)](const History& h, FitControl& control) {
            const auto best = best_epoch(h, monitor);
            if (!best || *best + 1 != h.epochs.size()) return;
            if (!control.save_weights)
              throw Error("save_best: the run gives FitControl no save_weights, so " + path + " cannot be written");
            control.save_weights(path);
            if (control.verbose)
              std::printf("saved the best weights so far (%s %.4f) to %s\n", monitor.c_str(),
                          h.epochs.back().metric(monitor), path.c_str());
          }};
}

// A warning, or empty: the run is overfitting when training accuracy leads
// validation accuracy by more than `gap` and the validation loss has risen for
// two epochs in a row while the training loss fell. Reported for the epoch at
// which the condition first holds.
inline std::string overfitting_warning(const History& h, double gap) {
  const auto holds = [&](std::size_t end) {  // the condition at epoch index end - 1
    if (end < 3) return false;
    const EpochRecord &a = h.epochs[end - 3], &b = h.epochs[end - 2], &c = h.epochs[end - 1];
    return c.train_accuracy - c.valid_accuracy > gap && c.valid_loss > b.valid_loss && b.valid_loss > a.valid_loss &&
           c.train_loss < a.train_loss;
  };
  const std::size_t n = h.epochs.size();
  for (std::size_t end = 3; end < n; ++end)
    if (holds(end)) return {};  // already warned at an earlier epoch
  if (!holds(n)) return {};
  const EpochRecord& last = h.epochs.back();
  char text[320];
  std::snprintf(text, sizeof text,
                "warning: the model is overfitting: training accuracy %.2f%% vs validation %.2f%% (gap %.1f points), "
                "validation loss rising since epoch %d while training loss falls; more augmentation, dropout or "
                "weight decay, or early stopping, would help",
                100 * last.train_accuracy, 100 * last.valid_accuracy, 100 * (last.train_accuracy - last.valid_accuracy),
                last.epoch - 2);
  return text;
}

}  // namespace laminar::train
