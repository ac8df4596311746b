#!/usr/bin/env bash
# The test command of the README: formatting, lints, then every test (unit, integration against the
# Universal Print emulator, the Graph requests the client sent checked against the project's copy of
# Microsoft's OpenAPI description), the station API fuzzed by schemathesis (installed with pip when
# missing) and the deploy test.
#
# Two things keep it short on two cores:
# - Lints and the test build are one compilation. `cargo clippy` is `cargo check` with clippy-driver as
#   the compiler of the workspace's own crate; a check build cannot share the dependencies `cargo build`
#   compiled, so a separate clippy run compiled every dependency a second time. Here clippy-driver is the
#   workspace's compiler for the test build itself (the same two variables `cargo clippy` sets), so every
#   target (`--all-targets`: library, binary, tests, benches) is linted with `-D warnings` as it is built,
#   and the dependencies are compiled once. A canary file proves the lints are live before trusting it.
# - The fuzzing and the deploy test need only the binary that build made: they run beside the test
#   binaries (their output is kept and printed when each ends), not after them.
set -euo pipefail
cd "$(dirname "$0")/.."

# How long each stage took, printed at the end (the README's figure for the test command comes from it).
# Stages that overlap say so; the total is wall time.
stages=()
stage_time() { # NAME SECONDS [NOTE]
    stages+=("$(printf '%-13s %3d:%02d %s' "$1" $(($2 / 60)) $(($2 % 60)) "${3:-}")")
}
started=$SECONDS
stage_done() {
    stage_time "$1" $((SECONDS - started)) "${2:-}"
    started=$SECONDS
}
report() {
    local status=$?
    printf '\ntest.sh: time per stage (min:s)\n'
    printf '  %s\n' "${stages[@]}"
    printf '  %-13s %3d:%02d\n' total $((SECONDS / 60)) $((SECONDS % 60))
    exit "$status"
}
trap report EXIT

cargo fmt --all -- --check
stage_done fmt

# Lints during the build (see the header). The canary has a `clippy::ptr_arg` finding: if clippy-driver
# no longer lints when called this way, the canary compiles and the script stops instead of passing
# unlinted code.
if command -v rustup >/dev/null 2>&1; then
    RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
else
    RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
fi
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
canary="$(mktemp -d)"
printf 'pub fn length(v: &Vec<u8>) -> usize {\n    v.len()\n}\n' >"$canary/lib.rs"
if "$RUSTC_WORKSPACE_WRAPPER" rustc --edition 2024 --crate-type lib --emit metadata \
    --out-dir "$canary" "$canary/lib.rs" >/dev/null 2>&1; then
    echo "test.sh: clippy-driver did not report the canary's finding: lints would not run; use: cargo clippy --all-targets -- -D warnings" >&2
    rm -rf "$canary"
    exit 1
fi
rm -rf "$canary"
# Benchmarks (benches/) are built and linted here but not run: they measure, they do not test.
cargo test --all-targets --locked --no-run
stage_done lint+build

# The fuzzing and the deploy test in the background, on the binary built above (their own `cargo build`
# finds it up to date; cargo's build lock is free again while tests run).
logs="$(mktemp -d)"
SECONDS_AT_FORK=$SECONDS
(
    start=$SECONDS
    if ! command -v schemathesis >/dev/null 2>&1; then
        python3 -m pip install --quiet --disable-pip-version-check schemathesis
    fi
    scripts/schemathesis.sh
    echo $((SECONDS - start)) >"$logs/schemathesis.seconds"
) >"$logs/schemathesis.log" 2>&1 &
schemathesis_pid=$!
# The deploy test: the .deb under real systemd (systemd-nspawn) and the image under podman, following the
# README. Skipped with a message when run without root or its tools, except under CI=true.
(
    start=$SECONDS
    scripts/deploy-test.sh
    echo $((SECONDS - start)) >"$logs/deploy-test.seconds"
) >"$logs/deploy-test.log" 2>&1 &
deploy_pid=$!

# Six tests at a time in each binary rather than one per core: most of them wait on HTTP, on the
# emulator's injected latency or on a child daemon, not on the CPU.
tests_status=0
RUST_TEST_THREADS=${RUST_TEST_THREADS:-6} cargo test --lib --bins --tests --locked || tests_status=$?
stage_done tests "(beside the two below)"
# The figure of the schema check, which the test above wrote (it fails on any invalid request).
summary="${CARGO_TARGET_DIR:-target}/tmp/graph-client-requests.summary"
if [ -f "$summary" ]; then
    cat "$summary"
fi

background_status=0
finish_part() { # NAME PID: wait for a background stage, print its output, record its time
    local status=0
    wait "$2" || status=$?
    printf '\n===== %s (ran beside the tests) =====\n' "$1"
    cat "$logs/$1.log"
    if [ "$status" = 0 ] && [ -f "$logs/$1.seconds" ]; then
        stage_time "$1" "$(cat "$logs/$1.seconds")" "(beside the tests)"
    else
        stage_time "$1" $((SECONDS - SECONDS_AT_FORK)) "(FAILED, exit $status)"
        background_status=$status
    fi
}
finish_part schemathesis "$schemathesis_pid"
finish_part deploy-test "$deploy_pid"
rm -rf "$logs"
if [ "$tests_status" != 0 ]; then
    echo "test.sh: the test suite failed (exit $tests_status)" >&2
    exit "$tests_status"
fi
exit "$background_status"
