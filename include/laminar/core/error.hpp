// laminar::Error: the one exception type the library throws. Its message is one
// sentence naming the file, layer, shape or value that is wrong.
#pragma once

#include <stdexcept>
#include <string>

namespace laminar {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace laminar
