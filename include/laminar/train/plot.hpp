// Line charts as standalone SVG text, with no dependency: nice axis ticks, log
// axes, a legend, gaps at NaN. training_curves() and lr_finder_curve() draw the
// two pictures a training run needs; any other chart is a few Series away.
#pragma once

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/format.hpp"
#include "../io/atomic_file.hpp"
#include "history.hpp"
#include "log.hpp"

namespace laminar::plot {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; a NaN in either is a gap in the line
};

struct Chart {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;  // values <= 0 on a log axis are skipped like NaN
  std::vector<Series> series;
  std::vector<double> marks_x;  // vertical marker lines, e.g. the suggested learning rate
};

namespace detail {

// Tableau's ten categorical colours; series past the tenth repeat them dashed.
inline constexpr std::string_view palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
inline constexpr std::size_t palette_size = std::size(palette);

// Text and attribute values alike. XML 1.0 forbids control characters other
// than tab and newlines even as references, so those become '?'.
inline std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += '?';
        else
          out += c;
    }
  }
  return out;
}

inline std::string fixed(double value, int decimals) {
  char text[400];
  return std::string(text, std::to_chars(text, text + sizeof text, value, std::chars_format::fixed, decimals).ptr);
}

// "2.50e-05" -> "2.5e-5": labels are read by people, not parsers.
inline std::string compact(std::string text) {
  const std::size_t e = text.find('e');
  std::string mantissa = text.substr(0, e), exponent = e == std::string::npos ? "" : text.substr(e + 1);
  if (mantissa.find('.') != std::string::npos) {
    while (mantissa.back() == '0') mantissa.pop_back();
    if (mantissa.back() == '.') mantissa.pop_back();
  }
  if (exponent.empty()) return mantissa;
  const bool negative = exponent[0] == '-';
  const std::size_t digits = exponent.find_first_not_of("+-0");
  return mantissa + "e" + (negative ? "-" : "") + (digits == std::string::npos ? "0" : exponent.substr(digits));
}

inline std::string significant(double value, int digits) {
  char text[64];
  return compact(
      std::string(text, std::to_chars(text, text + sizeof text, value, std::chars_format::general, digits).ptr));
}

// 10^e, exact where the double can hold it (e in 0..22).
inline double power_of_ten(int e) {
  if (e < 0 || e > 22) return std::pow(10.0, e);
  double value = 1;
  for (int i = 0; i < e; ++i) value *= 10;
  return value;
}

struct Tick {
  double value;             // in data units
  std::string label;        // empty for a minor tick
  std::string superscript;  // the exponent of a "10^k" label
};

// One axis: the range [low, high] in transformed units (log10 of the value on a
// log axis), and its ticks.
struct Axis {
  bool log = false;
  double low = 0, high = 1;
  std::vector<Tick> ticks;

  bool accepts(double v) const { return std::isfinite(v) && (!log || v > 0); }
  // Where v falls in [0, 1]; halved first so that a range near the largest
  // doubles does not overflow to infinity.
  double fraction(double v) const {
    const double t = log ? std::log10(v) : v;
    return (t * 0.5 - low * 0.5) / (high * 0.5 - low * 0.5);
  }
};

