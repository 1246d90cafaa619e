#!/usr/bin/env bash
# The GPU proof, for a machine with a GPU (an H100 or H200 lent for a few minutes): builds cohort's
# CUDA configuration (no MPI, oneDNN, OpenBLAS or Slurm: such a machine may have none of them), then
# runs the device-parity checks, trains the examples on the GPU, and runs the GPU benchmarks.
#
#   scripts/pack-device-deps.sh            # here, once: CLI11 for a machine without a registry
#   scripts/gpu-check.sh [stage ...]       # there; stages: info build parity comm train bench (default: all)
#
#   info    the GPU, driver, toolkit, PyTorch
#   build   the CUDA configuration (examples, benchmarks, GPU tests)
#   parity  tests/gpu: every op and its gradient on cuda:0 against the CPU
#   comm    tests/parallel/nccl_gpu_test (collectives on CUDA tensors, stream order, lifetimes;
#           timeouts and send/recv with 2+ GPUs) and tests/data_parallel/ddp_gpu_test (Ddp over nccl
#           equals plain training on the GPU)
#   train   the examples train on the GPU (f32 and bf16 autocast); the loss must fall
#   bench   cohort-bench-gpu (kernels vs memcpy, matmul vs cuBLAS), cohort-bench --backend nccl,
#           benchmarks/training/compare_gpu.py (cohort vs PyTorch on the same GPU)
#
# Results go to $OUT (the device tool's folder) or ./gpu-out: one file per stage, each line as it
# is printed, so a stage cut off by a time limit still leaves what it did. Exit status: non-zero if a
# stage failed (the others still run).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-gpu-out}
BUILD=${BUILD_DIR:-build-gpu}
JOBS=${JOBS:-$(nproc)}
export OUT_DIR BUILD JOBS
mkdir -p "$OUT_DIR"
export PATH="/usr/local/cuda/bin:$PATH"
export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
export PYTHONUNBUFFERED=1
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(info build parity comm train bench)
failed=()

log() { printf '\033[1m[gpu-check] %s\033[0m\n' "$*"; }
run_stage() {  # run_stage NAME SECONDS COMMAND...: output to the terminal and $OUT_DIR/NAME.txt
  local name=$1 seconds=$2
  shift 2
  log "$name"
  if ! timeout "$seconds" bash -c "$(declare -f); $*" 2>&1 | tee "$OUT_DIR/$name.txt"; then
    failed+=("$name")
    log "$name FAILED (see $OUT_DIR/$name.txt)"
  fi
}

stage_info() {
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
  nvcc --version | tail -1
  cmake --version | head -1
  python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))' || true
}

stage_build() {
  set -o pipefail
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOHORT_WITH_MPI=OFF -DCOHORT_WITH_DNNL=OFF \
    -DCOHORT_WITH_BLAS=OFF -DCOHORT_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" \
    -DCMAKE_PREFIX_PATH="$PWD/.device/deps" &&
    cmake --build "$BUILD" -j "$JOBS" --target cohort_gpu_checks mlp cnn gpt cohort-bench cohort-bench-gpu \
      cohort-run cohort_nccl_gpu_test cohort_ddp_gpu_test
}

stage_parity() { "$BUILD/tests/gpu/cohort_gpu_checks"; }

stage_comm() {
  local ok=0
  "$BUILD/tests/parallel/cohort_nccl_gpu_test" || ok=1
  "$BUILD/tests/data_parallel/cohort_ddp_gpu_test" || ok=1
  return $ok
}

# Each example trains on the GPU; the loss must fall (the first logged loss against the final one).
stage_train() {
  local ok=0
  for model in mlp cnn gpt; do
    local steps=200
    [ "$model" = cnn ] && steps=100
    for amp in none bf16; do
      local log_file="$OUT_DIR/train-$model-$amp.log"
      "$BUILD/examples/$model" --device cuda --amp "$amp" --steps "$steps" --log-every 20 > "$log_file" 2>&1
      local rc=$?
      local first last
      first=$(grep -m1 -oE 'loss [0-9.]+' "$log_file" | awk '{print $2}')
      last=$(tail -1 "$log_file" | grep -oE '"loss": [0-9.e+-]+' | awk '{print $2}')
      local verdict=FAIL
      if [ $rc -eq 0 ] && [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a)}'; then
        verdict=PASS
      else
        ok=1
      fi
      echo "$verdict $model amp=$amp rc=$rc first loss $first final loss $last :: $(tail -1 "$log_file")"
    done
  done
  # Data parallel over NCCL on the one GPU (a world of one rank, through the launcher).
  local log_file="$OUT_DIR/train-mlp-ddp.log"
  "$BUILD/launcher/cohort-run" --nproc-per-node 1 "$BUILD/examples/mlp" --device cuda --strategy ddp --steps 200 \
    --log-every 20 > "$log_file" 2>&1
  local rc=$?
  echo "$([ $rc -eq 0 ] && echo PASS || echo FAIL) mlp ddp over nccl rc=$rc :: $(tail -1 "$log_file")"
  [ $rc -eq 0 ] || ok=1
  return $ok
}

stage_bench() {
  local ok=0
  "$BUILD/benchmarks/cohort-bench-gpu" || ok=1
  "$BUILD/benchmarks/comm/cohort-bench" all_reduce --backend nccl -b 8 -e 256M -f 2 || ok=1
  for c in all_gather reduce_scatter broadcast; do
    "$BUILD/benchmarks/comm/cohort-bench" "$c" --backend nccl -b 8 -e 64M -f 4 || ok=1
  done
  python3 benchmarks/training/compare_gpu.py --build "$BUILD" || ok=1
  return $ok
}

# Time limits per stage (seconds), so one hung stage cannot eat a short lease.
declare -A limit=([info]=60 [build]=900 [parity]=300 [comm]=300 [train]=400 [bench]=600)
for s in "${stages[@]}"; do
  case "$s" in
    info | build | parity | comm | train | bench)
      run_stage "$s" "${limit[$s]}" "stage_$s" ;;
    *) echo "gpu-check.sh: unknown stage '$s' (info build parity comm train bench)" >&2; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  log "failed stages: ${failed[*]}"
  exit 1
fi
log "all stages passed"
