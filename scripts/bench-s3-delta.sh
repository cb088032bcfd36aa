#!/usr/bin/env bash
# The delta case against a local S3 server, in one run: a 1 GiB random object
# is uploaded by hugesync and by `aws s3 cp` (Debian's awscli v2); the file then
# gets three 64 KiB overwrites, a 1000-byte insert and a 500-byte delete, and
# both re-send it. Prints wall times, the ratio, and the share of the file's
# bytes hugesync sent (counted on the wire, from its JSON summary).
# Usage: scripts/bench-s3-delta.sh [moto|s3s-fs] [WORKDIR]   (default: moto, target/bench-s3)
# s3s-fs (a Rust, file-backed S3 server) is built into target/emu/s3s on first use.
# HUGESYNC_BIN=path runs that binary instead of this checkout's release build
# (to compare two versions in the same setting).
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:-moto}
work=$(realpath -m "${2:-target/bench-s3}")
source scripts/moto.sh
s3s_pid=
cleanup() { stop_moto; [ -z "$s3s_pid" ] || kill "$s3s_pid" 2>/dev/null || true; }
trap cleanup EXIT
[ -x /usr/bin/aws ] || { apt-get update -qq && apt-get install -y -qq awscli; }
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi

port=$(free_port)
url="http://127.0.0.1:$port"
case "$server" in
  moto)
    install_moto
    start_moto "$port"
    curl -sf -X PUT "$url/bench" >/dev/null
    ;;
  s3s-fs)
    [ -x target/emu/s3s/bin/s3s-fs ] ||
      cargo install s3s-fs --version 0.14.1 --features binary --locked --root target/emu/s3s --quiet
    root="$work/s3s-root"
    rm -rf "$root" && mkdir -p "$root/bench"
    target/emu/s3s/bin/s3s-fs --host 127.0.0.1 --port "$port" --access-key bench \
      --secret-key bench "$root" >"target/emu/s3s-$port.log" 2>&1 &
    s3s_pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
    ;;
  *) echo "usage: $0 [moto|s3s-fs] [WORKDIR]" >&2; exit 2 ;;
esac
# Peers read an empty config file of our own: never /dev/null, which a tool that
# saves its config by temp file and rename would replace (as root: for the machine).
mkdir -p "$work"; empty_config="$work/empty.conf"; : > "$empty_config"
# moto gives multipart objects made with CRC64NVME a value of its own (SHA-256s
# of the parts): aws would refuse to read them back, so it does not validate.
export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$empty_config" AWS_SHARED_CREDENTIALS_FILE="$empty_config"

mkdir -p "$work/delta/hs" && cd "$work"
if [ ! -f delta/.complete ]; then
  python3 - <<'PY'
import random
rng = random.Random(7)
old = bytearray(b"".join(rng.randbytes(1 << 20) for _ in range(1024)))
open("delta/old.bin", "wb").write(old)
for off in (100 << 20, 500 << 20, 900 << 20):
    old[off:off + 65536] = rng.randbytes(65536)
old[300 << 20:300 << 20] = rng.randbytes(1000)
del old[700 << 20:(700 << 20) + 500]
open("delta/new.bin", "wb").write(old)
PY
  touch delta/.complete
fi

# Both tools start from the same object, uploaded whole.
cp delta/old.bin delta/hs/file.bin
"$bin" -q sync --yes --endpoint-url "$url" --path-style delta/hs s3://bench/hsd
/usr/bin/aws --endpoint-url "$url" s3 cp --only-show-errors delta/hs/file.bin s3://bench/awsd/file.bin
cp delta/new.bin delta/hs/file.bin
read -r hs hs_cpu < <( { /usr/bin/time -f '%e %U %S' "$bin" sync --yes --json --endpoint-url "$url" --path-style \
  delta/hs s3://bench/hsd >delta/run.json; } 2>&1 | tail -1 | awk '{print $1, $2 + $3}')
aws=$( { /usr/bin/time -f '%e' /usr/bin/aws --endpoint-url "$url" s3 cp --only-show-errors \
  delta/hs/file.bin s3://bench/awsd/file.bin; } 2>&1 | tail -1)
cmp <(/usr/bin/aws --endpoint-url "$url" s3 cp --only-show-errors s3://bench/hsd/file.bin -) delta/new.bin

python3 - "$server" "$hs" "$aws" "$hs_cpu" <<'PY'
import json, sys
report = next(e["report"] for e in map(json.loads, open("delta/run.json")) if e.get("event") == "summary")
server, hs, aws, cpu = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"delta re-sync of the edited 1 GiB file on {server}: hugesync {hs:.2f} s ({cpu:.2f} s CPU), sent "
      f"{report['bytes_sent'] / (1 << 30):.2%} of the file; aws s3 cp {aws:.2f} s (100%) -> {hs / aws:.3f}x aws")
PY
