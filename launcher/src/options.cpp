#include "options.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

namespace cohort::run {
namespace {

constexpr const char* kDescription =
    "cohort-run: start one rank of a multi-process cohort job with the torchrun-compatible rank\n"
    "contract, its own GPU or CPU cores, rank-prefixed output and fail-fast exit codes.";

constexpr const char* kUsage =
    "\nUsage:\n"
    "  srun [srun flags] cohort-run [flags] PROGRAM [ARGS...]         one cohort-run per task\n"
    "  mpirun -np N [mpirun flags] cohort-run [flags] PROGRAM [ARGS...] one per MPI process\n"
    "  cohort-run --nproc-per-node N [flags] PROGRAM [ARGS...]         starts N ranks here,\n"
    "                                 through `mpirun -np N cohort-run ...` (Open MPI needed)\n"
    "Flags end at PROGRAM (or at --); everything after it is the program's.\n";

// CLI11's usage line would read "cohort-run [OPTIONS]"; ours shows the three ways to start.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string) const override { return kUsage; }
};

constexpr const char* kFooter = R"(ENVIRONMENT CONTRACT (set for PROGRAM)
  RANK              global rank, 0 .. WORLD_SIZE-1
  LOCAL_RANK        rank among this node's ranks, 0 .. LOCAL_WORLD_SIZE-1
  WORLD_SIZE        number of ranks in the job
  LOCAL_WORLD_SIZE  number of ranks on this node
  NODE_RANK         index of this node, 0 .. GROUP_WORLD_SIZE-1 (GROUP_RANK: the same)
  GROUP_WORLD_SIZE  number of nodes
  MASTER_ADDR       host of rank 0: the first host of SLURM_STEP_NODELIST (srun); 127.0.0.1 on
                    one node; under mpirun on several nodes the allocation's first node inside
                    Slurm, else mpirun's host (first IPv4 address of OMPI_MCA_orte_hnp_uri)
  MASTER_PORT       --master-port, else an exported MASTER_PORT, else 10000 + FNV-1a(job and step
                    id) mod 20000 (the same on every rank); stand-alone: a free port
  COHORT_RUN_ID     an exported COHORT_RUN_ID, else slurm-<job>.<step> / ompi-<jobid> / local-...
  COHORT_RESTART_COUNT  as exported (cohortd counts restarts), else 0
  COHORT_CHECKPOINT_DIR, COHORT_DAEMON  passed through when set
  CUDA_VISIBLE_DEVICES  this rank's GPUs (GPU mode)     OMP_NUM_THREADS  cores given (CPU mode)
  Values come from OMPI_COMM_WORLD_* (mpirun; wins inside a Slurm allocation, where every mpirun
  rank sees SLURM_PROCID=0), else PMIX_RANK and SLURM_* of an srun step (SLURM_PROCID, SLURM_LOCALID,
  SLURM_NODEID, SLURM_STEP_NODELIST such as node[01-04,07], SLURM_STEP_TASKS_PER_NODE such as
  4(x2)), else an existing RANK/WORLD_SIZE/... contract. Inconsistent values are an error.

DEVICES
  GPUs are counted from --gpus N, else CUDA_VISIBLE_DEVICES, else /dev/nvidia<N>. With GPUs and
  --gpus-per-rank G >= 1, local rank i gets GPUs i*G .. i*G+G-1 as CUDA_VISIBLE_DEVICES; more local
  ranks than GPUs is an error (under srun --gpus-per-task, Slurm's own per-task list is kept).
  Without GPUs (or with --gpus-per-rank 0) the cores this process may use are split into
  LOCAL_WORLD_SIZE disjoint blocks (sched_setaffinity); with more ranks than cores they are shared
  round-robin (a note says so once). A binding asked for with mpirun --bind-to or srun
  --cpu-bind is kept; mpirun's default one (a socket shared by several ranks) is replaced.
  OMP_NUM_THREADS is set to the number of cores given unless already set.

OUTPUT, SIGNALS, FAILURES
  Each line the program writes is prefixed with "[RANK] " (stdout to stdout, stderr to stderr);
  with --log-dir DIR it goes to DIR/rank_<RANK>.out and .err instead. SIGINT, SIGTERM, SIGHUP,
  SIGUSR1 and SIGUSR2 are forwarded to the program. When the program fails, cohort-run prints
    cohort-run: rank 3 (host node2) failed: exit status 1
    cohort-run: rank 3 (host node2) failed: killed by signal 9 (SIGKILL)
  and exits with the program's code (128+N for signal N). mpirun then stops the other ranks;
  under srun pass -K1 (--kill-on-bad-exit=1) so that Slurm does. In stand-alone mode the parent
  prints one such line, for the rank that failed first. Ranks stopped by a forwarded signal are
  not reported. cohort-run's own errors (bad flags, inconsistent environment) exit with 2; a
  program that cannot be started, 127.

EXAMPLES
  srun -N 2 --ntasks-per-node 4 --kill-on-bad-exit=1 --mpi=pmix cohort-run ./train --epochs 3
  sbatch slurm/multi-node.sbatch ./train --epochs 3        (see slurm/README.md)
  mpirun -np 8 -q cohort-run --log-dir logs ./train
  cohort-run --nproc-per-node 2 --gpus-per-rank 0 ./train  (2 ranks on this machine's cores)
  srun -n 4 cohort-run env | sort                           (see what each rank gets)

More: docs/launching.md.)";

}  // namespace

ParsedCommandLine parse_options(int argc, char** argv) {
  ParsedCommandLine parsed;
  Options& o = parsed.options;
  CLI::App app(kDescription, "cohort-run");
  app.footer(kFooter);
  app.formatter(std::make_shared<HelpFormatter>());
  app.get_formatter()->column_width(26);
  // Flags stop at the first positional argument: the rest is the program's command line.
  app.prefix_command();

  app.add_option("--nproc-per-node", o.nproc_per_node,
                 "stand-alone: start N ranks on this machine through mpirun")
      ->type_name("N")
      ->check(CLI::Range(1, 4096).description(""));
  app.add_option("--gpus-per-rank", o.gpus_per_rank, "GPUs per rank (default 1); 0: CPU cores")
      ->type_name("G")
      ->check(CLI::Range(0, 1024).description(""));
  app.add_option("--gpus", o.gpus, "GPUs on this node (default: detect)")
      ->type_name("N")
      ->check(CLI::Range(0, 1024).description(""));
  bool no_cpu_bind = false;
  app.add_flag("--no-cpu-bind", no_cpu_bind, "leave the CPU affinity and OMP_NUM_THREADS alone");
  app.add_option("--log-dir", o.log_dir, "write DIR/rank_<RANK>.out/.err instead of prefixing")
      ->type_name("DIR");
  app.add_option("--master-addr", o.master_addr, "MASTER_ADDR for every rank")
      ->type_name("HOST");
  app.add_option("--master-port", o.master_port, "MASTER_PORT for every rank")
      ->type_name("PORT")
      ->check(CLI::Range(1, 65535).description(""));
  app.add_option("--mpirun", o.mpirun, "the mpirun to use in stand-alone mode (default: PATH)")
      ->type_name("PATH");
  app.add_flag("-v,--verbose", o.verbose, "each rank prints its contract and binding to stderr");
  app.add_option("--standalone-run-dir", o.standalone_dir, "internal: set by the parent")
      ->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    parsed.exit_code = code == 0 ? 0 : 2;
    return parsed;
  }
  o.cpu_bind = !no_cpu_bind;
  o.program = app.remaining();
  bool separated = !o.program.empty() && o.program.front() == "--";
  if (separated) o.program.erase(o.program.begin());
  if (!separated && !o.program.empty() && o.program.front().size() > 1 &&
      o.program.front()[0] == '-') {
    std::fprintf(stderr,
                 "cohort-run: unknown flag %s: expected one of the flags in cohort-run --help, "
                 "then the program (put -- before a program whose name starts with '-')\n",
                 o.program.front().c_str());
    parsed.exit_code = 2;
  } else if (o.program.empty()) {
    std::fprintf(stderr,
                 "cohort-run: no program given: expected `cohort-run [flags] PROGRAM [ARGS...]`, "
                 "found only flags. See cohort-run --help.\n");
    parsed.exit_code = 2;
  }
  return parsed;
}

}  // namespace cohort::run
