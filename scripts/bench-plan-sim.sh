#!/usr/bin/env bash
# Planning simulation on the in-memory store (benches/plan_sim.rs): both sides
# hold ITEMS objects, 1% changed; prints scan and plan times and the planner's
# peak memory per object (the peak RSS over the filled stores).
# Usage: scripts/bench-plan-sim.sh [ITEMS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench plan_sim -- "${1:-1000000}"
