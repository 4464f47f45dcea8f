// A "Bag of Tricks" ablation (He, Zhang, Zhang, Zhang, Xie and Li 2019, "Bag of
// Tricks for Image Classification with Convolutional Neural Networks") on CIFAR-10
// with ResNet-20 at a fixed budget: each row adds one trick to all the rows before
// it, trains from the same seed for the same epochs, and reports the validation
// accuracy and its change. The paper's own figure: ResNet-50 on ImageNet from 75.3%
// to 79.29% top-1 as its tricks stack up; at a few epochs on CIFAR the deltas are
// smaller and noisier, and a trick that does not pay at this budget shows its
// negative delta.
//
//   1 baseline: SGD lr 0.1 momentum 0.9, batch 128, weight decay 5e-4 on every
//     parameter, step decay /10 at 50% and 75% of the epochs, no augmentation,
//     Xavier-uniform weights      2 + He init (laminar's default)
//   3 + zero-padded 4-pixel crop and horizontal flip      4 + BN zero-gamma
//   5 + no-bias-decay (biases and BatchNorm not decayed)
//   6 + linear warmup over 1/24 of the epochs (the paper's 5 of 120) then cosine
//   7 + label smoothing 0.1      8 + Cutout 16, filled with the mean
//   9 + mixup, alpha 0.2 as in the paper (its targets keep the smoothing)
//  10 + distillation from a ResNet-56 teacher (--teacher FILE, as written by
//     distill_cifar --save-teacher): the paper weighs the two terms equally
//     (alpha 0.5); T 4 rather than its 20, which leaves a 10-class teacher's
//     distribution almost flat. Without a teacher the row says it was skipped.
//  11 + test-time augmentation: row 10's model (row 9's without a teacher)
//     evaluated with 6 views (flip x {0, +1, -1} pixel shifts); no training.
//
// The log shows each row's epochs, then after every row and at the end a markdown
// table (row, trick, validation accuracy, delta, training images/s, wall time).
//
// The budget, 4 epochs a row by default, fits in about an hour on the 2-core
// development machine in bf16. Measured there (2026-12-02, docs/results.md): rows
// 1-9 took 3:50 to 4:28 each (640-750 training img/s plus validation), row 10,
// which adds a ResNet-56 forward to every step, 5:58 (467 img/s), row 11 18 s;
// 44:15 for the whole table with a teacher. In float, expect about 1.5x that.
//
//   tricks_ablation [--data DIR] [--epochs 4] [--rows 1-11] [--teacher FILE] [--csv FILE] [--seed 1]
//                   [--test FILE] [--limit N] [--precision float|bf16]
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <laminar/laminar.hpp>

#include "cifar.hpp"
#include "options.hpp"
#include "resnet.hpp"

using namespace laminar;

using Net = examples::ResNet<20>;
using TeacherNet = examples::ResNet<56>;
using Student = Model<Net, cpu>;
using TeacherModel = Model<TeacherNet, cpu>;

namespace {

constexpr int row_count = 11;
constexpr int distillation_row = 10, test_time_row = 11;
constexpr double distillation_alpha = 0.5, distillation_temperature = 4;

const char* const trick_names[row_count] = {
    "baseline: SGD momentum 0.9, step decay, no augmentation, Xavier init",
    "+ He init",
    "+ flip + crop",
    "+ BN zero-gamma",
    "+ no-bias-decay",
    "+ warmup + cosine",
    "+ label smoothing 0.1",
    "+ cutout 16",
    "+ mixup 0.2",
    "+ distillation (ResNet-56, alpha 0.5, T 4)",
    "+ TTA (6 views)",
};

struct Setup {
  const data::Splits* data = nullptr;
  examples::CifarFlags flags;
  data::Normalization normalization;          // the training set's
  TeacherModel* teacher = nullptr;            // null without --teacher
  data::Normalization teacher_normalization;  // what the teacher was trained with
};

struct RowResult {
  int row = 0;
  std::string skipped;  // why the row did not run, or empty
  double accuracy = std::nan("");
  double delta = std::nan("");              // points against the previous row that ran
  double images_per_second = std::nan("");  // NaN for the evaluation-only row
  double seconds = 0;
};

// The rows to run, "A-B" or "A", both within 1..11.
std::pair<int, int> parse_rows(const std::string& text) {
  const auto fail = [&] {
    return std::runtime_error("--rows expects A-B or A with rows 1 to " + std::to_string(row_count) + ", got '" + text +
                              "'");
  };
  const auto number = [&](const std::string& part) {
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 2) throw fail();
    return std::stoi(part);
  };
  const std::size_t dash = text.find('-');
  const int first = number(text.substr(0, dash));
  const int last = dash == std::string::npos ? first : number(text.substr(dash + 1));
  if (first < 1 || last > row_count || first > last) throw fail();
  return {first, last};
}

