#!/usr/bin/env bash
# Planning simulation at scale (benches/plan_sim.rs): both sides are
# in-memory stores of ITEMS generated objects (1% changed), every listing
# request delayed LATENCY_MS, pages of 1,000 keys. Makes the plan as
# `plan -o DIR` does and prints the scan and plan times, the peak RSS growth
# per object and the plan's bytes; with --sequential also one side listed page
# after page against the parallel listing, in the same run.
# Usage: scripts/bench-plan-sim.sh [ITEMS] [LATENCY_MS] [--sequential] [--list-requests N] [--budget SIZE]
#        (defaults 1000000 20; targets at 10000000: listing >= 20x the
#        sequential one, <= 150 B per object; at 100000000 with spilling:
#        <= 4 GiB peak, e.g. --budget 2GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench plan_sim -- "$@"
