#!/usr/bin/env bash
# Benchmarks: builds in release mode and prints figures (never fails on them).
#   scripts/bench.sh             master daemon: job throughput and latency, list time
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
./target/release/ganeti-bench
