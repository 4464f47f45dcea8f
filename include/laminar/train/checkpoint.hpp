// Training checkpoints: everything a run needs to continue bit-identically —
// the model's parameters and statistics, the optimizer's state, the averaged
// weights, the schedule's state, the history so far, the normalisation, and
// the run's seed (the random numbers are Philox counters: seed and step are
// the whole RNG state). One checksummed file, written atomically
// (io/checkpoint.hpp); loading validates everything before changing anything.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <iterator>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../data/batch.hpp"
#include "../data/dataset.hpp"
#include "../io/checkpoint.hpp"
#include "../io/weights.hpp"
#include "ema.hpp"
#include "history.hpp"

namespace laminar::train {

// Where a run stands after `epochs_done` whole epochs.
struct TrainingState {
  int epochs_done = 0;
  double base_lr = 0;  // the optimizer's rate that the schedule multiplies
  std::uint64_t seed = 0;
  int batch = 0, accumulate = 1;
  long train_size = 0;
  std::uint64_t data_fingerprint = 0;  // of the training samples: resuming on other data is an error
  std::vector<double> schedule_state;
  std::string schedule;  // its description, for messages
  History history;
};

// CRC-32 of a dataset's labels and pixels.
inline std::uint64_t fingerprint(const data::Dataset& d) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto add = [&](const std::uint8_t* p, std::size_t n) {
    while (n) {
      const auto chunk = uInt(std::min<std::size_t>(n, 1u << 30));
      crc = crc32(crc, p, chunk);
      p += chunk;
      n -= chunk;
    }
  };
  add(d.labels.data(), d.labels.size());
  add(d.images.data(), d.images.size());
  return std::uint64_t(crc) ^ (std::uint64_t(d.size()) << 32);
}

namespace detail {

// An epoch record is its number and then its metrics in metric_names order.
inline constexpr std::size_t history_epoch_fields = 1 + std::size(EpochRecord::metric_names), history_step_fields = 4;

inline std::vector<double> flatten_epochs(const std::vector<EpochRecord>& epochs) {
  std::vector<double> v;
  for (const auto& e : epochs) {
    v.push_back(double(e.epoch));
    for (const auto name : EpochRecord::metric_names) v.push_back(e.metric(name));
  }
  return v;
}
inline std::vector<double> flatten_steps(const std::vector<StepRecord>& steps) {
  std::vector<double> v;
  for (const auto& s : steps) v.insert(v.end(), {double(s.step), s.epoch, s.learning_rate, s.loss});
  return v;
}

// The optimizer's (or the average's) state buffers as (key, pointer, size).
struct StateBuffer {
  std::string key;
  void* data;
  long size;
};
template <class Stateful>
std::vector<StateBuffer> state_buffers(Stateful& s) {
  std::vector<StateBuffer> buffers;
  s.visit_state([&](const std::string& key, auto* data, long size) { buffers.push_back({key, data, size}); });
  return buffers;
}

}  // namespace detail

template <class Model, class Optimizer>
void save_checkpoint(const std::string& path, const Model& model, Optimizer& optimizer,
                     std::type_identity_t<ExponentialMovingAverage<Model>>* ema, const TrainingState& state) {
  using T = typename Model::value_type;
  using B = typename Model::backend;
  io::CheckpointWriter w;
  w.add_text("laminar/kind", "training");
  io::write_parameters(w, model);
  std::vector<T> host;
  const auto add_state = [&](const std::string& prefix, const std::vector<detail::StateBuffer>& buffers) {
    for (const auto& b : buffers) {
      host.resize(std::size_t(b.size));
      ops<B>::copy_to_host(host.data(), static_cast<const T*>(b.data), b.size);
      w.add_array(prefix + b.key, host);
    }
  };
  w.add_text("optimizer/name", Optimizer::name);
  w.add_scalar("optimizer/step_count", std::int64_t(optimizer.step_count()));
  w.add_scalar("optimizer/learning_rate", optimizer.learning_rate());
  add_state("optimizer/", detail::state_buffers(optimizer));
  if (ema) {
    w.add_scalar("ema/decay", ema->decay());
    w.add_scalar("ema/updates", std::int64_t(ema->updates()));
    add_state("", detail::state_buffers(*ema));
  }
  w.add_scalar("fit/epochs_done", std::int64_t(state.epochs_done));
  w.add_scalar("fit/base_lr", state.base_lr);
  w.add_array("fit/seed", std::vector<std::uint64_t>{state.seed});
  w.add_scalar("fit/batch", std::int64_t(state.batch));
  w.add_scalar("fit/accumulate", std::int64_t(state.accumulate));
  w.add_scalar("fit/train_size", std::int64_t(state.train_size));
  w.add_array("fit/data_fingerprint", std::vector<std::uint64_t>{state.data_fingerprint});
  w.add_array("schedule/state", state.schedule_state);
  w.add_text("schedule/description", state.schedule);
  w.add_array("history/epochs", detail::flatten_epochs(state.history.epochs));
  w.add_array("history/steps", detail::flatten_steps(state.history.steps));
  w.add_text("history/stop_reason", state.history.stop_reason);
  std::ostringstream norm;
  state.history.normalization.save(norm);
  w.add_text("normalization", norm.str());
  w.save(path);
}

