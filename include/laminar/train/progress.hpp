// The per-epoch progress line: a bar redrawn in place when stdout is a terminal,
// one plain line per epoch otherwise (logs, CI).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace laminar::train {

struct ProgressState {
  int epoch, epochs;
  long done, total;  // batches
  double loss, accuracy, images_per_second, elapsed_seconds;
};

inline std::string format_duration(double seconds) {
  char buffer[32];
  const long s = long(seconds + 0.5);
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%ld:%02ld", s / 60, s % 60);
  return buffer;
}

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled = true) : enabled_(enabled), terminal_(isatty(STDOUT_FILENO)) {}

  // Redraws the bar; does nothing when stdout is not a terminal.
  void update(const ProgressState& s) {
    if (!enabled_ || !terminal_) return;
    const double eta = s.done ? s.elapsed_seconds * double(s.total - s.done) / double(s.done) : 0;
    std::printf("\r%s  ETA %s \x1b[K", line(s).c_str(), format_duration(eta).c_str());
    std::fflush(stdout);
  }

  // The epoch's final line, with whatever the caller appends (validation).
  void finish(const ProgressState& s, const std::string& suffix) {
    if (!enabled_) return;
    std::printf("%s%s  %s%s\n", terminal_ ? "\r" : "", line(s).c_str(),
                format_duration(s.elapsed_seconds).c_str(), suffix.c_str());
    std::fflush(stdout);
  }

 private:
  static std::string line(const ProgressState& s) {
    constexpr int width = 24;
    const int filled = s.total ? int(width * s.done / s.total) : width;
    std::string bar(std::size_t(filled), '=');
    if (filled < width) bar += '>' + std::string(std::size_t(width - filled - 1), ' ');
    char buffer[256];
    std::snprintf(buffer, sizeof buffer, "epoch %*d/%d [%s] %*ld/%ld  loss %.4f  acc %6.2f%%  %6.0f img/s",
                  int(std::to_string(s.epochs).size()), s.epoch, s.epochs, bar.c_str(),
                  int(std::to_string(s.total).size()), s.done, s.total, s.loss, 100 * s.accuracy,
                  s.images_per_second);
    return buffer;
  }
  bool enabled_, terminal_;
};

}  // namespace laminar::train