// Nice numbers after Heckbert (Graphics Gems, 1990): the tick step is 1, 2 or 5
// times a power of ten, the one nearest in ratio to a quarter of the range,
// and the range grows to whole steps, which gives 4 to 8 ticks.
inline Axis linear_axis(double low, double high, bool any) {
  if (!any) low = 0, high = 1;
  if (high - low <= std::max(std::fabs(low), std::fabs(high)) * 1e-12 || high - low < 1e-290) {
    // Constant data: centre it in +-10% of its value (or [-1, 1] at 0). Ranges
    // near the smallest doubles count as constant, so the step stays normal.
    const double centre = low * 0.5 + high * 0.5;
    const double pad = centre == 0 ? 1 : std::max(std::fabs(centre) * 0.1, 1e-300);
    low = std::max(centre - pad, -DBL_MAX), high = std::min(centre + pad, DBL_MAX);
  }
  const double raw = high * 0.25 - low * 0.25;
  int exponent = int(std::floor(std::log10(raw)));
  const double f = raw / power_of_ten(exponent);
  int nice = f < 1.4142135623730951 ? 1 : f < 3.1622776601683795 ? 2 : f < 7.0710678118654755 ? 5 : 10;
  if (nice == 10) nice = 1, ++exponent;
  // value(k) = k * step computed as an integer over an exact power of ten, so
  // that 0.6 is 6 / 10 and not 3 * 0.2 = 0.6000000000000001.
  const auto value = [&](double k) {
    if (exponent >= 0) return k * nice * power_of_ten(exponent);
    return exponent >= -22 ? k * nice / power_of_ten(-exponent) : k * nice * std::pow(10.0, exponent);
  };
  const double step = value(1);
  double k_low = std::floor(low / step + 1e-9), k_high = std::ceil(high / step - 1e-9);
  while (value(k_low) > low) --k_low;
  while (value(k_high) < high) ++k_high;
  Axis axis;
  if (std::isfinite(value(k_low)) && std::isfinite(value(k_high))) {
    axis.low = value(k_low), axis.high = value(k_high);
  } else {  // the whole steps would pass the largest double: keep the data range
    axis.low = low, axis.high = high;
    k_low = std::ceil(low / step), k_high = std::floor(high / step);
  }
  const bool scientific = exponent < -4 || std::max(std::fabs(axis.low), std::fabs(axis.high)) >= 1e6;
  // The count bound only guards against a bug: whole steps give at most 9 ticks.
  for (double k = k_low; k <= k_high && axis.ticks.size() < 64; ++k) {
    const double v = value(k);
    std::string label;
    if (k == 0) {
      label = "0";
    } else if (!scientific) {
      label = fixed(v, std::max(0, -exponent));
    } else {
      const int digits = std::clamp(int(std::floor(std::log10(std::fabs(v)))) - exponent, 0, 16);
      char text[64];
      label = compact(
          std::string(text, std::to_chars(text, text + sizeof text, v, std::chars_format::scientific, digits).ptr));
    }
    axis.ticks.push_back({v, label, ""});
  }
  return axis;
}

// Whole decades enclose the data, so a log axis always has at least two
// labelled ticks; at most about eight decades are labelled, the rest get marks,
// and spans of up to six decades get minor ticks at 2..9.
inline Axis log_axis(double low, double high, bool any) {
  // Decades stay within what a double holds: 10^-323 .. 10^308.
  int a = any ? std::max(int(std::floor(std::log10(low))), -323) : 0;
  int b = any ? std::min(int(std::ceil(std::log10(high))), 308) : 1;
  if (a == b) --a, ++b;
  Axis axis;
  axis.log = true;
  axis.low = a, axis.high = b;
  const int stride = std::max(1, (b - a + 7) / 8);
  const bool plain = a >= -3 && b <= 4;
  for (int k = a; k <= b; ++k) {
    const double v = k >= 0 ? power_of_ten(k) : k >= -22 ? 1 / power_of_ten(-k) : std::pow(10.0, k);
    if (((k % stride) + stride) % stride != 0)
      axis.ticks.push_back({v, "", ""});
    else if (plain)
      axis.ticks.push_back({v, shortest(v), ""});
    else
      axis.ticks.push_back({v, "10", std::to_string(k)});
    if (b - a <= 6 && k < b)
      for (int m = 2; m <= 9; ++m) axis.ticks.push_back({v * m, "", ""});
  }
  return axis;
}

inline Axis make_axis(bool log, const std::vector<double>& values) {
  double low = HUGE_VAL, high = -HUGE_VAL;
  for (const double v : values)
    if (std::isfinite(v) && (!log || v > 0)) low = std::min(low, v), high = std::max(high, v);
  const bool any = low <= high;
  return log ? log_axis(low, high, any) : linear_axis(low, high, any);
}

inline void check(const Chart& chart) {
  for (const Series& s : chart.series)
    if (s.x.size() != s.y.size())
      throw Error("plot series \"" + s.name + "\" of chart \"" + chart.title + "\" has " + std::to_string(s.x.size()) +
                  " x values but " + std::to_string(s.y.size()) + " y values");
}

// A legend entry's width in pixels, estimated: SVG cannot measure text.
inline double legend_width(const std::string& name) { return 22 + 6.2 * double(name.size()) + 14; }

