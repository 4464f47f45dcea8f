// The first two checks of the tuning workflow — is the loss at initialisation
// what chance predicts, and can the network memorise a tiny subset — and
// Snapshot, which lets a tool try things on a model and put it back exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/format.hpp"
#include "../core/tensor.hpp"
#include "../data/batch.hpp"
#include "../data/dataset.hpp"
#include "evaluate.hpp"
#include "log.hpp"
#include "loss.hpp"

namespace laminar::train {

// The tuning tools' helpers live in their own namespace, apart from the
// training loop's detail helpers.
namespace detail::tuning {

// Stands in for a state visitor when asking whether an optimizer has
// visit_state at all; any element type is accepted, as the real visitor does.
struct StateVisitorProbe {
  template <class E>
  void operator()(const std::string&, E*, long) const {}
};

template <class Opt>
inline constexpr bool has_visit_state = requires(Opt& opt, StateVisitorProbe probe) {
  opt.visit_state(probe);
};

// Adam's bias correction counts steps outside the state buffers.
template <class Opt>
inline constexpr bool has_step_count = requires(Opt& opt) {
  opt.set_step_count(opt.step_count());
};

}  // namespace detail::tuning

// Every parameter value and statistic of a model (and, when given, every state
// buffer of an optimizer that offers visit_state, and its step count when it
// has one), copied to the host, so that restore() puts them back bit for bit.
// Every laminar optimizer has both; a user's optimizer without visit_state has
// no state a snapshot can reach, and restoring with it restores the model only.
template <class Model>
class Snapshot {
  using T = typename Model::value_type;
  using B = typename Model::backend;

 public:
  explicit Snapshot(const Model& model) {
    for (const auto& named : model.parameters()) {
      const Parameter<T, B>& p = *named.parameter;
      Saved saved{named.name, std::vector<T>(std::size_t(p.size))};
      ops<B>::copy_to_host(saved.values.data(), p.value(), p.size);
      parameters_.push_back(std::move(saved));
    }
  }

  template <class Opt>
  Snapshot(const Model& model, Opt& optimizer) : Snapshot(model) {
    holds_optimizer_ = true;
    if constexpr (detail::tuning::has_step_count<Opt>) step_count_ = long(optimizer.step_count());
    if constexpr (detail::tuning::has_visit_state<Opt>) {
      optimizer.visit_state([&](const std::string& key, auto* data, long size) {
        using E = std::remove_const_t<std::remove_pointer_t<decltype(data)>>;
        State state{key, sizeof(E), size, std::vector<unsigned char>(std::size_t(size) * sizeof(E))};
        std::vector<E> host(static_cast<std::size_t>(size));
        ops<B>::copy_to_host(host.data(), data, size);
        if (size) std::memcpy(state.bytes.data(), host.data(), state.bytes.size());
        state_.push_back(std::move(state));
      });
    }
  }

  void restore(Model& model) const {
    const auto& current = model.parameters();
    if (current.size() != parameters_.size())
      throw Error("Snapshot::restore: the model has " + std::to_string(current.size()) +
                  " parameters but the snapshot holds " + std::to_string(parameters_.size()));
    // All checked before any is written, so a snapshot of another model changes nothing.
    for (std::size_t i = 0; i < current.size(); ++i) {
      const Saved& saved = parameters_[i];
      const long size = current[i].parameter->size;
      if (current[i].name != saved.name || std::size_t(size) != saved.values.size())
        throw Error("Snapshot::restore: parameter " + std::to_string(i) + " of the model is " + current[i].name +
                    " with " + std::to_string(size) + " values but the snapshot holds " + saved.name + " with " +
                    std::to_string(saved.values.size()));
    }
    for (std::size_t i = 0; i < current.size(); ++i)
      ops<B>::copy_to_device(current[i].parameter->value(), parameters_[i].values.data(), current[i].parameter->size);
  }

  template <class Opt>
  void restore(Model& model, Opt& optimizer) const {
    constexpr bool has_state = detail::tuning::has_visit_state<Opt> || detail::tuning::has_step_count<Opt>;
    if (has_state && !holds_optimizer_)
      throw Error("Snapshot::restore: this snapshot was taken without an optimizer, so it holds no optimizer state");
    if constexpr (detail::tuning::has_visit_state<Opt>) check_state(optimizer);
    restore(model);
    if constexpr (detail::tuning::has_visit_state<Opt>) {
      std::size_t index = 0;
      optimizer.visit_state([&](const std::string&, auto* data, long size) {
        using E = std::remove_const_t<std::remove_pointer_t<decltype(data)>>;
        std::vector<E> host(static_cast<std::size_t>(size));
        if (size) std::memcpy(host.data(), state_[index].bytes.data(), state_[index].bytes.size());
        ops<B>::copy_to_device(data, host.data(), size);
        ++index;
      });
    }
    if constexpr (detail::tuning::has_step_count<Opt>) optimizer.set_step_count(step_count_);
  }

