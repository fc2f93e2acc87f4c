#!/usr/bin/env bash
# RAPI benchmark: builds in release mode and prints figures (never fails on them).
#   scripts/bench-rapi.sh      bulk listing (GET /2/instances?bulk=1, names only,
#                              gnt-instance list), throughput of GET /2/info and
#                              GET /2/instances/<name> with 50 connections, 200
#                              connections of GETs and job submissions (errors,
#                              ganeti-rapi's memory)
# Environment: BENCH_NODES (3), BENCH_INSTANCES (1000); the design goal's case is
#   BENCH_NODES=200 BENCH_INSTANCES=10000 scripts/bench-rapi.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh curl wrk
cargo build --release --workspace --bins --quiet
./target/release/bench-rapi
