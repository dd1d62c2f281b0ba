#!/usr/bin/env bash
# Runs the tool's own checks and tests: formatting, lints, then every unit and integration test
# (the integration tests start real PostgreSQL and Redis servers through the harness).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast
else
    cargo test --no-fail-fast
fi
