// Numbers in messages, logs and descriptions: the shortest text that reads back
// to the same double (std::to_chars, which ignores the locale), so an error shows
// the value the user wrote and a log round-trips exactly. Infinities print as
// "inf" and "-inf", NaN as "nan".
#pragma once

#include <charconv>
#include <string>

namespace laminar {

inline std::string shortest(double value) {
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, value).ptr);
}

}  // namespace laminar
