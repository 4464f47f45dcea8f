// Draws the training curves of a run from its logs, as one SVG file:
//
//   plot_log --json run.json --out curves.svg
//   plot_log --epochs epochs.csv [--steps steps.csv] --out curves.svg
//
// Any error is one line on stderr and exit status 1.
#include <cstdio>
#include <exception>
#include <laminar/train/log.hpp>
#include <laminar/train/plot.hpp>
#include <stdexcept>
#include <string>

#include "options.hpp"

using namespace laminar;

int main(int argc, char** argv) try {
  examples::Options args(argc, argv, "plot_log");
  const std::string json = args.text("--json", "");
  const std::string epochs = args.text("--epochs", "");
  const std::string steps = args.text("--steps", "");
  const std::string out = args.text("--out", "curves.svg");
  args.finish();

  if (json.empty() == epochs.empty())
    throw std::runtime_error("give either --json run.json or --epochs epochs.csv [--steps steps.csv]");
  if (!json.empty() && !steps.empty())
    throw std::runtime_error("--steps goes with --epochs; run.json holds the steps already");

  train::History history;
  if (!json.empty()) {
    history = train::read_json(json);
  } else {
    history.epochs = train::read_epoch_csv(epochs);
    if (!steps.empty()) history.steps = train::read_step_csv(steps);
  }
  plot::save_svg(out, plot::training_curves(history));
  std::printf("wrote %s: %zu epochs, %zu steps\n", out.c_str(), history.epochs.size(), history.steps.size());
  if (!history.stop_reason.empty()) std::printf("the run stopped early: %s\n", history.stop_reason.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "plot_log: %s\n", e.what());
  return 1;
}
