// Training logs: a History written as CSV (one file per epoch table, one per
// step table) and as one JSON document, and read back bit-exactly. The training
// loop rewrites these files after every epoch, so they are always whole.
#pragma once

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/format.hpp"
#include "../io/atomic_file.hpp"
#include "history.hpp"

namespace laminar::train {

namespace detail {

inline void append_number(std::string& out, double value) { out += shortest(value); }

inline void append_integer(std::string& out, long value) {
  char text[24];
  out.append(text, std::to_chars(text, text + sizeof text, value).ptr);
}

inline constexpr std::string_view step_columns[] = {"step", "epoch", "learning_rate", "loss"};

// Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "," + string.
inline std::string epoch_header() {
  std::string header = "epoch";
  for (auto name : EpochRecord::metric_names) {
    header += ',';
    header += name;
  }
  return header;
}

inline std::string step_header() {
  std::string header;
  for (auto name : step_columns) {
    if (!header.empty()) header += ',';
    header += name;
  }
  return header;
}

// ---- CSV -------------------------------------------------------------------

// NaN is an empty field, so a spreadsheet shows a blank cell, not a string.
inline void append_csv_number(std::string& out, double value) {
  if (!std::isnan(value)) append_number(out, value);
}

// The lines of a CSV text with their 1-based numbers; "\r\n" endings are
// accepted and a final newline ends the last line rather than opening another.
struct CsvTable {
  std::string path;
  std::vector<std::string_view> lines;

  CsvTable(const std::string& file, const std::string& text, const std::string& header) : path(file) {
    std::size_t begin = 0;
    while (begin < text.size()) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + begin, end - begin);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      lines.push_back(line);
      begin = end + 1;
    }
    if (lines.empty())
      throw Error("cannot read " + path + ": the file is empty, expected the header \"" + header + "\"");
    if (lines[0] != header)
      throw Error("cannot read " + path + ": line 1 is \"" + std::string(lines[0]) + "\", expected the header \"" +
                  header + "\"");
  }

  // The comma-separated fields of line `index` (0-based), exactly `count` of them.
  std::vector<std::string_view> fields(std::size_t index, std::size_t count, const std::string& header) const {
    std::vector<std::string_view> result;
    const std::string_view line = lines[index];
    std::size_t begin = 0;
    for (;;) {
      const std::size_t comma = line.find(',', begin);
      result.push_back(line.substr(begin, comma == std::string_view::npos ? std::string_view::npos : comma - begin));
      if (comma == std::string_view::npos) break;
      begin = comma + 1;
    }
    if (result.size() != count)
      throw Error("cannot read " + path + ": line " + std::to_string(index + 1) + " has " +
                  std::to_string(result.size()) + " fields, expected " + std::to_string(count) + " (" + header + ")");
    return result;
  }

  Error not_a(std::size_t index, std::string_view column, std::string_view field, const char* what) const {
    return Error("cannot read " + path + ": line " + std::to_string(index + 1) + ", column " + std::string(column) +
                 " holds \"" + std::string(field) + "\", which is not " + what);
  }

  // An empty field is NaN; anything else must be a number from_chars reads in full.
  double number(std::size_t index, std::string_view column, std::string_view field) const {
    if (field.empty()) return std::nan("");
    double value = 0;
    const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (error != std::errc() || end != field.data() + field.size()) throw not_a(index, column, field, "a number");
    return value;
  }

  template <class Integer>
  Integer integer(std::size_t index, std::string_view column, std::string_view field) const {
    Integer value = 0;
    const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (field.empty() || error != std::errc() || end != field.data() + field.size())
      throw not_a(index, column, field, "a whole number");
    return value;
  }
};

// ---- JSON ------------------------------------------------------------------

// A parsed JSON value. Object members keep their order (keys[i] names
// items[i]); `offset` is where the value starts, for error messages.
struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<JsonValue> items;
  std::vector<std::string> keys;
  std::size_t offset = 0;
};

inline const char* kind_name(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::null: return "null";
    case JsonValue::Kind::boolean: return "a boolean";
    case JsonValue::Kind::number: return "a number";
    case JsonValue::Kind::string: return "a string";
    case JsonValue::Kind::array: return "an array";
    case JsonValue::Kind::object: return "an object";
  }
  return "a value";
}

