#!/usr/bin/env bash
# The binaries a user runs must start on a machine without a GPU driver, and programs that never
# touch a GPU must not pay for cuBLAS: none may link the driver library (libcuda) or cuBLAS
# (opened with dlopen on first use instead), and each must start and print its help here.
#   no_gpu_libraries_at_start.sh BINARY...
set -uo pipefail
status=0
for bin in "$@"; do
  linked=$(ldd "$bin" | grep -oE 'lib(cuda|cublas|cublasLt)\.so[.0-9]*' | sort -u | tr '\n' ' ')
  if [ -n "$linked" ]; then
    echo "FAIL $bin links $linked"
    status=1
  elif ! "$bin" --help > /dev/null 2>&1; then
    echo "FAIL $bin does not start (--help failed)"
    status=1
  else
    echo "ok   $bin"
  fi
done
exit $status
