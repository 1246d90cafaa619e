#!/usr/bin/env bash
# Packs what a GPU machine without a package registry needs to build cohort's CUDA configuration
# and does not have: CLI11's headers and CMake package (examples, benchmarks, launcher). Run here
# (after scripts/dev.sh has installed the Debian packages); the result, .device/deps (git-ignored),
# travels to the GPU machine and scripts/gpu-check.sh points CMAKE_PREFIX_PATH at it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device/deps
rm -rf "$out"
mkdir -p "$out/include" "$out/share/cmake"
cp -r /usr/include/CLI "$out/include/"
cp -r /usr/share/cmake/CLI11 "$out/share/cmake/"
du -sh "$out"
