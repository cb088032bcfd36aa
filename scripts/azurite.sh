# Shared by scripts/test.sh and the Azure benchmarks (source it; needs
# free_port from scripts/moto.sh): installs azurite (pinned: 3.35 lacks Put
# Block From URL) into target/emu/npm and starts servers on free loopback
# ports; every server started is stopped on exit and its store removed
# (azurite keeps every block it was sent on disk: gigabytes per test run).
azurite_dir=target/emu/npm
azurite_pids=()
azurite_stores=()

install_azurite() {
  local bin="$azurite_dir/node_modules/.bin/azurite-blob"
  if [ ! -x "$bin" ] || ! grep -q '"version": "3.37.0"' "$azurite_dir/node_modules/azurite/package.json" 2>/dev/null; then
    echo "== installing azurite@3.37.0 into $azurite_dir"
    command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
    # Node trusts only its own CA list: give it the system's too, for machines
    # whose registry traffic passes a proxy with a CA of its own.
    if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
      export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    fi
    npm install --prefer-offline --no-audit --no-fund --loglevel=error \
      --prefix "$azurite_dir" azurite@3.37.0 >/dev/null
  fi
}

# start_azurite PORT: starts a Blob server with a fresh store and waits until it answers.
start_azurite() {
  local port=$1 dir="target/emu/azurite-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  azurite_stores+=("$dir")
  "$azurite_dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --location "$dir" --disableTelemetry --skipApiVersionCheck --silent \
    >"target/emu/azurite-$port.log" 2>&1 &
  azurite_pids+=($!)
  for _ in $(seq 150); do
    # Any HTTP answer (403 without credentials) means it is up.
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/devstoreaccount1?comp=list")" != 000 ] && return 0
    sleep 0.1
  done
  echo "azurite did not start on port $port; see target/emu/azurite-$port.log" >&2
  return 1
}

stop_azurite() {
  [ ${#azurite_pids[@]} -eq 0 ] || kill "${azurite_pids[@]}" 2>/dev/null || true
  [ ${#azurite_pids[@]} -eq 0 ] || wait "${azurite_pids[@]}" 2>/dev/null || true
  [ ${#azurite_stores[@]} -eq 0 ] || rm -rf "${azurite_stores[@]}"
}
