// train::evaluate: a model in evaluation mode over a dataset — loss, top-1 and
// top-5 accuracy, per-class accuracy and the confusion matrix — optionally
// averaging the logits of test-time augmentation views (flip, translations).
// The metrics are computed on the host from the logits, whatever the backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "../backend/cpu/ops.hpp"
#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../data/augment/tta.hpp"
#include "../data/batch.hpp"
#include "../data/dataset.hpp"
#include "loss.hpp"

namespace laminar::train {

struct EvaluateOptions {
  int batch = 500;
  loss::CrossEntropy loss;  // label smoothing here changes the reported loss only
  augment::TestTime tta = augment::TestTime::none;
  int translate = 1;  // pixels, for TestTime::flip_translate
};

struct Evaluation {
  double loss = 0, accuracy = 0, top5 = 0;
  long count = 0;
  int classes = 0;
  std::vector<double> per_class_accuracy;  // (classes): NaN for a class with no sample
  std::vector<long> per_class_count;       // (classes)
  std::vector<long> confusion;             // (classes, classes): row = true label, column = prediction

  long confused(int truth, int predicted) const { return confusion[std::size_t(truth) * classes + predicted]; }

  // Per-class accuracy and the confusion matrix as a text table.
  std::string report() const {
    std::string s;
    char line[512];  // room for any double in %.4f (the largest takes 314 characters)
    std::snprintf(line, sizeof line, "accuracy %.2f%%  top-5 %.2f%%  loss %.4f  (%ld images)\n", 100 * accuracy,
                  100 * top5, loss, count);
    s += line;
    s += "class  accuracy   count | predicted:";
    for (int c = 0; c < classes; ++c) {
      std::snprintf(line, sizeof line, " %5d", c);
      s += line;
    }
    s += '\n';
    for (int t = 0; t < classes; ++t) {
      std::snprintf(line, sizeof line, "%5d   %6.2f%%  %6ld |           ", t, 100 * per_class_accuracy[std::size_t(t)],
                    per_class_count[std::size_t(t)]);
      s += line;
      for (int p = 0; p < classes; ++p) {
        std::snprintf(line, sizeof line, " %5ld", confused(t, p));
        s += line;
      }
      s += '\n';
    }
    return s;
  }
};

namespace detail {
template <class Model>
void check_dataset(const data::Dataset& d, const char* role) {
  using In = typename Model::input_shape;
  if (d.channels != In::channels || d.height != In::height || d.width != In::width)
    throw Error(std::string(role) + " data " + d.source + " has samples of " + std::to_string(d.channels) + "x" +
                std::to_string(d.height) + "x" + std::to_string(d.width) + " but the network expects " + In::name());
  if (d.classes > Model::output_shape::size)
    throw Error(std::string(role) + " data " + d.source + " has " + std::to_string(d.classes) +
                " classes but the network outputs " + std::to_string(Model::output_shape::size));
}
}  // namespace detail

template <class Model>
Evaluation evaluate(Model& model, const data::Dataset& d, const data::Normalization& norm,
                    const EvaluateOptions& options = {}) {
  using T = typename Model::value_type;
  using B = typename Model::backend;
  constexpr int K = int(Model::output_shape::size);
  detail::check_dataset<Model>(d, "evaluation");
  norm.check(d.channels, "evaluate", d.source);
  // A label past the network's outputs would index outside the confusion matrix.
  for (long i = 0; i < d.size(); ++i)
    if (d.labels[std::size_t(i)] >= K)
      throw Error("evaluate: sample " + std::to_string(i) + " of " + d.source + " has label " +
                  std::to_string(d.labels[std::size_t(i)]) + " but the network outputs " + std::to_string(K) +
                  " classes");
  if (options.batch < 1) throw Error("evaluate: batch " + std::to_string(options.batch) + " must be at least 1");
  const std::vector<augment::TestView> views = augment::test_views(options.tta, options.translate);

  const int capacity = int(std::min<long>(options.batch, std::max<long>(d.size(), 1)));
  const long sample = d.sample_size();
  std::vector<std::uint8_t> bytes(std::size_t(capacity * sample)), viewed(bytes.size());
  std::vector<T> host_x(bytes.size()), logits(std::size_t(capacity) * K), view_logits(logits.size());
  std::vector<int> labels(static_cast<std::size_t>(capacity));
  std::vector<long> order(std::size_t(d.size()));
  std::iota(order.begin(), order.end(), 0L);
  Tensor<T, B, typename Model::input_shape> x(capacity);

  Evaluation e;
  e.classes = K;
  e.count = d.size();
  e.per_class_count.assign(K, 0);
  e.confusion.assign(std::size_t(K) * K, 0);
  std::vector<long> per_class_correct(K, 0);
  double loss_sum = 0;
  long correct = 0, top5 = 0;
  const int k_top = std::min(5, K);

  const bool was_training = model.training();
  model.eval();
  for (long begin = 0; begin < d.size(); begin += capacity) {
    const int n = int(std::min<long>(capacity, d.size() - begin));
    data::gather_bytes(d, order.data() + begin, n, bytes.data(), labels.data());
    std::fill(logits.begin(), logits.begin() + long(n) * K, T(0));
    for (const auto& view : views) {
      const std::uint8_t* source = bytes.data();
      if (views.size() > 1 || view.flip || view.dx || view.dy) {
#pragma omp parallel for schedule(static) if (n > 16)
        for (int i = 0; i < n; ++i)
          augment::apply_view(view, {bytes.data() + i * sample, d.channels, d.height, d.width},
                              {viewed.data() + i * sample, d.channels, d.height, d.width});
        source = viewed.data();
      }
      data::normalize(source, n, d.channels, d.height, d.width, norm, host_x.data());
      x.resize(n);
      x.copy_from_host(host_x.data());
      const auto y = model.forward(x);
      ops<B>::copy_to_host(view_logits.data(), y.data, long(n) * K);
      const T weight = T(1.0 / double(views.size()));
      for (long k = 0; k < long(n) * K; ++k) logits[k] += weight * view_logits[k];
    }
    long batch_correct = 0;
    loss_sum += ops<cpu>::softmax_cross_entropy(n, K, logits.data(), labels.data(), options.loss.label_smoothing, T(1),
                                               static_cast<T*>(nullptr), &batch_correct);
    correct += batch_correct;
    for (int i = 0; i < n; ++i) {
      const T* z = logits.data() + long(i) * K;
      const int truth = labels[std::size_t(i)];
      const int predicted = cpu_detail::argmax(z, K);
      ++e.per_class_count[std::size_t(truth)];
      ++e.confusion[std::size_t(truth) * K + predicted];
      per_class_correct[std::size_t(truth)] += predicted == truth;
      // In the top k when fewer than k classes score strictly higher.
      int higher = 0;
      for (int c = 0; c < K; ++c) higher += z[c] > z[truth];
      top5 += higher < k_top;
    }
  }
  model.train(was_training);

  if (e.count) {
    e.loss = loss_sum / double(e.count);
    e.accuracy = double(correct) / double(e.count);
    e.top5 = double(top5) / double(e.count);
  }
  e.per_class_accuracy.resize(K);
  for (int c = 0; c < K; ++c)
    e.per_class_accuracy[std::size_t(c)] = e.per_class_count[std::size_t(c)]
                                               ? double(per_class_correct[std::size_t(c)]) / double(e.per_class_count[std::size_t(c)])
                                               : std::nan("");
  return e;
}

// The short form: evaluate(model, data, norm, batch, loss).
template <class Model>
Evaluation evaluate(Model& model, const data::Dataset& d, const data::Normalization& norm, int batch,
                    const loss::CrossEntropy& criterion = {}) {
  return evaluate(model, d, norm, EvaluateOptions{.batch = batch, .loss = criterion});
}

}  // namespace laminar::train
