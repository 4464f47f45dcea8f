// Transfer learning with little data (the lecture's recipe: take a pretrained
// net, retrain its last layer, then perhaps all of it slowly). A small
// BatchNorm + ReLU CNN (conv 32-32-M-64-64-M-128-M, global average pooling,
// Dense<5>) is pretrained on CIFAR-10 classes 0-4 (airplane, automobile, bird,
// cat, deer), all their images in batches 1-4. The new task is classes 5-9
// (dog, frog, horse, ship, truck) from only the first 500 training images of
// each, relabelled 0-4, validated on batch 5's images of those classes:
//   (a) the head only: the last Dense re-initialised, every other layer frozen;
//   (b) then every layer, starting from (a), at a tenth of the learning rate;
//   (c) the same net trained from scratch on the same 2,500 images.
// The log shows each phase's epochs and a closing table: the pretrained net's
// validation accuracy on classes 0-4 and (a), (b), (c) on classes 5-9; (b) and
// (c) should beat (a) and (c) respectively if the pretrained features transfer.
//
// Every phase: SGD with Nesterov momentum 0.9, weight decay 5e-4 (weights
// only), batch 128, cosine decay (after a warmup for the two runs from random
// weights), the cifar_light() augmentation. (a) and (b) keep the pretraining's
// input normalisation, since their frozen or pretrained filters expect it.
// While (a) trains, the frozen BatchNorm layers still update their running
// statistics (they are statistics, not trainable parameters), so they adapt
// to the new classes' images.
//
//   finetune [--epochs 30] [--pretrain-epochs epochs/2] [--head-epochs epochs/3] [--lr 0.05] [--batch 128]
//            [--data DIR] [--seed N] [--test FILE] [--limit N] [--precision float|bf16]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <laminar/laminar.hpp>

#include "cifar.hpp"

using namespace laminar;

constexpr int classes_per_task = 5;
constexpr long images_per_new_class = 500;

using Net = Sequential<Input<3, 32, 32>,
                       Conv<3, 3, 32>, BatchNorm, ReLU,
                       Conv<3, 3, 32>, BatchNorm, ReLU, MaxPool<2>,    // 32 x 16 x 16
                       Conv<3, 3, 64>, BatchNorm, ReLU,
                       Conv<3, 3, 64>, BatchNorm, ReLU, MaxPool<2>,    // 64 x 8 x 8
                       Conv<3, 3, 128>, BatchNorm, ReLU, MaxPool<2>,   // 128 x 4 x 4
                       GlobalAvgPool, Dense<classes_per_task>>;
constexpr int head_layer = int(Net::depth);
using Classifier = Model<Net, cpu>;

// The samples of classes first .. first + count - 1 in file order, relabelled
// 0 .. count - 1, at most `per_class` of each (0: all of them).
data::Dataset select_classes(const data::Dataset& d, int first, int count, long per_class = 0) {
  if (first < 0 || count < 1 || first + count > d.classes)
    throw Error("select_classes: classes " + std::to_string(first) + ".." + std::to_string(first + count - 1) +
                " are not among the " + std::to_string(d.classes) + " classes of " + d.source);
  data::Dataset out{d.channels, d.height, d.width, count, {}, {}, {}};
  out.source = d.source + ", classes " + std::to_string(first) + "-" + std::to_string(first + count - 1) +
               (per_class > 0 ? ", the first " + std::to_string(per_class) + " of each" : "");
  std::vector<long> taken(std::size_t(count), 0);
  for (long i = 0; i < d.size(); ++i) {
    const int label = int(d.labels[std::size_t(i)]) - first;
    if (label < 0 || label >= count || (per_class > 0 && taken[std::size_t(label)] >= per_class)) continue;
    ++taken[std::size_t(label)];
    out.images.insert(out.images.end(), d.image(i), d.image(i) + d.sample_size());
    out.labels.push_back(std::uint8_t(label));
  }
  if (out.size() == 0) throw Error("select_classes: " + out.source + " holds no image");
  return out;
}

struct Recipe {
  int epochs = 30, pretrain_epochs = 0, head_epochs = 0, batch = 128;  // main derives the phases from epochs
  double lr = 0.05;
};

struct Task {
  data::Dataset train, valid, test;  // test is empty without --test
};

// One row of the closing table.
struct Row {
  std::string phase;
  long images = 0;
  int epochs = 0;
  long trainable = 0;
  double valid_accuracy = 0, test_accuracy = -1;
};

// From-scratch runs warm up; fine-tuning starts from trained weights and does not.
schedule::Schedule phase_schedule(bool from_random_weights, int epochs) {
  if (!from_random_weights) return schedule::cosine();
  return schedule::warmup(std::min(1.0, epochs / 4.0)) + schedule::cosine();
}

