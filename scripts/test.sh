#!/usr/bin/env bash
# The test command of the README: formatting, lints, then every test (unit, integration against the
# Universal Print emulator, schema validation of the Graph requests the client sent).
# Installs the Python packages the schema check needs when they are missing (into the user site).
set -euo pipefail
cd "$(dirname "$0")/.."

shared="${PULLPRINTD_SHARED:-$(cd .. && pwd)/shared}"
if [ ! -f "$shared/graph/print-openapi-v1.0.yaml" ]; then
    echo "scripts/test.sh: the shared reference folder was not found at $shared;" >&2
    echo "  check out the project with shared/ beside it, or set PULLPRINTD_SHARED." >&2
    exit 1
fi
export PULLPRINTD_SHARED="$shared"

if ! python3 -c 'import openapi_core, yaml' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check openapi-core pyyaml
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Benchmarks (benches/) are compiled by clippy above but not run here: they measure, they do not test.
cargo test --lib --bins --tests --locked

# The running station API fuzzed against its own OpenAPI document: no 5xx (bounded in time).
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check schemathesis
fi
scripts/schemathesis.sh

# The deploy test: the .deb under real systemd (systemd-nspawn) and the image under podman, following the
# README. Skipped with a message when run without root or its tools, except under CI=true.
scripts/deploy-test.sh

# Show the schema check's figure in the log: every Graph request the client sent during the tests,
# validated against Microsoft's official OpenAPI description (the test above fails if any is invalid).
recorded="${CARGO_TARGET_DIR:-target}/tmp/graph-client-requests.jsonl"
if [ -f "$recorded" ]; then
    total=$(grep -c . "$recorded")
    invalid=$(python3 "$shared/tools/validate_graph_requests.py" --spec "$shared/graph/print-openapi-v1.0.yaml" "$recorded" | grep -c ' -> INVALID' || true)
    echo "Graph requests recorded during the tests and checked against the official schema: $((total - invalid)) of $total valid"
    [ "$invalid" = 0 ]
fi
