#!/usr/bin/env bash
# Times `hugesync plan` against `rsync -an --delete` on the same 100,000-file pair
# (20×50 directories × 100 files of 0–4 KiB), in the same run, warm cache.
# Usage: scripts/bench-local.sh [WORKDIR]   (default: target/bench-local)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-local}
command -v rsync >/dev/null || { apt-get update -qq && apt-get install -y -qq rsync; }
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }

# HUGESYNC_BIN=path runs that binary instead of this checkout's release build
# (to compare two versions in the same run).
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi

if [ ! -f "$work/.complete" ]; then
  rm -rf "$work" && mkdir -p "$work/src"
  python3 - "$work/src" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
for a in range(20):
    for b in range(50):
        d = os.path.join(root, f"d{a:02}", f"e{b:02}")
        os.makedirs(d)
        for f in range(100):
            with open(os.path.join(d, f"f{f:03}.dat"), "wb") as fh:
                fh.write(rng.randbytes(rng.randint(0, 4096)))
PY
  cp -a "$work/src" "$work/dst"
  touch "$work/.complete"
fi
echo "tree: $(find "$work/src" -type f | wc -l) files"

hyperfine --warmup 2 --runs 10 --export-json "$work/hyperfine.json" \
  -n hugesync "$bin plan --dry-run -q $work/src $work/dst" \
  -n rsync "rsync -an --delete $work/src/ $work/dst/"

rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
hs_rss=$(rss "$bin" plan --dry-run -q "$work/src" "$work/dst")
rs_rss=$(rss rsync -an --delete "$work/src/" "$work/dst/")
python3 - "$work/hyperfine.json" "$hs_rss" "$rs_rss" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
hs, rs = r["hugesync"]["mean"], r["rsync"]["mean"]
print(f"hugesync plan: {hs*1000:.0f} ms, rsync -an --delete: {rs*1000:.0f} ms, ratio {hs/rs:.2f}x (target <= 0.25x)")
print(f"peak RSS: hugesync {int(sys.argv[2])/1024:.1f} MiB, rsync {int(sys.argv[3])/1024:.1f} MiB (target <= 50 MiB)")
PY
