#!/usr/bin/env bash
# Builds hugesync and runs it on a small generated demo tree (or on the two
# folders given): the first sync, then a few changes — a 40 MB checkpoint edited
# in place (100 bytes overwritten, 1 MiB appended), a file rewritten, one
# deleted — whose plan shows a delta and what it saves. On a terminal the second
# sync opens in the TUI for review; with --yes, or without a terminal, it runs
# headless.
# Usage: scripts/demo.sh [--yes] [SRC DST]
set -euo pipefail
cd "$(dirname "$0")/.."
yes=
if [ "${1:-}" = --yes ]; then
  yes=1
  shift
fi
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/hugesync
if [ $# -eq 2 ]; then
  if [ -z "$yes" ] && [ -t 0 ] && [ -t 1 ]; then
    exec "$bin" tui "$1" "$2"
  fi
  exec "$bin" sync ${yes:+--yes} "$1" "$2"
fi
demo=target/demo
rm -rf "$demo" && mkdir -p "$demo/src/photos/2024" "$demo/src/models"
for i in 1 2 3; do head -c $((i * 300000)) /dev/urandom > "$demo/src/photos/2024/img$i.jpg"; done
head -c 40000000 /dev/urandom > "$demo/src/models/checkpoint.bin"
echo "hello" > "$demo/src/README.txt"
echo "== first sync"
"$bin" sync --yes -v "$demo/src" "$demo/dst"

echo "== changes: checkpoint.bin edited in place and grown, README rewritten, img2 deleted"
head -c 100 /dev/urandom |
  dd of="$demo/src/models/checkpoint.bin" bs=1 seek=20000000 conv=notrunc status=none
head -c 1048576 /dev/urandom >> "$demo/src/models/checkpoint.bin"
echo "hello again" > "$demo/src/README.txt"
rm "$demo/src/photos/2024/img2.jpg"

if [ -z "$yes" ] && [ -t 0 ] && [ -t 1 ]; then
  echo "== the second sync, for review in the TUI (a approves, q quits)"
  exec "$bin" tui --delete "$demo/src" "$demo/dst"
fi
echo "== plan after changes"
"$bin" plan --delete "$demo/src" "$demo/dst"
echo "== second sync"
"$bin" sync --yes --delete "$demo/src" "$demo/dst"
