// SVG plots: the output is well-formed XML, every series is one element with
// one point per finite value, axes carry nice or decade ticks that agree with
// where the points are drawn, NaN makes a gap and names are escaped.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <laminar/train/plot.hpp>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "support/files.hpp"

using namespace laminar;
using laminar::plot::Chart;
using laminar::plot::Series;

namespace {

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();

// ---- a small XML checker ----------------------------------------------------

struct Element {
  std::string name;
  std::map<std::string, std::string> attributes;  // values with entities decoded
  std::string text;                               // the element's own text, decoded
  int parent = -1;
};

struct Document {
  std::vector<Element> elements;  // in document order
  std::string error;              // empty when well-formed

  std::vector<const Element*> all(const std::string& name, const std::string& attribute = "",
                                  const std::string& value = "") const {
    std::vector<const Element*> found;
    for (const Element& e : elements) {
      if (e.name != name) continue;
      if (!attribute.empty()) {
        const auto it = e.attributes.find(attribute);
        if (it == e.attributes.end() || (!value.empty() && it->second != value)) continue;
      }
      found.push_back(&e);
    }
    return found;
  }
  std::vector<const Element*> children(const Element& parent) const {
    std::vector<const Element*> found;
    for (const Element& e : elements)
      if (e.parent >= 0 && &elements[std::size_t(e.parent)] == &parent) found.push_back(&e);
    return found;
  }
};

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool name_char(char c) { return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'; }

// Decodes the five predefined entities and character references; anything
// else after '&' makes the document malformed.
bool decode(std::string_view raw, std::string& out) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '<') return false;
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    const std::size_t end = raw.find(';', i);
    if (end == std::string_view::npos) return false;
    const std::string_view entity = raw.substr(i + 1, end - i - 1);
    if (entity == "amp")
      out += '&';
    else if (entity == "lt")
      out += '<';
    else if (entity == "gt")
      out += '>';
    else if (entity == "quot")
      out += '"';
    else if (entity == "apos")
      out += '\'';
    else if (entity.size() > 1 && entity[0] == '#') {
      unsigned code = 0;
      const bool hex = entity[1] == 'x';
      const auto digits = entity.substr(hex ? 2 : 1);
      const auto result = std::from_chars(digits.data(), digits.data() + digits.size(), code, hex ? 16 : 10);
      if (digits.empty() || result.ptr != digits.data() + digits.size() || code > 0x7f) return false;
      out += char(code);
    } else {
      return false;
    }
    i = end;
  }
  return true;
}

