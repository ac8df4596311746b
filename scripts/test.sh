#!/usr/bin/env bash
# The test command of the README: formatting, lints, then every test (unit, integration against the
# Universal Print emulator, the Graph requests the client sent checked against the project's copy of
# Microsoft's OpenAPI description), then the station API fuzzed by schemathesis (installed with pip when
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# How long each stage took, printed at the end (the README's figure for the test command comes from it).
stages=()
started=$SECONDS
stage_done() {
    local now=$SECONDS
    stages+=("$(printf '%-12s %3d:%02d' "$1" $(((now - started) / 60)) $(((now - started) % 60)))")
    started=$now
}
report() {
    local status=$?
    printf '\ntest.sh: time per stage (min:s)\n'
    printf '  %s\n' "${stages[@]}"
    printf '  %-12s %3d:%02d\n' total $((SECONDS / 60)) $((SECONDS % 60))
    exit "$status"
}
trap report EXIT

cargo fmt --all -- --check
stage_done fmt
cargo clippy --all-targets --locked -- -D warnings
stage_done clippy
# Benchmarks (benches/) are compiled by clippy above but not run here: they measure, they do not test.
cargo test --lib --bins --tests --locked --no-run
stage_done test-build
# Six tests at a time in each binary rather than one per core: most of them wait on HTTP, on the
# emulator's injected latency or on a child daemon, not on the CPU (on two cores this halves the stage).
RUST_TEST_THREADS=${RUST_TEST_THREADS:-6} cargo test --lib --bins --tests --locked
stage_done tests
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
stage_done schemathesis

# The deploy test: the .deb under real systemd (systemd-nspawn) and the image under podman, following the
# README. Skipped with a message when run without root or its tools, except under CI=true.
scripts/deploy-test.sh
stage_done deploy-test

