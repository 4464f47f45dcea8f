// The Keras question's training protocol, shared by qa_baseline and qa_allconv
// so their logs compare line for line: pixels scaled to [0, 1], a stratified
// validation_split of 0.1 carved out of batches 1-4 for the per-epoch lines,
// then data_batch_5 (never seen) evaluated once at the end.
#pragma once

#include <cstdio>

#include "cifar.hpp"

namespace examples {

template <class Model, class Optimizer>
void train_keras_protocol(const char* name, Model& model, Optimizer& opt, const laminar::data::Splits& data,
                          const CifarFlags& flags, int batch, const Stopwatch& clock) {
  using namespace laminar;
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = flags.epochs, .batch = batch, .seed = flags.seed,
                                   .validation_split = 0.1, .normalization = data::Normalization::unit(3)});
  const auto& last = history.epochs.back();
  std::printf("last epoch: training accuracy %.2f%% vs validation %.2f%% (gap %.1f points)\n",
              100 * last.train_accuracy, 100 * last.valid_accuracy, 100 * (last.train_accuracy - last.valid_accuracy));
  const auto held_out = train::evaluate(model, data.valid, history.normalization);
  std::printf("data_batch_5: %s", held_out.report().c_str());
  evaluate_test_file(model, flags, history);
  print_summary(name, history, clock);
}

}  // namespace examples
