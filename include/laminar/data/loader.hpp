// The batch loader: per epoch, a seeded order of the samples cut into batches,
// each gathered as uint8, augmented there, then normalised to T — prepared one
// batch ahead on a background thread while the caller trains, or inline.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "batch.hpp"
#include "dataset.hpp"

namespace laminar::data {

// Augments n uint8 samples (n, C, H, W) in place; indices[i] is sample i's index
// in the dataset. An augment::Pipeline is such a callable.
using Augment = std::function<void(std::uint8_t* images, int n, int channels, int height, int width,
                                   const long* indices, std::uint64_t seed, std::uint32_t epoch)>;

// Loader<float> loader(train, norm, {.batch = 128, .seed = 7},
//                      [pipeline](auto... args) { pipeline.apply(args...); });
// for (std::uint32_t epoch = 0; epoch < epochs; ++epoch) {
//   loader.start_epoch(epoch);
//   while (const auto* batch = loader.next()) step(batch->images, batch->labels, batch->size);
// }
//
// The dataset must outlive the loader, which reads it in place.
//
// Threads: with prefetch, one std::thread prepares the next batch while the
// caller works on the current one. That thread runs its OpenMP regions (ours and
// the augmentation's) with one thread — it sets omp_set_num_threads(1) for
// itself only — so it takes one core and never starts a second OpenMP team to
// fight the caller's for the machine. Preparing a batch is cheap beside a
// training step, so one core keeps ahead; if it does not, next() waits.
// Without prefetch the same work runs inline, with the caller's OpenMP threads.
// Either way a batch is a pure function of (dataset, seed, epoch, batch number),
// so both modes give the same batches bit for bit.
template <class T>
class Loader {
  static_assert(std::is_floating_point_v<T>, "Loader<T> produces normalised images; T must be float or double");

 public:
  struct Options {
    int batch = 128;
    bool shuffle = true;     // order = data::permutation(size, seed, epoch); else 0, 1, 2, ...
    bool drop_last = false;  // drop a last batch smaller than `batch`
    std::uint64_t seed = 0;  // of the order and of the augmentation's draws
    bool prefetch = true;    // prepare the next batch on a background thread
  };

  using Augment = data::Augment;

  struct Batch {
    const T* images;       // (size, C, H, W), normalised
    const int* labels;     // (size)
    const long* indices;   // (size): each sample's index in the dataset
    int size;
  };

  Loader(const Dataset& dataset, Normalization normalization, Options options, Augment augment = {})
      : dataset_(dataset), normalization_(std::move(normalization)), options_(options), augment_(std::move(augment)) {
    if (options_.batch < 1)
      throw Error("Loader: batch = " + std::to_string(options_.batch) + " for " + dataset_.source +
                  " must be at least 1");
    normalization_.check(dataset_.channels, "Loader", dataset_.source);
    // Every buffer is sized here; a batch in steady state allocates nothing.
    const long capacity = std::min<long>(options_.batch, dataset_.size());
    const long sample = dataset_.sample_size();
    bytes_.resize(std::size_t(capacity * sample));
    order_.resize(std::size_t(dataset_.size()));
    const int slot_count = options_.prefetch ? 2 : 1;
    for (int s = 0; s < slot_count; ++s) {
      slots_[s].images.resize(std::size_t(capacity * sample));
      slots_[s].labels.resize(std::size_t(capacity));
    }
    if (options_.prefetch) worker_ = std::thread([this] { work(); });
  }

  // The loader reads the dataset in place, so a temporary one would dangle.
  Loader(Dataset&&, Normalization, Options, Augment = {}) = delete;
  Loader(const Loader&) = delete;  // the worker thread holds `this`
  Loader& operator=(const Loader&) = delete;

