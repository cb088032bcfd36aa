#!/usr/bin/env bash
# The whole test suite, from a fresh machine: formatting, lints, unit and
# integration tests. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

# setpriv (util-linux) lets the permission tests drop root; tmux drives the
# terminal UI end to end. Installed from Debian's archive when missing.
missing=()
command -v setpriv >/dev/null || missing+=(util-linux)
command -v tmux >/dev/null || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
# Doc tests are left out: the crate has none, and an empty run would close the log.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --quiet --lib --bins --tests 2>&1 | tee "$log"
# One closing line for the whole suite, summed over the test binaries.
awk '/^test result:/ { p += $4; f += $6 } END { printf "suite: %d passed, %d failed\n", p, f }' "$log"
