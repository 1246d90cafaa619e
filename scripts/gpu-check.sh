#!/usr/bin/env bash
# The GPU proof, for a machine with a GPU (an H100 or H200 lent for a few minutes): builds cohort's
# CUDA configuration (no MPI, oneDNN, OpenBLAS or Slurm: such a machine may have none of them), then
# runs the device-parity checks, trains the examples on the GPU, and runs the GPU benchmarks.
#
#   scripts/pack-device-deps.sh [--build]  # here, once: CLI11 for a machine without a registry;
#                                          # --build also builds the CUDA configuration here and packs it
#   scripts/gpu-check.sh [stage ...]       # there; stages: info build parity comm train bench compare
#                                          # (default: all). With a 15-minute lease: one call for
#                                          # "info build parity comm train", a second for "build bench compare"
#
#   info    the GPU, driver, toolkit, PyTorch, and where the CUDA libraries were found
#   build   the CUDA configuration (examples, benchmarks, GPU tests): unpacked from
#           .device/gpu-build.tar.gz when pack-device-deps.sh --build made one (and its programs start
#           there), else built there with cmake
#   parity  tests/gpu: every op and its gradient on cuda:0 against the CPU, each case in its own
#           process; the failed cases then run again under compute-sanitizer (memcheck)
#   comm    tests/parallel/nccl_gpu_test (collectives on CUDA tensors, stream order, lifetimes;
#           timeouts and send/recv with 2+ GPUs) and tests/data_parallel/ddp_gpu_test (Ddp over nccl
#           equals plain training on the GPU)
#   train   the examples train on the GPU (f32 and bf16 autocast); the loss must fall
#   bench   cohort-bench-gpu (kernels vs memcpy, both elementwise loops, matmul vs cuBLAS, flash vs
#           unfused attention), cohort-bench --backend nccl
#   compare benchmarks/training/compare_gpu.py (cohort vs PyTorch on the same GPU, and cohort with
#           its unfused attention)
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

# The CUDA libraries the programs load (cudart, cuBLAS, cuDNN, NCCL) may live in the toolkit or in
# pip's nvidia-* packages (CUDA 13 wheels keep most of them in nvidia/cu13/lib, NCCL in
# nvidia/nccl/lib): their directories go on LD_LIBRARY_PATH, and pip's package roots on
# CMAKE_PREFIX_PATH for a build here.
gpu_lib_dirs=()
gpu_pkg_roots=()
find_gpu_libs() {
  local roots=(/usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu)
  local site
  for site in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    [ -d "$site/nvidia" ] && roots+=("$site/nvidia")
  done
  local lib dir
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libnccl.so.2; do
    dir=$(find "${roots[@]}" -maxdepth 3 -name "$lib" -printf '%h\n' 2>/dev/null | head -1)
    if [ -n "$dir" ]; then
      [[ " ${gpu_lib_dirs[*]} " == *" $dir "* ]] || gpu_lib_dirs+=("$dir")
      case "$dir" in */nvidia/*/lib) gpu_pkg_roots+=("${dir%/lib}") ;; esac
    fi
  done
  local joined
  joined=$(IFS=:; echo "${gpu_lib_dirs[*]}")
  export LD_LIBRARY_PATH="$joined${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}
find_gpu_libs
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(info build parity comm train bench compare)
failed=()

log() { printf '\033[1m[gpu-check] %s\033[0m\n' "$*"; }
run_stage() {  # run_stage NAME SECONDS COMMAND...: output to the terminal and $OUT_DIR/NAME.txt
  local name=$1 seconds=$2
  shift 2
  log "$name"
  local state
  state="$(declare -p gpu_lib_dirs gpu_pkg_roots GPU_PROGRAMS GPU_TARGETS PACKED_BUILD CUDACXX); $(declare -f)"
  if ! timeout "$seconds" bash -c "$state; $*" 2>&1 | tee "$OUT_DIR/$name.txt"; then
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
  echo "CUDA libraries found in: ${gpu_lib_dirs[*]:-(none)}"
  local lib
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libnccl.so.2; do
    printf '  %-18s %s\n' "$lib" "$(find "${gpu_lib_dirs[@]}" -maxdepth 1 -name "$lib*" -printf '%f ' 2>/dev/null)"
  done
}

# The programs the later stages run, relative to the build directory.
GPU_PROGRAMS=(tests/gpu/cohort_gpu_checks examples/mlp examples/cnn examples/gpt benchmarks/comm/cohort-bench
  benchmarks/cohort-bench-gpu launcher/cohort-run tests/parallel/cohort_nccl_gpu_test
  tests/data_parallel/cohort_ddp_gpu_test)
GPU_TARGETS=(cohort_gpu_checks mlp cnn gpt cohort-bench cohort-bench-gpu cohort-run cohort_nccl_gpu_test
  cohort_ddp_gpu_test)
PACKED_BUILD=.device/gpu-build.tar.gz

# A fingerprint of the sources the programs are built from: a packed build is used only for the
# very sources it was built from.
source_fingerprint() {
  find CMakeLists.txt cmake core parallel launcher examples benchmarks tests checkpoint daemon -type f \
    \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name CMakeLists.txt -o -name '*.cmake' \) \
    -not -path '*/build*' 2>/dev/null | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -c1-16
}