inline void panel(std::string& out, const Chart& chart, double left_edge, double top_edge, double width,
                  double height) {
  constexpr double margin_left = 62, margin_right = 16, margin_bottom = 42, row_height = 14;
  const double left = left_edge + margin_left, right = left_edge + width - margin_right;

  // The legend sits in rows between the title and the plot, so it never hides data.
  std::vector<std::pair<double, int>> legend;  // (x offset from left, row) per series
  double cursor = 0;
  int rows = chart.series.empty() ? 0 : 1;
  for (const Series& s : chart.series) {
    const double w = legend_width(s.name);
    if (cursor > 0 && cursor + w > right - left) cursor = 0, ++rows;
    legend.push_back({cursor, rows - 1});
    cursor += w;
  }
  const double legend_top = top_edge + 30;
  const double top = legend_top + rows * row_height + 6, bottom = top_edge + height - margin_bottom;
  const double plot_width = right - left, plot_height = std::max(bottom - top, 10.0);

  std::vector<double> xs(chart.marks_x), ys;
  for (const Series& s : chart.series)
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      const bool valid = std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!chart.log_x || s.x[i] > 0) &&
                         (!chart.log_y || s.y[i] > 0);
      if (valid) xs.push_back(s.x[i]), ys.push_back(s.y[i]);
    }
  const bool empty = ys.empty();
  const Axis x_axis = make_axis(chart.log_x, xs), y_axis = make_axis(chart.log_y, ys);
  const auto px = [&](double v) { return left + x_axis.fraction(v) * plot_width; };
  const auto py = [&](double v) { return top + plot_height - y_axis.fraction(v) * plot_height; };
  const auto at = [](double v) { return fixed(v, 2); };

  out += "<g class=\"panel\">\n";
  out += "<text x=\"" + at(left_edge + width / 2) + "\" y=\"" + at(top_edge + 18) +
         "\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" + escape(chart.title) + "</text>\n";

  // Grid and ticks, drawn under the data.
  for (const Tick& t : x_axis.ticks) {
    const double x = px(t.value);
    if (!t.label.empty())
      out += "<line x1=\"" + at(x) + "\" y1=\"" + at(top) + "\" x2=\"" + at(x) + "\" y2=\"" + at(top + plot_height) +
             "\" stroke=\"#e6e6e6\"/>\n";
    out += "<line x1=\"" + at(x) + "\" y1=\"" + at(top + plot_height) + "\" x2=\"" + at(x) + "\" y2=\"" +
           at(top + plot_height + (t.label.empty() ? 3 : 5)) + "\" stroke=\"#333\"/>\n";
    if (t.label.empty()) continue;
    out += "<text class=\"tick-x\" data-value=\"" + shortest(t.value) + "\" x=\"" + at(x) + "\" y=\"" +
           at(top + plot_height + 17) + "\" text-anchor=\"middle\">" + escape(t.label);
    if (!t.superscript.empty()) out += "<tspan dy=\"-5\" font-size=\"8\">" + escape(t.superscript) + "</tspan>";
    out += "</text>\n";
  }
  for (const Tick& t : y_axis.ticks) {
    const double y = py(t.value);
    if (!t.label.empty())
      out += "<line x1=\"" + at(left) + "\" y1=\"" + at(y) + "\" x2=\"" + at(right) + "\" y2=\"" + at(y) +
             "\" stroke=\"#e6e6e6\"/>\n";
    out += "<line x1=\"" + at(left - (t.label.empty() ? 3 : 5)) + "\" y1=\"" + at(y) + "\" x2=\"" + at(left) +
           "\" y2=\"" + at(y) + "\" stroke=\"#333\"/>\n";
    if (t.label.empty()) continue;
    out += "<text class=\"tick-y\" data-value=\"" + shortest(t.value) + "\" x=\"" + at(left - 8) +
           "\" y=\"" + at(y) + "\" dy=\"0.32em\" text-anchor=\"end\">" + escape(t.label);
    if (!t.superscript.empty()) out += "<tspan dy=\"-5\" font-size=\"8\">" + escape(t.superscript) + "</tspan>";
    out += "</text>\n";
  }
  out += "<rect x=\"" + at(left) + "\" y=\"" + at(top) + "\" width=\"" + at(plot_width) + "\" height=\"" +
         at(plot_height) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  out += "<text x=\"" + at(left + plot_width / 2) + "\" y=\"" + at(top_edge + height - 8) +
         "\" text-anchor=\"middle\">" + escape(chart.x_label) + "</text>\n";
  out += "<text transform=\"translate(" + at(left_edge + 14) + " " + at(top + plot_height / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + escape(chart.y_label) + "</text>\n";
  if (empty)
    out += "<text x=\"" + at(left + plot_width / 2) + "\" y=\"" + at(top + plot_height / 2) +
           "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";

  for (const double m : chart.marks_x) {
    if (!x_axis.accepts(m)) continue;
    const double x = px(m);
    out += "<line class=\"mark\" data-value=\"" + shortest(m) + "\" x1=\"" + at(x) + "\" y1=\"" +
           at(top) + "\" x2=\"" + at(x) + "\" y2=\"" + at(top + plot_height) +
           "\" stroke=\"#444\" stroke-dasharray=\"4 3\"/>\n";
    out += "<text x=\"" + at(x + 3) + "\" y=\"" + at(top + 11) + "\" font-size=\"9\" fill=\"#444\">" +
           escape(significant(m, 3)) + "</text>\n";
  }

  // One path per series; a gap starts a new subpath, and a lone point is a
  // zero-length subpath, which round caps draw as a dot.
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    const std::string_view colour = palette[i % palette_size];
    std::string d;
    std::size_t points = 0, run = 0;
    for (std::size_t k = 0; k <= s.x.size(); ++k) {
      const bool valid = k < s.x.size() && x_axis.accepts(s.x[k]) && y_axis.accepts(s.y[k]);
      if (!valid) {
        if (run == 1) d += "h0";
        run = 0;
        continue;
      }
      d += (run == 0 ? (d.empty() ? "M" : " M") : " L") + at(px(s.x[k])) + "," + at(py(s.y[k]));
      ++run, ++points;
    }
    const std::string name = escape(s.name);
    out += "<path data-series=\"" + name + "\" data-points=\"" + std::to_string(points) + "\" d=\"" + d +
           "\" fill=\"none\" stroke=\"" + std::string(colour) +
           "\" stroke-width=\"1.6\" stroke-linejoin=\"round\" stroke-linecap=\"round\"";
    if (i >= palette_size) out += " stroke-dasharray=\"6 3\"";
    if (points <= 40) {
      const std::string marker = "url(#laminar-dot-" + std::to_string(i % palette_size) + ")";
      out += " marker-start=\"" + marker + "\" marker-mid=\"" + marker + "\" marker-end=\"" + marker + "\"";
    }
    out += "><title>" + name + "</title></path>\n";
  }

  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const double x = left + legend[i].first, y = legend_top + legend[i].second * row_height;
    const std::string_view colour = palette[i % palette_size];
    out += "<line x1=\"" + at(x) + "\" y1=\"" + at(y) + "\" x2=\"" + at(x + 18) + "\" y2=\"" + at(y) + "\" stroke=\"" +
           std::string(colour) + "\" stroke-width=\"2.5\"" + (i >= palette_size ? " stroke-dasharray=\"6 3\"" : "") +
           "/>\n";
    out += "<text x=\"" + at(x + 22) + "\" y=\"" + at(y) + "\" dy=\"0.32em\">" + escape(chart.series[i].name) +
           "</text>\n";
  }
  out += "</g>\n";
}

}  // namespace detail

