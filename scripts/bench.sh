#!/usr/bin/env bash
# Benchmarks: builds in release mode and prints figures (never fails on them).
#   scripts/bench.sh             master daemon: job throughput and latency,
#                                instance creation, gnt-instance list time
# Environment: BENCH_NODES (3), BENCH_INSTANCES (1000), BENCH_JOBS (2000, 0
# skips the job benchmarks); the design goal's case is
#   BENCH_JOBS=0 BENCH_NODES=200 BENCH_INSTANCES=10000 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
./target/release/ganeti-bench
