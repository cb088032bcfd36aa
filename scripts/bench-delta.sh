#!/usr/bin/env bash
# The delta engine against b3sum and rdiff (librsync) in the same run, warm cache:
# a 1 GiB random file, a copy with three 64 KiB overwrites, a 1000-byte insert and a
# 500-byte delete, and a 256 MiB unrelated file.
# Usage: scripts/bench-delta.sh [WORKDIR]   (default: target/bench-delta)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-delta}
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2"; }; }
need b3sum b3sum; need rdiff rdiff; need hyperfine hyperfine
# HUGESYNC_BIN=path runs that binary instead of this checkout's release build
# (to compare two versions in the same run).
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi
mkdir -p "$work" && cd "$work"
if [ ! -f .complete ]; then
  python3 - <<'PY'
import random
rng = random.Random(7)
noise = lambda n: b"".join(rng.randbytes(1 << 20) for _ in range(n >> 20))
old = bytearray(noise(1 << 30))
open("old.bin", "wb").write(old)
for off in (100 << 20, 500 << 20, 900 << 20):
    old[off:off + 65536] = rng.randbytes(65536)
old[300 << 20:300 << 20] = rng.randbytes(1000)
del old[700 << 20:(700 << 20) + 500]
open("new.bin", "wb").write(old)
open("unrelated.bin", "wb").write(noise(256 << 20))
PY
  touch .complete
fi
cat old.bin new.bin unrelated.bin >/dev/null   # warm the page cache
"$bin" -q signature old.bin -o old.hssig
rdiff --force signature -b 65536 old.bin old.rdsig

hyperfine -N --warmup 1 --runs 5 --export-json hyperfine.json \
  -n b3sum "b3sum --num-threads 2 old.bin" \
  -n signature "$bin -q signature old.bin -o old.hssig" \
  -n delta_edited "$bin -q delta old.hssig new.bin" \
  -n delta_unrelated "$bin -q delta old.hssig unrelated.bin" \
  -n rdiff_delta_unrelated "rdiff --force delta old.rdsig unrelated.bin rdiff.delta"

# Peak RSS counts the mapped file's page-cache pages; the anonymous part (heap,
# stacks) is what must not grow with the file, so it is sampled from /proc.
peak_anon() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
anon = total = 0
while p.poll() is None:
    try:
        fields = dict(l.split(":", 1) for l in open(f"/proc/{p.pid}/status"))
        anon = max(anon, int(fields["RssAnon"].split()[0]))
        total = max(total, int(fields["VmHWM"].split()[0]))
    except (OSError, KeyError, ValueError):
        pass
    time.sleep(0.002)
print(f"peak RSS {total // 1024} MiB, of which anonymous {anon} KiB")
PY
}
for run in "signature old.bin -o old.hssig" "signature unrelated.bin -o unrelated.hssig" \
           "delta old.hssig new.bin" "delta old.hssig unrelated.bin"; do
  echo "$run: $(peak_anon "$bin" -q $run)"
done
"$bin" delta old.hssig new.bin
python3 - <<'PY'
import json
r = {x["command"]: x["mean"] for x in json.load(open("hyperfine.json"))["results"]}
b3 = r["b3sum"]
gb = lambda s, size: size / s / 1e9
print(f"signature 1 GiB: {r['signature']:.3f} s = {r['signature']/b3:.2f}x b3sum (target <= 1.3x)")
print(f"delta edited 1 GiB: {r['delta_edited']:.3f} s = {r['delta_edited']/b3:.2f}x b3sum (target <= 1.5x)")
print(f"delta unrelated 256 MiB: {gb(r['delta_unrelated'], 256<<20):.2f} GB/s (target >= 2 GB/s); "
      f"rdiff {gb(r['rdiff_delta_unrelated'], 256<<20):.3f} GB/s")
PY
