#!/usr/bin/env bash
# Packs what a GPU machine without a package registry needs for scripts/gpu-check.sh and does not
# have: CLI11's headers and CMake package (examples, benchmarks, launcher), in .device/deps
# (git-ignored; it travels to the GPU machine, and gpu-check.sh points CMAKE_PREFIX_PATH at it).
#
#   scripts/pack-device-deps.sh            CLI11 only
#   scripts/pack-device-deps.sh --build    also builds the CUDA configuration here (build-gpu) and
#                                          packs its programs into .device/gpu-build.tar.gz, which
#                                          gpu-check.sh's build stage unpacks instead of building
#                                          (minutes of a short GPU lease), if the sources are the same
#
# Run it after scripts/dev.sh has installed the Debian packages. A build made here runs on the GPU
# machine: the same CUDA 13 toolkit, and this machine's glibc is older than the GPU image's.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "" | --build) ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "pack-device-deps.sh: unknown option '$1' (--build, --help)" >&2; exit 2 ;;
esac
out=.device/deps
rm -rf "$out"
mkdir -p "$out/include" "$out/share/cmake"
cp -r /usr/include/CLI "$out/include/"
cp -r /usr/share/cmake/CLI11 "$out/share/cmake/"
du -sh "$out"
if [ "${1:-}" = --build ]; then
  rm -f .device/gpu-build.tar.gz
  OUT=$(mktemp -d) BUILD_DIR=build-gpu JOBS=${JOBS:-2} COHORT_GPU_REBUILD=1 scripts/gpu-check.sh build pack
fi