  // Stops the worker after the batch it is preparing, if any; mid-epoch is fine.
  ~Loader() {
    if (!worker_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_wanted_.notify_one();
    worker_.join();
  }

  // Begins epoch `epoch`, abandoning what is left of the current one; the
  // batch next() last returned is no longer valid.
  void start_epoch(std::uint32_t epoch) {
    // Drawn before taking the lock: the worker may go on meanwhile.
    std::vector<long> order = options_.shuffle ? permutation(dataset_.size(), options_.seed, epoch) : std::vector<long>();
    std::unique_lock lock(mutex_, std::defer_lock);
    if (options_.prefetch) {
      lock.lock();
      // The worker reads order_ and the slots while busy: let it finish.
      work_done_.wait(lock, [&] { return !busy_; });
    }
    if (options_.shuffle)
      order_ = std::move(order);
    else
      std::iota(order_.begin(), order_.end(), 0L);
    epoch_ = epoch;
    started_ = true;
    failure_ = nullptr;
    produced_ = consumed_ = 0;
    held_ = -1;
    for (Slot& slot : slots_) {
      slot.state = State::free;
      slot.error = nullptr;
    }
    if (options_.prefetch) {
      lock.unlock();
      work_wanted_.notify_one();
    }
  }

  // The next batch of the epoch, valid until the next call to next() or
  // start_epoch(); nullptr at the end of the epoch. An exception thrown while
  // preparing a batch (say by the augmentation) is rethrown here, in order: the
  // batches before it arrive first, and every later call rethrows it until
  // start_epoch() begins a new epoch.
  const Batch* next() {
    if (!started_) throw Error("Loader::next: call start_epoch(epoch) before the first batch of " + dataset_.source);
    if (failure_) std::rethrow_exception(failure_);
    if (!options_.prefetch) {
      if (consumed_ == batches_per_epoch()) return nullptr;
      try {
        prepare(consumed_, slots_[0]);
      } catch (...) {
        failure_ = std::current_exception();
        throw;
      }
      ++consumed_;
      return &slots_[0].batch;
    }

    std::unique_lock lock(mutex_);
    if (held_ >= 0) {
      slots_[held_].state = State::free;
      held_ = -1;
      work_wanted_.notify_one();
    }
    if (consumed_ == batches_per_epoch()) return nullptr;
    const int index = int(consumed_ % 2);
    Slot& slot = slots_[index];
    work_done_.wait(lock, [&] { return slot.state == State::ready || slot.state == State::failed; });
    if (slot.state == State::failed) {
      failure_ = slot.error;
      std::rethrow_exception(failure_);
    }
    ++consumed_;
    held_ = index;
    return &slot.batch;
  }

  long batches_per_epoch() const {
    const long size = dataset_.size(), batch = options_.batch;
    return options_.drop_last ? size / batch : (size + batch - 1) / batch;
  }

  const Options& options() const { return options_; }
  const Dataset& dataset() const { return dataset_; }

 private:
  enum class State { free, filling, ready, failed };
  struct Slot {
    std::vector<T> images;
    std::vector<int> labels;
    Batch batch{};
    State state = State::free;
    std::exception_ptr error;
  };

  // Batch k of the epoch into `slot`: gather uint8, augment them, normalise.
  // Only one thread runs this at a time (the worker, or the caller inline), so
  // they share bytes_.
  void prepare(long k, Slot& slot) {
    const long begin = k * options_.batch;
    const int n = int(std::min<long>(options_.batch, dataset_.size() - begin));
    const long* indices = order_.data() + begin;
    gather_bytes(dataset_, indices, n, bytes_.data(), slot.labels.data());
    if (augment_) augment_(bytes_.data(), n, dataset_.channels, dataset_.height, dataset_.width, indices, options_.seed, epoch_);
    normalize(bytes_.data(), n, dataset_.channels, dataset_.height, dataset_.width, normalization_, slot.images.data());
    slot.batch = Batch{slot.images.data(), slot.labels.data(), indices, n};
  }

  bool can_produce() const {
    return started_ && !worker_failed_epoch() && produced_ < batches_per_epoch() &&
           slots_[produced_ % 2].state == State::free;
  }
  bool worker_failed_epoch() const {
    return slots_[0].state == State::failed || slots_[1].state == State::failed;
  }

  void work() {
#ifdef _OPENMP
    omp_set_num_threads(1);  // this thread's own regions only; see the class comment
#endif
    std::unique_lock lock(mutex_);
    for (;;) {
      work_wanted_.wait(lock, [&] { return stopping_ || can_produce(); });
      if (stopping_) return;
      const long k = produced_++;
      Slot& slot = slots_[k % 2];
      slot.state = State::filling;
      busy_ = true;
      lock.unlock();
      std::exception_ptr error;
      try {
        prepare(k, slot);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      busy_ = false;
      slot.error = error;
      slot.state = error ? State::failed : State::ready;
      work_done_.notify_one();
    }
  }

  const Dataset& dataset_;
  Normalization normalization_;
  Options options_;
  Augment augment_;

  std::vector<long> order_;          // (size): this epoch's sample order
  std::vector<std::uint8_t> bytes_;  // (batch, C, H, W): the batch being prepared, as uint8
  Slot slots_[2];                    // prefetch: the caller holds one while the worker fills the other
  std::uint32_t epoch_ = 0;
  bool started_ = false;
  std::exception_ptr failure_;  // the caller's: set once next() has thrown, until start_epoch

  // Shared with the worker, under mutex_.
  std::mutex mutex_;
  std::condition_variable work_wanted_, work_done_;
  long produced_ = 0, consumed_ = 0;
  int held_ = -1;  // the slot whose batch the caller has, or -1
  bool busy_ = false, stopping_ = false;
  std::thread worker_;  // last: starts once everything above exists
};

}  // namespace laminar::data
