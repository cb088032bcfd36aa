#!/usr/bin/env bash
# The whole test suite, from a fresh machine: formatting, lints, unit and
# integration tests. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

# setpriv (util-linux) lets the permission tests drop root; it is on Debian by
# default, install it if a slim image lacks it.
if ! command -v setpriv >/dev/null; then
  apt-get update -qq && apt-get install -y -qq util-linux
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
# Doc tests are left out: the crate has none, and an empty run would close the log.
cargo test --quiet --lib --bins --tests