// The panels in a grid: side by side up to three, then about square. Each
// panel is panel_width x panel_height pixels.
inline std::string svg(const std::vector<Chart>& panels, int panel_width = 480, int panel_height = 300) {
  if (panels.empty()) throw Error("plot::svg: there are no panels to draw");
  if (panel_width < 200) throw Error("plot::svg: panel_width " + std::to_string(panel_width) + " is below 200");
  if (panel_height < 150) throw Error("plot::svg: panel_height " + std::to_string(panel_height) + " is below 150");
  for (const Chart& chart : panels) detail::check(chart);
  const int count = int(panels.size());
  const int columns = count <= 3 ? count : int(std::ceil(std::sqrt(double(count))));
  const int rows = (count + columns - 1) / columns;
  const std::string width = std::to_string(columns * panel_width), height = std::to_string(rows * panel_height);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    width + "\" height=\"" + height + "\" viewBox=\"0 0 " + width + " " + height +
                    "\" font-family=\"sans-serif\" font-size=\"11\">\n<defs>\n";
  for (std::size_t i = 0; i < detail::palette_size; ++i)
    out += "<marker id=\"laminar-dot-" + std::to_string(i) +
           "\" viewBox=\"0 0 6 6\" refX=\"3\" refY=\"3\" markerWidth=\"5\" markerHeight=\"5\" "
           "markerUnits=\"userSpaceOnUse\"><circle cx=\"3\" cy=\"3\" r=\"3\" fill=\"" +
           std::string(detail::palette[i]) + "\"/></marker>\n";
  out += "</defs>\n<rect width=\"" + width + "\" height=\"" + height + "\" fill=\"white\"/>\n";
  for (int i = 0; i < count; ++i)
    detail::panel(out, panels[std::size_t(i)], double(i % columns * panel_width), double(i / columns * panel_height),
                  panel_width, panel_height);
  out += "</svg>\n";
  return out;
}

