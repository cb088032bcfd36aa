#!/usr/bin/env bash
# Listing simulation on the in-memory store (benches/listing_sim.rs): the same
# N keys listed page after page and with many requests in flight, every
# request delayed as a network would, pages of 1,000 keys; a flat run of
# counters and Hive-style partitions.
# Usage: scripts/bench-listing.sh [KEYS] [LATENCY_MS] [IN_FLIGHT]   (default 1000000 20 64)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench listing_sim -- "${1:-1000000}" "${2:-20}" "${3:-64}"
