// train::fit: the training loop. Batches come from data::Loader (seeded order,
// augmentation on uint8, prefetched on a worker thread); each step runs
// forward, the loss (cross-entropy with label smoothing, soft targets after
// mixup/CutMix, or distillation from a teacher), backward, gradient
// accumulation when asked, the optimizer at the schedule's learning rate, and
// the weight average. After each epoch: validation, logs, callbacks and a
// checkpoint from which a resumed run continues bit-identically.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../data/augment/mix.hpp"
#include "../data/augment/transform.hpp"
#include "../data/augment/tta.hpp"
#include "../data/batch.hpp"
#include "../data/dataset.hpp"
#include "../data/loader.hpp"
#include "../data/split.hpp"
#include "../io/weights.hpp"
#include "callbacks.hpp"
#include "checkpoint.hpp"
#include "distill.hpp"
#include "ema.hpp"
#include "evaluate.hpp"
#include "history.hpp"
#include "log.hpp"
#include "loss.hpp"
#include "progress.hpp"
#include "schedule.hpp"

namespace laminar::train {

// The augmentation hook of FitOptions: any augment:: transform or pipeline, or
// a data::Augment callable.
struct Augmentation {
  data::Augment function;
  Augmentation() = default;
  Augmentation(data::Augment f) : function(std::move(f)) {}
  template <augment::Transform T>
  Augmentation(const T& transform) : function(augment::pipeline(transform)) {}
};

// Fields in the order a designated initialiser must name them.
struct FitOptions {
  int epochs = 10;
  int batch = 128;  // samples per forward; an optimizer step sees batch * accumulate
  std::uint64_t seed = 0;  // shuffling, augmentation, dropout, mixing, the validation split
  schedule::Schedule schedule;  // multiplies the optimizer's learning rate at the start of fit
  Augmentation augment;         // on uint8 training images, per sample
  std::optional<augment::MixOptions> mix;  // mixup or CutMix on the normalised batch
  loss::CrossEntropy loss;      // label smoothing for hard labels (mixing smooths through MixOptions)
  Teacher teacher;              // distillation: train::distill(teacher_model, {.alpha, .temperature})
  const data::Dataset* validation = nullptr;
  double validation_split = 0;  // else hold out this fraction of the training data (stratified, seeded)
  std::optional<data::Normalization> normalization;  // empty: the training set's per-channel mean and std
  double ema = 0;               // decay of the weight average (0.999, say); 0 = none. Validation uses it.
  int accumulate = 1;           // micro-batches per optimizer step
  long max_steps = 0;           // > 0: stop after this many optimizer steps, mid-epoch if need be
  // Called after every optimizer step with the number of steps done so far (a
  // lookahead, say). Whatever state it keeps is its own: checkpoints do not hold it.
  std::function<void(long steps_done)> after_step;
  std::vector<Callback> callbacks;
  std::string checkpoint;       // written after every epoch; "{epoch}" in it becomes the epoch number
  std::string resume;           // a checkpoint of this run to continue from
  std::string log_csv, log_json, log_steps_csv;  // rewritten after every epoch
  double overfit_gap = 0.10;    // warn when training leads validation accuracy by more (0 = never)
  int validation_batch = 500;
  augment::TestTime validation_tta = augment::TestTime::none;
  bool shuffle = true;
  bool drop_last = false;
  bool prefetch = true;
  bool verbose = true;
};

namespace detail {

inline std::string epoch_path(std::string pattern, int epoch) {
  const std::string token = "{epoch}";
  for (std::size_t at; (at = pattern.find(token)) != std::string::npos;)
    pattern.replace(at, token.size(), std::to_string(epoch));
  return pattern;
}

inline void check_options(const FitOptions& o) {
  const auto bad = [](const std::string& what) { return Error("fit: " + what); };
  if (o.epochs < 0) throw bad("epochs = " + std::to_string(o.epochs) + " is negative");
  if (o.batch < 1) throw bad("batch = " + std::to_string(o.batch) + " must be at least 1");
  if (o.accumulate < 1) throw bad("accumulate = " + std::to_string(o.accumulate) + " must be at least 1");
  if (!(o.validation_split >= 0 && o.validation_split < 1))
    throw bad("validation_split = " + std::to_string(o.validation_split) + " is not a fraction in [0, 1)");
  if (o.validation_split > 0 && o.validation)
    throw bad("both a validation set and validation_split are given; choose one");
  if (!(o.ema >= 0 && o.ema < 1)) throw bad("ema = " + std::to_string(o.ema) + " is not a decay in [0, 1)");
  if (o.max_steps < 0) throw bad("max_steps = " + std::to_string(o.max_steps) + " is negative");
  if (o.validation_batch < 1) throw bad("validation_batch = " + std::to_string(o.validation_batch) + " must be at least 1");
  if (!(o.overfit_gap >= 0)) throw bad("overfit_gap = " + std::to_string(o.overfit_gap) + " is negative");
}

// Batch memory on the model's backend beyond what the loader holds: staging
// for mixing and for device copies, soft targets, logit gradients, and the
// gradient accumulators. Sized once.
template <class Model>
struct StepArena {
  using T = typename Model::value_type;
  using B = typename Model::backend;
  static constexpr bool on_host = std::is_same_v<B, cpu>;
  static constexpr int K = int(Model::output_shape::size);

