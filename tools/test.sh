#!/usr/bin/env bash
# The project's test command (README, .ci/run): formatting, lints, then every test.
# Needs nothing but the Rust toolchain; Python is only for regenerating fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
