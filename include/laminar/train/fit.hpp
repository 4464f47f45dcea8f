// train::fit and train::evaluate: the training loop over a uint8 dataset —
// seeded shuffling each epoch, per-batch normalisation, forward, loss, backward,
// optimizer step — with a progress bar and per-epoch validation. All batch
// memory is allocated once and reused.
#pragma once

#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../data/batch.hpp"
#include "../data/dataset.hpp"
#include "loss.hpp"
#include "progress.hpp"

namespace laminar::train {

struct FitOptions {
  int epochs = 10;
  int batch = 128;
  std::uint64_t seed = 0;
  // Learning rate as a function of the (fractional) epoch; empty keeps the
  // optimizer's own.
  std::function<double(double epoch)> learning_rate;
  loss::CrossEntropy loss;
  const data::Dataset* validation = nullptr;
  // Empty: standardise with the training set's per-channel mean and std.
  std::optional<data::Normalization> normalization;
  bool verbose = true;
};

struct EpochRecord {
  int epoch;
  double train_loss, train_accuracy;
  double valid_loss, valid_accuracy;  // NaN without a validation set
  double learning_rate, seconds, images_per_second;
};

struct History {
  std::vector<EpochRecord> epochs;
  data::Normalization normalization;  // what evaluate() must use
};

struct Evaluation {
  double loss = 0, accuracy = 0;
  long count = 0;
};

namespace detail {

// Batch memory for one model: inputs, labels and logit gradients, on the
// model's backend, plus host staging when the backend is not the CPU.
template <class Model>
struct BatchArena {
  using T = typename Model::value_type;
  using B = typename Model::backend;
  static constexpr bool on_host = std::is_same_v<B, cpu>;

  Tensor<T, B, typename Model::input_shape> x;
  Tensor<T, B, typename Model::output_shape> dlogits;
  std::vector<T> host_x;
  std::vector<int> host_labels;
  Buffer<int, B> labels;

  void reserve(int batch) {
    x.resize(batch);
    dlogits.resize(batch);
    labels.reserve(std::size_t(batch));
    if (!on_host) {
      host_x.resize(std::size_t(batch) * Model::input_shape::size);
      host_labels.resize(std::size_t(batch));
    }
  }

