#!/usr/bin/env bash
# drbd benchmark: two node roots on 127.0.77.1/.2 with real storage daemons;
# prints the 4 KiB synchronous write latency and the sequential write
# throughput of a local file and of a drbd disk (and their ratios), and the
# MiB/s of a 1 GiB disk's first sync and of a resync after a secondary's
# daemon died (never fails on the figures).
#   BENCH_DRBD_OPS=2000 BENCH_DRBD_SIZE_MIB=1024 scripts/bench-drbd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release -p tests --bin bench-drbd --quiet
./target/release/bench-drbd