 private:
  // Before anything is written, so that a mismatch leaves the model and the
  // optimizer as they were.
  template <class Opt>
  void check_state(Opt& optimizer) const {
    std::size_t index = 0;
    optimizer.visit_state([&](const std::string& key, auto* data, long size) {
      using E = std::remove_const_t<std::remove_pointer_t<decltype(data)>>;
      if (index >= state_.size() || state_[index].key != key || state_[index].size != size ||
          state_[index].element_size != sizeof(E))
        throw Error("Snapshot::restore: optimizer state buffer " + std::to_string(index) + " (" + key + ", " +
                    std::to_string(size) + " values) does not match the snapshot's " +
                    (index < state_.size() ? state_[index].key + ", " + std::to_string(state_[index].size) + " values"
                                           : std::string("(none)")));
      ++index;
    });
    if (index != state_.size())
      throw Error("Snapshot::restore: the optimizer has " + std::to_string(index) +
                  " state buffers but the snapshot holds " + std::to_string(state_.size()));
  }

  struct Saved {
    std::string name;
    std::vector<T> values;
  };
  // Optimizer state may be of another element type than the model's, so it is
  // kept as bytes with the element size it had.
  struct State {
    std::string key;
    std::size_t element_size;
    long size;
    std::vector<unsigned char> bytes;
  };
  std::vector<Saved> parameters_;
  std::vector<State> state_;
  long step_count_ = 0;
  bool holds_optimizer_ = false;
};

namespace detail::tuning {

template <class Model>
void check_data(const data::Dataset& d, const data::Normalization& n, const char* caller) {
  check_dataset<Model>(d, caller);
  if (d.size() == 0) throw Error(std::string(caller) + ": data " + d.source + " is empty");
  n.check(d.channels, caller, d.source);
}

// One batch on the model's backend, normalised on the host and copied over.
template <class Model>
struct Batch {
  using T = typename Model::value_type;
  using B = typename Model::backend;

  Tensor<T, B, typename Model::input_shape> x;
  Tensor<T, B, typename Model::output_shape> dlogits;
  Buffer<int, B> labels;
  std::vector<T> host_x;
  std::vector<int> host_labels;

