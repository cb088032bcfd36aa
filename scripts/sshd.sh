# Shared by scripts/test.sh and the SFTP benchmark (source it): OpenSSH's sshd
# from Debian's archive on a loopback port, with host and client keys made for
# the run under target/emu/sshd-PORT/, and an ssh config file naming the server
# `hugesync-test` (HostName, Port, User, IdentityFile, IdentitiesOnly,
# UserKnownHostsFile) that HugeSync and the tests are pointed at with
# --ssh-config. Every server started is stopped on exit.
sshd_pids=()

install_sshd() {
  if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
    echo "== installing openssh-server openssh-client (Debian)"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server openssh-client
  fi
}

# start_sshd PORT: starts the server and writes $sshd_dir/config; waits until
# it answers.
start_sshd() {
  local port=$1
  sshd_dir=$(realpath -m "target/emu/sshd-$port")
  rm -rf "$sshd_dir" && mkdir -p "$sshd_dir" /run/sshd
  chmod 700 "$sshd_dir"
  ssh-keygen -q -t ed25519 -N '' -f "$sshd_dir/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -f "$sshd_dir/client_ed25519"
  cp "$sshd_dir/client_ed25519.pub" "$sshd_dir/authorized_keys"
  cat >"$sshd_dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $sshd_dir/host_ed25519
PidFile $sshd_dir/sshd.pid
AuthorizedKeysFile $sshd_dir/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
MaxSessions 100
MaxStartups 100:30:200
Subsystem sftp internal-sftp
EOF
  # The key the server shows, as known_hosts holds it for a non-default port.
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$sshd_dir/host_ed25519.pub")" >"$sshd_dir/known_hosts"
  cat >"$sshd_dir/config" <<EOF
Host hugesync-test
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $sshd_dir/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $sshd_dir/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR
EOF
  /usr/sbin/sshd -t -f "$sshd_dir/sshd_config"
  /usr/sbin/sshd -D -e -f "$sshd_dir/sshd_config" 2>"$sshd_dir/sshd.log" &
  sshd_pids+=($!)
  for _ in $(seq 100); do
    ssh -F "$sshd_dir/config" -o BatchMode=yes hugesync-test true 2>/dev/null && return 0
    sleep 0.1
  done
  echo "sshd did not start on port $port; see $sshd_dir/sshd.log" >&2
  return 1
}

stop_sshd() {
  for pid in "${sshd_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  sshd_pids=()
}
