#!/usr/bin/env bash
# The README's two commands, for a fresh Debian 12 machine of this project's kind:
#   scripts/dev.sh run    install what is missing, build, run the main job (no cluster, no GPU)
#   scripts/dev.sh test   install what is missing, build, run every test
# Options (environment): BUILD_DIR (default build), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}

# Debian packages cohort builds, runs and tests with (see docs/user-guide.md for what each is for).
PACKAGES=(
  cmake ninja-build g++ pkg-config
  libdnnl-dev ocl-icd-opencl-dev libopenblas-openmp-dev
  libopenmpi-dev openmpi-bin libucx-dev ucx-utils libpmix-dev
  slurmctld slurmd slurm-client munge iproute2
  libcereal-dev libboost-dev libcli11-dev nlohmann-json3-dev libspdlog-dev
  libgtest-dev libgmock-dev
  python3-torch python3-numpy libopenblas0-openmp
)

log() { printf '\033[1m[dev] %s\033[0m\n' "$*"; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "system packages: all ${#PACKAGES[@]} present"
    return
  fi
  log "installing ${#missing[@]} missing packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
}

build() {
  if [ -d /usr/local/cuda/bin ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
    export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
  fi
  log "configuring $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
  log "building with $JOBS jobs"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

case "${1:-}" in
  run)
    install_packages
    build
    log "main job: data-parallel training of the mlp example (784-1024-1024-10), 2 ranks on the CPU"
    "$BUILD_DIR/launcher/cohort-run" --nproc-per-node 2 "$BUILD_DIR/examples/mlp" --strategy ddp --steps 200 \
      --batch-size 64
    ;;
  test)
    install_packages
    build
    log "running every test"
    cd "$BUILD_DIR"
    ctest --output-on-failure -j "$JOBS"
    ;;
  *)
    echo "usage: scripts/dev.sh run|test" >&2
    echo "  run   install missing Debian packages, build, train the mlp example on 2 data-parallel ranks" >&2
    echo "  test  install missing Debian packages, build, run every test (ctest)" >&2
    exit 2
    ;;
esac
