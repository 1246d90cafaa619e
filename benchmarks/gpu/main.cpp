// cohort-bench-gpu: cohort's CUDA kernels against the ceilings they should reach — the copy
// engine's memory bandwidth for the memory-bound ops, cuBLAS called directly for matmul.
// Without a GPU it says so and exits 77.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cohort/core/core.h"
#include "gpu_benches.h"

int main(int argc, char** argv) {
  using namespace cohort;
  using namespace cohort::bench;
  CLI::App app{"cohort-bench-gpu: cohort's CUDA kernels against memcpy bandwidth and cuBLAS, on cuda:0"};
  std::string only = "all";
  int64_t mib = 256;
  GpuRunOptions run;
  app.add_option("--only", only, "run only one comparison")
      ->check(CLI::IsMember({"all", "kernels", "matmul", "attention"}));
  app.add_option("--mib", mib, "size of each f32 operand of the memory-bound ops, MiB")->check(CLI::PositiveNumber);
  app.add_option("--reps", run.reps, "timed runs of each contender (the median is shown)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", run.warmup, "untimed runs of each contender first");
  CLI11_PARSE(app, argc, argv);
  if (!cuda::is_available()) {
    std::fprintf(stderr, "cohort-bench-gpu: %s; run it on a machine with a GPU\n", cuda::unavailable_reason().c_str());
    return 77;
  }
  try {
    if (only == "all" || only == "kernels") kernels_bench(mib, run);
    if (only == "all" || only == "matmul") {
      matmul_bench({{"square 4096", 4096, 4096, 4096},
                    {"square 8192", 8192, 8192, 8192},
                    {"gpt qkv (B*T=1024, C=128)", 1024, 128, 384},
                    {"gpt fc (B*T=1024, C=128)", 1024, 128, 512},
                    {"large qkv (B*T=16384, C=768)", 16384, 768, 2304},
                    {"large fc (B*T=16384, C=768)", 16384, 768, 3072},
                    {"large proj2 (B*T=16384, 4C=3072)", 16384, 3072, 768}},
                   run);
    }
    if (only == "all" || only == "attention") attention_bench(run);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cohort-bench-gpu: %s\n", e.what());
    return 1;
  }
  return 0;
}
