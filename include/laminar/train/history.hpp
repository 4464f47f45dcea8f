// What a training run records: one EpochRecord per epoch, one StepRecord per
// optimizer step, and the normalisation the model was trained with. Logs,
// plots, callbacks, schedules that watch a metric and checkpoints all read
// these, so a resumed run can rebuild every decision from the history alone.
#pragma once

#include <cmath>
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

  double metric(std::string_view name) const {
    if (name == "train_loss") return train_loss;
    if (name == "train_accuracy") return train_accuracy;
    if (name == "valid_loss") return valid_loss;
    if (name == "valid_accuracy") return valid_accuracy;
    if (name == "learning_rate") return learning_rate;
    if (name == "seconds") return seconds;
    if (name == "images_per_second") return images_per_second;
    std::string known;
    for (auto n : metric_names) known += (known.empty() ? "" : ", ") + std::string(n);
    throw Error("unknown metric \"" + std::string(name) + "\"; the metrics are " + known);
  }
  // Whether a larger value of the metric is better (accuracies, throughput).
  static bool higher_is_better(std::string_view name) {
    return name == "train_accuracy" || name == "valid_accuracy" || name == "images_per_second";
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