// Loss and accuracy per epoch (validation where it was measured), the
// learning rate per step (per epoch when the history has no steps) and the
// batch loss per step. Steps sit at their fractional epoch, so every panel's
// x axis counts epochs.
inline std::string training_curves(const train::History& h) {
  const auto per_epoch = [&](const char* metric) {
    Series s{metric, {}, {}};
    for (const train::EpochRecord& record : h.epochs) {
      s.x.push_back(record.epoch);
      s.y.push_back(record.metric(metric));
    }
    return s;
  };
  const auto measured = [](const Series& s) {
    return std::any_of(s.y.begin(), s.y.end(), [](double v) { return std::isfinite(v); });
  };
  Chart loss{"loss", "epoch", "loss", false, false, {per_epoch("train_loss")}, {}};
  if (Series valid = per_epoch("valid_loss"); measured(valid)) loss.series.push_back(std::move(valid));
  Chart accuracy{"accuracy", "epoch", "accuracy", false, false, {per_epoch("train_accuracy")}, {}};
  if (Series valid = per_epoch("valid_accuracy"); measured(valid)) accuracy.series.push_back(std::move(valid));
  std::vector<Chart> panels{loss, accuracy};
  if (h.steps.empty()) {
    panels.push_back({"learning rate", "epoch", "learning rate", false, false, {per_epoch("learning_rate")}, {}});
  } else {
    Series rate{"learning_rate", {}, {}}, batch{"batch_loss", {}, {}};
    for (const train::StepRecord& step : h.steps) {
      rate.x.push_back(step.epoch), rate.y.push_back(step.learning_rate);
      batch.x.push_back(step.epoch), batch.y.push_back(step.loss);
    }
    panels.push_back({"learning rate", "epoch", "learning rate", false, false, {rate}, {}});
    panels.push_back({"batch loss", "epoch", "loss", false, false, {batch}, {}});
  }
  return svg(panels);
}

// The learning-rate finder's sweep on a log learning-rate axis: raw and
// smoothed loss (smoothed may be empty), with a mark at the suggestion (none
// when it is NaN or not positive).
inline std::string lr_finder_curve(const std::vector<double>& lrs, const std::vector<double>& losses,
                                   const std::vector<double>& smoothed, double suggested_lr) {
  if (losses.size() != lrs.size())
    throw Error("lr_finder_curve: " + std::to_string(lrs.size()) + " learning rates but " +
                std::to_string(losses.size()) + " losses");
  if (!smoothed.empty() && smoothed.size() != lrs.size())
    throw Error("lr_finder_curve: " + std::to_string(lrs.size()) + " learning rates but " +
                std::to_string(smoothed.size()) + " smoothed losses");
  Chart chart{"learning-rate finder", "learning rate", "loss", true, false, {{"loss", lrs, losses}}, {}};
  if (!smoothed.empty()) chart.series.push_back({"smoothed loss", lrs, smoothed});
  if (std::isfinite(suggested_lr) && suggested_lr > 0) chart.marks_x.push_back(suggested_lr);
  return svg({chart});
}

inline void save_svg(const std::string& path, const std::string& svg) { io::write_atomically(path, svg); }

}  // namespace laminar::plot
