// Training logs: CSV and JSON round trips are bit-exact, the JSON reader reads
// standard JSON written by hand, malformed files are named with the line or
// offset at fault, and every file is written atomically.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <laminar/train/log.hpp>
#include <limits>
#include <string>
#include <vector>

#include "support/files.hpp"

using namespace laminar;
using namespace laminar::train;
using test_files::contains;

namespace {

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double infinity = std::numeric_limits<double>::infinity();

// Equal bits, or both NaN (a NaN's payload is not part of the log).
bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// Values that a careless writer loses: thirds, the extremes of the double
// range, subnormals, signed zero, infinities, NaN.
History awkward_history() {
  History h;
  const double values[] = {1.0 / 3,
                           0.1,
                           not_a_number,
                           1e-300,
                           std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::max(),
                           -0.0,
                           infinity,
                           -infinity,
                           123456789.123456789,
                           2.0 / 3 * 1e22,
                           std::numeric_limits<double>::min(),
                           -7.25e-17,
                           6.02214076e23};
  const int count = int(std::size(values));
  for (int e = 0; e < 4; ++e) {
    EpochRecord r;
    r.epoch = e + 1;
    r.train_loss = values[(e * 7 + 0) % count];
    r.train_accuracy = values[(e * 7 + 1) % count];
    r.valid_loss = values[(e * 7 + 2) % count];
    r.valid_accuracy = values[(e * 7 + 3) % count];
    r.learning_rate = values[(e * 7 + 4) % count];
    r.seconds = values[(e * 7 + 5) % count];
    r.images_per_second = values[(e * 7 + 6) % count];
    h.epochs.push_back(r);
  }
  for (long s = 0; s < 2 * count; ++s)
    h.steps.push_back({s * 1000003L, values[s % count], values[(s + 1) % count], values[(s + 5) % count]});
  h.steps.push_back({(1L << 53), 0.5, 1e-7, 2.302585092994046});
  h.stop_reason = "valid_loss did not improve for 3 epochs: \"patience\" ran out\nsecond line\ttab \\ backslash \x01 ü";
  return h;
}

void check_same_epochs(const std::vector<EpochRecord>& read, const std::vector<EpochRecord>& written) {
  REQUIRE(read.size() == written.size());
  for (std::size_t i = 0; i < read.size(); ++i) {
    CHECK(read[i].epoch == written[i].epoch);
    for (auto name : EpochRecord::metric_names) {
      INFO("epoch " << i << " metric " << std::string(name));
      CHECK(same(read[i].metric(name), written[i].metric(name)));
    }
  }
}

void check_same_steps(const std::vector<StepRecord>& read, const std::vector<StepRecord>& written) {
  REQUIRE(read.size() == written.size());
  for (std::size_t i = 0; i < read.size(); ++i) {
    INFO("step record " << i);
    CHECK(read[i].step == written[i].step);
    CHECK(same(read[i].epoch, written[i].epoch));
    CHECK(same(read[i].learning_rate, written[i].learning_rate));
    CHECK(same(read[i].loss, written[i].loss));
  }
}

// One CHECK that `part` occurs in `text`, which is shown when it fails.
void check_mentions(const std::string& text, const std::string& part) {
  INFO("the message is: " << text);
  CHECK(text.find(part) != std::string::npos);
}

std::string write_text(const std::string& name, const std::string& text) {
  const auto path = test_files::scratch("log", name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path.string();
}

// The message of the Error that reading `text` as JSON throws.
std::string json_error(const std::string& text) {
  const std::string path = write_text("bad.json", text);
  try {
    read_json(path);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("read_json accepted " << text);
  return "";
}

std::string epoch_csv_error(const std::string& text) {
  const std::string path = write_text("bad_epochs.csv", text);
  try {
    read_epoch_csv(path);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("read_epoch_csv accepted " << text);
  return "";
}

const std::string epoch_header =
    "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,learning_rate,seconds,images_per_second";

}  // namespace

TEST_CASE("the epoch csv has the documented header and leaves NaN fields empty") {
  History h;
  EpochRecord first;
  first.epoch = 1, first.train_loss = 0.5, first.train_accuracy = 0.875, first.learning_rate = 0.1;
  first.seconds = 12.25, first.images_per_second = 4096;
  EpochRecord second = first;
  second.epoch = 2, second.valid_loss = 0.625, second.valid_accuracy = 0.75, second.learning_rate = 1e-5;
  h.epochs = {first, second};
  CHECK(epoch_csv(h) == epoch_header +
                            "\n"
                            "1,0.5,0.875,,,0.1,12.25,4096\n"
                            "2,0.5,0.875,0.625,0.75,1e-05,12.25,4096\n");
}

TEST_CASE("the step csv has the documented header and one line per step") {
  History h;
  h.steps = {{0, 0, 0.1, 2.25}, {1, 0.5, 0.05, not_a_number}};
  CHECK(step_csv(h) == "step,epoch,learning_rate,loss\n0,0,0.1,2.25\n1,0.5,0.05,\n");
}

TEST_CASE("the epoch csv reads back every double bit-exactly") {
  const History h = awkward_history();
  const std::string path = test_files::scratch("log", "epochs.csv").string();
  write_epoch_csv(path, h);
  check_same_epochs(read_epoch_csv(path), h.epochs);
}

TEST_CASE("the step csv reads back every double bit-exactly") {
  const History h = awkward_history();
  const std::string path = test_files::scratch("log", "steps.csv").string();
  write_step_csv(path, h);
  check_same_steps(read_step_csv(path), h.steps);
}

TEST_CASE("the csv readers accept windows line endings") {
  const std::string path = write_text("crlf.csv", "step,epoch,learning_rate,loss\r\n3,0.25,0.5,\r\n");
  const auto steps = read_step_csv(path);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].step == 3);
  CHECK(steps[0].epoch == 0.25);
  CHECK(steps[0].learning_rate == 0.5);
  CHECK(std::isnan(steps[0].loss));
}

TEST_CASE("the json log reads back epochs, steps and a stop reason with quotes and a newline bit-exactly") {
  const History h = awkward_history();
  const std::string path = test_files::scratch("log", "run.json").string();
  write_json(path, h);
  const History read = read_json(path);
  check_same_epochs(read.epochs, h.epochs);
  check_same_steps(read.steps, h.steps);
  CHECK(read.stop_reason == h.stop_reason);
}

TEST_CASE("the json log writes NaN as null, infinity as 1e999 and escapes the stop reason") {
  History h;
  EpochRecord r;
  r.epoch = 3, r.train_loss = infinity, r.train_accuracy = 0.5, r.learning_rate = -infinity;
  h.epochs = {r};
  h.stop_reason = "a \"b\"\n\x1f";
  CHECK(json(h) ==
        "{\n"
        "  \"epochs\": [\n"
        "    {\"epoch\": 3, \"train_loss\": 1e999, \"train_accuracy\": 0.5, \"valid_loss\": null, "
        "\"valid_accuracy\": null, \"learning_rate\": -1e999, \"seconds\": 0, \"images_per_second\": 0}\n"
        "  ],\n"
        "  \"steps\": [],\n"
        "  \"stop_reason\": \"a \\\"b\\\"\\n\\u001f\"\n"
        "}\n");
}

TEST_CASE("the json reader reads standard json written by hand") {
  // Members in another order, extra members of every kind, escapes, \u
  // escapes with a surrogate pair, exponents, tabs and CR LF between tokens.
  const std::string text =
      "\r\n\t{ \"version\" : [1, [2, [3, {}]], [], {\"deep\": [true, false, null]}],\r\n"
      "  \"stop_reason\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/ \\\\ \\b\\f\\n\\r\\t end\",\n"
      "  \"steps\" : [ {\"loss\": -0.5E-3, \"step\": 12, \"learning_rate\": 1E2, \"epoch\": 0, \"note\": \"x\"} ],\n"
      "  \"epochs\": [{\"images_per_second\": 2.5e+3, \"seconds\": 10, \"learning_rate\": 0.1,\n"
      "               \"valid_accuracy\": null, \"valid_loss\": null, \"train_accuracy\": 0.75,\n"
      "               \"train_loss\": 1.25, \"epoch\": 7}]\n"
      "} \n";
  const History h = read_json(write_text("hand.json", text));
  CHECK(h.stop_reason == "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" / \\ \b\f\n\r\t end");
  REQUIRE(h.steps.size() == 1);
  CHECK(h.steps[0].step == 12);
  CHECK(h.steps[0].epoch == 0);
  CHECK(h.steps[0].learning_rate == 100);
  CHECK(h.steps[0].loss == -0.0005);
  REQUIRE(h.epochs.size() == 1);
  CHECK(h.epochs[0].epoch == 7);
  CHECK(h.epochs[0].train_loss == 1.25);
  CHECK(h.epochs[0].train_accuracy == 0.75);
  CHECK(std::isnan(h.epochs[0].valid_loss));
  CHECK(std::isnan(h.epochs[0].valid_accuracy));
  CHECK(h.epochs[0].learning_rate == 0.1);
  CHECK(h.epochs[0].seconds == 10);
  CHECK(h.epochs[0].images_per_second == 2500);
}

TEST_CASE("json numbers beyond the double range read as infinity or zero") {
  const History h = read_json(write_text(
      "range.json",
      "{\"epochs\": [], \"stop_reason\": \"\", \"steps\": ["
      "{\"step\": 0, \"epoch\": 1e400, \"learning_rate\": -12345678901234567890e300, \"loss\": 0.000001e-330},"
      "{\"step\": 1, \"epoch\": -1e-400, \"learning_rate\": 4.9406564584124654e-324, \"loss\": 1e308}]}"));
  REQUIRE(h.steps.size() == 2);
  CHECK(h.steps[0].epoch == infinity);
  CHECK(h.steps[0].learning_rate == -infinity);
  CHECK(same(h.steps[0].loss, 0.0));
  CHECK(same(h.steps[1].epoch, -0.0));
  CHECK(h.steps[1].learning_rate == std::numeric_limits<double>::denorm_min());
  CHECK(h.steps[1].loss == 1e308);
}

TEST_CASE("malformed csv files are named with the line and what was expected") {
  SUBCASE("an empty file") {
    const std::string message = epoch_csv_error("");
    check_mentions(message, "bad_epochs.csv");
    check_mentions(message, "the file is empty, expected the header \"" + epoch_header + "\"");
  }
  SUBCASE("a wrong header") {
    const std::string message = epoch_csv_error("epoch,loss\n1,2\n");
    check_mentions(message, "bad_epochs.csv: line 1 is \"epoch,loss\", expected the header \"" + epoch_header);
  }
  SUBCASE("a wrong field count") {
    const std::string message = epoch_csv_error(epoch_header + "\n1,1,1,1,1,1,1,1\n2,1,1,1,1,1,1\n");
    check_mentions(message, "bad_epochs.csv: line 3 has 7 fields, expected 8");
  }
  SUBCASE("a field that is not a number") {
    const std::string message = epoch_csv_error(epoch_header + "\n1,0.5x,1,1,1,1,1,1\n");
    check_mentions(message, "bad_epochs.csv: line 2, column train_loss holds \"0.5x\", which is not a number");
  }
  SUBCASE("an epoch that is not a whole number") {
    const std::string message = epoch_csv_error(epoch_header + "\n1.5,1,1,1,1,1,1,1\n");
    check_mentions(message, "bad_epochs.csv: line 2, column epoch holds \"1.5\", which is not a whole number");
  }
  SUBCASE("a blank line inside the table") {
    const std::string message = epoch_csv_error(epoch_header + "\n\n1,1,1,1,1,1,1,1\n");
    check_mentions(message, "bad_epochs.csv: line 2 has 1 fields, expected 8");
  }
  SUBCASE("a step that is empty") {
    const std::string path = write_text("bad_steps.csv", "step,epoch,learning_rate,loss\n,0,0.1,2\n");
    CHECK_THROWS_WITH_AS(read_step_csv(path),
                         contains("bad_steps.csv: line 2, column step holds \"\", which is not a whole number"), Error);
  }
  SUBCASE("a missing file") {
    CHECK_THROWS_WITH_AS(read_step_csv(test_files::scratch("log", "absent.csv").string()),
                         contains("cannot read " + test_files::scratch("log", "absent.csv").string()), Error);
  }
}

TEST_CASE("malformed json is named with the byte offset and what was expected") {
  // Offsets are 0-based and hand-counted.
  SUBCASE("an unterminated string") {
    const std::string message = json_error("{\"steps\": \"abc");
    check_mentions(message, "bad.json: at byte offset 10, the string that starts here is unterminated");
  }
  SUBCASE("a missing comma") {
    check_mentions(json_error("[1 2]"),
                   "bad.json: at byte offset 3, expected ']' or ',' after an array element, found '2'");
  }
  SUBCASE("a trailing comma") {
    check_mentions(json_error("{\"a\": 1,}"), "at byte offset 8, expected a string key, found '}'");
  }
  SUBCASE("a leading zero") {
    check_mentions(json_error("{\"a\": 01}"),
                   "at byte offset 7, expected '}' or ',' after an object member, found '1'");
  }
  SUBCASE("a number without digits after the point") {
    check_mentions(json_error("[1.]"), "at byte offset 3, expected a digit after the decimal point, found ']'");
  }
  SUBCASE("NaN, which json does not have") {
    check_mentions(json_error("[NaN]"), "at byte offset 1, expected a value");
  }
  SUBCASE("an unknown escape") {
    check_mentions(json_error("[\"a\\x\"]"), "at byte offset 3, '\\x' is not a JSON escape");
  }
  SUBCASE("a lone low surrogate") {
    check_mentions(json_error("[\"\\udc00\"]"), "at byte offset 2, the \\u escape is a low surrogate");
  }
  SUBCASE("a high surrogate without its low half") {
    check_mentions(json_error("[\"\\ud83dx\"]"), "at byte offset 2, the high surrogate \\u escape is not followed");
  }
  SUBCASE("a raw newline inside a string") {
    check_mentions(json_error("[\"a\nb\"]"), "at byte offset 3, a string holds the raw control byte 10");
  }
  SUBCASE("text after the document") {
    check_mentions(json_error("{} x"), "at byte offset 3, expected the end of the document");
  }
  SUBCASE("an empty file") {
    check_mentions(json_error(""), "bad.json: at byte offset 0, expected a value, found the end of the file");
  }
  SUBCASE("nesting deeper than the parser allows") {
    check_mentions(json_error(std::string(300, '[') + std::string(300, ']')),
                   "at byte offset 256, objects and arrays nest deeper than 256");
  }
}

TEST_CASE("json of the wrong shape is named with the byte offset and the member") {
  SUBCASE("the document is not an object") {
    check_mentions(json_error(" [1]"), "bad.json: at byte offset 1, the document is an array, expected an object");
  }
  SUBCASE("a missing member") {
    check_mentions(json_error("{\"epochs\": [], \"stop_reason\": \"\"}"),
                   "at byte offset 0, the document has no key \"steps\"");
  }
  SUBCASE("a member of the wrong type") {
    check_mentions(json_error("{\"epochs\": {}, \"steps\": [], \"stop_reason\": \"\"}"),
                   "at byte offset 11, \"epochs\" of the document is an object, expected an array");
  }
  SUBCASE("a metric that is a string") {
    check_mentions(json_error("{\"epochs\": [], \"stop_reason\": \"\", \"steps\": [{\"step\": 0, \"epoch\": 0, "
                              "\"learning_rate\": \"0.1\", \"loss\": 1}]}"),
                   "at byte offset 85, \"learning_rate\" of step record 0 is a string, expected a number or null");
  }
  SUBCASE("an epoch that is not a whole number") {
    check_mentions(json_error("{\"steps\": [], \"stop_reason\": \"\", \"epochs\": [{\"epoch\": 1.5}]}"),
                   "at byte offset 54, \"epoch\" of epoch record 0 is not a whole number in range");
  }
  SUBCASE("a key given twice") {
    check_mentions(json_error("{\"steps\": [], \"steps\": [], \"epochs\": [], \"stop_reason\": \"\"}"),
                   "at byte offset 23, the document has the key \"steps\" a second time");
  }
}

TEST_CASE("log files are written atomically, replace the previous file whole and leave no temporary") {
  History h = awkward_history();
  const auto directory = test_files::scratch("atomic", "x").parent_path();
  const std::string epochs = (directory / "epochs.csv").string(), steps = (directory / "steps.csv").string(),
                    run = (directory / "run.json").string();
  for (int round = 0; round < 2; ++round) {
    write_epoch_csv(epochs, h);
    write_step_csv(steps, h);
    write_json(run, h);
    CHECK(read_epoch_csv(epochs).size() == h.epochs.size());
    CHECK(read_step_csv(steps).size() == h.steps.size());
    CHECK(read_json(run).epochs.size() == h.epochs.size());
    h.epochs.resize(2);  // the second round writes a shorter history over the first
    h.steps.resize(3);
  }
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"epochs.csv", "run.json", "steps.csv"});
}

TEST_CASE("a log that cannot be written leaves an error naming the path") {
  const std::string path = (test_files::scratch("unwritable", "x").parent_path() / "missing" / "run.json").string();
  CHECK_THROWS_WITH_AS(write_json(path, History{}), contains("cannot write " + path), Error);
}