Document parse_xml(const std::string& text) {
  Document document;
  std::vector<int> open;
  int roots = 0;
  std::size_t i = 0;
  const auto fail = [&](const std::string& why) {
    document.error = why + " at byte " + std::to_string(i);
    return document;
  };
  if (text.compare(0, 5, "<?xml") == 0) {
    i = text.find("?>");
    if (i == std::string::npos) return fail("unterminated XML declaration");
    i += 2;
  }
  while (i < text.size()) {
    if (text[i] != '<') {
      const std::size_t end = std::min(text.find('<', i), text.size());
      std::string decoded;
      if (!decode(std::string_view(text).substr(i, end - i), decoded)) return fail("a bad '&' in text");
      if (open.empty() && decoded.find_first_not_of(" \t\r\n") != std::string::npos)
        return fail("text outside the root element");
      if (!open.empty()) document.elements[std::size_t(open.back())].text += decoded;
      i = end;
      continue;
    }
    if (text.compare(i, 4, "<!--") == 0) {
      i = text.find("-->", i);
      if (i == std::string::npos) return fail("unterminated comment");
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "</") == 0) {
      i += 2;
      const std::size_t begin = i;
      while (i < text.size() && name_char(text[i])) ++i;
      const std::string name = text.substr(begin, i - begin);
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
      if (i >= text.size() || text[i] != '>') return fail("a closing tag without '>'");
      ++i;
      if (open.empty() || document.elements[std::size_t(open.back())].name != name)
        return fail("</" + name + "> does not close the innermost open element");
      open.pop_back();
      continue;
    }
    ++i;
    if (i >= text.size() || !name_start(text[i])) return fail("a '<' that starts no tag");
    Element element;
    element.parent = open.empty() ? -1 : open.back();
    if (open.empty() && ++roots > 1) return fail("a second root element");
    const std::size_t begin = i;
    while (i < text.size() && name_char(text[i])) ++i;
    element.name = text.substr(begin, i - begin);
    for (;;) {
      const std::size_t before = i;
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
      if (i >= text.size()) return fail("an unterminated tag");
      if (text[i] == '>' || text.compare(i, 2, "/>") == 0) break;
      if (i == before) return fail("attributes without space between them");
      if (!name_start(text[i])) return fail("a bad attribute name");
      const std::size_t name_begin = i;
      while (i < text.size() && name_char(text[i])) ++i;
      const std::string attribute = text.substr(name_begin, i - name_begin);
      if (i >= text.size() || text[i] != '=') return fail("attribute " + attribute + " without '='");
      ++i;
      if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return fail("attribute " + attribute + " unquoted");
      const char quote = text[i++];
      const std::size_t end = text.find(quote, i);
      if (end == std::string::npos) return fail("attribute " + attribute + " unterminated");
      std::string value;
      if (!decode(std::string_view(text).substr(i, end - i), value)) return fail("a bad '<' or '&' in " + attribute);
      if (!element.attributes.emplace(attribute, value).second) return fail("attribute " + attribute + " twice");
      i = end + 1;
    }
    const bool empty = text[i] == '/';
    i += empty ? 2 : 1;
    document.elements.push_back(element);
    if (!empty) open.push_back(int(document.elements.size()) - 1);
  }
  if (!open.empty()) return fail("<" + document.elements[std::size_t(open.back())].name + "> is never closed");
  if (roots != 1) return fail("no root element");
  return document;
}

Document well_formed(const std::string& svg) {
  Document document = parse_xml(svg);
  INFO("svg: " << svg.substr(0, 2000));
  REQUIRE(document.error == "");
  REQUIRE(document.elements.at(0).name == "svg");
  return document;
}

// ---- reading the drawing back ------------------------------------------------

double number(const std::string& text) {
  double value = not_a_number;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  REQUIRE(result.ptr == text.data() + text.size());
  return value;
}

struct Point {
  double x, y;
};

// The subpaths of a path's d attribute, as written by plot::svg: "M x,y L x,y
// ... M x,y h0".
std::vector<std::vector<Point>> subpaths(const std::string& d) {
  std::vector<std::vector<Point>> runs;
  std::size_t i = 0;
  while (i < d.size()) {
    const char command = d[i];
    if (command == ' ') {
      ++i;
      continue;
    }
    if (command == 'h') {  // "h0": a zero-length step that draws a lone point
      REQUIRE(d.compare(i, 2, "h0") == 0);
      i += 2;
      continue;
    }
    REQUIRE((command == 'M' || command == 'L'));
    if (command == 'M') runs.emplace_back();
    REQUIRE(!runs.empty());
    const std::size_t comma = d.find(',', i), end = d.find_first_of(" Mh", comma);
    const double x = number(d.substr(i + 1, comma - i - 1));
    const double y = number(d.substr(comma + 1, (end == std::string::npos ? d.size() : end) - comma - 1));
    runs.back().push_back({x, y});
    i = end == std::string::npos ? d.size() : end;
  }
  return runs;
}

std::size_t count_points(const std::vector<std::vector<Point>>& runs) {
  std::size_t n = 0;
  for (const auto& run : runs) n += run.size();
  return n;
}

// The one path that draws series `name`; its <title> child names it too.
const Element& series_path(const Document& document, const std::string& name) {
  const auto found = document.all("path", "data-series", name);
  REQUIRE(found.size() == 1);
  const auto children = document.children(*found[0]);
  REQUIRE(children.size() == 1);
  CHECK(children[0]->name == "title");
  CHECK(children[0]->text == name);
  return *found[0];
}