Row train_phase(const std::string& phase, Classifier& model, const Task& task, int epochs, double lr,
                bool from_random_weights, const std::optional<data::Normalization>& normalization,
                const Recipe& recipe, const examples::CifarFlags& flags, train::History* history_out = nullptr) {
  std::printf("\n%s: %ld training images, %ld validation, %d epochs, lr %g, %ld trainable parameters\n",
              phase.c_str(), task.train.size(), task.valid.size(), epochs, lr, train::trainable_count(model));
  optim::SGD opt(model, {.lr = lr, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
  train::History history = train::fit(model, opt, task.train,
                                      {.epochs = epochs, .batch = recipe.batch, .seed = flags.seed,
                                       .schedule = phase_schedule(from_random_weights, epochs),
                                       .augment = augment::cifar_light(), .validation = &task.valid,
                                       .normalization = normalization});
  Row row{phase, task.train.size(), epochs, train::trainable_count(model), history.epochs.back().valid_accuracy, -1};
  if (task.test.size() > 0) {
    const auto test = train::evaluate(model, task.test, history.normalization);
    std::printf("%s on %s: %s", phase.c_str(), task.test.source.c_str(), test.report().c_str());
    row.test_accuracy = test.accuracy;
  }
  if (history_out) *history_out = std::move(history);
  return row;
}

void print_table(const std::vector<Row>& rows) {
  std::printf("\n%-46s %7s %7s %10s %11s %8s\n", "phase", "images", "epochs", "trainable", "validation", "test");
  for (const Row& r : rows) {
    char test[16] = "-";
    if (r.test_accuracy >= 0) std::snprintf(test, sizeof test, "%.2f%%", 100 * r.test_accuracy);
    std::printf("%-46s %7ld %7d %10ld %10.2f%% %8s\n", r.phase.c_str(), r.images, r.epochs, r.trainable,
                100 * r.valid_accuracy, test);
  }
}

int main(int argc, char** argv) try {
  const examples::Stopwatch clock;
  examples::Options args(argc, argv, "finetune");
  Recipe recipe;
  const examples::CifarFlags flags = examples::cifar_flags(args, recipe.epochs);
  recipe.epochs = flags.epochs;
  // The other phases scale with --epochs, so a short run shortens all of them.
  recipe.pretrain_epochs = args.integer("--pretrain-epochs", std::max(1, recipe.epochs / 2));
  recipe.head_epochs = args.integer("--head-epochs", std::max(1, recipe.epochs / 3));
  recipe.lr = args.real("--lr", recipe.lr);
  recipe.batch = args.integer("--batch", recipe.batch);
  args.finish();
  if (recipe.pretrain_epochs < 1 || recipe.head_epochs < 1)
    throw std::runtime_error("--pretrain-epochs and --head-epochs must be at least 1, got " +
                             std::to_string(recipe.pretrain_epochs) + " and " + std::to_string(recipe.head_epochs));

  const auto data = examples::load_cifar10(flags);
  const data::Dataset test_file = flags.test_file.empty() ? data::Dataset{} : data::read_cifar10(flags.test_file);
  const auto task_of = [&](int first, long per_class) {
    return Task{select_classes(data.train, first, classes_per_task, per_class),
                select_classes(data.valid, first, classes_per_task),
                test_file.size() > 0 ? select_classes(test_file, first, classes_per_task) : data::Dataset{}};
  };
  const Task old_task = task_of(0, 0);
  const Task new_task = task_of(classes_per_task, images_per_new_class);
  std::printf("pretraining: classes 0-4 of the training batches, %ld images\n"
              "new task: classes 5-9, the first %ld training images of each, %ld images\n",
              old_task.train.size(), images_per_new_class, new_task.train.size());
  std::printf("%s", describe<Net>().c_str());
  std::vector<Row> rows;

  Classifier model(flags.seed);
  examples::apply_precision(model, flags);
  train::History pretraining;
  rows.push_back(train_phase("pretrain, classes 0-4", model, old_task, recipe.pretrain_epochs, recipe.lr, true, {},
                             recipe, flags, &pretraining));

  train::reinitialize(model, std::to_string(head_layer), flags.seed + 1);
  train::freeze_layers(model, 1, head_layer - 1);
  rows.push_back(train_phase("(a) head only, classes 5-9", model, new_task, recipe.head_epochs, recipe.lr, false,
                             pretraining.normalization, recipe, flags));

  train::unfreeze(model);
  train::History all_layers;
  rows.push_back(train_phase("(b) all layers from (a), lr / 10, classes 5-9", model, new_task, recipe.epochs,
                             recipe.lr / 10, false, pretraining.normalization, recipe, flags, &all_layers));

  Classifier scratch(flags.seed);
  examples::apply_precision(scratch, flags);
  rows.push_back(train_phase("(c) from scratch, classes 5-9", scratch, new_task, recipe.epochs, recipe.lr, true, {},
                             recipe, flags));

  print_table(rows);
  examples::print_summary("finetune (b)", all_layers, clock);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "finetune: %s\n", e.what());
  return 1;
}
