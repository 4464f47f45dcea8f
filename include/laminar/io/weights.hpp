// Model weights in a checkpoint: every parameter and BatchNorm statistic of a
// Model under "model/<name>", with the network's description, so a run can be
// resumed, evaluated elsewhere, or fine-tuned from a pretrained body.
#pragma once

#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../data/batch.hpp"
#include "../net/describe.hpp"
#include "checkpoint.hpp"

namespace laminar::io {

struct LoadOptions {
  // Parameters whose name starts with one of these ("12.") are never loaded and
  // keep their current values.
  std::vector<std::string> skip_prefixes;
  // Strict: the file and the model hold the same parameter names (outside
  // skip_prefixes) with the same sizes. Not strict: load what matches by name
  // and size and keep the rest, as for a new head on a pretrained body.
  bool strict = true;
};

namespace detail {

inline constexpr std::string_view network_entry = "network";
inline constexpr std::string_view element_type_entry = "element_type";

inline bool skipped(const std::string& name, const LoadOptions& options) {
  for (const auto& prefix : options.skip_prefixes)
    if (selects(prefix, name)) return true;
  return false;
}

template <class T>
void require_storable() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "WEIGHTS_ARE_STORED_AS_F32_OR_F64: this model's element type has no checkpoint "
                "array type");
}

// One stored array converted to the model's element type.
template <class T>
std::vector<T> read_converted(const CheckpointReader& r, const std::string& entry) {
  const EntryType type = r.type(entry);
  if (type == array_type<T>()) return r.array<T>(entry);
  if (type == EntryType::f32 || type == EntryType::f64) {
    std::vector<T> out;
    if (type == EntryType::f32) {
      const auto stored = r.array<float>(entry);
      out.assign(stored.begin(), stored.end());
    } else {
      const auto stored = r.array<double>(entry);
      out.reserve(stored.size());
      for (double v : stored) out.push_back(T(v));
    }
    return out;
  }
  throw Error(r.source() + ": weight entry \"" + entry + "\" is " + type_name(type) +
              ", not f32 or f64");
}

}  // namespace detail

template <class Model>
void write_parameters(CheckpointWriter& w, const Model& model, const std::string& prefix = "model/") {
  using T = typename Model::value_type;
  detail::require_storable<T>();
  w.add_text(prefix + std::string(detail::network_entry), laminar::describe<typename Model::network>());
  w.add_text(prefix + std::string(detail::element_type_entry), type_name(array_type<T>()));
  std::vector<T> host;
  for (const auto& p : model.parameters()) {
    host.resize(std::size_t(p.parameter->size));
    ops<typename Model::backend>::copy_to_host(host.data(), p.parameter->value(), p.parameter->size);
    w.add_array(prefix + p.name, host);
  }
}

// All-or-nothing: every entry is checked and read before any parameter is
// written, so a failed load leaves the model as it was.
template <class Model>
void read_parameters(const CheckpointReader& r, Model& model, const LoadOptions& options = {},
                     const std::string& prefix = "model/") {
  using T = typename Model::value_type;
  detail::require_storable<T>();
  const std::string network_name = prefix + std::string(detail::network_entry);
  const std::string element_name = prefix + std::string(detail::element_type_entry);

  // Stored parameters: every entry under prefix except the two descriptions.
  std::vector<std::string> stored;
  for (const auto& name : r.names())
    if (name.starts_with(prefix) && name != network_name && name != element_name)
      stored.push_back(name.substr(prefix.size()));
  if (stored.empty() && !r.has(network_name))
    throw Error(r.source() + ": holds no model weights under \"" + prefix + "\"");

  const bool same_network =
      r.has(network_name) && r.text(network_name) == laminar::describe<typename Model::network>();
  const std::string network_note =
      same_network ? std::string()
                   : r.has(network_name)
                         ? " (the file was saved from a different network than this model's)"
                         : " (the file does not describe the network it was saved from)";
  const auto refuse = [&](const std::string& what) {
    throw Error("cannot load " + r.source() + " into this model: " + what + network_note);
  };

  struct Planned {
    std::size_t index;  // in model.parameters()
    std::vector<T> values;
  };
  std::vector<Planned> plan;
  const auto& parameters = model.parameters();
  std::vector<bool> in_model(stored.size(), false);
  std::size_t wanted = 0;  // model parameters outside skip_prefixes
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const auto& p = parameters[i];
    if (detail::skipped(p.name, options)) continue;
    ++wanted;
    const std::string entry = prefix + p.name;
    std::size_t k = 0;
    while (k < stored.size() && stored[k] != p.name) ++k;
    if (k == stored.size()) {
      if (options.strict)
        refuse("parameter " + p.name + " (" + std::to_string(p.parameter->size) +
               " values) is missing from the file");
      continue;
    }
    in_model[k] = true;
    const std::size_t count = r.count(entry);
    if (count != std::size_t(p.parameter->size)) {
      if (options.strict)
        refuse("parameter " + p.name + " has " + std::to_string(count) + " values in the file but " +
               std::to_string(p.parameter->size) + " in the model");
      continue;
    }
    plan.push_back({i, detail::read_converted<T>(r, entry)});
  }
  if (options.strict)
    for (std::size_t k = 0; k < stored.size(); ++k)
      if (!in_model[k] && !detail::skipped(stored[k], options))
        refuse("the file's parameter " + stored[k] + " (" + std::to_string(r.count(prefix + stored[k])) +
               " values) is not in the model");
  // Loading nothing at all is almost surely the wrong file, not a fine-tuning choice.
  if (plan.empty() && wanted > 0)
    refuse("no parameter of the file matches one of the model's by name and size");

  for (const Planned& step : plan) {
    auto& p = *parameters[step.index].parameter;
    ops<typename Model::backend>::copy_to_device(p.value(), step.values.data(), p.size);
  }
}

// A checkpoint file holding just the model's parameters, written atomically.
template <class Model>
void save_weights(const std::string& path, const Model& model) {
  CheckpointWriter w;
  write_parameters(w, model);
  w.save(path);
}

// The same with the normalisation the model was trained with, so inference
// prepares its inputs exactly as training did (load_normalization reads it).
template <class Model>
void save_weights(const std::string& path, const Model& model, const data::Normalization& normalization) {
  CheckpointWriter w;
  write_parameters(w, model);
  std::ostringstream text;
  normalization.save(text);
  w.add_text("normalization", text.str());
  w.save(path);
}

// The normalisation stored in a weights file or a training checkpoint.
inline data::Normalization load_normalization(const std::string& path) {
  const CheckpointReader r = CheckpointReader::load(path);
  if (!r.has("normalization"))
    throw Error(path + " holds no normalisation; it was saved without one (save_weights(path, model, normalization))");
  std::istringstream text(r.text("normalization"));
  try {
    return data::Normalization::load(text);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

template <class Model>
void load_weights(const std::string& path, Model& model, const LoadOptions& options = {}) {
  read_parameters(CheckpointReader::load(path), model, options);
}

}  // namespace laminar::io
