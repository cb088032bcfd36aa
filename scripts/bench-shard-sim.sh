#!/usr/bin/env bash
# Sharding simulation (benches/shard_sim.rs): a plan over ITEMS generated
# objects a side, every one changed and 1% renamed (so about 1.01 ITEMS
# items, 1% of them deletions), divided into SHARDS shards; every listing
# request and HEAD delayed LATENCY_MS. Each step runs as its own process:
# the plan written once, then what one whole `apply` does before its first
# transfer (both sides listed, every part read and checked), then what one
# shard does (its own parts read, its entries looked up), for the first,
# a middle and the last shard, then what finalize looks up. Prints each
# shard's figures against 1/SHARDS of the apply's.
# Usage: scripts/bench-shard-sim.sh [ITEMS] [SHARDS] [LATENCY_MS]
#        (defaults 10000000 100 20; the plan takes ~400 bytes an item on
#        disk under $TMPDIR)
set -euo pipefail
cd "$(dirname "$0")/.."
items=${1:-10000000}
shards=${2:-100}
latency=${3:-20}
dir=$(mktemp -d "${TMPDIR:-/tmp}/hugesync-shard-sim-XXXXXX")
trap 'rm -rf "$dir"' EXIT
cargo bench --quiet --bench shard_sim --no-run 2>/dev/null
step() { cargo bench --quiet --bench shard_sim -- "$@" "$latency" 2>/dev/null | grep '^step='; }
run() { local what=$1; shift; step "$what" "$dir/plan" "$items" "$@"; }
plan=$(step plan "$dir/plan" "$items" "$latency" "$shards" | sed "s/ $latency\$//")
echo "$plan"
# `plan` takes SHARDS after the latency; the others take the shard after it.
apply=$(run apply)
echo "$apply"
results=("$apply")
for k in 1 $(( (shards + 1) / 2 )) "$shards"; do
  line=$(cargo bench --quiet --bench shard_sim -- shard "$dir/plan" "$items" "$latency" "$k" 2>/dev/null | grep '^step=')
  echo "$line"
  results+=("$line")
done
final=$(run finalize)
echo "$final"
python3 - "$shards" "${results[@]}" <<'PY'
import sys
shards = int(sys.argv[1])
def fields(line):
    return dict(kv.split("=", 1) for kv in line.split())
apply = fields(sys.argv[2])
share = lambda key: float(apply[key]) / shards
for line in sys.argv[3:]:
    s = fields(line)
    requests = int(s["lists"]) + int(s["heads"])
    print(
        f"shard {s['shard']}: plan read {int(s['plan_bytes_read'])/2**20:.1f} MiB "
        f"= {int(s['plan_bytes_read'])/share('plan_bytes_read'):.2f}x the share; "
        f"requests {requests} ({s['lists']} LIST, {s['heads']} HEAD) "
        f"= {requests/((int(apply['lists'])+int(apply['heads']))/shards):.2f}x; "
        f"time to first transfer {float(s['seconds']):.2f} s = {float(s['seconds'])/share('seconds'):.2f}x; "
        f"peak RSS {int(s['peak_rss'])/2**20:.0f} MiB (apply {int(apply['peak_rss'])/2**20:.0f} MiB, "
        f"a share {share('peak_rss')/2**20:.1f} MiB)"
    )
PY
