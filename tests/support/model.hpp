// Test helpers for reaching a model's parameters by name — the one place the
// test files share them. Needs only net/model.hpp, not the whole library.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <laminar/net/model.hpp>
#include <string>
#include <vector>

namespace laminar_test {

template <class M>
auto& parameter(const M& model, const std::string& name) {
  for (const auto& p : model.parameters())
    if (p.name == name) return *p.parameter;
  FAIL("the model has no parameter " << name);
  throw;  // unreachable: FAIL throws
}

template <class M>
void set_parameter(M& model, const std::string& name, const std::vector<typename M::value_type>& values) {
  auto& p = parameter(model, name);
  REQUIRE(long(values.size()) == p.size);
  std::copy(values.begin(), values.end(), p.value());
}

template <class T, class B>
std::vector<T> values(const laminar::Parameter<T, B>& p) {
  return {p.value(), p.value() + p.size};
}

template <class M>
std::vector<typename M::value_type> values(const M& model, const std::string& name) {
  return values(parameter(model, name));
}

// Every parameter and statistic of the model, in model order.
template <class M>
std::vector<std::vector<typename M::value_type>> all_values(const M& model) {
  std::vector<std::vector<typename M::value_type>> all;
  for (const auto& p : model.parameters()) all.push_back(values(*p.parameter));
  return all;
}

}  // namespace laminar_test