  Tensor<T, B, typename Model::input_shape> x;
  Tensor<T, B, typename Model::output_shape> dlogits, targets;
  Buffer<int, B> labels;
  std::vector<T> host_x, host_targets;
  std::vector<Buffer<T, B>> accumulators;

  StepArena(Model& model, int batch, bool mixing, int accumulate) : dlogits(batch) {
    if constexpr (!on_host) {  // on the CPU the model reads the loader's (or the mixed) batch in place
      x.resize(batch);
      targets.resize(batch);
      labels.reserve(std::size_t(batch));
    }
    if (mixing) {
      host_x.resize(std::size_t(batch) * Model::input_shape::size);
      host_targets.resize(std::size_t(batch) * K);
    }
    if (accumulate > 1)
      for (const auto& named : model.parameters())
        if (named.parameter->trainable()) accumulators.emplace_back(std::size_t(named.parameter->size));
  }
};

template <class T>
struct Scale {
  T* data;
  T factor;
  LAMINAR_HD void operator()(long i) const { data[i] *= factor; }
};
template <class T>
struct AddInto {
  T* into;
  const T* from;
  bool first;
  LAMINAR_HD void operator()(long i) const { into[i] = first ? from[i] : into[i] + from[i]; }
};

}  // namespace detail

template <class Model, class Optimizer>
History fit(Model& model, Optimizer& optimizer, const data::Dataset& training, const FitOptions& o) {
  using T = typename Model::value_type;
  using B = typename Model::backend;
  using Clock = std::chrono::steady_clock;
  using Arena = detail::StepArena<Model>;
  constexpr int K = Arena::K;
  detail::check_options(o);

  // The data: a validation part carved out of the training set, if asked.
  std::optional<data::Splits> split;
  const data::Dataset* train = &training;
  const data::Dataset* valid = o.validation;
  if (o.validation_split > 0) {
    split = data::split_validation(training, o.validation_split, o.seed);
    train = &split->train;
    valid = &split->valid;
  }
  detail::check_dataset<Model>(*train, "training");
  if (valid) detail::check_dataset<Model>(*valid, "validation");
  if (train->size() == 0) throw Error("fit: training data " + train->source + " is empty");
  if (o.teacher) o.teacher.template check_fits<Model>();

  History history;
  history.normalization = o.normalization ? *o.normalization : data::Normalization::standardize(*train);
  schedule::Schedule schedule = o.schedule;
  std::optional<ExponentialMovingAverage<Model>> ema;
  if (o.ema > 0) ema.emplace(model, o.ema);
  double base_lr = optimizer.learning_rate();
  const std::uint64_t data_id = fingerprint(*train);
  int first_epoch = 0;
  if (!o.resume.empty()) {
    TrainingState state = load_checkpoint(o.resume, model, optimizer, ema ? &*ema : nullptr);
    const auto mismatch = [&](const std::string& what, const std::string& was, const std::string& is) {
      return Error("fit: cannot resume from " + o.resume + ": it was written with " + what + " " + was + ", this run has " + is);
    };
    if (state.seed != o.seed) throw mismatch("seed", std::to_string(state.seed), std::to_string(o.seed));
    if (state.batch != o.batch) throw mismatch("batch", std::to_string(state.batch), std::to_string(o.batch));
    if (state.accumulate != o.accumulate)
      throw mismatch("accumulate", std::to_string(state.accumulate), std::to_string(o.accumulate));
    if (state.train_size != train->size() || state.data_fingerprint != data_id)
      throw mismatch("training data of", std::to_string(state.train_size) + " samples", "other data (" + train->source + ")");
    if (state.epochs_done > o.epochs)
      throw mismatch("epochs done", std::to_string(state.epochs_done), std::to_string(o.epochs) + " epochs in all");
    schedule.restore(state.schedule_state);
    base_lr = state.base_lr;
    first_epoch = state.epochs_done;
    history = std::move(state.history);
  }

  data::Loader<T> loader(*train, history.normalization,
                         {.batch = o.batch, .shuffle = o.shuffle, .drop_last = o.drop_last, .seed = o.seed, .prefetch = o.prefetch},
                         o.augment.function);
  const long micro_per_epoch = loader.batches_per_epoch();
  if (micro_per_epoch == 0)
    throw Error("fit: drop_last with batch " + std::to_string(o.batch) + " leaves no batch of " + train->source + " (" +
                std::to_string(train->size()) + " samples)");
  const long steps_per_epoch = (micro_per_epoch + o.accumulate - 1) / o.accumulate;
  std::optional<augment::Mixer<T>> mixer;
  if (o.mix) mixer.emplace(*o.mix);
  Arena arena(model, o.batch, mixer.has_value(), o.accumulate);
  std::vector<Parameter<T, B>*> trainable;
  for (const auto& named : model.parameters())
    if (named.parameter->trainable()) trainable.push_back(named.parameter);

  ProgressBar bar(o.verbose);
  model.set_seed(o.seed);
  model.train();
  long micro = long(first_epoch) * micro_per_epoch;  // the dropout and mixing step
  long step = long(first_epoch) * steps_per_epoch;   // optimizer steps
  const auto sample_count = [&](long k) { return long(std::min<long>(o.batch, train->size() - k * o.batch)); };

  const auto steps_left = [&] { return o.max_steps == 0 || step < o.max_steps; };
  for (int epoch = first_epoch; epoch < o.epochs && steps_left(); ++epoch) {
    loader.start_epoch(std::uint32_t(epoch));
    const auto start = Clock::now();
    double loss_sum = 0, lr = optimizer.learning_rate();
    long correct = 0, seen = 0;
    long b = 0;  // micro-batches done this epoch: fewer than micro_per_epoch when max_steps ends it
    for (; b < micro_per_epoch && steps_left();) {
      const long group_end = std::min(b + o.accumulate, micro_per_epoch);
      long group_samples = 0;
      for (long k = b; k < group_end; ++k) group_samples += sample_count(k);
      lr = base_lr * schedule(epoch + double(b) / double(micro_per_epoch), o.epochs);
      optimizer.set_learning_rate(lr);
      double group_loss = 0;
      for (long k = b; k < group_end; ++k) {
        const auto* batch = loader.next();
        const int n = batch->size;
        const long in_size = long(n) * Model::input_shape::size;
        const T* x = batch->images;
        const int* labels = batch->labels;
        const T* targets = nullptr;
        if (mixer) {
          std::copy(batch->images, batch->images + in_size, arena.host_x.data());
          mixer->apply(arena.host_x.data(), batch->labels, n, train->channels, train->height, train->width, K, o.seed,
                       std::uint32_t(micro), arena.host_targets.data());
          x = arena.host_x.data();
          targets = arena.host_targets.data();
        }
        if constexpr (!Arena::on_host) {
          arena.x.resize(n);
          arena.x.copy_from_host(x);
          x = arena.x.data();
          ops<B>::copy_to_device(arena.labels.data(), labels, n);
          labels = arena.labels.data();
          if (targets) {
            arena.targets.resize(n);
            arena.targets.copy_from_host(targets);
            targets = arena.targets.data();
          }
        }
        arena.dlogits.resize(n);
        T* dlogits = arena.dlogits.data();
        model.set_step(std::uint32_t(micro));
        const auto logits = model.forward(View<const T, B, typename Model::input_shape>{x, n});
        loss::Result r;
        if (o.teacher)
          r = o.teacher.loss().template compute<B>(logits.data, o.teacher.logits(x, n), labels, targets, n, K, dlogits);
        else if (targets)
          r = loss::SoftTargetCrossEntropy{}.template compute<B>(logits.data, targets, n, K, dlogits);
        else
          r = o.loss.template compute<B>(logits.data, labels, n, K, dlogits);
        if (!std::isfinite(r.loss)) {
          const std::string where = model.first_non_finite();
          throw Error("fit: the loss became " + std::to_string(r.loss) + " at epoch " + std::to_string(epoch + 1) +
                      ", step " + std::to_string(k + 1) + " of " + std::to_string(micro_per_epoch) + " (learning rate " +
                      std::to_string(lr) + "); " +
                      (where.empty() ? std::string("every parameter and activation is finite, so the loss itself overflowed")
                                     : "non-finite values first appear in " + where) +
                      "; lower the learning rate or clip gradients");
        }
        if (o.accumulate > 1 && n != group_samples)  // the mean over the whole group
          ops<B>::parallel_for(long(n) * K, detail::Scale<T>{dlogits, T(double(n) / double(group_samples))});
        model.backward(View<const T, B, typename Model::output_shape>{dlogits, n});
        if (o.accumulate > 1)
          for (std::size_t p = 0; p < trainable.size(); ++p)
            ops<B>::parallel_for(trainable[p]->size,
                                 detail::AddInto<T>{arena.accumulators[p].data(), trainable[p]->grad(), k == b});
        loss_sum += r.loss * n;
        group_loss += r.loss * n;
        correct += r.correct;
        seen += n;
        ++micro;
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        bar.update({epoch + 1, o.epochs, k + 1, micro_per_epoch, loss_sum / double(seen), double(correct) / double(seen),
                    double(seen) / elapsed, elapsed});
      }
      if (o.accumulate > 1)
        for (std::size_t p = 0; p < trainable.size(); ++p)
          ops<B>::copy(trainable[p]->grad(), arena.accumulators[p].data(), trainable[p]->size);
      optimizer.step();
      if (ema) ema->update();
      history.steps.push_back({step, epoch + double(b) / double(micro_per_epoch), lr, group_loss / double(group_samples)});
      ++step;
      if (o.after_step) o.after_step(step);
      b = group_end;
    }

    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    EpochRecord record;
    record.epoch = epoch + 1;
    record.train_loss = loss_sum / double(seen);
    record.train_accuracy = double(correct) / double(seen);
    record.learning_rate = lr;
    record.seconds = seconds;
    record.images_per_second = double(seen) / seconds;
    std::string suffix;
    if (valid) {
      if (ema) ema->swap();
      const Evaluation v =
          evaluate(model, *valid, history.normalization, {.batch = o.validation_batch, .loss = o.loss, .tta = o.validation_tta});
      if (ema) ema->swap();
      record.valid_loss = v.loss;
      record.valid_accuracy = v.accuracy;
      char text[96];
      std::snprintf(text, sizeof text, "  | valid loss %.4f  acc %6.2f%%", v.loss, 100 * v.accuracy);
      suffix = text;
    }
    char lr_text[32];
    std::snprintf(lr_text, sizeof lr_text, "  lr %.4g", lr);
    bar.finish({epoch + 1, o.epochs, b, micro_per_epoch, record.train_loss, record.train_accuracy,
                record.images_per_second, seconds},
               suffix + lr_text);
    history.epochs.push_back(record);
    schedule.observe(record);

    FitControl control;
    control.verbose = o.verbose;
    control.save_weights = [&](const std::string& path) {
      if (ema) ema->swap();
      try {
        io::save_weights(path, model, history.normalization);
      } catch (...) {
        if (ema) ema->swap();
        throw;
      }
      if (ema) ema->swap();
    };
    for (const Callback& callback : o.callbacks)
      if (callback.on_epoch_end) callback.on_epoch_end(history, control);
    if (control.stopping()) history.stop_reason = control.reason();
    if (valid && o.overfit_gap > 0) {
      const std::string warning = overfitting_warning(history, o.overfit_gap);
      if (!warning.empty() && o.verbose) std::printf("%s\n", warning.c_str());
    }
    if (!o.log_csv.empty()) write_epoch_csv(o.log_csv, history);
    if (!o.log_json.empty()) write_json(o.log_json, history);
    if (!o.log_steps_csv.empty()) write_step_csv(o.log_steps_csv, history);
    if (!o.checkpoint.empty()) {
      TrainingState state{epoch + 1,        base_lr, o.seed, o.batch, o.accumulate, train->size(), data_id,
                          schedule.state(), schedule.describe(), history};
      save_checkpoint(detail::epoch_path(o.checkpoint, epoch + 1), model, optimizer, ema ? &*ema : nullptr, state);
    }
    if (control.stopping()) {
      if (o.verbose) std::printf("stopping after epoch %d: %s\n", epoch + 1, control.reason().c_str());
      break;
    }
  }
  // The averaged weights are what validation measured: the model keeps them.
  if (ema) ema->swap();
  return history;
}

}  // namespace laminar::train
