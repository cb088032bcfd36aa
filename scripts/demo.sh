#!/usr/bin/env bash
# Builds hugesync and runs it on a small generated demo tree (or on the two
# folders given): shows the plan, syncs, changes a few things, syncs again.
# Usage: scripts/demo.sh [SRC DST]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/hugesync
if [ $# -eq 2 ]; then
  exec "$bin" sync "$1" "$2"
fi
demo=target/demo
rm -rf "$demo" && mkdir -p "$demo/src/photos/2024" "$demo/src/models"
for i in 1 2 3; do head -c $((i * 300000)) /dev/urandom > "$demo/src/photos/2024/img$i.jpg"; done
head -c 40000000 /dev/urandom > "$demo/src/models/checkpoint.bin"
echo "hello" > "$demo/src/README.txt"
echo "== first sync"
"$bin" sync --yes -v "$demo/src" "$demo/dst"
echo "hello again" > "$demo/src/README.txt"
rm "$demo/src/photos/2024/img2.jpg"
echo "== plan after changes"
"$bin" plan --delete "$demo/src" "$demo/dst"
echo "== second sync"
"$bin" sync --yes --delete "$demo/src" "$demo/dst"