// Cutout's hole set to the mean pixel, which normalisation turns into zero, as the
// Cutout paper does by cutting after normalising.
std::array<std::uint8_t, 3> mean_pixel(const data::Normalization& n) {
  std::array<std::uint8_t, 3> fill{};
  for (std::size_t c = 0; c < fill.size() && c < n.mean.size(); ++c)
    fill[c] = std::uint8_t(std::lround(255 * n.mean[c]));
  return fill;
}

// Trains the recipe of `row`: every trick of rows 2..row on top of the baseline.
train::History train_row(Student& model, int row, const Setup& s) {
  const auto with = [row](int trick) { return row >= trick; };
  const int epochs = s.flags.epochs;
  if (!with(2)) init::xavier_uniform(model, {.seed = s.flags.seed});
  if (with(4)) init::zero_gamma(model);
  optim::SGD optimizer(model, {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .decay_bias_and_bn = !with(5)});
  train::Augmentation augmentation;
  if (with(8))
    augmentation =
        augment::pad_crop(4) | augment::hflip().with(0.5f) | augment::cutout(16, mean_pixel(s.normalization));
  else if (with(3))
    augmentation = augment::pad_crop(4) | augment::hflip().with(0.5f);
  std::optional<augment::MixOptions> mix;
  if (with(9)) mix = augment::MixOptions{.kind = augment::MixKind::mixup, .alpha = 0.2, .label_smoothing = 0.1};
  train::Teacher teacher;
  if (with(distillation_row))
    teacher = train::distill(
        *s.teacher, {.alpha = distillation_alpha, .temperature = distillation_temperature, .label_smoothing = 0.1});
  return train::fit(model, optimizer, s.data->train,
                    {.epochs = epochs,
                     .batch = 128,
                     .seed = s.flags.seed,
                     .schedule = with(6) ? schedule::warmup(epochs / 24.0) + schedule::cosine()
                                         : schedule::step({0.5 * epochs, 0.75 * epochs}),
                     .augment = std::move(augmentation),
                     .mix = mix,
                     .loss = {.label_smoothing = with(7) ? 0.1 : 0.0},
                     .teacher = std::move(teacher),
                     .validation = &s.data->valid,
                     .normalization = with(distillation_row) ? s.teacher_normalization : s.normalization});
}

std::string percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", 100 * fraction);
  return text;
}

void print_table(const std::vector<RowResult>& results) {
  std::printf("\n| row | trick | validation accuracy | delta | train images/s | wall time |\n");
  std::printf("|---:|---|---:|---:|---:|---:|\n");
  for (const RowResult& r : results) {
    const char* trick = trick_names[r.row - 1];
    if (!r.skipped.empty()) {
      std::printf("| %d | %s | skipped: %s | | | |\n", r.row, trick, r.skipped.c_str());
      continue;
    }
    char delta[32] = "—", speed[32] = "— (no training)";
    if (!std::isnan(r.delta)) std::snprintf(delta, sizeof delta, "%+.2f", 100 * r.delta);
    if (!std::isnan(r.images_per_second)) std::snprintf(speed, sizeof speed, "%.0f", r.images_per_second);
    std::printf("| %d | %s | %s | %s | %s | %s |\n", r.row, trick, percent(r.accuracy).c_str(), delta, speed,
                train::format_duration(r.seconds).c_str());
  }
  std::printf("\n");
  std::fflush(stdout);
}

// One line per row, appended; the header only when the file is new or empty.
void append_csv(const std::string& path, const RowResult& r, const examples::CifarFlags& f) {
  std::error_code error;
  const bool fresh = !std::filesystem::exists(path, error) || std::filesystem::file_size(path, error) == 0;
  std::ofstream out(path, std::ios::app);
  if (!out) throw std::runtime_error("--csv " + path + " cannot be opened for appending");
  if (fresh)
    out << "row,trick,status,valid_accuracy,delta,train_images_per_second,wall_seconds,epochs,limit,precision,seed\n";
  const auto number = [](double value) { return std::isnan(value) ? std::string() : shortest(value); };
  const auto quoted = [](const std::string& text) {  // RFC 4180: a field with commas is quoted, quotes doubled
    std::string field = "\"";
    for (const char c : text) field += c == '"' ? std::string("\"\"") : std::string(1, c);
    return field + '"';
  };
  out << r.row << ',' << quoted(trick_names[r.row - 1]) << ','
      << quoted(r.skipped.empty() ? std::string("ran") : "skipped: " + r.skipped) << ',' << number(r.accuracy) << ','
      << number(r.delta) << ',' << number(r.images_per_second) << ',' << shortest(r.seconds) << ',' << f.epochs << ','
      << f.limit << ',' << (f.arithmetic == Arithmetic::bf16 ? "bf16" : "float") << ',' << f.seed << '\n';
  if (!out) throw std::runtime_error("--csv " + path + ": writing the row failed");
}

