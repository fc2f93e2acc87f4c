#!/usr/bin/env bash
# The test command of README.md: installs what the tests need, then checks
# formatting and lints, builds the daemons and tools the end-to-end tests
# run, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Dependencies: permitted licences, no duplicate versions but those
# deny.toml names, crates.io only.
cargo deny check licenses bans sources
# The end-to-end tests start the real binaries from target/debug.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast
