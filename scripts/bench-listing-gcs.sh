#!/usr/bin/env bash
# Parallel against sequential listing on a real server: fake-gcs-server holding
# N objects (loaded at start from a directory, `-data`: 100 "day=" directories
# of N/100 files), behind a proxy that delays every request by 20 ms
# (scripts/latency_proxy.py). Times `hugesync plan` of the bucket into an empty
# directory with --list-requests 1 and with the store's default, same run.
# fake-gcs-server's loading is quadratic (10,000 objects: 13 s; 30,000: 159 s;
# 100,000: not done after 20 minutes) and each listing request scans the whole
# bucket on its 2 cores here, so its figures say more about the server than
# about the client; the in-memory simulation (scripts/bench-listing.sh) does not.
# Usage: scripts/bench-listing-gcs.sh [N] [DELAY_MS]   (default 10000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
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
if [ ! -f "$work/.complete-$n" ]; then
  rm -rf "$work" && mkdir -p "$work/data/bench"
  python3 - "$work/data/bench" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 100)
for i in range(n):
    d = os.path.join(root, "table", f"day={i // per:03d}")
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"part-{i:07d}.parquet"), "wb") as f:
        f.write(b"x")
PY
  touch "$work/.complete-$n"
fi
mkdir -p "$work/empty"
port=$(free_port)
started=$(date +%s)
"$(gcs_binary)" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
  -data "$work/data" -external-url "http://127.0.0.1:$port" -log-level error \
  >"target/emu/gcs-$port.log" 2>&1 &
server=$!
proxy_port=$(free_port)
python3 scripts/latency_proxy.py "$proxy_port" "$port" "$delay" &
proxy=$!
trap 'kill $server $proxy 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/storage/v1/b?project=test" && break
  sleep 0.5
done
echo "fake-gcs-server loaded $n objects in $(( $(date +%s) - started )) s"
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
