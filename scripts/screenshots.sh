#!/usr/bin/env bash
# Regenerates screenshots/*.png: the real `hugesync tui` in an xterm under Xvfb,
# driven through tmux, captured with ImageMagick's `import`.
# Usage: scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for tool in Xvfb xterm import xwininfo tmux; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq xvfb xterm imagemagick x11-utils tmux fonts-dejavu-core
fi
cargo build --release --quiet
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
work=$(realpath -m target/screens)
rm -rf "$work" && mkdir -p "$work/src" "$work/dst"

# A tree worth looking at: many small files (so the scan shows), large files that
# take a moment to copy, a changed big file (delta), and a stale file (delete).
python3 - "$work" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(1)
for a in range(40):
    for b in range(25):
        d = os.path.join(root, "src", "photos", f"{2000 + a}", f"album-{b:02}")
        os.makedirs(d, exist_ok=True)
        for f in range(40):
            open(os.path.join(d, f"img{f:03}.jpg"), "wb").write(rng.randbytes(64))
os.makedirs(os.path.join(root, "src", "models"), exist_ok=True)
os.makedirs(os.path.join(root, "dst", "models"), exist_ok=True)
chunk = rng.randbytes(1 << 20)
for name in ("checkpoint-001.bin", "checkpoint-002.bin", "checkpoint-003.bin"):
    with open(os.path.join(root, "src", "models", name), "wb") as fh:
        for _ in range(600):
            fh.write(chunk)
big = bytearray(rng.randbytes(1 << 20) * 64)
open(os.path.join(root, "dst", "models", "dataset.parquet"), "wb").write(big)
big[5 << 20:(5 << 20) + 4096] = rng.randbytes(4096)
open(os.path.join(root, "src", "models", "dataset.parquet"), "wb").write(big)
open(os.path.join(root, "dst", "old-notes.txt"), "w").write("stale")
PY

display=:77
Xvfb "$display" -screen 0 1280x760x24 >/dev/null 2>&1 &
xvfb=$!
session=hugesync-shots
cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; kill "$xvfb" 2>/dev/null || true; }
trap cleanup EXIT
sleep 1
tmux new-session -d -s "$session" -x 120 -y 36 "sleep 2; $bin tui --delete $work/src $work/dst; sleep 600"
tmux set-option -t "$session" status off >/dev/null
DISPLAY=$display xterm -geometry 120x36+0+0 -fa 'DejaVu Sans Mono' -fs 11 -bg black -fg white \
  -e tmux attach -t "$session" >/dev/null 2>&1 &

# The xterm's own window, found by its class.
window() { DISPLAY=$display xwininfo -root -tree | awk '/"xterm" "XTerm"/ {print $1; exit}'; }
shot() { DISPLAY=$display import -window "$(window)" "screenshots/$1.png"; echo "screenshots/$1.png"; }
wait_for() {
  for _ in $(seq 1 "${2:-600}"); do
    tmux capture-pane -p -t "$session" | grep -q "$1" && return 0
    sleep 0.02
  done
  echo "never saw: $1" >&2; return 1
}
wait_for "scanning" && shot scan
wait_for "HugeSync plan" && sleep 0.3
tmux send-keys -t "$session" Down Down Enter; sleep 0.3; shot review
tmux send-keys -t "$session" a; wait_for "Run this plan" && sleep 0.2 && shot confirm
tmux send-keys -t "$session" y; wait_for "checkpoint-0" 3000 && sleep 0.5 && shot execution
wait_for "Done in" 6000 && sleep 0.3 && shot summary
tmux send-keys -t "$session" q