  // Samples order[0, count).
  void load(const data::Dataset& d, const long* order, int count, const data::Normalization& n) {
    x.resize(count);
    dlogits.resize(count);
    labels.reserve(std::size_t(count));
    host_x.resize(std::size_t(count) * Model::input_shape::size);
    host_labels.resize(std::size_t(count));
    data::gather(d, order, count, n, host_x.data(), host_labels.data());
    x.copy_from_host(host_x.data());
    ops<B>::copy_to_device(labels.data(), host_labels.data(), count);
  }
};

// Cross-entropy of one forward; its gradient goes to batch.dlogits when asked.
template <class Model>
loss::Result forward_loss(Model& model, Batch<Model>& batch, bool with_gradient) {
  using T = typename Model::value_type;
  auto logits = model.forward(batch.x);
  return loss::CrossEntropy{}.template compute<typename Model::backend>(
      logits.data, batch.labels.data(), logits.batch, int(Model::output_shape::size),
      with_gradient ? batch.dlogits.data() : static_cast<T*>(nullptr));
}

}  // namespace detail::tuning

namespace sanity {

struct InitialLoss {
  double loss;      // mean cross-entropy over the batches looked at
  double expected;  // ln(number of outputs): the loss of a uniform prediction
  // Within 15% of expected. For K logits drawn i.i.d. N(0, s^2), a second-order
  // expansion of log-sum-exp gives E[loss] ~ ln K + (1 - 1/K) s^2 / 2, so 15% of
  // ln 10 admits logits of standard deviation up to about 0.9: a network that
  // starts out unsure. A He-initialised last layer after a global average pool
  // (features near their mean of about 0.4, logit variance near 0.3) lands
  // inside, about 6% above ln 10; one after a wide ReLU layer gives logits of
  // variance 1.5 or more (20-50% above), a mis-scaled weight or unnormalised
  // inputs far more, and those are flagged: scale the last layer down. A loss
  // well below chance before any training means the labels leak into the inputs.
  bool plausible;
};

// Training-mode forward (batch statistics, as the first step sees them) over up
// to four full batches in the order data::permutation(size, 0, 0), without
// updating anything; the
// BatchNorm running statistics those forwards move are put back afterwards.
template <class Model>
InitialLoss initial_loss(Model& model, const data::Dataset& d, const data::Normalization& n, int batch = 256) {
  detail::tuning::check_data<Model>(d, n, "initial_loss");
  if (batch < 1) throw Error("initial_loss: batch = " + std::to_string(batch) + " must be at least 1");
  constexpr long batches_looked_at = 4;
  const int size = int(std::min<long>(batch, d.size()));
  const long count = std::min(batches_looked_at, d.size() / size);
  const auto order = data::permutation(d.size(), 0, 0);

  const Snapshot<Model> snapshot(model);
  const bool was_training = model.training();
  model.train();
  detail::tuning::Batch<Model> staged;
  double loss_sum = 0;
  try {
    for (long k = 0; k < count; ++k) {
      staged.load(d, order.data() + k * size, size, n);
      loss_sum += detail::tuning::forward_loss(model, staged, false).loss;
    }
  } catch (...) {
    snapshot.restore(model);
    model.train(was_training);
    throw;
  }
  snapshot.restore(model);
  model.train(was_training);

  InitialLoss result{loss_sum / double(count), std::log(double(Model::output_shape::size)), false};
  result.plausible = std::abs(result.loss - result.expected) <= 0.15 * result.expected;
  return result;
}

struct Overfit {
  double loss, accuracy;  // training-mode mean loss and accuracy over the last pass
  int steps;              // optimizer steps taken
  bool reached;           // accuracy >= target
};

// Trains on the first `batches` batches of the order data::permutation(size, 0,
// 0) only (shuffled, so that a class-sorted dataset still gives mixed labels), one
// optimizer step per batch, pass after pass, until the training accuracy of a
// pass reaches `target` or max_steps steps are taken. A pass's accuracy is
// counted from each batch's forward before its step, as a training loop reports
// it; a pass cut short by max_steps counts the batches it reached. The model and
// optimizer are left trained: take a Snapshot first to undo.
template <class Model, class Opt>
Overfit overfit_small_batch(Model& model, Opt& opt, const data::Dataset& d, const data::Normalization& n,
                            int batches = 2, int batch = 32, int max_steps = 300, double target = 0.99) {
  detail::tuning::check_data<Model>(d, n, "overfit_small_batch");
  if (batches < 1 || batch < 1 || max_steps < 1)
    throw Error("overfit_small_batch: batches = " + std::to_string(batches) + ", batch = " + std::to_string(batch) +
                " and max_steps = " + std::to_string(max_steps) + " must all be at least 1");
  if (!(target > 0 && target <= 1))
    throw Error("overfit_small_batch: target accuracy " + shortest(target) + " is not in (0, 1]");
  const auto order = data::permutation(d.size(), 0, 0);
  const long subset = std::min<long>(long(batches) * batch, d.size());
  std::vector<detail::tuning::Batch<Model>> subset_batches(std::size_t((subset + batch - 1) / batch));
  for (std::size_t k = 0; k < subset_batches.size(); ++k) {
    const long begin = long(k) * batch;
    const int count = int(std::min<long>(batch, subset - begin));
    subset_batches[k].load(d, order.data() + begin, count, n);
  }

  model.train();
  Overfit result{0, 0, 0, false};
  while (result.steps < max_steps && !result.reached) {
    double loss_sum = 0;
    long correct = 0, seen = 0;
    for (auto& staged : subset_batches) {
      if (result.steps == max_steps) break;
      model.set_step(std::uint32_t(result.steps));
      const auto r = detail::tuning::forward_loss(model, staged, true);
      if (!std::isfinite(r.loss))
        throw Error("overfit_small_batch: the loss became " + shortest(r.loss) + " at step " +
                    std::to_string(result.steps + 1) + " (learning rate " + shortest(opt.learning_rate()) +
                    "); lower the learning rate");
      model.backward(staged.dlogits);
      opt.step();
      ++result.steps;
      loss_sum += r.loss * staged.x.batch();
      correct += r.correct;
      seen += staged.x.batch();
    }
    result.loss = loss_sum / double(seen);
    result.accuracy = double(correct) / double(seen);
    result.reached = result.accuracy >= target;
  }
  return result;
}

}  // namespace sanity
}  // namespace laminar::train