struct TickMark {
  double value, position;  // data value and pixel coordinate along the axis
  std::string label;       // the visible text, superscript included
};

std::vector<TickMark> ticks(const Document& document, const std::string& axis) {
  std::vector<TickMark> found;
  for (const Element* e : document.all("text", "class", "tick-" + axis)) {
    std::string label = e->text;
    for (const Element* child : document.children(*e)) label += "^" + child->text;
    found.push_back({number(e->attributes.at("data-value")), number(e->attributes.at(axis)), label});
  }
  return found;
}

std::vector<double> values(const std::vector<TickMark>& marks) {
  std::vector<double> v;
  for (const auto& m : marks) v.push_back(m.value);
  return v;
}

std::vector<std::string> labels(const std::vector<TickMark>& marks) {
  std::vector<std::string> v;
  for (const auto& m : marks) v.push_back(m.label);
  return v;
}

std::string one_chart(const Chart& chart) { return plot::svg({chart}); }

}  // namespace

TEST_CASE("the xml checker rejects what is not well-formed") {
  CHECK(parse_xml("<svg><g></g></svg>").error == "");
  CHECK(parse_xml("<svg><g></svg></g>").error != "");
  CHECK(parse_xml("<svg><g></svg>").error != "");
  CHECK(parse_xml("<svg width=3></svg>").error != "");
  CHECK(parse_xml("<svg>a & b</svg>").error != "");
  CHECK(parse_xml("<svg>a < b</svg>").error != "");
  CHECK(parse_xml("<svg t=\"a<b\"></svg>").error != "");
  CHECK(parse_xml("<svg/><svg/>").error != "");
  CHECK(parse_xml("<svg a=\"1\"b=\"2\"/>").error != "");
  CHECK(parse_xml("<svg>a &amp; b &#60;</svg>").elements.at(0).text == "a & b <");
}

TEST_CASE("training curves are well-formed with every series once and one point per finite value") {
  train::History h;
  for (int e = 1; e <= 4; ++e) {
    train::EpochRecord r;
    r.epoch = e;
    r.train_loss = 2.0 / e, r.train_accuracy = 0.5 + 0.1 * e;
    r.valid_loss = e == 2 ? not_a_number : 2.5 / e, r.valid_accuracy = 0.45 + 0.1 * e;
    r.learning_rate = 0.1 / e;
    h.epochs.push_back(r);
  }
  for (long s = 0; s < 40; ++s)
    h.steps.push_back({s, double(s) / 10, 0.1 * (1 - double(s) / 40), s == 17 ? not_a_number : 2.0 / (1 + s)});
  const Document document = well_formed(plot::training_curves(h));
  const std::map<std::string, std::size_t> expected = {{"train_loss", 4},     {"valid_loss", 3},
                                                       {"train_accuracy", 4}, {"valid_accuracy", 4},
                                                       {"learning_rate", 40}, {"batch_loss", 39}};
  CHECK(document.all("path", "data-series").size() == expected.size());
  for (const auto& [name, points] : expected) {
    INFO("series " << name);
    const Element& path = series_path(document, name);
    CHECK(count_points(subpaths(path.attributes.at("d"))) == points);
    CHECK(path.attributes.at("data-points") == std::to_string(points));
  }
  CHECK(document.all("g", "class", "panel").size() == 4);
}

TEST_CASE("training curves leave out validation series that were never measured") {
  train::History h;
  for (int e = 1; e <= 3; ++e) {
    train::EpochRecord r;
    r.epoch = e, r.train_loss = 1.0 / e, r.train_accuracy = 0.3 * e, r.learning_rate = 0.01;
    h.epochs.push_back(r);
  }
  const Document document = well_formed(plot::training_curves(h));
  CHECK(document.all("path", "data-series", "valid_loss").empty());
  CHECK(document.all("path", "data-series", "valid_accuracy").empty());
  // Without steps, the learning rate comes from the epochs and there is no batch-loss panel.
  CHECK(count_points(subpaths(series_path(document, "learning_rate").attributes.at("d"))) == 3);
  CHECK(document.all("g", "class", "panel").size() == 3);
}

