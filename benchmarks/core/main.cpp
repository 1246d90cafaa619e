// cohort-bench-core: cohort's CPU kernels against the ceilings they should reach.
//
//   cohort-bench-core                          # both comparisons, 1 and 2 threads
//   cohort-bench-core --only matmul --sizes 1024x1024x1024 --threads 2 --reps 20
//   cohort-bench-core --only gemm             # the training products: oneDNN, OpenBLAS, cohort
#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>

#include "benches.h"
#include "cohort/core/core.h"

#if COHORT_WITH_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

// "1024x1024x1024" -> {1024, 1024, 1024} (M x K x N).
cohort::bench::MatmulShape parse_shape(const std::string& text) {
  cohort::bench::MatmulShape s{};
  char x1 = 0, x2 = 0;
  std::istringstream in(text);
  if (!(in >> s.m >> x1 >> s.k >> x2 >> s.n) || x1 != 'x' || x2 != 'x' || s.m <= 0 || s.k <= 0 || s.n <= 0) {
    throw CLI::ValidationError("--sizes", "expected MxKxN with positive sizes, got '" + text + "'");
  }
  return s;
}

std::string onednn_version() {
#if COHORT_WITH_DNNL
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
#else
  return "oneDNN off";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cohort-bench-core: cohort matmul vs oneDNN, the training products vs oneDNN and OpenBLAS, and "
      "elementwise ops vs memcpy bandwidth. Each pair "
      "runs alternately (A B A B ...) and the table shows medians."};
  std::vector<std::string> sizes = {"1024x1024x1024", "2048x2048x2048", "128x784x1024"};
  std::vector<int> threads = {1, 2};
  cohort::bench::RunOptions run;
  int64_t mib = 64;
  std::string only = "all";
  app.add_option("--sizes", sizes, "matmul shapes MxKxN, (M, K) @ (K, N)")->delimiter(',')->capture_default_str();
  app.add_option("--threads", threads, "thread counts to run with")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--reps", run.reps, "timed calls of each contender (the median is shown)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", run.warmup, "untimed calls of each contender first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--mib", mib, "size of each elementwise operand in MiB")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--only", only, "run only one comparison")
      ->check(CLI::IsMember({"all", "matmul", "gemm", "elementwise"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    std::vector<cohort::bench::MatmulShape> shapes;
    for (const std::string& s : sizes) shapes.push_back(parse_shape(s));
    std::printf(
        "# cohort-bench-core: cohort %s, %s, %d OpenMP threads by default, median of %d alternating runs "
        "after %d warm-up\n",
        COHORT_VERSION_STRING, onednn_version().c_str(), cohort::get_num_threads(), run.reps, run.warmup);
    if (only == "all" || only == "matmul") cohort::bench::matmul_bench(shapes, threads, run);
    if (only == "all") std::printf("\n");
    if (only == "all" || only == "gemm") cohort::bench::gemm_bench(cohort::bench::training_gemm_shapes(), run);
    if (only == "all") std::printf("\n");
    if (only == "all" || only == "elementwise") cohort::bench::elementwise_bench(mib, threads, run);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cohort-bench-core: %s\n", e.what());
    return 1;
  }
  return 0;
}