// A recursive-descent parser for RFC 8259 JSON. Nesting is limited so that a
// hostile file cannot overflow the stack.
class JsonParser {
 public:
  JsonParser(std::string path, std::string_view text) : path_(std::move(path)), text_(text) {}

  JsonValue document() {
    skip_space();
    JsonValue value = parse_value(0);
    skip_space();
    if (at_ != text_.size()) throw fail("expected the end of the document after the top-level value, found " + shown());
    return value;
  }

  Error fail(const std::string& problem) const { return fail_at(at_, problem); }
  Error fail_at(std::size_t offset, const std::string& problem) const {
    return Error("cannot read " + path_ + ": at byte offset " + std::to_string(offset) + ", " + problem);
  }

 private:
  static constexpr int max_depth = 256;

  std::string shown() const {
    if (at_ >= text_.size()) return "the end of the file";
    const unsigned char c = static_cast<unsigned char>(text_[at_]);
    if (c < 0x20 || c >= 0x7f) return "byte " + std::to_string(c);
    return "'" + std::string(1, char(c)) + "'";
  }

  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }

  void expect(char c, const char* context) {
    skip_space();
    if (at_ >= text_.size() || text_[at_] != c)
      throw fail("expected '" + std::string(1, c) + "' " + context + ", found " + shown());
    ++at_;
  }

  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  JsonValue parse_value(int depth) {
    skip_space();
    JsonValue value;
    value.offset = at_;
    if (at_ >= text_.size()) throw fail("expected a value, found the end of the file");
    const char c = text_[at_];
    if (c == '{') {
      if (depth >= max_depth) throw fail("objects and arrays nest deeper than " + std::to_string(max_depth));
      value.kind = JsonValue::Kind::object;
      ++at_;
      skip_space();
      if (at_ < text_.size() && text_[at_] == '}') {
        ++at_;
        return value;
      }
      for (;;) {
        skip_space();
        if (at_ >= text_.size() || text_[at_] != '"') throw fail("expected a string key, found " + shown());
        value.keys.push_back(parse_string());
        expect(':', "after an object key");
        value.items.push_back(parse_value(depth + 1));
        skip_space();
        if (at_ < text_.size() && text_[at_] == ',') {
          ++at_;
          continue;
        }
        expect('}', "or ',' after an object member");
        return value;
      }
    }
    if (c == '[') {
      if (depth >= max_depth) throw fail("objects and arrays nest deeper than " + std::to_string(max_depth));
      value.kind = JsonValue::Kind::array;
      ++at_;
      skip_space();
      if (at_ < text_.size() && text_[at_] == ']') {
        ++at_;
        return value;
      }
      for (;;) {
        value.items.push_back(parse_value(depth + 1));
        skip_space();
        if (at_ < text_.size() && text_[at_] == ',') {
          ++at_;
          continue;
        }
        expect(']', "or ',' after an array element");
        return value;
      }
    }
    if (c == '"') {
      value.kind = JsonValue::Kind::string;
      value.text = parse_string();
      return value;
    }
    if (literal("true")) {
      value.kind = JsonValue::Kind::boolean;
      value.boolean = true;
      return value;
    }
    if (literal("false")) {
      value.kind = JsonValue::Kind::boolean;
      return value;
    }
    if (literal("null")) return value;
    if (c == '-' || (c >= '0' && c <= '9')) {
      value.kind = JsonValue::Kind::number;
      value.number = parse_number();
      return value;
    }
    throw fail("expected a value (object, array, string, number, true, false or null), found " + shown());
  }

  bool digit() const { return at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9'; }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, checked here because
  // from_chars alone accepts forms JSON forbids ("inf", "1.", ".5").
  double parse_number() {
    const std::size_t begin = at_;
    if (text_[at_] == '-') ++at_;
    if (!digit()) throw fail("expected a digit in a number, found " + shown());
    if (text_[at_] == '0') {
      ++at_;
    } else {
      while (digit()) ++at_;
    }
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      if (!digit()) throw fail("expected a digit after the decimal point, found " + shown());
      while (digit()) ++at_;
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      if (!digit()) throw fail("expected a digit in the exponent, found " + shown());
      while (digit()) ++at_;
    }
    const std::string_view span = text_.substr(begin, at_ - begin);
    double value = 0;
    const auto result = std::from_chars(span.data(), span.data() + span.size(), value);
    if (result.ec == std::errc::result_out_of_range) return out_of_range(span);
    if (result.ec != std::errc() || result.ptr != span.data() + span.size())
      throw fail_at(begin, "the number " + std::string(span) + " cannot be read");
    return value;
  }

  // from_chars reports overflow and underflow alike without a value; the
  // decimal order of magnitude tells which one (so 1e999 reads as infinity).
  static double out_of_range(std::string_view span) {
    const bool negative = span.front() == '-';
    const std::size_t e = span.find_first_of("eE");
    std::string_view mantissa = span.substr(0, e);
    if (negative) mantissa.remove_prefix(1);
    long exponent = 0;
    if (e != std::string_view::npos) {
      std::size_t i = e + 1;
      const bool exponent_negative = span[i] == '-';
      if (span[i] == '+' || span[i] == '-') ++i;
      for (; i < span.size(); ++i) exponent = std::min(exponent * 10 + (span[i] - '0'), 1000000L);
      if (exponent_negative) exponent = -exponent;
    }
    // The power of ten of the first nonzero digit: 2 for "123", -3 for "0.00123".
    const std::size_t point = mantissa.find('.');
    const std::size_t integer_end = point == std::string_view::npos ? mantissa.size() : point;
    const std::size_t first = mantissa.find_first_not_of("0.");
    double magnitude = 0.0;
    if (first != std::string_view::npos) {
      const long order = first < integer_end ? long(integer_end - first) - 1 : -long(first - integer_end);
      if (order + exponent > 0) magnitude = HUGE_VAL;
    }
    return negative ? -magnitude : magnitude;
  }

  unsigned hex4() {
    if (at_ + 4 > text_.size()) throw fail("expected four hex digits after \\u, found the end of the file");
    unsigned code = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text_[at_];
      code <<= 4;
      if (c >= '0' && c <= '9')
        code |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f')
        code |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        code |= unsigned(c - 'A' + 10);
      else
        throw fail("expected a hex digit in a \\u escape, found " + shown());
      ++at_;
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xc0 | (code >> 6));
      out += char(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += char(0xe0 | (code >> 12));
      out += char(0x80 | ((code >> 6) & 0x3f));
      out += char(0x80 | (code & 0x3f));
    } else {
      out += char(0xf0 | (code >> 18));
      out += char(0x80 | ((code >> 12) & 0x3f));
      out += char(0x80 | ((code >> 6) & 0x3f));
      out += char(0x80 | (code & 0x3f));
    }
  }

  // Starts at the opening quote. \u escapes become UTF-8; a UTF-16 surrogate
  // pair becomes one code point and a lone surrogate is an error.
  std::string parse_string() {
    const std::size_t begin = at_;
    ++at_;
    std::string out;
    for (;;) {
      if (at_ >= text_.size()) throw fail_at(begin, "the string that starts here is unterminated");
      const char c = text_[at_];
      if (c == '"') {
        ++at_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        throw fail("a string holds the raw control byte " + std::to_string(int(c)) + ", which JSON requires escaped");
      if (c != '\\') {
        out += c;
        ++at_;
        continue;
      }
      const std::size_t escape = at_;
      ++at_;
      if (at_ >= text_.size()) throw fail_at(begin, "the string that starts here is unterminated");
      const char e = text_[at_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = hex4();
          if (code >= 0xdc00 && code <= 0xdfff)
            throw fail_at(escape, "the \\u escape is a low surrogate without a high surrogate before it");
          if (code >= 0xd800 && code <= 0xdbff) {
            if (!literal("\\u")) throw fail_at(escape, "the high surrogate \\u escape is not followed by a low one");
            const unsigned low = hex4();
            if (low < 0xdc00 || low > 0xdfff)
              throw fail_at(escape, "the high surrogate \\u escape is not followed by a low one");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, code);
          break;
        }
        default: throw fail_at(escape, "'\\" + std::string(1, e) + "' is not a JSON escape");
      }
    }
  }

  std::string path_;
  std::string_view text_;
  std::size_t at_ = 0;
};

inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xf];
          out += hex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// JSON has no NaN or infinity: NaN is null, and an infinity is 1e999, which is
// valid JSON that readers (this one, Python's) take as infinity.
inline void append_json_number(std::string& out, double value) {
  if (std::isnan(value))
    out += "null";
  else if (std::isinf(value))
    out += value > 0 ? "1e999" : "-1e999";
  else
    append_number(out, value);
}

// Reads members of a parsed JSON object by name, with errors that name the
// file, the offset and the member.
struct JsonObject {
  const JsonParser& parser;
  const JsonValue& value;

  // `description` names the object in errors: "the document", "epoch record 3".
  JsonObject(const JsonParser& p, const JsonValue& v, const std::string& description)
      : parser(p), value(v), description_(description) {
    if (v.kind != JsonValue::Kind::object)
      throw parser.fail_at(v.offset, description_ + " is " + kind_name(v.kind) + ", expected an object");
  }

  const JsonValue& member(std::string_view key) const {
    const JsonValue* found = nullptr;
    for (std::size_t i = 0; i < value.keys.size(); ++i) {
      if (value.keys[i] != key) continue;
      if (found)
        throw parser.fail_at(value.items[i].offset,
                             description_ + " has the key \"" + std::string(key) + "\" a second time");
      found = &value.items[i];
    }
    if (!found) throw parser.fail_at(value.offset, description_ + " has no key \"" + std::string(key) + "\"");
    return *found;
  }

