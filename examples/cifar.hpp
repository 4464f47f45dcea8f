// What the CIFAR-10 examples share: the common flags, loading data_batch_1..4
// for training and data_batch_5 for validation, and the closing lines every
// example prints (validation accuracy, optional test-file evaluation, wall time).
//
//   --data DIR    the decompressed binary batches (default build/data/cifar10)
//   --epochs N    each example gives its own default
//   --seed N      initialisation, shuffling, augmentation, dropout
//   --test FILE   a test_batch.bin to evaluate on after training (optional)
//   --limit N     train on the first N images and validate on the first N of
//                 batch 5 (0 = all); for smoke tests, not for results
//   --precision float|bf16   bf16 multiplies convolution operands in bf16
//                 (float master weights and activations; core/precision.hpp)
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <laminar/laminar.hpp>

#include "options.hpp"

namespace examples {

struct CifarFlags {
  std::string dir, test_file;
  int epochs = 0;
  std::uint64_t seed = 1;
  long limit = 0;
  laminar::Arithmetic arithmetic = laminar::Arithmetic::native;
};

// Every common flag but --epochs (for a program that counts epochs otherwise).
inline CifarFlags common_cifar_flags(Options& args) {
  CifarFlags f;
  f.dir = args.text("--data", "build/data/cifar10");
  f.seed = std::uint64_t(args.integer("--seed", 1));
  f.test_file = args.text("--test", "");
  f.limit = args.integer("--limit", 0);
  const std::string precision = args.text("--precision", "float");
  if (precision != "float" && precision != "bf16")
    throw std::runtime_error("--precision must be float or bf16, got \"" + precision + "\"");
  if (precision == "bf16") f.arithmetic = laminar::Arithmetic::bf16;
  if (f.limit < 0) throw std::runtime_error("--limit must be 0 (all) or positive, got " + std::to_string(f.limit));
  return f;
}

inline CifarFlags cifar_flags(Options& args, int default_epochs) {
  CifarFlags f = common_cifar_flags(args);
  f.epochs = args.integer("--epochs", default_epochs);
  if (f.epochs < 1) throw std::runtime_error("--epochs must be at least 1, got " + std::to_string(f.epochs));
  return f;
}

// Batches 1-4 as training data and batch 5 as validation (the test batch is
// never read from the directory: it is held out and given only by --test).
inline laminar::data::Splits load_cifar10(const CifarFlags& f) {
  auto data = laminar::data::cifar10(f.dir);
  data.test = {};
  if (f.limit > 0) {
    data.train = data.train.slice(0, std::min(f.limit, data.train.size()));
    data.valid = data.valid.slice(0, std::min(f.limit, data.valid.size()));
  }
  std::printf("CIFAR-10 from %s: %ld training images (batches 1-4%s), %ld validation (batch 5)\n", f.dir.c_str(),
              data.train.size(), f.limit > 0 ? ", limited" : "", data.valid.size());
  return data;
}

// Switches a float model to the arithmetic --precision asked for.
template <class Model>
void apply_precision(Model& model, const CifarFlags& f) {
  model.set_arithmetic(f.arithmetic);
  std::printf("precision %s\n", f.arithmetic == laminar::Arithmetic::bf16 ? "bf16" : "float");
}

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Mean training throughput over the run's epochs (images per second of
// training steps, validation excluded).
inline double mean_images_per_second(const laminar::train::History& h) {
  double sum = 0;
  for (const auto& e : h.epochs) sum += e.images_per_second;
  return h.epochs.empty() ? 0 : sum / double(h.epochs.size());
}

// Evaluates on --test when given (with the test-time views `tta`) and returns
// its accuracy, or -1 without a test file.
template <class Model>
double evaluate_test_file(Model& model, const CifarFlags& f, const laminar::train::History& h,
                          laminar::augment::TestTime tta = laminar::augment::TestTime::none) {
  if (f.test_file.empty()) return -1;
  const auto test = laminar::train::evaluate(model, laminar::data::read_cifar10(f.test_file), h.normalization,
                                             {.tta = tta});
  std::printf("test (%s): %s", f.test_file.c_str(), test.report().c_str());
  return test.accuracy;
}

// The closing lines: what a results table row reads.
inline void print_summary(const char* name, const laminar::train::History& h, const Stopwatch& clock) {
  const double seconds = clock.seconds();
  if (!h.epochs.empty())
    std::printf("%s: validation accuracy %.2f%% after %d epochs, %.0f training images/s\n", name,
                100 * h.epochs.back().valid_accuracy, int(h.epochs.size()), mean_images_per_second(h));
  std::printf("wall time %s (%.1f s)\n", laminar::train::format_duration(seconds).c_str(), seconds);
}

}  // namespace examples