bool same_normalization(const data::Normalization& a, const data::Normalization& b) {
  if (a.mean.size() != b.mean.size() || a.std.size() != b.std.size()) return false;
  for (std::size_t c = 0; c < a.mean.size(); ++c)
    if (std::abs(a.mean[c] - b.mean[c]) > 1e-6f || std::abs(a.std[c] - b.std[c]) > 1e-6f) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) try {
  const examples::Stopwatch clock;
  examples::Options args(argc, argv, "tricks_ablation");
  Setup setup;
  setup.flags = examples::cifar_flags(args, 4);
  auto [first, last] = parse_rows(args.text("--rows", "1-11"));
  const std::string teacher_file = args.text("--teacher", "");
  const std::string csv = args.text("--csv", "");
  args.finish();

  const data::Splits data = examples::load_cifar10(setup.flags);
  setup.data = &data;
  setup.normalization = data::Normalization::standardize(data.train);
  std::printf("%s", describe<Net>().c_str());

  // The teacher is read before any row trains, so a wrong file fails now, not an hour in.
  std::unique_ptr<TeacherModel> teacher;
  if (!teacher_file.empty() && last >= distillation_row) {
    teacher = std::make_unique<TeacherModel>(setup.flags.seed);
    io::load_weights(teacher_file, *teacher);
    setup.teacher_normalization = io::load_normalization(teacher_file);
    examples::apply_precision(*teacher, setup.flags);
    setup.teacher = teacher.get();
    std::printf("teacher ResNet-56 from %s: validation accuracy %s\n", teacher_file.c_str(),
                percent(train::evaluate(*teacher, data.valid, setup.teacher_normalization).accuracy).c_str());
    if (!same_normalization(setup.teacher_normalization, setup.normalization))
      std::printf(
          "note: row %d normalises with the teacher's statistics, which differ from this training set's "
          "(another --limit?)\n",
          distillation_row);
  }
  if (!teacher_file.empty() && !teacher)
    std::printf("note: --teacher %s is not used: rows %d-%d do not include row %d (distillation)\n",
                teacher_file.c_str(), first, last, distillation_row);
  if (last == test_time_row) {
    const int needed = teacher ? distillation_row : distillation_row - 1;
    if (first > needed) {
      std::printf("row %d evaluates row %d's model, so row %d trains first\n", test_time_row, needed, needed);
      first = needed;
    }
  }

  std::vector<RowResult> results;
  std::unique_ptr<Student> model;  // the last row's trained model, for row 11
  train::History history;          // and its history
  const auto previous_accuracy = [&] {
    for (auto r = results.rbegin(); r != results.rend(); ++r)
      if (r->skipped.empty()) return r->accuracy;
    return std::nan("");
  };
  for (int row = first; row <= last; ++row) {
    RowResult result;
    result.row = row;
    std::printf("\n== row %d: %s\n", row, trick_names[row - 1]);
    if (row == distillation_row && !teacher) {
      result.skipped = "no teacher given (--teacher FILE, e.g. from distill_cifar --save-teacher)";
      std::printf("row %d skipped: %s\n", row, result.skipped.c_str());
    } else if (row == test_time_row) {
      const examples::Stopwatch row_clock;
      result.accuracy =
          train::evaluate(*model, data.valid, history.normalization, {.tta = augment::TestTime::flip_translate})
              .accuracy;
      result.seconds = row_clock.seconds();
    } else {
      const examples::Stopwatch row_clock;
      model = std::make_unique<Student>(setup.flags.seed);
      examples::apply_precision(*model, setup.flags);
      history = train_row(*model, row, setup);
      result.accuracy = history.epochs.back().valid_accuracy;
      result.images_per_second = examples::mean_images_per_second(history);
      result.seconds = row_clock.seconds();
    }
    if (result.skipped.empty()) result.delta = result.accuracy - previous_accuracy();
    results.push_back(result);
    if (!csv.empty()) append_csv(csv, result, setup.flags);
    print_table(results);
  }

  std::printf("tricks ablation: ResNet-20, %d epochs a row, seed %llu\n", setup.flags.epochs,
              (unsigned long long)setup.flags.seed);
  print_table(results);
  if (model)
    examples::evaluate_test_file(*model, setup.flags, history,
                                 last == test_time_row ? augment::TestTime::flip_translate : augment::TestTime::none);
  examples::print_summary("tricks_ablation (last trained row)", history, clock);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tricks_ablation: %s\n", e.what());
  return 1;
}
