#!/usr/bin/env bash
# loss_falls.sh for a GPU run of an example (PROGRAM --device cuda ARGS...): exits 77 (ctest:
# skipped) when one step of PROGRAM on the GPU says there is no usable GPU, else checks the whole
# run as loss_falls.sh does.
set -uo pipefail
err=$(mktemp)
trap 'rm -f "$err"' EXIT
if ! "$1" --device cuda --steps 1 --log-every 1000 >/dev/null 2>"$err"; then
  if grep -q "no usable GPU" "$err"; then
    echo "skipped: $(cat "$err")"
    exit 77
  fi
  cat "$err" >&2
  exit 1
fi
exec bash "$(dirname "$0")/loss_falls.sh" "$@"
