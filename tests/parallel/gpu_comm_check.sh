#!/usr/bin/env bash
# The communication part of the GPU proof; one GPU is enough (a world of one rank). Builds the CUDA
# configuration a bare GPU machine can build (no MPI, oneDNN, OpenBLAS; CLI11 from .device/deps, as
# scripts/gpu-check.sh does), then runs
#   nccl   tests/parallel/nccl_gpu_test: every collective on raw pointers and CUDA tensors, CPU
#          tensors refused, stream order on a non-default current stream, lifetimes, destruction
#          with work queued (and with 2+ GPUs: send/recv, the watchdog's timeout and abort);
#   ddp    tests/data_parallel/ddp_gpu_test: Ddp over nccl equals plain training on the GPU;
#   bench  cohort-bench --backend nccl for the four collectives (nccl-tests' table, CUDA events).
#
#   tests/parallel/gpu_comm_check.sh [step ...]     # steps: build nccl ddp bench (default: all)
#
# Output goes to $OUT (the device tool's folder) or ./gpu-out, one file per step, as it is printed.
# Exit status: non-zero if a step failed (the others still run).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${OUT:-gpu-out}
BUILD=${BUILD_DIR:-build-gpu}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT_DIR"
export PATH="/usr/local/cuda/bin:$PATH"
export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build nccl ddp bench)
failed=()

run() {  # run NAME SECONDS COMMAND...: to the terminal and $OUT_DIR/comm-NAME.txt
  local name=$1 seconds=$2
  shift 2
  printf '\033[1m[gpu-comm] %s: %s\033[0m\n' "$name" "$*"
  if ! timeout "$seconds" "$@" 2>&1 | tee "$OUT_DIR/comm-$name.txt"; then
    failed+=("$name")
    printf '\033[1m[gpu-comm] %s FAILED\033[0m\n' "$name"
  fi
}

step_build() {
  run configure 120 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOHORT_WITH_MPI=OFF \
    -DCOHORT_WITH_DNNL=OFF -DCOHORT_WITH_BLAS=OFF -DCOHORT_WITH_CUDA=ON -DCOHORT_WITH_NCCL=ON \
    -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" -DCOHORT_BUILD_EXAMPLES=OFF -DCMAKE_PREFIX_PATH="$PWD/.device/deps"
  # One target per command: a missing one (tests/CMakeLists.txt must add these directories
  # before it looks for GoogleTest) does not stop the others.
  for target in cohort-bench cohort_nccl_gpu_test cohort_ddp_gpu_test; do
    run "build-$target" 600 cmake --build "$BUILD" -j "$JOBS" --target "$target"
  done
}

step_nccl() { run nccl 240 "$BUILD/tests/parallel/cohort_nccl_gpu_test"; }
step_ddp() { run ddp 240 "$BUILD/tests/data_parallel/cohort_ddp_gpu_test"; }
step_bench() {
  run bench-all_reduce 180 "$BUILD/benchmarks/comm/cohort-bench" all_reduce --backend nccl -b 8 -e 256M -f 2
  for c in all_gather reduce_scatter broadcast; do
    run "bench-$c" 120 "$BUILD/benchmarks/comm/cohort-bench" "$c" --backend nccl -b 8 -e 64M -f 4
  done
}

for s in "${steps[@]}"; do
  case "$s" in
    build | nccl | ddp | bench) "step_$s" ;;
    *) echo "gpu_comm_check.sh: unknown step '$s' (build nccl ddp bench)" >&2; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "[gpu-comm] failed: ${failed[*]}"
  exit 1
fi
echo "[gpu-comm] all steps passed"