  const JsonValue& array(std::string_view key) const {
    const JsonValue& v = member(key);
    if (v.kind != JsonValue::Kind::array)
      throw parser.fail_at(v.offset, "\"" + std::string(key) + "\" of " + description_ + " is " + kind_name(v.kind) +
                                         ", expected an array");
    return v;
  }

  std::string string(std::string_view key) const {
    const JsonValue& v = member(key);
    if (v.kind != JsonValue::Kind::string)
      throw parser.fail_at(v.offset, "\"" + std::string(key) + "\" of " + description_ + " is " + kind_name(v.kind) +
                                         ", expected a string");
    return v.text;
  }

  // A number, or null for NaN.
  double number(std::string_view key) const {
    const JsonValue& v = member(key);
    if (v.kind == JsonValue::Kind::null) return std::nan("");
    if (v.kind != JsonValue::Kind::number)
      throw parser.fail_at(v.offset, "\"" + std::string(key) + "\" of " + description_ + " is " + kind_name(v.kind) +
                                         ", expected a number or null");
    return v.number;
  }

  // A whole number in [low, high]; 2^53 bounds what a double holds exactly.
  long whole(std::string_view key, double low, double high) const {
    const JsonValue& v = member(key);
    if (v.kind != JsonValue::Kind::number || std::floor(v.number) != v.number || v.number < low || v.number > high)
      throw parser.fail_at(v.offset,
                           "\"" + std::string(key) + "\" of " + description_ + " is not a whole number in range");
    return long(v.number);
  }

 private:
  std::string description_;
};

}  // namespace detail

// ---- writing ---------------------------------------------------------------

// epoch,train_loss,train_accuracy,... (EpochRecord::metric_names order), one
// line per epoch; NaN is an empty field.
inline std::string epoch_csv(const History& h) {
  std::string out = detail::epoch_header() + "\n";
  for (const EpochRecord& record : h.epochs) {
    detail::append_integer(out, record.epoch);
    for (auto name : EpochRecord::metric_names) {
      out += ',';
      detail::append_csv_number(out, record.metric(name));
    }
    out += '\n';
  }
  return out;
}

// step,epoch,learning_rate,loss, one line per optimizer step.
inline std::string step_csv(const History& h) {
  std::string out = detail::step_header() + "\n";
  for (const StepRecord& record : h.steps) {
    detail::append_integer(out, record.step);
    for (const double value : {record.epoch, record.learning_rate, record.loss}) {
      out += ',';
      detail::append_csv_number(out, value);
    }
    out += '\n';
  }
  return out;
}