TEST_CASE("a linear axis has 1 2 5 ticks that enclose the data") {
  // y in [0, 0.83]: a quarter of the range is 0.2075, nearest nice step 0.2,
  // so the axis runs 0..1. x in [1, 5]: a quarter is 1, the step is 1.
  const Document document =
      well_formed(one_chart({"t", "x", "y", false, false, {{"s", {1, 2, 5}, {0, 0.83, 0.4}}}, {}}));
  CHECK(values(ticks(document, "y")) == std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1});
  CHECK(labels(ticks(document, "y")) == std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1.0"});
  CHECK(values(ticks(document, "x")) == std::vector<double>{1, 2, 3, 4, 5});
  CHECK(labels(ticks(document, "x")) == std::vector<std::string>{"1", "2", "3", "4", "5"});
}

TEST_CASE("a linear axis over large values labels its ticks in compact scientific form") {
  // [0, 3.3e7]: a quarter is 8.25e6, nearest nice step 1e7, the axis runs 0..4e7.
  const Document document = well_formed(one_chart({"t", "x", "y", false, false, {{"s", {0, 1}, {0, 3.3e7}}}, {}}));
  CHECK(values(ticks(document, "y")) == std::vector<double>{0, 1e7, 2e7, 3e7, 4e7});
  CHECK(labels(ticks(document, "y")) == std::vector<std::string>{"0", "1e7", "2e7", "3e7", "4e7"});
}

TEST_CASE("points are drawn where the ticks of their values are") {
  const Document document =
      well_formed(one_chart({"t", "x", "y", false, false, {{"s", {1, 3, 5}, {0, 0.4, 0.8}}}, {}}));
  const auto runs = subpaths(series_path(document, "s").attributes.at("d"));
  REQUIRE(runs.size() == 1);
  REQUIRE(runs[0].size() == 3);
  std::map<double, double> x_at, y_at;
  for (const auto& t : ticks(document, "x")) x_at[t.value] = t.position;
  for (const auto& t : ticks(document, "y")) y_at[t.value] = t.position;
  const double xs[] = {1, 3, 5}, ys[] = {0, 0.4, 0.8};
  for (int i = 0; i < 3; ++i) {
    CHECK(runs[0][std::size_t(i)].x == x_at.at(xs[i]));
    CHECK(runs[0][std::size_t(i)].y == y_at.at(ys[i]));
  }
  CHECK(y_at.at(0) > y_at.at(0.8));  // up is larger
}

TEST_CASE("a log axis puts its ticks at the decades that enclose the data") {
  // x in [3e-6, 2.5] spans the decades 1e-6 .. 1e1, all labelled as 10^k.
  const Document document = well_formed(
      one_chart({"t", "learning rate", "loss", true, false, {{"s", {3e-6, 1e-4, 0.02, 2.5}, {1, 2, 3, 4}}}, {}}));
  const auto x = ticks(document, "x");
  REQUIRE(x.size() == 8);
  for (int k = -6; k <= 1; ++k) {
    const auto& t = x[std::size_t(k + 6)];
    CHECK(t.value == doctest::Approx(std::pow(10.0, k)).epsilon(1e-15));
    CHECK(t.label == "10^" + std::to_string(k));
  }
  // Decades are evenly spaced, and each point sits at log10 of its value.
  // Coordinates are written rounded to 0.01 pixel: a difference of two is off
  // by up to 0.01, and a position predicted from the first tick and the mean
  // decade by up to 0.005 + 0.005 + 7 * 0.01 / 7 = 0.02.
  const double decade = (x.back().position - x.front().position) / 7;
  CHECK(decade > 0);
  for (std::size_t k = 1; k < x.size(); ++k) CHECK(std::fabs(x[k].position - x[k - 1].position - decade) <= 0.0115);
  const auto runs = subpaths(series_path(document, "s").attributes.at("d"));
  REQUIRE(runs.size() == 1);
  CHECK(std::fabs(runs[0][1].x - (x[0].position + decade * std::log10(1e-4 / 1e-6))) <= 0.02);
  CHECK(std::fabs(runs[0][2].x - (x[0].position + decade * std::log10(0.02 / 1e-6))) <= 0.02);
}

