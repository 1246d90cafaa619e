// cohort-bench: nccl-tests' collective benchmarks for cohort's communicators.
//
//   mpirun -np 2 cohort-bench all_reduce -b 8 -e 256M -f 2 --compare-mpi
//   srun -n 8 cohort-bench all_gather -b 1K -e 1G -f 4 --backend nccl --csv ag.csv --plot ag.svg
//   cohort-bench all_reduce --backend nccl -b 8 -e 256M -f 2     # one GPU, no MPI needed
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "bench.h"
#include "buffers.h"
#include "cohort/config.h"
#include "cohort/core/cuda.h"
#include "cohort/parallel/comm/mpi_backend.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "harness.h"
#include "report.h"
#if COHORT_BENCH_WITH_ENV
#include "cohort/env/environment.h"
#include "cohort/env/rank_env.h"
#endif

namespace cohort::bench {
namespace {

// A mistake in how the benchmark was asked for, found the same way on every rank: reported
// without aborting the job.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// nccl-tests' sizes: a number with an optional K, M or G (powers of 1024).
size_t parse_size(const std::string& text, const char* what) {
  char unit = 0;
  double value = 0;
  const int n = std::sscanf(text.c_str(), "%lf%c", &value, &unit);
  double scale = 1;
  if (n == 2) {
    switch (unit) {
      case 'K': case 'k': scale = 1024.0; break;
      case 'M': case 'm': scale = 1024.0 * 1024; break;
      case 'G': case 'g': scale = 1024.0 * 1024 * 1024; break;
      default: throw UsageError(std::string("invalid size for ") + what + ": '" + text + "' (use e.g. 8, 64K, 256M, 1G)");
    }
  } else if (n != 1 || value < 0) {
    throw UsageError(std::string("invalid size for ") + what + ": '" + text + "'");
  }
  return static_cast<size_t>(value * scale);
}

// Who this rank is. Under MPI the launch must give MPI all the ranks: cohort-run on its own (no
// mpirun/srun) starts processes that each see an MPI world of one.
struct Launch {
  int rank = 0, size = 1, local_rank = 0;
  std::string master_addr;  // store rendezvous: rank 0's TcpStore
  int master_port = 0;
};

Launch check_launch(const MpiReference& mpi) {
  Launch launch;
#if COHORT_BENCH_WITH_ENV
  const auto env = env::Environment::from_process();
  for (auto read : {&env::RankEnv::from_contract}) {
    try {
      const env::RankEnv me = read(env);
      launch.local_rank = me.local_rank;
      if (me.world_size != mpi.size()) {
        throw UsageError("the launcher started " + std::to_string(me.world_size) + " ranks (" + me.origin +
                         ") but MPI sees " + std::to_string(mpi.size()) +
                         ": cohort-run alone starts no MPI job. Run it under mpirun or srun, e.g. "
                         "mpirun -np N cohort-run cohort-bench ...");
      }
      return launch;
    } catch (const env::EnvError&) {
      // no contract: started by mpirun/srun directly
    }
  }
  try {
    launch.local_rank = env::RankEnv::from_launcher(env).local_rank;
  } catch (const env::EnvError&) {
  }
#endif
  (void)mpi;
  return launch;
}

// Without MPI: the rank contract (cohort-run, torchrun-style variables) or the variables of the
// launcher that started this process (srun, mpirun); neither means a world of one.
Launch store_launch() {
  Launch launch;
#if COHORT_BENCH_WITH_ENV
  const auto env = env::Environment::from_process();
  try {
    env::RankEnv me;
    try {
      me = env::RankEnv::from_contract(env);
    } catch (const env::EnvError&) {
      if (!env::detect_launcher(env)) return launch;
      me = env::RankEnv::from_launcher(env);
    }
    launch.rank = me.rank;
    launch.size = me.world_size;
    launch.local_rank = me.local_rank;
    launch.master_addr = me.master_addr;
    launch.master_port = me.master_port;
  } catch (const env::EnvError& e) {
    throw UsageError(std::string("cannot tell which rank this is: ") + e.what());
  }
#endif
  return launch;
}

int run(int argc, char** argv) {
  BenchOptions o;
  std::string min_s = "32M", max_s = "32M", step_s = "1M", dtype_s = "float", op_s = "sum";
  std::string chunk_s, streaming_s, async_s;  // mpi tuning, empty: the backend's default
  CLI::App app{"cohort-bench: collective benchmarks with nccl-tests' output (size, count, type, redop, root, "
               "time, algbw, busbw, #wrong; out-of-place and in-place). Run it under mpirun, srun or "
               "`mpirun ... cohort-run` (every rank runs the same command), or on its own for one rank "
               "(--backend nccl on one GPU needs no MPI)."};
  app.add_option("collective", o.collective, "all_reduce, all_gather, reduce_scatter or broadcast")
      ->required()
      ->check(CLI::IsMember(collective_names()));
  app.add_option("-b,--minbytes", min_s, "smallest message size (8, 1K, 1M, 1G)")->capture_default_str();
  app.add_option("-e,--maxbytes", max_s, "largest message size")->capture_default_str();
  app.add_option("-i,--stepbytes", step_s, "size increment when the factor is 1")->capture_default_str();
  app.add_option("-f,--stepfactor", o.step_factor, "size multiplier between rows")->capture_default_str();
  app.add_option("-n,--iters", o.iters, "timed iterations per size")->capture_default_str();
  app.add_option("-w,--warmup_iters", o.warmup, "warm-up iterations (at the largest and the smallest size)")
      ->capture_default_str();
  app.add_option("-c,--check", o.check, "data-check iterations per size (0: no check, #wrong shows N/A)")
      ->capture_default_str();
  app.add_option("-d,--datatype", dtype_s, "float, double, bfloat16, half, int32, int64, bool (or f32, bf16, ...)")
      ->capture_default_str();
  app.add_option("-o,--op", op_s, "sum, avg, max or min")->capture_default_str();
  app.add_option("-r,--root", o.root, "root rank of broadcast")->capture_default_str();
  app.add_option("--backend", o.backend, "mpi (host memory) or nccl (device memory)")
      ->check(CLI::IsMember({"mpi", "nccl"}))
      ->capture_default_str();
  std::string rendezvous = "auto";
  app.add_option("--rendezvous", rendezvous,
                 "how the ranks meet: mpi (an MPI job: mpirun, srun), store (the rank contract's "
                 "MASTER_ADDR:MASTER_PORT as cohort-run sets it; a single rank needs nothing), or auto: mpi when "
                 "this build has MPI, else store")
      ->check(CLI::IsMember({"auto", "mpi", "store"}))
      ->capture_default_str();
  app.add_option("--algorithm", o.algorithm, "mpi backend: auto, shm (shared memory) or native (MPI's collectives)")
      ->check(CLI::IsMember({"auto", "shm", "native"}))
      ->capture_default_str();
  app.add_option("--chunk-bytes", chunk_s, "mpi backend: shared-memory pipeline step (default 512K)");
  app.add_option("--streaming-bytes", streaming_s,
                 "mpi backend: all-reduces this large write their output with non-temporal stores (0: never; "
                 "default 8M)");
  app.add_option("--async-bytes", async_s,
                 "mpi backend: collectives this large start on the progress thread at once, smaller ones in wait() "
                 "(default 256K)");
  app.add_flag("--compare-mpi", o.compare_mpi,
               "also time the plain MPI call (MPI_Allreduce, ...) in alternating blocks and add its columns");
  app.add_option("--repeats", o.repeats, "timed blocks per size and placement; the median is reported")
      ->capture_default_str();
  app.add_option("--csv", o.csv, "also write the rows to this CSV file");
  app.add_option("--json", o.json, "also write the results to this JSON file");
  app.add_option("--plot", o.plot, "also draw busbw against size into this SVG file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.min_bytes = parse_size(min_s, "-b");
  o.max_bytes = parse_size(max_s, "-e");
  o.step_bytes = parse_size(step_s, "-i");
  if (!chunk_s.empty()) o.chunk_bytes = parse_size(chunk_s, "--chunk-bytes");
  if (!streaming_s.empty()) o.streaming_bytes = static_cast<long>(parse_size(streaming_s, "--streaming-bytes"));
  if (!async_s.empty()) o.async_bytes = static_cast<long>(parse_size(async_s, "--async-bytes"));
  if (!parse_dtype(dtype_s, o.dtype)) throw UsageError("unknown datatype '" + dtype_s + "'");
  if (!parse_op(op_s, o.op)) throw UsageError("unknown op '" + op_s + "'");
  if (o.min_bytes > o.max_bytes) throw UsageError("-b is larger than -e");
  if (o.step_factor < 1 || o.iters < 1 || o.repeats < 1) throw UsageError("-f, -n and --repeats must be >= 1");
  if (o.step_factor == 1 && o.step_bytes == 0) throw UsageError("-i must be > 0 when -f is 1");
  if (o.op == ReduceOp::avg && !is_floating(o.dtype)) throw UsageError("-o avg needs a floating datatype");
  const CollectiveDesc& desc = *find_collective(o.collective);

  if (rendezvous == "auto") rendezvous = parallel::mpi_backend_built() ? "mpi" : "store";
  if (rendezvous == "mpi" && !parallel::mpi_backend_built()) {
    throw UsageError("--rendezvous mpi: this cohort-bench was built without MPI; use --rendezvous store");
  }
  if (rendezvous == "store" && o.backend != "nccl") {
    throw UsageError("--backend mpi needs the ranks to be an MPI job: use --rendezvous mpi (under mpirun or srun)" +
                     std::string(parallel::mpi_backend_built() ? "" : ", in a cohort built with MPI"));
  }
  if (o.compare_mpi && o.backend != "mpi") throw UsageError("--compare-mpi compares host memory: use --backend mpi");

  // Destroyed in reverse: communicators, then the store and the bookkeeping, then MPI.
  std::unique_ptr<parallel::MpiSession> session;
  std::unique_ptr<MpiReference> mpi;
  std::shared_ptr<parallel::Store> store;
  std::unique_ptr<Control> store_control;
  Launch launch;
  if (rendezvous == "mpi") {
    session = std::make_unique<parallel::MpiSession>(&argc, &argv);
    mpi = std::make_unique<MpiReference>();
    launch = check_launch(*mpi);
    launch.rank = mpi->rank();
    launch.size = mpi->size();
  } else {
    launch = store_launch();
    if (launch.size == 1) {
      store = std::make_shared<parallel::HashStore>();
    } else {
      store = std::make_shared<parallel::TcpStore>(launch.master_addr, launch.master_port, launch.rank == 0);
    }
    store_control = make_store_control(store, launch.rank, launch.size);
  }
  const Control& control = mpi ? static_cast<const Control&>(*mpi) : *store_control;
  if (o.root < 0 || o.root >= control.size()) throw UsageError("-r: root " + std::to_string(o.root) + " is not a rank");
  if (o.compare_mpi && !MpiReference::supports(o.dtype, o.op) && desc.reduces) {
    throw UsageError("--compare-mpi: MPI cannot reduce " + std::string(nccl_type_name(o.dtype)) + " with " +
                     parallel::reduce_op_name(o.op) + " by itself; use -d float/double/int32/int64 and -o sum/max/min");
  }

  std::shared_ptr<parallel::Communicator> bootstrap, comm;
  int device = -1, pci = 0;
  std::string device_desc;
  if (o.backend == "mpi") {
    parallel::MpiOptions mo;
    mo.algorithm = o.algorithm == "shm"      ? parallel::MpiOptions::Algorithm::shared_memory
                   : o.algorithm == "native" ? parallel::MpiOptions::Algorithm::native
                                             : parallel::MpiOptions::Algorithm::automatic;
    if (o.chunk_bytes) mo.chunk_bytes = o.chunk_bytes;
    if (o.streaming_bytes >= 0) mo.streaming_bytes = static_cast<size_t>(o.streaming_bytes);
    if (o.async_bytes >= 0) mo.async_bytes = static_cast<size_t>(o.async_bytes);
    comm = parallel::make_mpi_world_communicator("bench", mo);
    device_desc = "CPU, cohort " + comm->description();
  } else {
    if (!parallel::nccl_backend_built()) throw UsageError("this cohort-bench was built without NCCL");
    const int gpus = parallel::cuda_device_count();
    if (gpus == 0) throw UsageError("--backend nccl: " + parallel::cuda_unavailable_reason());
    device = launch.local_rank % gpus;
    // Before the first CUDA call that needs a context: otherwise one is made on cuda:0 too, in
    // every rank of the node (a device guard restores the thread's implicit device 0).
    cuda::set_device(device);
    if (mpi) {
      bootstrap = parallel::make_mpi_world_communicator("bootstrap");
      comm = parallel::make_nccl_communicator(*bootstrap, device, {"bench"});
    } else {
      comm = parallel::make_nccl_communicator(store, launch.rank, launch.size, device, {"bench"});
    }
    device_desc = device_name(device, &pci) + ", cohort " + comm->description();
  }

  const auto lines = control.gather_to_root(
      device_line({control.rank(), static_cast<int>(getpid()), device, pci, control.hostname(), device_desc}));
  const bool root_prints = control.rank() == 0;
  if (root_prints) {
    print_preamble(stdout, o, lines);
    print_header(stdout, o.compare_mpi);
  }
  BenchContext ctx{o, desc, *comm, control, mpi.get(), o.backend == "nccl", device < 0 ? 0 : device,
                   [&](const Row& row) {
                     if (root_prints) print_row(stdout, o, desc, row);
                   }};
  Results results = run_benchmark(ctx);
  results.backend_detail = comm->description();
  if (root_prints) {
    print_footer(stdout, results);
    if (!o.csv.empty()) write_csv(o.csv, results, desc);
    if (!o.json.empty()) write_json(o.json, results, desc);
    if (!o.plot.empty()) write_svg(o.plot, results, desc);
  }
  comm.reset();
  bootstrap.reset();
  control.barrier();
  return results.errors ? 1 : 0;
}

}  // namespace
}  // namespace cohort::bench

int main(int argc, char** argv) {
  try {
    return cohort::bench::run(argc, argv);
  } catch (const cohort::bench::UsageError& e) {
    std::fprintf(stderr, "cohort-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cohort-bench: error: %s\n", e.what());
    return 1;
  }
}
