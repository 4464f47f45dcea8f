// Fine-tuning (the lecture's "little data: take a pretrained model, retrain the
// last layer"): freeze and unfreeze parameters by name prefix or by a range of
// top-level layers, and re-initialise a head. Per-group learning rates are the
// optimizers' set_lr_scale(prefix, scale).
//
//   io::load_weights("pretrained.ckpt", model, {.skip_prefixes = {"12."}, .strict = false});
//   train::freeze_layers(model, 1, 11);       // train only the head
//   ...fit...
//   train::unfreeze(model);                   // then everything, the body slower:
//   opt.set_lr_scale("", 0.1); opt.set_lr_scale("12.", 1.0);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "../layers/layer.hpp"

namespace laminar::train {

namespace detail {
template <class M>
int set_frozen(M& model, std::string_view prefix, bool frozen, const char* caller) {
  int changed = 0;
  for (const auto& named : model.parameters())
    if (named.parameter->trainable() && laminar::selects(prefix, named.name)) {
      named.parameter->frozen = frozen;
      ++changed;
    }
  if (changed == 0)
    throw Error(std::string(caller) + ": the prefix \"" + std::string(prefix) + "\" selects no trainable parameter");
  return changed;
}
}  // namespace detail

// Freezes the trainable parameters that `prefix` selects (laminar::selects:
// "1" and "1." pick layer 1, not layer 12; "" all); returns how many. Frozen
// parameters keep their values through optimizer steps.
template <class M>
int freeze(M& model, std::string_view prefix = {}) {
  return detail::set_frozen(model, prefix, true, "freeze");
}

template <class M>
int unfreeze(M& model, std::string_view prefix = {}) {
  return detail::set_frozen(model, prefix, false, "unfreeze");
}

// Freezes top-level layers first..last (1-based, inclusive) — a prefix of the
// stack when first is 1. Layers without parameters are skipped.
template <class M>
int freeze_layers(M& model, int first, int last) {
  constexpr int depth = int(M::network::depth);
  if (first < 1 || last > depth || first > last)
    throw Error("freeze_layers: layers " + std::to_string(first) + ".." + std::to_string(last) +
                " are not a range within 1.." + std::to_string(depth));
  int changed = 0;
  for (int layer = first; layer <= last; ++layer)
    for (const auto& named : model.parameters())
      if (named.parameter->trainable() && laminar::selects(std::to_string(layer), named.name)) {
        named.parameter->frozen = true;
        ++changed;
      }
  if (changed == 0)
    throw Error("freeze_layers: layers " + std::to_string(first) + ".." + std::to_string(last) + " have no parameters");
  return changed;
}

// Re-initialises (default initialisation, a new seed) the parameters `prefix`
// selects: a fresh head for a new task.
template <class M>
void reinitialize(M& model, std::string_view prefix, std::uint64_t seed) {
  model.initialize(seed, prefix);
}

// Trainable values an optimizer will update: not statistics, not frozen.
template <class M>
long trainable_count(const M& model) {
  long n = 0;
  for (const auto& named : model.parameters())
    if (named.parameter->trainable() && !named.parameter->frozen) n += named.parameter->size;
  return n;
}

}  // namespace laminar::train