stage_build() {
  set -o pipefail
  if [ -f "$PACKED_BUILD" ] && [ -z "${COHORT_GPU_REBUILD:-}" ]; then
    # Built elsewhere (pack-device-deps.sh --build, same CUDA 13 toolkit, an older glibc): saves the
    # minutes of a build on a leased machine. Used only for the same sources, and if its programs
    # start here.
    local want
    want=$(source_fingerprint)
    if ! tar -xzOf "$PACKED_BUILD" BUILT | grep -q "sources $want"; then
      echo "$PACKED_BUILD was built from other sources (these are $want): building here"
    elif mkdir -p "$BUILD" && tar -xzf "$PACKED_BUILD" -C "$BUILD" && cat "$BUILD/BUILT" &&
      "$BUILD/tests/gpu/cohort_gpu_checks" --list > /dev/null && "$BUILD/launcher/cohort-run" --help > /dev/null; then
      echo "using the programs packed in $PACKED_BUILD"
      return 0
    else
      echo "the packed programs do not start here: building here"
    fi
  fi
  local prefix="$PWD/.device/deps"
  local root
  for root in "${gpu_pkg_roots[@]}"; do prefix="$prefix;$root"; done
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOHORT_WITH_MPI=OFF -DCOHORT_WITH_DNNL=OFF \
    -DCOHORT_WITH_BLAS=OFF -DCOHORT_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" \
    -DCMAKE_PREFIX_PATH="$prefix" &&
    cmake --build "$BUILD" -j "$JOBS" --target "${GPU_TARGETS[@]}"
}

# (Where the build ran, not on the GPU machine.) Packs the built programs for gpu-check.sh's build
# stage on a machine where building would cost lease time: pack-device-deps.sh --build runs this.
stage_pack() {
  set -o pipefail
  {
    echo "built on $(hostname) $(date -u '+%Y-%m-%d %H:%M UTC'), $(ldd --version | head -1)"
    echo "sources $(source_fingerprint)"
    echo "$("$CUDACXX" --version | tail -1)"
  } > "$BUILD/BUILT" &&
    tar -czf "$PACKED_BUILD" -C "$BUILD" BUILT "${GPU_PROGRAMS[@]}" && ls -la "$PACKED_BUILD"
}

# Each case in its own process (a crash or a broken CUDA context stays with its case); up to four
# failed cases then run again under compute-sanitizer's memcheck, which names the kernel and the
# address of an out-of-bounds or misaligned access.
stage_parity() {
  local checks="$BUILD/tests/gpu/cohort_gpu_checks" log rc
  log=$(mktemp)
  "$checks" --isolate --case-timeout 120 | tee "$log"
  rc=${PIPESTATUS[0]}
  local failed sanitizer
  failed=$(sed -n 's/^# failed cases: //p' "$log")
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [ -n "$failed" ] && [ -x "$sanitizer" ]; then
    local c
    for c in $(echo "$failed" | tr ' ' '\n' | head -4); do
      echo "--- compute-sanitizer --tool memcheck: $c"
      timeout 120 "$sanitizer" --tool memcheck --print-limit 8 "$checks" --exact "$c" --child 2>&1 | tail -40
    done
  fi
  rm -f "$log"
  return "$rc"
}

# Each program has its own time limit too, so one that hangs leaves the stage's others their turn.
stage_comm() {
  local ok=0
  timeout 150 "$BUILD/tests/parallel/cohort_nccl_gpu_test" || ok=1
  timeout 120 "$BUILD/tests/data_parallel/cohort_ddp_gpu_test" || ok=1
  return $ok
}

# PASS when the run exited 0 and its loss fell: the first logged loss ("step 1  loss L" from the
# examples' log_step, "1/N  loss L ..." from fit()'s progress lines) against the final JSON line's
# "loss" (the only line with a quoted "loss": key; not necessarily the file's last line, which
# may be something a library printed to stderr at exit).
train_verdict() {  # train_verdict LOG RC LABEL
  local log_file=$1 rc=$2 label=$3 first last verdict=FAIL
  first=$(grep -m1 -oE 'loss [0-9.]+' "$log_file" | awk '{print $2}')
  last=$(grep -oE '"loss": [0-9.e+-]+' "$log_file" | tail -1 | awk '{print $2}')
  if [ "$rc" -eq 0 ] && [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a)}'; then
    verdict=PASS
  fi
  echo "$verdict $label rc=$rc first loss $first final loss $last :: $(grep '"loss":' "$log_file" | tail -1)"
  [ "$verdict" = PASS ]
}

# Each example trains on the GPU; the loss must fall (the first logged loss against the final one).
stage_train() {
  local ok=0 rc
  for model in mlp cnn gpt; do
    local steps=200
    [ "$model" = cnn ] && steps=100
    for amp in none bf16; do
      local log_file="$OUT_DIR/train-$model-$amp.log"
      timeout 120 "$BUILD/examples/$model" --device cuda --amp "$amp" --steps "$steps" --log-every 20 > "$log_file" 2>&1
      rc=$?
      train_verdict "$log_file" "$rc" "$model amp=$amp" || ok=1
    done
  done
  # Data parallel over NCCL on the one GPU (a world of one rank, through the launcher).
  local log_file="$OUT_DIR/train-mlp-ddp.log"
  timeout 120 "$BUILD/launcher/cohort-run" --nproc-per-node 1 "$BUILD/examples/mlp" --device cuda --strategy ddp \
    --steps 200 --log-every 20 > "$log_file" 2>&1
  rc=$?
  train_verdict "$log_file" "$rc" "mlp ddp over nccl" || ok=1
  return $ok
}

stage_bench() {
  local ok=0
  "$BUILD/benchmarks/cohort-bench-gpu" || ok=1
  echo "--- the same kernels with the plain elementwise loop (COHORT_CUDA_VECTORIZE=0), for the ratio"
  COHORT_CUDA_VECTORIZE=0 "$BUILD/benchmarks/cohort-bench-gpu" --only kernels || ok=1
  timeout 120 "$BUILD/benchmarks/comm/cohort-bench" all_reduce --backend nccl -b 8 -e 256M -f 2 || ok=1
  for c in all_gather reduce_scatter broadcast; do
    timeout 60 "$BUILD/benchmarks/comm/cohort-bench" "$c" --backend nccl -b 8 -e 64M -f 4 || ok=1
  done
  return $ok
}

stage_compare() { python3 benchmarks/training/compare_gpu.py --build "$BUILD"; }

# Time limits per stage (seconds), so one hung stage cannot eat a short lease.
declare -A limit=([info]=60 [build]=900 [pack]=120 [parity]=300 [comm]=300 [train]=400 [bench]=300 [compare]=540)
for s in "${stages[@]}"; do
  case "$s" in
    info | build | pack | parity | comm | train | bench | compare)
      run_stage "$s" "${limit[$s]}" "stage_$s" ;;
    *) echo "gpu-check.sh: unknown stage '$s' (info build parity comm train bench compare; pack)" >&2; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  log "failed stages: ${failed[*]}"
  exit 1
fi
log "all stages passed"
