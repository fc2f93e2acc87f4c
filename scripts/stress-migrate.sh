#!/usr/bin/env bash
# Stress tests of live migration under TCG while stress-ng keeps the cores
# busy (STRESS_CPU workers, default 2); both fail on the first sign of
# trouble and print what they saw:
#   - the kvm driver migrates a freshly booted guest STRESS_RAM_MIGRATIONS
#     times (default 30) and compares the source's and the target's RAM
#     page by page (a lost write shows even when the guest survives it);
#   - a 2-node virtual cluster migrates a counting guest back and forth
#     STRESS_MIGRATIONS times (default 100) with gnt-instance migrate; the
#     guest must never reboot or go silent, and every kernel message of the
#     guest is in the failure's message.
#   STRESS_MIGRATIONS=100 STRESS_RAM_MIGRATIONS=30 scripts/stress-migrate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh stress-ng
cargo build --workspace --bins --quiet
cargo build --tests -p tests -p hypervisors --quiet
stress-ng --cpu "${STRESS_CPU:-2}" --quiet &
load=$!
trap 'kill $load 2>/dev/null || true' EXIT
cargo nextest run -p hypervisors -p tests --no-capture --run-ignored ignored-only \
    -E 'test(live_migrations_under_tcg_lose_no_write) | test(a_guest_migrated_back_and_forth_under_load_never_reboots)'
