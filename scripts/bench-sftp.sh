#!/usr/bin/env bash
# hugesync against `rsync -e ssh` over the same OpenSSH sshd on loopback, in one
# run: a 10,000-file tree, a 1 GiB file, and the 1 GiB file after the edits of
# scripts/bench-s3-delta.sh (three 64 KiB overwrites, a 1000-byte insert, a
# 500-byte delete) re-synced by both, through a TCP relay in front of sshd that
# counts the bytes each client sends (SSH framing included, the same for both).
# hugesync flushes what it writes (fsync@openssh.com) unless --no-fsync; rsync
# only with --fsync: the whole-file cases time all four, paired like with like.
# Prints wall times, ratios against rsync, and the bytes each tool sent.
# Usage: scripts/bench-sftp.sh [WORKDIR] [BLOCK]   (default: target/bench-sftp, hugesync's default block)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-target/bench-sftp}")
block=${2:-}
source scripts/moto.sh   # free_port
source scripts/sshd.sh
install_sshd
command -v hyperfine >/dev/null && command -v rsync >/dev/null ||
  { apt-get update -qq && apt-get install -y -qq hyperfine rsync; }
# HUGESYNC_BIN=path runs that binary instead of this checkout's release build
# (to compare two versions in the same run).
if [ -n "${HUGESYNC_BIN:-}" ]; then
  bin=$(realpath "$HUGESYNC_BIN")
else
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/hugesync")
fi
relay_pid=
trap 'stop_sshd; [ -z "$relay_pid" ] || kill "$relay_pid" 2>/dev/null || true' EXIT

mkdir -p "$work" && cd "$work"
if [ ! -f .complete ]; then
  mkdir -p big tree delta
  python3 - <<'PY'
import os, random
rng = random.Random(11)
for i in range(10_000):
    d = f"tree/d{i % 50:02d}/e{i % 7}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:05d}.dat", "wb") as f:
        f.write(rng.randbytes(rng.randint(512, 8192)))
rng = random.Random(7)
old = bytearray(b"".join(rng.randbytes(1 << 20) for _ in range(1024)))
open("big/file.bin", "wb").write(old)
for off in (100 << 20, 500 << 20, 900 << 20):
    old[off:off + 65536] = rng.randbytes(65536)
old[300 << 20:300 << 20] = rng.randbytes(1000)
del old[700 << 20:(700 << 20) + 500]
open("delta/new.bin", "wb").write(old)
PY
  touch .complete
fi
cd - >/dev/null

port=$(free_port)
start_sshd "$port"
config="$sshd_dir/config"
# A relay in front of sshd that counts the bytes clients send, for the delta.
relay_port=$(free_port)
python3 - "$relay_port" "$port" "$work/relay.count" <<'PY' &
import socket, sys, threading
listen, upstream, count_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sent = [0]; lock = threading.Lock()
def pump(a, b, count):
    while True:
        data = a.recv(65536)
        if not data:
            break
        if count:
            with lock:
                sent[0] += len(data)
                open(count_file, "w").write(str(sent[0]))
        b.sendall(data)
    try: b.shutdown(socket.SHUT_WR)
    except OSError: pass
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", listen)); s.listen(16)
while True:
    c, _ = s.accept()
    u = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pump, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, False), daemon=True).start()
PY
relay_pid=$!
key=$(cut -d' ' -f2,3 "$sshd_dir/known_hosts")
echo "hugesync-relay $key" >"$sshd_dir/known_hosts_relay"
sed -e 's/^Host hugesync-test/Host hugesync-relay/' -e "s/^  Port .*/  Port $relay_port/" \
  -e "s|^  UserKnownHostsFile .*|  UserKnownHostsFile $sshd_dir/known_hosts_relay|" \
  "$config" >"$sshd_dir/config_relay"
echo "  HostKeyAlias hugesync-relay" >>"$sshd_dir/config_relay"
relay_config="$sshd_dir/config_relay"

