#!/usr/bin/env bash
# Parallel against sequential listing on a real server: fake-gcs-server holding
# N objects (100 "day=" directories of N/100 files), behind a proxy that delays
# every request by 20 ms (scripts/latency_proxy.py). Times `hugesync plan` of
# the bucket into an empty directory with --list-requests 1 and with the
# store's default, same run, twice each.
#
# The server keeps its objects on disk (`-backend filesystem`) under
# target/bench-listing-gcs/fs-N, loaded once by `hugesync sync` through the
# server's own upload API and kept for later runs: its in-memory backend
# finds each new object by a linear search (two Sprintf calls a comparison),
# so loading 100,000 objects there takes longer than 20 minutes, whether by
# upload or by `-data`. This backend's listing walks the whole bucket
# directory and reads the metadata of every object under the request's
# prefix, for every page: a page of the whole bucket costs it far more than a
# page of a narrowed range, which is what the parallel listing asks for.
# Usage: scripts/bench-listing-gcs.sh [N] [DELAY_MS]   (default 100000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
delay=${2:-20}
source scripts/moto.sh
source scripts/gcs.sh
install_gcs
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi
work=$(realpath -m target/bench-listing-gcs)
root="$work/fs-$n"
mkdir -p "$work/empty"
port=$(free_port)
proxy=""
trap 'stop_gcs; kill $proxy 2>/dev/null || true' EXIT
mkdir -p "$root"
start_gcs "$port" -backend filesystem -filesystem-root "$root"
if [ ! -f "$root/.complete" ]; then
  rm -rf "$work/data"
  mkdir -p "$work/data"
  python3 - "$work/data" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 100)
for i in range(n):
    d = os.path.join(root, f"day={i // per:03d}")
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"part-{i:07d}.parquet"), "wb") as f:
        f.write(b"x")
PY
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"name":"bench"}' "http://127.0.0.1:$port/storage/v1/b?project=test"
  started=$(date +%s)
  STORAGE_EMULATOR_HOST="http://127.0.0.1:$port" "$bin" sync --yes -q "$work/data" gs://bench/table
  echo "loaded $n objects into fake-gcs-server (hugesync sync, filesystem backend) in $(( $(date +%s) - started )) s"
  rm -rf "$work/data"
  touch "$root/.complete"
fi
proxy_port=$(free_port)
python3 scripts/latency_proxy.py "$proxy_port" "$port" "$delay" &
proxy=$!
sleep 0.5
export STORAGE_EMULATOR_HOST="http://127.0.0.1:$proxy_port"
run() {
  /usr/bin/time -f "%e %U %S" "$bin" plan --dry-run -q --json "$@" gs://bench/table "$work/empty" \
    2>"$work/time" >"$work/plan.json"
  read -r wall user sys <"$work/time"
  echo "$wall"
}
seq_s=$(run --list-requests 1)
par_s=$(run)
seq2_s=$(run --list-requests 1)
par2_s=$(run)
python3 - "$n" "$delay" "$seq_s" "$par_s" "$seq2_s" "$par2_s" <<'PY'
import sys
n, delay, s1, p1, s2, p2 = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
s, p = (s1 + s2) / 2, (p1 + p2) / 2
print(f"plan of {n} objects on fake-gcs-server, {delay} ms a request: "
      f"page after page {s1:.2f}/{s2:.2f} s, default requests in flight {p1:.2f}/{p2:.2f} s "
      f"-> {p / s:.2f}x (target <= 0.2x)")
PY