TEST_CASE("a log axis within a few decades labels them as plain numbers") {
  const Document document =
      well_formed(one_chart({"t", "x", "y", false, true, {{"s", {1, 2, 3}, {0.05, 0.3, 2}}}, {}}));
  CHECK(labels(ticks(document, "y")) == std::vector<std::string>{"0.01", "0.1", "1", "10"});
}

TEST_CASE("a log axis over many decades labels every fifth decade") {
  // 1e-20 .. 1e20 is 40 decades; at most about eight are labelled, so every fifth.
  const Document document = well_formed(one_chart({"t", "x", "y", true, false, {{"s", {1e-20, 1e20}, {1, 2}}}, {}}));
  const auto x = ticks(document, "x");
  REQUIRE(x.size() == 9);
  for (std::size_t i = 0; i < x.size(); ++i)
    CHECK(x[i].value == doctest::Approx(std::pow(10.0, -20 + 5 * int(i))).epsilon(1e-15));
}

TEST_CASE("non-positive values on a log axis are skipped like NaN") {
  const Document document = well_formed(
      one_chart({"t", "x", "y", true, true, {{"s", {0.1, 0, 1, 10, -5, 100}, {1, 1, -2, 10, 10, 100}}}, {}}));
  // Points 2 (x = 0), 3 (y = -2) and 5 (x = -5) are skipped: runs {0.1}, {10}, {100}.
  const auto runs = subpaths(series_path(document, "s").attributes.at("d"));
  CHECK(runs.size() == 3);
  CHECK(count_points(runs) == 3);
  CHECK(ticks(document, "y").front().value == doctest::Approx(1));
}

TEST_CASE("a NaN in a series makes a gap, not a zero") {
  const Document document = well_formed(one_chart({"t",
                                                   "x",
                                                   "y",
                                                   false,
                                                   false,
                                                   {{"s", {1, 2, 3, 4, 5, 6, 7}, {1, 2, not_a_number, 4, 5, 6, 7}},
                                                    {"lone", {1, 2, 3}, {not_a_number, 3, not_a_number}}},
                                                   {}}));
  const Element& path = series_path(document, "s");
  const auto runs = subpaths(path.attributes.at("d"));
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].size() == 2);
  CHECK(runs[1].size() == 4);
  // y in [1, 7]: a quarter is 1.5, nearest nice step 2, so the axis runs 0..8
  // and a NaN drawn as zero would sit on the bottom tick; no point does.
  CHECK(values(ticks(document, "y")) == std::vector<double>{0, 2, 4, 6, 8});
  std::map<double, double> y_at;
  for (const auto& t : ticks(document, "y")) y_at[t.value] = t.position;
  for (const auto& run : runs)
    for (const Point& p : run) CHECK(p.y < y_at.at(0));
  // A lone point is a zero-length subpath, which round caps draw as a dot.
  const std::string lone = series_path(document, "lone").attributes.at("d");
  CHECK(lone.find("h0") != std::string::npos);
  CHECK(count_points(subpaths(lone)) == 1);
}

TEST_CASE("an empty series and a single-point series are drawn") {
  const Document document =
      well_formed(one_chart({"t", "x", "y", false, false, {{"empty", {}, {}}, {"one", {2}, {3}}}, {}}));
  CHECK(series_path(document, "empty").attributes.at("d") == "");
  CHECK(series_path(document, "empty").attributes.at("data-points") == "0");
  CHECK(count_points(subpaths(series_path(document, "one").attributes.at("d"))) == 1);
}