// {"epochs":[{...}],"steps":[{...}],"stop_reason":"..."}, one record a line.
inline std::string json(const History& h) {
  std::string out = "{\n  \"epochs\": [";
  for (std::size_t i = 0; i < h.epochs.size(); ++i) {
    const EpochRecord& record = h.epochs[i];
    out += i ? ",\n    {\"epoch\": " : "\n    {\"epoch\": ";
    detail::append_integer(out, record.epoch);
    for (auto name : EpochRecord::metric_names) {
      out += ", ";
      detail::append_json_string(out, name);
      out += ": ";
      detail::append_json_number(out, record.metric(name));
    }
    out += '}';
  }
  out += h.epochs.empty() ? "],\n  \"steps\": [" : "\n  ],\n  \"steps\": [";
  for (std::size_t i = 0; i < h.steps.size(); ++i) {
    const StepRecord& record = h.steps[i];
    out += i ? ",\n    {\"step\": " : "\n    {\"step\": ";
    detail::append_integer(out, record.step);
    out += ", \"epoch\": ";
    detail::append_json_number(out, record.epoch);
    out += ", \"learning_rate\": ";
    detail::append_json_number(out, record.learning_rate);
    out += ", \"loss\": ";
    detail::append_json_number(out, record.loss);
    out += '}';
  }
  out += h.steps.empty() ? "],\n  \"stop_reason\": " : "\n  ],\n  \"stop_reason\": ";
  detail::append_json_string(out, h.stop_reason);
  out += "\n}\n";
  return out;
}

inline void write_epoch_csv(const std::string& path, const History& h) { io::write_atomically(path, epoch_csv(h)); }
inline void write_step_csv(const std::string& path, const History& h) { io::write_atomically(path, step_csv(h)); }
inline void write_json(const std::string& path, const History& h) { io::write_atomically(path, json(h)); }

// ---- reading ---------------------------------------------------------------

inline std::vector<EpochRecord> read_epoch_csv(const std::string& path) {
  const std::string text = io::read_file(path);
  const std::string header = detail::epoch_header();
  const detail::CsvTable table(path, text, header);
  constexpr std::size_t columns = 1 + std::size(EpochRecord::metric_names);
  std::vector<EpochRecord> records;
  for (std::size_t line = 1; line < table.lines.size(); ++line) {
    const auto fields = table.fields(line, columns, header);
    EpochRecord record;
    record.epoch = table.integer<int>(line, "epoch", fields[0]);
    for (std::size_t m = 0; m < std::size(EpochRecord::metric_names); ++m) {
      const auto name = EpochRecord::metric_names[m];
      record.metric(name) = table.number(line, name, fields[m + 1]);
    }
    records.push_back(record);
  }
  return records;
}

inline std::vector<StepRecord> read_step_csv(const std::string& path) {
  const std::string text = io::read_file(path);
  const std::string header = detail::step_header();
  const detail::CsvTable table(path, text, header);
  std::vector<StepRecord> records;
  for (std::size_t line = 1; line < table.lines.size(); ++line) {
    const auto fields = table.fields(line, std::size(detail::step_columns), header);
    StepRecord record;
    record.step = table.integer<long>(line, "step", fields[0]);
    record.epoch = table.number(line, "epoch", fields[1]);
    record.learning_rate = table.number(line, "learning_rate", fields[2]);
    record.loss = table.number(line, "loss", fields[3]);
    records.push_back(record);
  }
  return records;
}

// Reads what write_json wrote, or any JSON document of that shape (members in
// any order, extra members ignored). The normalization is not part of the log.
inline History read_json(const std::string& path) {
  const std::string text = io::read_file(path);
  detail::JsonParser parser(path, text);
  const detail::JsonValue document = parser.document();
  const detail::JsonObject root(parser, document, "the document");
  History h;
  const detail::JsonValue& epochs = root.array("epochs");
  for (std::size_t i = 0; i < epochs.items.size(); ++i) {
    const detail::JsonObject item(parser, epochs.items[i], "epoch record " + std::to_string(i));
    EpochRecord record;
    record.epoch = int(item.whole("epoch", double(INT_MIN), double(INT_MAX)));
    for (auto name : EpochRecord::metric_names) record.metric(name) = item.number(name);
    h.epochs.push_back(record);
  }
  const detail::JsonValue& steps = root.array("steps");
  for (std::size_t i = 0; i < steps.items.size(); ++i) {
    const detail::JsonObject item(parser, steps.items[i], "step record " + std::to_string(i));
    StepRecord record;
    record.step = item.whole("step", -9007199254740992.0, 9007199254740992.0);
    record.epoch = item.number("epoch");
    record.learning_rate = item.number("learning_rate");
    record.loss = item.number("loss");
    h.steps.push_back(record);
  }
  h.stop_reason = root.string("stop_reason");
  return h;
}

}  // namespace laminar::train