  // Normalises samples order[0, count) into x and labels: in place on the CPU,
  // staged on the host and copied over otherwise.
  void load(const data::Dataset& d, const long* order, int count, const data::Normalization& norm) {
    x.resize(count);
    dlogits.resize(count);
    if constexpr (on_host) {
      data::gather(d, order, count, norm, x.data(), labels.data());
    } else {
      data::gather(d, order, count, norm, host_x.data(), host_labels.data());
      x.copy_from_host(host_x.data());
      ops<B>::copy_to_device(labels.data(), host_labels.data(), count);
    }
  }
};

template <class Model>
void check_dataset(const data::Dataset& d, const char* role) {
  using In = typename Model::input_shape;
  if (d.channels != In::channels || d.height != In::height || d.width != In::width)
    throw Error(std::string(role) + " data " + d.source + " has samples of " + std::to_string(d.channels) +
                "x" + std::to_string(d.height) + "x" + std::to_string(d.width) + " but the network expects " +
                In::name());
  if (d.classes > Model::output_shape::size)
    throw Error(std::string(role) + " data " + d.source + " has " + std::to_string(d.classes) +
                " classes but the network outputs " + std::to_string(Model::output_shape::size));
}

}  // namespace detail

// Loss and accuracy of the model in evaluation mode.
template <class Model>
Evaluation evaluate(Model& model, const data::Dataset& d, const data::Normalization& norm,
                    int batch = 500, const loss::CrossEntropy& criterion = {}) {
  using B = typename Model::backend;
  detail::check_dataset<Model>(d, "evaluation");
  const bool was_training = model.training();
  model.eval();
  detail::BatchArena<Model> arena;
  arena.reserve(batch);
  std::vector<long> order(static_cast<std::size_t>(d.size()));
  std::iota(order.begin(), order.end(), 0L);
  double loss_sum = 0;
  long correct = 0;
  for (long begin = 0; begin < d.size(); begin += batch) {
    const int count = int(std::min<long>(batch, d.size() - begin));
    arena.load(d, order.data() + begin, count, norm);
    auto logits = model.forward(arena.x);
    const auto r = criterion.template compute<B>(logits.data, arena.labels.data(), count,
                                                 Model::output_shape::size, (typename Model::value_type*)nullptr);
    loss_sum += r.loss * count;
    correct += r.correct;
  }
  model.train(was_training);
  return {d.size() ? loss_sum / double(d.size()) : 0.0, d.size() ? double(correct) / double(d.size()) : 0.0,
          d.size()};
}

template <class Model, class Optimizer>
History fit(Model& model, Optimizer& optimizer, const data::Dataset& train, const FitOptions& options) {
  using B = typename Model::backend;
  using Clock = std::chrono::steady_clock;
  detail::check_dataset<Model>(train, "training");
  if (options.validation) detail::check_dataset<Model>(*options.validation, "validation");
  if (options.batch <= 0 || options.epochs < 0)
    throw Error("fit: batch must be positive and epochs non-negative, got batch " +
                std::to_string(options.batch) + " and " + std::to_string(options.epochs) + " epochs");
  if (train.size() == 0) throw Error("fit: training data " + train.source + " is empty");

  History history;
  history.normalization = options.normalization ? *options.normalization : data::Normalization::standardize(train);
  const data::Normalization& norm = history.normalization;
  detail::BatchArena<Model> arena;
  arena.reserve(options.batch);
  ProgressBar bar(options.verbose);
  const long steps_per_epoch = (train.size() + options.batch - 1) / options.batch;
  model.set_seed(options.seed);
  model.train();

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const auto order = data::permutation(train.size(), options.seed, std::uint32_t(epoch));
    const auto start = Clock::now();
    double loss_sum = 0;
    long correct = 0, seen = 0;
    for (long step = 0; step < steps_per_epoch; ++step) {
      const long begin = step * options.batch;
      const int count = int(std::min<long>(options.batch, train.size() - begin));
      if (options.learning_rate)
        optimizer.set_learning_rate(options.learning_rate(epoch + double(step) / double(steps_per_epoch)));
      arena.load(train, order.data() + begin, count, norm);
      model.set_step(std::uint32_t(epoch * steps_per_epoch + step));
      auto logits = model.forward(arena.x);
      const auto r = options.loss.template compute<B>(logits.data, arena.labels.data(), count,
                                                      Model::output_shape::size, arena.dlogits.data());
      if (!std::isfinite(r.loss))
        throw Error("fit: the loss became " + std::to_string(r.loss) + " at epoch " + std::to_string(epoch + 1) +
                    ", step " + std::to_string(step + 1) + " (learning rate " +
                    std::to_string(optimizer.learning_rate()) + "); lower the learning rate");
      model.backward(arena.dlogits);
      optimizer.step();
      loss_sum += r.loss * count;
      correct += r.correct;
      seen += count;
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      bar.update({epoch + 1, options.epochs, step + 1, steps_per_epoch, loss_sum / double(seen),
                  double(correct) / double(seen), double(seen) / elapsed, elapsed});
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    EpochRecord record{epoch + 1, loss_sum / double(seen), double(correct) / double(seen),
                       std::nan(""), std::nan(""), optimizer.learning_rate(), seconds, double(seen) / seconds};
    std::string suffix;
    if (options.validation) {
      const auto v = evaluate(model, *options.validation, norm, 500, options.loss);
      record.valid_loss = v.loss;
      record.valid_accuracy = v.accuracy;
      char buffer[96];
      std::snprintf(buffer, sizeof buffer, "  | valid loss %.4f  acc %6.2f%%", v.loss, 100 * v.accuracy);
      suffix = buffer;
    }
    bar.finish({epoch + 1, options.epochs, steps_per_epoch, steps_per_epoch, record.train_loss,
                record.train_accuracy, record.images_per_second, seconds},
               suffix);
    history.epochs.push_back(record);
  }
  return history;
}

}  // namespace laminar::train