// Restores model, optimizer and average from `path` and returns the run's
// state. Every entry is checked against the objects before any is written, so
// a checkpoint that does not fit leaves them as they were.
template <class Model, class Optimizer>
TrainingState load_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                              std::type_identity_t<ExponentialMovingAverage<Model>>* ema = nullptr) {
  using T = typename Model::value_type;
  using B = typename Model::backend;
  const io::CheckpointReader r = io::CheckpointReader::load(path);
  const auto fail = [&](const std::string& problem) { return Error("checkpoint " + path + ": " + problem); };
  if (!r.has("laminar/kind") || r.text("laminar/kind") != "training")
    throw fail("holds no training state (it is a weights file, or from another program); load it with io::load_weights");
  if (r.text("optimizer/name") != Optimizer::name)
    throw fail("was written by the " + r.text("optimizer/name") + " optimizer, not " + Optimizer::name);
  if (ema && !r.has("ema/updates"))
    throw fail("has no weight average, but this run keeps one (FitOptions::ema); resume with the same options");
  if (!ema && r.has("ema/updates"))
    throw fail("has a weight average, but this run keeps none (FitOptions::ema = 0); resume with the same options");

  // Check every state buffer's presence, type and size first.
  const auto check_state = [&](const std::string& prefix, const std::vector<detail::StateBuffer>& buffers) {
    for (const auto& b : buffers) {
      const std::string name = prefix + b.key;
      if (!r.has(name)) throw fail("has no entry " + name + "; it was written for another network or optimizer setting");
      const std::vector<T> values = r.template array<T>(name);
      if (long(values.size()) != b.size)
        throw fail("entry " + name + " holds " + std::to_string(values.size()) + " values, expected " + std::to_string(b.size));
    }
  };
  const auto optimizer_state = detail::state_buffers(optimizer);
  check_state("optimizer/", optimizer_state);
  std::vector<detail::StateBuffer> ema_state;
  if (ema) {
    ema_state = detail::state_buffers(*ema);
    check_state("", ema_state);
    if (r.scalar_f64("ema/decay") != ema->decay())
      throw fail("averages with decay " + std::to_string(r.scalar_f64("ema/decay")) + ", this run with " +
                 std::to_string(ema->decay()));
  }
  TrainingState state;
  state.epochs_done = int(r.scalar_i64("fit/epochs_done"));
  state.base_lr = r.scalar_f64("fit/base_lr");
  state.seed = r.array<std::uint64_t>("fit/seed").at(0);
  state.batch = int(r.scalar_i64("fit/batch"));
  state.accumulate = int(r.scalar_i64("fit/accumulate"));
  state.train_size = long(r.scalar_i64("fit/train_size"));
  state.data_fingerprint = r.array<std::uint64_t>("fit/data_fingerprint").at(0);
  state.schedule_state = r.array<double>("schedule/state");
  state.schedule = r.text("schedule/description");
  const std::vector<double> epochs = r.array<double>("history/epochs"), steps = r.array<double>("history/steps");
  if (epochs.size() % detail::history_epoch_fields || steps.size() % detail::history_step_fields)
    throw fail("its history has a broken shape");
  for (std::size_t i = 0; i < epochs.size(); i += detail::history_epoch_fields) {
    EpochRecord& e = state.history.epochs.emplace_back();
    e.epoch = int(epochs[i]);
    std::size_t k = i;
    for (const auto name : EpochRecord::metric_names) e.metric(name) = epochs[++k];
  }
  for (std::size_t i = 0; i < steps.size(); i += detail::history_step_fields)
    state.history.steps.push_back({long(steps[i]), steps[i + 1], steps[i + 2], steps[i + 3]});
  state.history.stop_reason = r.text("history/stop_reason");
  std::istringstream norm(r.text("normalization"));
  state.history.normalization = data::Normalization::load(norm);

  // Everything fits: write.
  io::read_parameters(r, model);
  const auto restore = [&](const std::string& prefix, const std::vector<detail::StateBuffer>& buffers) {
    for (const auto& b : buffers) {
      const std::vector<T> values = r.template array<T>(prefix + b.key);
      ops<B>::copy_to_device(static_cast<T*>(b.data), values.data(), b.size);
    }
  };
  restore("optimizer/", optimizer_state);
  optimizer.set_step_count(long(r.scalar_i64("optimizer/step_count")));
  optimizer.set_learning_rate(r.scalar_f64("optimizer/learning_rate"));
  if (ema) {
    restore("", ema_state);
    ema->set_updates(long(r.scalar_i64("ema/updates")));
  }
  return state;
}

}  // namespace laminar::train
