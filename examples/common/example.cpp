#include "example.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

namespace cohort::examples {

void add_common_flags(CLI::App& app, CommonArgs& a) {
  app.add_option("--data", a.data, "data file(s) or directory; without it a small synthetic data set is generated");
  app.add_option("--steps", a.steps, "optimizer steps")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", a.batch_size, "examples per step (per rank)")->check(CLI::PositiveNumber);
  app.add_option("--seed", a.seed, "random seed (initialisation, data order, dropout)");
  app.add_option("--threads", a.threads, "CPU threads for the ops")->check(CLI::PositiveNumber);
  app.add_option("--lr", a.lr, "learning rate (default: the example's own)");
  app.add_option("--log-every", a.log_every, "print the loss every N steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup-steps", a.warmup_steps, "steps left out of the samples/s figure")->check(CLI::NonNegativeNumber);
  app.add_flag("--profile", a.profile, "after training, print the time per op (after the warm-up) to stderr");
}

void setup(const CommonArgs& args) {
  set_num_threads(args.threads);
  manual_seed(args.seed);
}

DataLoaderOptions loader_options(const CommonArgs& args) {
  DataLoaderOptions o;
  o.batch_size = args.batch_size;
  o.shuffle = true;
  o.seed = args.seed;
  o.drop_last = true;
  return o;
}

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cohort-" + name + "-" + std::to_string(static_cast<long>(::getpid())));
  std::filesystem::create_directories(dir);
  return dir.string();
}

double param_norm(const Module& model) {
  NoGradGuard no_grad;
  double total = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    const Tensor v = p.to(DType::f64);
    total += (v * v).sum().item();
  }
  return std::sqrt(total);
}

double peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void Throughput::step_done(int64_t step, int64_t samples) {
  const auto now = std::chrono::steady_clock::now();
  if (step == warmup_) {
    start_ = now;
    if (profile_) Profiler::start();
  } else if (step > warmup_) {
    samples_ += samples;
    seconds_ = std::chrono::duration<double>(now - start_).count();
  }
}

void Throughput::finish() {
  if (profile_ && Profiler::enabled()) std::fprintf(stderr, "%s", Profiler::stop().table().c_str());
}

double Throughput::per_second() const { return seconds_ > 0 ? static_cast<double>(samples_) / seconds_ : 0; }

void print_summary(int64_t step, double loss, double norm, const std::string& extra_json) {
  std::printf("{\"step\": %lld, \"loss\": %.6f, \"param_norm\": %.6f%s%s}\n", static_cast<long long>(step), loss,
              norm, extra_json.empty() ? "" : ", ", extra_json.c_str());
  std::fflush(stdout);
}

}  // namespace cohort::examples
