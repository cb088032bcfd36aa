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
command -v curl >/dev/null || missing+=(curl)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

# S3 tests run against moto (pinned: 5.2.x breaks aws-sdk-s3's ListParts) on
# loopback ports of its own: one server open to any credentials, one that checks
# them (for the wrong-credentials tests). Both stop when this script ends.
moto=target/emu/moto
if [ ! -x "$moto/bin/moto_server" ] || ! "$moto/bin/pip" show moto 2>/dev/null | grep -qx 'Version: 5.1.22'; then
  echo "== installing moto[server]==5.1.22 into $moto"
  python3 -m venv "$moto"
  "$moto/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.1.22'
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
start_moto() { # PORT [ENV=VALUE…]
  local port=$1; shift
  env "$@" "$moto/bin/moto_server" -H 127.0.0.1 -p "$port" >"target/emu/moto-$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/" && return 0
    sleep 0.1
  done
  echo "moto did not start on port $port; see target/emu/moto-$port.log" >&2
  return 1
}
log=$(mktemp)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$log"' EXIT
s3_port=$(free_port)
start_moto "$s3_port"
auth_port=$(free_port)
start_moto "$auth_port" INITIAL_NO_AUTH_ACTION_COUNT=0
export HUGESYNC_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export HUGESYNC_TEST_S3_AUTH_ENDPOINT="http://127.0.0.1:$auth_port"

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
# Doc tests are left out: the crate has none, and an empty run would close the log.
cargo test --quiet --lib --bins --tests 2>&1 | tee "$log"
# One closing line for the whole suite, summed over the test binaries.
awk '/^test result:/ { p += $4; f += $6 } END { printf "suite: %d passed, %d failed\n", p, f }' "$log"
