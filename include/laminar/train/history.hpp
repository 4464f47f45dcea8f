// What a training run records: one EpochRecord per epoch, one StepRecord per
// optimizer step, and the normalisation the model was trained with. Logs,
// plots, callbacks, schedules that watch a metric and checkpoints all read
// these, so a resumed run can rebuild every decision from the history alone.
#pragma once

#include <cmath>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../data/batch.hpp"

namespace laminar::train {

struct EpochRecord {
  int epoch = 0;  // 1-based
  double train_loss = std::nan(""), train_accuracy = std::nan("");
  double valid_loss = std::nan(""), valid_accuracy = std::nan("");  // NaN without validation
  double learning_rate = std::nan("");                              // at the epoch's last step
  double seconds = 0, images_per_second = 0;

  // The metric names callbacks, schedules and logs use, in log-column order.
  static constexpr std::string_view metric_names[] = {"train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                                                      "learning_rate", "seconds", "images_per_second"};

  // A metric by name, for reading (callbacks, schedules) or writing (log readers).
  double metric(std::string_view name) const { return this->*member(name); }
  double& metric(std::string_view name) { return this->*member(name); }

  // Whether a larger value of the metric is better (accuracies, throughput).
  static bool higher_is_better(std::string_view name) {
    return name == "train_accuracy" || name == "valid_accuracy" || name == "images_per_second";
  }

 private:
  // The one mapping from metric names to fields, in metric_names order.
  static double EpochRecord::*member(std::string_view name) {
    static constexpr double EpochRecord::*members[] = {
        &EpochRecord::train_loss,    &EpochRecord::train_accuracy, &EpochRecord::valid_loss,
        &EpochRecord::valid_accuracy, &EpochRecord::learning_rate, &EpochRecord::seconds,
        &EpochRecord::images_per_second};
    for (std::size_t i = 0; i < std::size(metric_names); ++i)
      if (name == metric_names[i]) return members[i];
    std::string known;
    for (auto n : metric_names) {
      if (!known.empty()) known += ", ";
      known += n;
    }
    throw Error("unknown metric \"" + std::string(name) + "\"; the metrics are " + known);
  }
};

struct StepRecord {
  long step = 0;         // 0-based over the whole run
  double epoch = 0;      // fractional: epoch index + (step in epoch) / steps per epoch
  double learning_rate = 0;
  double loss = 0;       // the batch's mean training loss
};

struct History {
  std::vector<EpochRecord> epochs;
  std::vector<StepRecord> steps;
  data::Normalization normalization;  // what evaluate() must use
  std::string stop_reason;            // why fit stopped before its last epoch, or empty
};

}  // namespace laminar::train
