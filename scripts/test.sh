#!/usr/bin/env bash
# The test command of the README: formatting, lints, then every test (unit, integration against the
# Universal Print emulator, the Graph requests the client sent checked against the project's copy of
# Microsoft's OpenAPI description), then the station API fuzzed by schemathesis (installed with pip when
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Benchmarks (benches/) are compiled by clippy above but not run here: they measure, they do not test.
cargo test --lib --bins --tests --locked
# The figure of the schema check, which the test above wrote (it fails on any invalid request).
summary="${CARGO_TARGET_DIR:-target}/tmp/graph-client-requests.summary"
if [ -f "$summary" ]; then
    cat "$summary"
fi

# The running station API fuzzed against its own OpenAPI document: no 5xx (bounded in time).
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check schemathesis
fi
scripts/schemathesis.sh

# The deploy test: the .deb under real systemd (systemd-nspawn) and the image under podman, following the
# README. Skipped with a message when run without root or its tools, except under CI=true.
scripts/deploy-test.sh

