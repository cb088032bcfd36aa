#!/usr/bin/env bash
# Peak memory of saved plans at scale: `plan -o` and `apply` of a plan with
# 1,000,000 items (a local tree of 1,000 directories × 1,000 empty files, synced
# to an empty local directory), against the planner's own footprint
# (`plan --dry-run` without -o) measured in the same run. Target: ≤ 500 bytes per
# item at peak for `plan -o` and for `apply`.
# Usage: scripts/bench-plan-scale.sh [WORKDIR] [DIRS] [FILES_PER_DIR]
#        (defaults: target/bench-plan-scale 1000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-plan-scale}
dirs=${2:-1000}
per_dir=${3:-1000}

# HUGESYNC_BIN=path runs that binary instead of this checkout's release build
# (to compare two versions in the same run).
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi

tree="$work/src-${dirs}x${per_dir}"
if [ ! -f "$tree.complete" ]; then
  rm -rf "$tree" && mkdir -p "$tree"
  python3 - "$tree" "$dirs" "$per_dir" <<'PY'
import os, sys
root, dirs, per_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    path = os.path.join(root, f"dir{d:05}")
    os.mkdir(path)
    for f in range(per_dir):
        # Names of a realistic length (the plan stores every path).
        open(os.path.join(path, f"sample-{f:06}.parquet"), "wb").close()
PY
  touch "$tree.complete"
fi
items=$((dirs * per_dir + dirs))
echo "tree: $dirs directories × $per_dir files = $items plan items"

# Peak resident set size in KiB of one command, its stdout discarded.
rss() { /usr/bin/time -f '%M %e' "$@" 2>&1 >/dev/null | tail -1; }
# An empty config file of our own: never /dev/null as a path a tool may write.
mkdir -p "$work"; empty_config="$work/empty.conf"; : > "$empty_config"
export HUGESYNC_CONFIG="$empty_config"

rm -rf "$work/dst" "$work/plan.json"
read -r plan_kib plan_s < <(rss "$bin" plan --dry-run -q "$tree" "$work/dst")
read -r save_kib save_s < <(rss "$bin" plan -o "$work/plan.json" "$tree" "$work/dst")
plan_bytes=$(du -sb "$work/plan.json" | cut -f1)  # a directory of parts
read -r apply_kib apply_s < <(rss "$bin" apply -q --yes "$work/plan.json")
copied=$(find "$work/dst" -type f | wc -l)
rm -rf "$work/dst"

python3 - "$items" "$plan_bytes" "$copied" \
  "$plan_kib" "$plan_s" "$save_kib" "$save_s" "$apply_kib" "$apply_s" <<'PY'
import sys
items, plan_bytes, copied = map(int, sys.argv[1:4])
rows = [("plan --dry-run (planner)", sys.argv[4], sys.argv[5]),
        ("plan -o (listing printed)", sys.argv[6], sys.argv[7]),
        ("apply --yes", sys.argv[8], sys.argv[9])]
print(f"plan (header and parts): {plan_bytes / 2**20:.1f} MiB ({plan_bytes / items:.0f} B/item); apply wrote {copied} files")
planner = int(rows[0][1]) * 1024
for name, kib, secs in rows:
    peak = int(kib) * 1024
    print(f"{name:26} peak {peak / 2**20:7.1f} MiB = {peak / items:5.0f} B/item "
          f"({peak / planner:.2f}x planner), {float(secs):.1f} s  (target <= 500 B/item)")
PY
