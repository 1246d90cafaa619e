#!/usr/bin/env bash
# Configures a second build of the source tree with extra cache options, builds cohort_core_tests
# (-j2) and runs it.
#   build_and_test.sh SRC BUILD_DIR GENERATOR CXX_COMPILER [-DOPTION=VALUE ...]
set -euo pipefail
src=$1 build=$2 generator=$3 cxx=$4
shift 4
mkdir -p "$build"
cmake -S "$src" -B "$build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release "$@" \
  > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
grep -h "COHORT_WITH_DNNL\|build type" "$build/configure.log" || true
dnnl=$(sed -n 's/^#define COHORT_WITH_DNNL \([01]\)$/\1/p' "$build/generated/cohort/config.h")
echo "config: cohort/config.h says COHORT_WITH_DNNL $dnnl"
cmake --build "$build" -j2 --target cohort_core_tests > "$build/build.log" 2>&1 \
  || { tail -n 60 "$build/build.log"; echo "config: the build failed (full log: $build/build.log)"; exit 1; }
"$build/tests/cohort_core_tests" --gtest_brief=1
echo "config: COHORT_WITH_DNNL=$dnnl build passed"
