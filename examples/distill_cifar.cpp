// Knowledge distillation on CIFAR-10 (Hinton, Vinyals and Dean 2015, "Distilling
// the Knowledge in a Neural Network"): a ResNet-56 teacher is trained (or loaded),
// then a ResNet-20 student is trained twice with the same recipe and seed — alone
// on the labels, and on alpha * CE(labels) + (1 - alpha) * T^2 * KL(teacher/T ||
// student/T). The paper's own figure: on MNIST a small net makes 146 test errors
// trained alone and 74 distilled from a large one that makes 67; for CIFAR-10
// ResNet-56 -> ResNet-20 expect a gain of under a point over the student alone.
//
// Recipe, shared by all three trainings: He init with zero-gamma in the BatchNorm
// that ends each residual branch, SGD, momentum 0.9 Nesterov, lr 0.1, batch 128,
// weight decay 5e-4 on conv and dense weights only (laminar's default: biases and
// BatchNorm are not decayed), linear warmup over the first 1/15 of the epochs then
// cosine to 0, zero-padded 4-pixel crop and horizontal flip. Defaults: 30 epochs
// each, alpha 0.1 (the weight of the hard labels; 0.9 on the teacher), T 4.
// The log shows each run's epochs (loss, accuracy, validation), then a three-line
// table: teacher, student alone, distilled student, and the distillation's gain.
// Cost, measured on the 2-core development machine in bf16 (2026-12-02,
// docs/results.md): an epoch of 40k images trained in 2:14-2:40 for the
// ResNet-56 teacher, 0:46-0:58 for the student alone and 1:31-1:39 for
// the distilled student, which adds a teacher forward to every step. At the
// defaults (30 epochs each) that is about 2.5 h with the validations (the
// measured run of 8 + 4 + 4 epochs took 31:05 in all); in float, longer.
//
//   distill_cifar [--data DIR] [--epochs 30] [--teacher-epochs N] [--teacher FILE] [--save-teacher FILE]
//                 [--alpha 0.1] [--temperature 4] [--lr 0.1] [--batch 128] [--seed 1] [--test FILE]
//                 [--limit N] [--precision float|bf16]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include <laminar/laminar.hpp>

#include "cifar.hpp"
#include "options.hpp"
#include "resnet.hpp"

using namespace laminar;

using TeacherNet = examples::ResNet<56>;
using StudentNet = examples::ResNet<20>;