remote="$work/remote"
hs="$bin -q sync --yes --ssh-config $config ${block:+--block-size $block}"
rs="rsync -a -e 'ssh -F $config'"
reset="rm -rf $remote && mkdir -p $remote"

cd "$work"
# hugesync flushes every file it writes to the server's disk, rsync does not
# unless asked: each is timed both ways, and compared like with like.
for name in big tree; do
  hyperfine -N --runs 3 --export-json $name.json --prepare "sh -c '$reset'" \
    -n hugesync "$hs $name sftp://hugesync-test$remote/hs" \
    -n rsync-fsync "sh -c \"$rs --fsync $name/ hugesync-test:$remote/rs/\"" \
    -n hugesync-no-fsync "$hs --no-fsync $name sftp://hugesync-test$remote/hs" \
    -n rsync "sh -c \"$rs $name/ hugesync-test:$remote/rs/\""
done

# The edited file: both start from the old one on the server, through the
# relay; once with every write flushed, once without.
edited() { # HUGESYNC_FLAGS RSYNC_FLAGS -> "hs_time rs_time hs_bytes rs_bytes"
  sh -c "$reset"
  rm -rf hsd rsd && mkdir -p hsd rsd && cp big/file.bin hsd/file.bin && cp big/file.bin rsd/file.bin
  $bin -q sync --yes --ssh-config "$relay_config" ${block:+--block-size $block} hsd "sftp://hugesync-relay$remote/hs"
  rsync -a -e "ssh -F $relay_config" rsd/ "hugesync-relay:$remote/rs/"
  cp delta/new.bin hsd/file.bin && cp delta/new.bin rsd/file.bin
  local before mid after hs_time rs_time
  before=$(cat relay.count)
  hs_time=$( { /usr/bin/time -f '%e' $bin -q sync --yes $1 --ssh-config "$relay_config" ${block:+--block-size $block} \
    hsd "sftp://hugesync-relay$remote/hs"; } 2>&1 | tail -1)
  mid=$(cat relay.count)
  rs_time=$( { /usr/bin/time -f '%e' rsync -a $2 -e "ssh -F $relay_config" rsd/ "hugesync-relay:$remote/rs/"; } 2>&1 | tail -1)
  after=$(cat relay.count)
  cmp "$remote/hs/file.bin" delta/new.bin && cmp "$remote/rs/file.bin" delta/new.bin
  echo "$hs_time $rs_time $((mid - before)) $((after - mid))"
}
flushed=$(edited "" --fsync)
unflushed=$(edited --no-fsync "")

python3 - $flushed $unflushed <<'PY'
import json, sys
for name, title in [("big", "1 GiB file"), ("tree", "10,000-file tree")]:
    r = {x["command"]: x for x in json.load(open(f"{name}.json"))["results"]}
    for hs_name, rs_name, how in [("hugesync", "rsync-fsync", "every file flushed"),
                                  ("hugesync-no-fsync", "rsync", "no flush")]:
        hs, rs = r[hs_name], r[rs_name]
        print(f"{title}, {how}: {hs_name} {hs['mean']:.2f} s (σ {hs['stddev'] or 0:.2f}), "
              f"{rs_name} {rs['mean']:.2f} s (σ {rs['stddev'] or 0:.2f}) "
              f"-> {hs['mean'] / rs['mean']:.2f}x (target <= 1.0x)")
for at, how in [(1, "every file flushed (rsync --fsync)"), (5, "no flush (hugesync --no-fsync)")]:
    hs_t, rs_t = float(sys.argv[at]), float(sys.argv[at + 1])
    hs_b, rs_b = int(sys.argv[at + 2]), int(sys.argv[at + 3])
    print(f"edited 1 GiB file, {how}: hugesync {hs_t:.2f} s, {hs_b:,} bytes sent; rsync {rs_t:.2f} s, "
          f"{rs_b:,} bytes sent -> {hs_t / rs_t:.2f}x rsync's time (target <= 0.5x), "
          f"{hs_b / rs_b:.2f}x its bytes (target <= 1.0x)")
PY