TEST_CASE("constant data gets a finite axis centred on it") {
  // y = 3: the range becomes [2.7, 3.3]; a quarter is 0.15, nearest nice 0.2.
  const Document three = well_formed(one_chart({"t", "x", "y", false, false, {{"s", {1, 2, 3}, {3, 3, 3}}}, {}}));
  CHECK(values(ticks(three, "y")) == std::vector<double>{2.6, 2.8, 3, 3.2, 3.4});
  // y = 0: the range becomes [-1, 1] with step 0.5.
  const Document zero = well_formed(one_chart({"t", "x", "y", false, false, {{"s", {1, 2}, {0, 0}}}, {}}));
  CHECK(values(ticks(zero, "y")) == std::vector<double>{-1, -0.5, 0, 0.5, 1});
  // The single x value 1 is constant too.
  const Document single = well_formed(one_chart({"t", "x", "y", false, false, {{"s", {1}, {5}}}, {}}));
  // [0.9, 1.1]: a quarter is 0.05, which is nice already.
  CHECK(values(ticks(single, "x")) == std::vector<double>{0.9, 0.95, 1, 1.05, 1.1});
}

TEST_CASE("extreme values keep every coordinate finite") {
  constexpr double largest = std::numeric_limits<double>::max(), smallest = std::numeric_limits<double>::denorm_min();
  const std::vector<Chart> charts = {
      {"t", "x", "y", false, false, {{"s", {-largest, largest}, {largest, -largest}}}, {}},
      {"t", "x", "y", false, false, {{"s", {1e-310, 2e-310}, {smallest, 2 * smallest}}}, {}},
      {"t", "x", "y", true, true, {{"s", {smallest, largest}, {smallest, largest}}}, {smallest, largest}},
      {"t", "x", "y", false, false, {{"s", {1, 1 + 1e-15}, {-1e300, -1e300}}}, {}},
  };
  for (const Chart& chart : charts) {
    const std::string svg = one_chart(chart);
    well_formed(svg);
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);
  }
}

TEST_CASE("a chart without any drawable point says so and stays finite") {
  const std::string svg =
      one_chart({"t", "x", "y", true, false, {{"s", {-1, not_a_number}, {1, 2}}, {"u", {}, {}}}, {}});
  const Document document = well_formed(svg);
  bool says = false;
  for (const Element* e : document.all("text"))
    if (e->text == "no data") says = true;
  CHECK(says);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
}

TEST_CASE("names and titles are xml-escaped") {
  const std::string svg =
      one_chart({"loss \"<raw>\" & 'more'", "x & y", "y < z", false, false, {{"a<b & c", {1, 2}, {1, 2}}}, {}});
  CHECK(svg.find("data-series=\"a&lt;b &amp; c\"") != std::string::npos);
  CHECK(svg.find("<title>a&lt;b &amp; c</title>") != std::string::npos);
  const Document document = well_formed(svg);
  series_path(document, "a<b & c");
  std::vector<std::string> texts;
  for (const Element* e : document.all("text")) texts.push_back(e->text);
  for (const char* expected : {"loss \"<raw>\" & 'more'", "x & y", "y < z", "a<b & c"})
    CHECK(std::find(texts.begin(), texts.end(), expected) != texts.end());
}

TEST_CASE("the first ten series get distinct colours") {
  Chart chart{"t", "x", "y", false, false, {}, {}};
  for (int i = 0; i < 10; ++i) {
    std::string name = "s";  // not "s" + to_string(i): GCC 12 warns falsely (-Wrestrict) on that
    name += std::to_string(i);
    chart.series.push_back({name, {0, 1}, {double(i), double(i + 1)}});
  }
  const Document document = well_formed(one_chart(chart));
  std::vector<std::string> colours;
  for (const Element* e : document.all("path", "data-series")) colours.push_back(e->attributes.at("stroke"));
  REQUIRE(colours.size() == 10);
  std::sort(colours.begin(), colours.end());
  CHECK(std::unique(colours.begin(), colours.end()) == colours.end());
}

