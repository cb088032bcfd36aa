# Shared by scripts/test.sh and the S3 benchmarks (source it): installs moto
# (pinned: 5.2.x breaks aws-sdk-s3's ListParts) into target/emu/moto and starts
# servers on free loopback ports; every server started is stopped on exit.
moto=target/emu/moto
moto_pids=()

install_moto() {
  local installed
  installed=$("$moto/bin/pip" show moto 2>/dev/null || true)
  if [ ! -x "$moto/bin/moto_server" ] || ! grep -qx 'Version: 5.1.22' <<<"$installed"; then
    echo "== installing moto[server]==5.1.22 into $moto"
    # pip trusts its own CA list: give it the system's, for machines whose
    # registry traffic passes a proxy with a CA of its own.
    if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
      export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
    fi
    python3 -m venv "$moto"
    "$moto/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.1.22'
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto PORT [ENV=VALUE…]: starts a server and waits until it answers.
start_moto() {
  local port=$1; shift
  mkdir -p target/emu
  env "$@" "$moto/bin/moto_server" -H 127.0.0.1 -p "$port" >"target/emu/moto-$port.log" 2>&1 &
  moto_pids+=($!)
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/" && return 0
    sleep 0.1
  done
  echo "moto did not start on port $port; see target/emu/moto-$port.log" >&2
  return 1
}

stop_moto() {
  [ ${#moto_pids[@]} -eq 0 ] || kill "${moto_pids[@]}" 2>/dev/null || true
}