namespace {

struct Recipe {
  double lr = 0.1;
  int batch = 128;
  std::uint64_t seed = 1;
  data::Normalization normalization;  // the teacher's, so that it sees the inputs it was trained on
};

// The one recipe every run here uses; `teacher` empty trains on the labels alone.
// Zero-gamma because ResNet-56 from He init alone starts with logits of standard
// deviation near 4 (each of a stage's 9 blocks adds a unit-variance branch to the
// sum), and at lr 0.1 it then collapses to chance in short runs; with every block
// starting as the identity it trains at lr 0.1 at any length.
template <class Model>
train::History train_model(Model& model, const data::Splits& data, const Recipe& recipe, int epochs,
                           train::Teacher teacher = {}) {
  init::zero_gamma(model);
  optim::SGD optimizer(model, {.lr = recipe.lr, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
  return train::fit(model, optimizer, data.train,
                    {.epochs = epochs,
                     .batch = recipe.batch,
                     .seed = recipe.seed,
                     .schedule = schedule::warmup(epochs / 15.0) + schedule::cosine(),
                     .augment = augment::pad_crop(4) | augment::hflip().with(0.5f),
                     .teacher = std::move(teacher),
                     .validation = &data.valid,
                     .normalization = recipe.normalization});
}

double final_accuracy(const train::History& h) {
  return h.epochs.empty() ? std::nan("") : h.epochs.back().valid_accuracy;
}

}  // namespace

int main(int argc, char** argv) try {
  const examples::Stopwatch clock;
  examples::Options args(argc, argv, "distill_cifar");
  const examples::CifarFlags flags = examples::cifar_flags(args, 30);
  const int teacher_epochs = args.integer("--teacher-epochs", flags.epochs);
  const std::string teacher_file = args.text("--teacher", "");
  const std::string save_teacher = args.text("--save-teacher", "");
  const double alpha = args.real("--alpha", 0.1);
  const double temperature = args.real("--temperature", 4);
  Recipe recipe{
      .lr = args.real("--lr", 0.1), .batch = args.integer("--batch", 128), .seed = flags.seed, .normalization = {}};
  args.finish();
  if (teacher_epochs < 1)
    throw std::runtime_error("--teacher-epochs must be at least 1, got " + std::to_string(teacher_epochs));
  if (!teacher_file.empty() && !save_teacher.empty())
    throw std::runtime_error("--save-teacher " + save_teacher + " writes a teacher this run trains, but --teacher " +
                             teacher_file + " means none is trained");
  if (!(alpha >= 0 && alpha <= 1)) throw std::runtime_error("--alpha must lie in [0, 1], got " + shortest(alpha));
  if (!(temperature > 0 && std::isfinite(temperature)))
    throw std::runtime_error("--temperature must be positive, got " + shortest(temperature));
  if (!(recipe.lr > 0)) throw std::runtime_error("--lr must be positive, got " + shortest(recipe.lr));
  if (recipe.batch < 1) throw std::runtime_error("--batch must be at least 1, got " + std::to_string(recipe.batch));

  const data::Splits data = examples::load_cifar10(flags);
  recipe.normalization = data::Normalization::standardize(data.train);
  std::printf("teacher:\n%s", describe<TeacherNet>().c_str());
  std::printf("student:\n%s", describe<StudentNet>().c_str());
  std::printf(
      "recipe: He init + zero-gamma, SGD lr %g momentum 0.9 Nesterov, batch %d, weight decay 5e-4 (weights only), "
      "warmup 1/15 + "
      "cosine, pad-4 crop + flip, seed %llu; distillation alpha %g, temperature %g\n",
      recipe.lr, recipe.batch, (unsigned long long)recipe.seed, alpha, temperature);

  // The teacher: loaded whole (weights and the normalisation it was trained with), or trained here.
  Model<TeacherNet, cpu> teacher(recipe.seed);
  examples::apply_precision(teacher, flags);
  train::History teacher_history;
  double teacher_accuracy = 0;
  std::string teacher_origin;
  if (!teacher_file.empty()) {
    io::load_weights(teacher_file, teacher);
    recipe.normalization = io::load_normalization(teacher_file);
    teacher_history.normalization = recipe.normalization;
    teacher_accuracy = train::evaluate(teacher, data.valid, recipe.normalization).accuracy;
    teacher_origin = "loaded from " + teacher_file;
    std::printf(
        "teacher ResNet-56 loaded from %s: validation accuracy %.2f%%; the students normalise their "
        "inputs with its statistics\n",
        teacher_file.c_str(), 100 * teacher_accuracy);
  } else {
    std::printf("\n== teacher ResNet-56, %d epochs\n", teacher_epochs);
    teacher_history = train_model(teacher, data, recipe, teacher_epochs);
    teacher_accuracy = final_accuracy(teacher_history);
    teacher_origin = std::to_string(teacher_epochs) + " epochs";
    if (!save_teacher.empty()) {
      io::save_weights(save_teacher, teacher, teacher_history.normalization);
      std::printf("teacher written to %s\n", save_teacher.c_str());
    }
  }

  std::printf("\n== student ResNet-20 alone, %d epochs\n", flags.epochs);
  Model<StudentNet, cpu> alone(recipe.seed);
  examples::apply_precision(alone, flags);
  const train::History alone_history = train_model(alone, data, recipe, flags.epochs);

  std::printf("\n== student ResNet-20 distilled from the teacher, %d epochs\n", flags.epochs);
  Model<StudentNet, cpu> distilled(recipe.seed);
  examples::apply_precision(distilled, flags);
  const train::History distilled_history = train_model(
      distilled, data, recipe, flags.epochs, train::distill(teacher, {.alpha = alpha, .temperature = temperature}));

  const double teacher_test = examples::evaluate_test_file(teacher, flags, teacher_history);
  const double alone_test = examples::evaluate_test_file(alone, flags, alone_history);
  const double distilled_test = examples::evaluate_test_file(distilled, flags, distilled_history);

  const double alone_accuracy = final_accuracy(alone_history), distilled_accuracy = final_accuracy(distilled_history);
  const auto test_column = [&](double accuracy) {
    char text[32];
    std::snprintf(text, sizeof text, "  test %6.2f%%", 100 * accuracy);
    return flags.test_file.empty() ? std::string() : std::string(text);
  };
  const std::string labels[3] = {
      "teacher   ResNet-56 (" + teacher_origin + ")", "student   ResNet-20 alone",
      "distilled ResNet-20 (alpha " + shortest(alpha) + ", T " + shortest(temperature) + ")"};
  const double accuracies[3] = {teacher_accuracy, alone_accuracy, distilled_accuracy};
  const double tests[3] = {teacher_test, alone_test, distilled_test};
  int width = 0;
  for (const std::string& label : labels) width = std::max(width, int(label.size()));
  std::printf("\nvalidation accuracy (batch 5, %ld images):\n", data.valid.size());
  for (int i = 0; i < 3; ++i) {
    std::printf("  %-*s  %6.2f%%%s", width, labels[i].c_str(), 100 * accuracies[i], test_column(tests[i]).c_str());
    if (i == 2) std::printf("  (%+.2f points over the student alone)", 100 * (distilled_accuracy - alone_accuracy));
    std::printf("\n");
  }
  examples::print_summary("distill_cifar (distilled student)", distilled_history, clock);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "distill_cifar: %s\n", e.what());
  return 1;
}
