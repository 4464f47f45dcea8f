// Losses on logits. CrossEntropy is the numerically stable softmax
// cross-entropy (log-sum-exp around the row maximum), averaged over the batch,
// with optional label smoothing (Szegedy et al. 2016); SoftTargetCrossEntropy
// takes a target distribution per row instead of a label; Distillation adds a
// teacher's tempered softmax as a second target (Hinton et al. 2015).
#pragma once

#include <cmath>
#include <string>

#include "../core/backend.hpp"
#include "../core/error.hpp"

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

// Knowledge distillation (Hinton, Vinyals and Dean 2015), averaged over the batch:
//   L = alpha * CE_s(student, target) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))
// with CE_s the cross-entropy against the label smoothed by s, or against the
// soft target row when soft targets are given. T^2 keeps the soft term's
// gradient comparable across temperatures.
struct Distillation {
  double alpha = 0.5;
  double temperature = 4.0;
  double label_smoothing = 0.0;

  // teacher_logits (N, K) get no gradient. targets (N, K) may be null; when given
  // they replace labels (which may then be null) and `correct` counts rows whose
  // argmax matches the target's argmax. Writes d(mean loss)/d(logits) into
  // dlogits (unless null).
  template <class B, class T>
  Result compute(const T* logits, const T* teacher_logits, const int* labels, const T* targets, int batch,
                 int classes, T* dlogits) const {
    if (!(alpha >= 0 && alpha <= 1))
      throw Error("loss::Distillation: alpha must lie in [0, 1], got " + std::to_string(alpha));
    if (!(temperature > 0 && std::isfinite(temperature)))
      throw Error("loss::Distillation: temperature must be positive and finite, got " + std::to_string(temperature));
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
      throw Error("loss::Distillation: label_smoothing must lie in [0, 1], got " + std::to_string(label_smoothing));
    if (!teacher_logits) throw Error("loss::Distillation: the teacher's logits are null");
    if (!labels && !targets) throw Error("loss::Distillation: neither labels nor soft targets were given");
    long correct = 0;
    const double total =
        ops<B>::softmax_distillation(batch, classes, logits, teacher_logits, labels, targets, label_smoothing, alpha,
                                     temperature, T(1.0 / batch), dlogits, &correct);
    return {total / batch, correct};
  }
};

}  // namespace laminar::loss