TEST_CASE("the lr finder curve has both curves on a log axis and a mark at the suggestion") {
  std::vector<double> lrs, losses, smoothed;
  for (int i = 0; i <= 50; ++i) {  // 2e-6 .. 0.2
    lrs.push_back(2e-6 * std::pow(10.0, i / 10.0));
    losses.push_back(2.3 - 0.01 * i + (i % 3) * 0.02);
    smoothed.push_back(2.3 - 0.01 * i);
  }
  const double suggested = 3e-3;
  const Document document = well_formed(plot::lr_finder_curve(lrs, losses, smoothed, suggested));
  CHECK(count_points(subpaths(series_path(document, "loss").attributes.at("d"))) == 51);
  CHECK(count_points(subpaths(series_path(document, "smoothed loss").attributes.at("d"))) == 51);
  const auto x = ticks(document, "x");
  REQUIRE(x.size() == 7);  // 1e-6 .. 1
  const auto marks = document.all("line", "class", "mark");
  REQUIRE(marks.size() == 1);
  CHECK(number(marks[0]->attributes.at("data-value")) == suggested);
  // Within the 0.01-pixel rounding of three coordinates (see the log axis case).
  const double decade = (x.back().position - x.front().position) / 6;
  const double expected = x[0].position + decade * std::log10(suggested / 1e-6);
  CHECK(std::fabs(number(marks[0]->attributes.at("x1")) - expected) <= 0.02);
  CHECK(plot::lr_finder_curve(lrs, losses, {}, not_a_number).find("class=\"mark\"") == std::string::npos);
}

TEST_CASE("mismatched lengths and panel sizes are errors naming the value") {
  CHECK_THROWS_WITH_AS(one_chart({"loss", "x", "y", false, false, {{"train", {1, 2}, {1}}}, {}}),
                       "plot series \"train\" of chart \"loss\" has 2 x values but 1 y values", Error);
  CHECK_THROWS_WITH_AS(plot::lr_finder_curve({1, 2}, {1}, {}, 1), "lr_finder_curve: 2 learning rates but 1 losses",
                       Error);
  CHECK_THROWS_WITH_AS(plot::svg({}), "plot::svg: there are no panels to draw", Error);
  CHECK_THROWS_WITH_AS(plot::svg({Chart{}}, 100, 300), "plot::svg: panel_width 100 is below 200", Error);
}

TEST_CASE("panels sit side by side up to three, then in a grid") {
  const Chart chart{"t", "x", "y", false, false, {{"s", {1, 2}, {1, 2}}}, {}};
  const Document three = well_formed(plot::svg({chart, chart, chart}, 400, 250));
  CHECK(three.elements[0].attributes.at("width") == "1200");
  CHECK(three.elements[0].attributes.at("height") == "250");
  const Document four = well_formed(plot::svg({chart, chart, chart, chart}));
  CHECK(four.elements[0].attributes.at("width") == "960");
  CHECK(four.elements[0].attributes.at("height") == "600");
  const Document five = well_formed(plot::svg({chart, chart, chart, chart, chart}));
  CHECK(five.elements[0].attributes.at("width") == "1440");
  CHECK(five.elements[0].attributes.at("height") == "600");
}

TEST_CASE("save_svg writes the file atomically") {
  const auto path = test_files::scratch("plot", "curves.svg");
  const std::string svg = one_chart({"t", "x", "y", false, false, {{"s", {1, 2}, {1, 2}}}, {}});
  plot::save_svg(path.string(), svg);
  plot::save_svg(path.string(), svg);
  CHECK(io::read_file(path.string()) == svg);
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path.parent_path())) files += entry.is_regular_file();
  CHECK(files == 1);
}
