// describe<Net>(): one row per layer (residual branches and shortcuts nested)
// with its output shape and parameter count, and the totals, against counts
// worked out by hand.
#include <doctest/doctest.h>

#include <laminar/laminar.hpp>
#include <sstream>
#include <string>
#include <vector>

using namespace laminar;

namespace {
using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, BatchNorm, ReLU,
                       Residual<Conv<3, 3, 8, 2>, BatchNorm, ReLU, Conv<3, 3, 8>>, ReLU,
                       Dropout<0.5>, MaxPool<2>, Flatten, Dense<10>>;

struct Row {
  std::string position, layer, output, parameters;
  std::string mflop = {};  // compared in the cost case only
};

std::string trim(const std::string& s) {
  const std::size_t begin = s.find_first_not_of(' ');
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(' ') - begin + 1);
}

// Cuts each line at the columns the header line sets: position, layer (nested
// names are indented), output, the right-aligned parameter count, and MFLOP.
std::vector<Row> rows(const std::string& table) {
  std::istringstream lines(table);
  std::string header;
  std::getline(lines, header);
  const std::size_t layer = header.find("layer"), output = header.find("output");
  const std::size_t parameters_end = header.find("parameters") + std::string("parameters").size();
  const std::size_t parameters = parameters_end - 12;
  REQUIRE(layer < output);
  REQUIRE(output < parameters);
  auto cut = [](const std::string& line, std::size_t from, std::size_t to) {
    return from < line.size() ? trim(line.substr(from, to - from)) : std::string();
  };
  auto row = [&](const std::string& line) {
    return Row{cut(line, 0, layer), cut(line, layer, output), cut(line, output, parameters),
               cut(line, parameters, parameters_end), cut(line, parameters_end, line.size())};
  };
  std::vector<Row> result{row(header)};
  for (std::string line; std::getline(lines, line);) result.push_back(row(line));
  return result;
}

// Hand counts: Conv = Cout * Cin * KH * KW + Cout, BatchNorm = 2 C, Dense = N K + N.
//   1   Conv<3,3,4>           on 3x8x8: 4*3*9 + 4 = 112        -> 4x8x8
//   2   BatchNorm             2*4 = 8
//   4.1 Conv<3,3,8,2>         on 4x8x8: 8*4*9 + 8 = 296        -> 8x4x4
//   4.2 BatchNorm             2*8 = 16
//   4.4 Conv<3,3,8>           8*8*9 + 8 = 584
//   4.shortcut Conv<1,1,8,2,valid>: 8*4 + 8 = 40
//   4   Residual              296 + 16 + 584 + 40 = 936
//   7   MaxPool<2>            -> 8x2x2;  8 Flatten -> 32
//   9   Dense<10>             10*32 + 10 = 330
//   total                     112 + 8 + 936 + 330 = 1386
const std::vector<Row> expected{
    {"#", "layer", "output", "parameters"},
    {"0", "Input", "Shape<3,8,8>", ""},
    {"1", "Conv<3,3,4>", "Shape<4,8,8>", "112"},
    {"2", "BatchNorm", "Shape<4,8,8>", "8"},
    {"3", "ReLU", "Shape<4,8,8>", "0"},
    {"4", "Residual<Conv<3,3,8,2>,BatchNorm,ReLU,Conv<3,3,8>>", "Shape<8,4,4>", "936"},
    {"4.1", "Conv<3,3,8,2>", "Shape<8,4,4>", "296"},
    {"4.2", "BatchNorm", "Shape<8,4,4>", "16"},
    {"4.3", "ReLU", "Shape<8,4,4>", "0"},
    {"4.4", "Conv<3,3,8>", "Shape<8,4,4>", "584"},
    {"4.shortcut", "Conv<1,1,8,2,valid>", "Shape<8,4,4>", "40"},
    {"5", "ReLU", "Shape<8,4,4>", "0"},
    {"6", "Dropout<0.5>", "Shape<8,4,4>", "0"},
    {"7", "MaxPool<2>", "Shape<8,2,2>", "0"},
    {"8", "Flatten", "Shape<32>", "0"},
    {"9", "Dense<10>", "Shape<10>", "330"},
    {"", "total", "", "1386"},
};
}  // namespace

TEST_CASE("describe lists every layer with its output shape and hand-counted parameters") {
  const std::vector<Row> actual = rows(describe<Net>());
  INFO(describe<Net>());
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(actual[i].position == expected[i].position);
    CHECK(actual[i].layer == expected[i].layer);
    CHECK(actual[i].output == expected[i].output);
    CHECK(actual[i].parameters == expected[i].parameters);
  }
}

TEST_CASE("describe indents a residual block's branch and shortcut under the block") {
  const std::string table = describe<Net>();
  const std::size_t layer = table.find("layer");  // the column, from the header line
  auto line = [&](const std::string& position) {
    const std::size_t begin = table.find("\n" + position + " ") + 1;
    return table.substr(begin, table.find('\n', begin) - begin);
  };
  CHECK(line("4").substr(layer, 9) == "Residual<");
  CHECK(line("4.1").substr(layer, 15) == "  Conv<3,3,8,2>");
  CHECK(line("4.4").substr(layer, 13) == "  Conv<3,3,8>");
  CHECK(line("4.shortcut").substr(layer, 21) == "  Conv<1,1,8,2,valid>");
  CHECK(line("5").substr(layer, 4) == "ReLU");
}

TEST_CASE("the described parameter total equals the model's trainable parameter count") {
  Model<Net, cpu, float> model;
  CHECK(NetworkCost<Net>::parameters == 1386);
  CHECK(model.parameter_count() == 1386);
  CHECK(Model<Net, cpu, float>::describe() == describe<Net>());
}

TEST_CASE("the described forward cost is the hand-counted FLOPs per sample") {
  // conv 2 Cout Cin KH KW OH OW, BatchNorm 4 per value, activations and dropout 1
  // per value, pooling K*K per output, dense 2 N K, residual sum 1 per value:
  //   Conv<3,3,4>   2*4*3*9*64 = 13824;  BatchNorm 4*256 = 1024;  ReLU 256
  //   Residual      128 + 2*8*4*9*16 + 4*128 + 128 + 2*8*8*9*16 + 2*8*4*16 = 29440
  //   ReLU 128, Dropout 128, MaxPool 4*32 = 128, Flatten 0, Dense 2*10*32 = 640
  //   total 45568 -> "0.046" MFLOP in the table
  CHECK(NetworkCost<Net>::flops == 45568);
  const Row total = rows(describe<Net>()).back();
  CHECK(total.layer == "total");
  CHECK(total.mflop == "0.046");
}
