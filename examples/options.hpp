// Command-line flags for the examples: --name value pairs, each read once, with
// unknown flags and malformed numbers reported by name.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

namespace examples {

class Options {
 public:
  Options(int argc, char** argv, std::string program) : program_(std::move(program)) {
    for (int i = 1; i < argc; ++i) {
      std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") {
        help_ = true;
        continue;
      }
      if (flag.rfind("--", 0) != 0 || i + 1 >= argc)
        throw std::runtime_error("expected --flag value pairs, got '" + flag + "'");
      values_[flag] = argv[++i];
    }
  }

  std::string text(const std::string& flag, const std::string& fallback) {
    usage_ += " [" + flag + " " + fallback + "]";
    auto it = values_.find(flag);
    if (it == values_.end()) return fallback;
    std::string v = it->second;
    values_.erase(it);
    return v;
  }
  int integer(const std::string& flag, int fallback) {
    const double x = number(flag, fallback);
    if (x != std::floor(x) || std::abs(x) > 2e9) throw std::runtime_error(flag + " expects a whole number, got " + shown(x));
    return int(x);
  }
  double real(const std::string& flag, double fallback) { return number(flag, fallback); }

  // Rejects flags nobody asked for; prints usage on --help.
  void finish() {
    if (help_) {
      std::printf("usage: %s%s\n", program_.c_str(), usage_.c_str());
      std::exit(0);
    }
    if (!values_.empty()) throw std::runtime_error("unknown flag " + values_.begin()->first);
  }

 private:
  static std::string shown(double x) {
    char text[64];
    std::snprintf(text, sizeof text, "%g", x);
    return text;
  }
  double number(const std::string& flag, double fallback) {
    const std::string v = text(flag, shown(fallback));
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') throw std::runtime_error(flag + " expects a number, got '" + v + "'");
    return x;
  }
  std::string program_, usage_;
  std::map<std::string, std::string> values_;
  bool help_ = false;
};

}  // namespace examples
