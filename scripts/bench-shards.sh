#!/usr/bin/env bash
# Sharded apply: how evenly a 100,000-file plan splits into 8 shards (the
# largest shard's bytes and requests over the mean), and the wall time of 4
# shard processes at once plus finalize against one `apply` of the same plan,
# local → local on this machine. On a 2-core machine expect no speed-up: the
# point is correctness and balance; the speed-up comes from more machines.
# Usage: scripts/bench-shards.sh [FILES]   (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-100000}
# HUGESYNC_BIN=path runs that binary instead of this checkout's release build
# (to compare two versions in the same run).
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  env -u CARGO_TARGET_DIR cargo build --release --quiet
  bin=$PWD/target/release/hugesync
fi
# BENCH_DIR=path works there instead (e.g. on tmpfs, whose times vary less
# than this machine's disk).
work=${BENCH_DIR:-target/bench-shards}
rm -rf "$work" && mkdir -p "$work"
python3 - "$work/src" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"d{i % 317:03d}", f"e{i % 13}")
    os.makedirs(d, exist_ok=True)
    # Sizes over four orders of magnitude, most files small.
    size = int(10 ** rng.uniform(1, 5.2))
    with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
        f.write(rng.randbytes(size))
# One file far past a shard's share, cut across the shards.
with open(os.path.join(root, "big.raw"), "wb") as f:
    for _ in range(64):
        f.write(rng.randbytes(8 << 20))
PY
echo "source: $(find "$work/src" -type f | wc -l) files, $(du -sh "$work/src" | cut -f1)"
"$bin" plan -q --shards 8 -o "$work/plan8" "$work/src" "$work/one"
echo "== the split into 8 shards"
"$bin" apply "$work/plan8" --shard 1/8 -n
"$bin" plan -q --shards 4 -o "$work/plan.json" "$work/src" "$work/one"
echo "== the split into 4 shards"
"$bin" apply "$work/plan.json" --shard 1/4 -n | tail -1
sync
start=$(date +%s.%N)
"$bin" apply -q --yes "$work/plan.json"
one=$(echo "$(date +%s.%N) - $start" | bc)
# The same plan again, into an empty destination of its own.
# The same plan to another destination: only the header names it.
rm -rf "$work/plan4.json" && cp -r "$work/plan.json" "$work/plan4.json"
sed -i "s#$work/one#$work/four#g" "$work/plan4.json/plan.json"
sync
start=$(date +%s.%N)
for k in 1 2 3 4; do
  /usr/bin/time -f "shard $k/4: %e s, peak RSS %M KiB" "$bin" apply -q --yes "$work/plan4.json" --shard "$k/4" &
done
wait
"$bin" finalize -q --yes "$work/plan4.json"
four=$(echo "$(date +%s.%N) - $start" | bc)
diff -r "$work/one" "$work/four" > /dev/null && echo "destinations equal"
printf 'one apply: %.2f s; 4 shards at once + finalize: %.2f s (%.2fx)\n' "$one" "$four" "$(echo "$four / $one" | bc -l)"
rm -rf "$work"
