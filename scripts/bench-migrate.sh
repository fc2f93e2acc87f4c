#!/usr/bin/env bash
# Live-migration benchmark: a 2-node virtual cluster with real QEMU (TCG)
# and the test guest; prints QEMU's total time and downtime per migration
# and the time the master adds around them (never fails on the figures).
#   BENCH_MEMORY=256 BENCH_MIGRATIONS=6 BENCH_MIGRATION_BANDWIDTH=32 scripts/bench-migrate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
./target/release/bench-migrate
