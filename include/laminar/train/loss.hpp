// Losses on logits. CrossEntropy is the numerically stable softmax
// cross-entropy (log-sum-exp around the row maximum), averaged over the batch,
// with optional label smoothing (Szegedy et al. 2016); SoftTargetCrossEntropy
// takes a target distribution per row instead of a label.
#pragma once

#include "../core/backend.hpp"

namespace laminar::loss {

struct Result {
  double loss;   // mean over the batch
  long correct;  // rows whose largest logit is the label
};

struct CrossEntropy {
  double label_smoothing = 0.0;

  // Writes d(mean loss)/d(logits) into dlogits (unless null).
  template <class B, class T>
  Result compute(const T* logits, const int* labels, int batch, int classes, T* dlogits) const {
    long correct = 0;
    const double total = ops<B>::softmax_cross_entropy(batch, classes, logits, labels, label_smoothing,
                                                       T(1.0 / batch), dlogits, &correct);
    return {total / batch, correct};
  }
};

// Cross-entropy against a target distribution per row (targets (N, K), rows
// summing to 1): what mixup and CutMix produce.
struct SoftTargetCrossEntropy {
  template <class B, class T>
  Result compute(const T* logits, const T* targets, int batch, int classes, T* dlogits) const {
    long correct = 0;
    const double total =
        ops<B>::softmax_cross_entropy_soft(batch, classes, logits, targets, T(1.0 / batch), dlogits, &correct);
    return {total / batch, correct};
  }
};

}  // namespace laminar::loss
