#!/usr/bin/env bash
# Runs an example and checks that its last loss is below half of its first ("step N ... loss X" lines)
# and that its last line is one JSON object with step, loss and param_norm.
set -euo pipefail
out=$("$@")
echo "$out"
first=$(echo "$out" | grep -m1 -oP 'loss \K[0-9.]+')
last_json=$(echo "$out" | tail -n 1)
last=$(echo "$last_json" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert {"step","loss","param_norm"} <= d.keys(); print(d["loss"])')
/usr/bin/python3 - "$first" "$last" <<'PY'
import sys
first, last = map(float, sys.argv[1:])
print(f"first loss {first:.4f}, last loss {last:.4f}")
sys.exit(0 if last < 0.5 * first else 1)
PY
