#!/usr/bin/env bash
# Fuzzes the running station API against its own OpenAPI document (GET /api/v1/openapi.json) with
# schemathesis: no answer may be a 5xx. Starts the emulator and `pullprintd run` on free ports with a
# configuration generated into a temporary directory, then runs three bounded passes: with the admin
# key against the admin listener (admin and audit routes), with a station key against the station
# listener (sign-in, station), with a session token and its station's key (jobs). Each pass stops
# after 20 s (several thousand generated requests on two cores); SCHEMATHESIS_MAX_TIME=300 fuzzes longer.
# Needs: python3 with `pip install schemathesis`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v schemathesis >/dev/null 2>&1; then
    echo "scripts/schemathesis.sh: schemathesis is not installed; run: python3 -m pip install schemathesis" >&2
    exit 1
fi

target="${CARGO_TARGET_DIR:-target}"
cargo build --locked --quiet --bin pullprintd
bin="$target/debug/pullprintd"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # url, what
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "scripts/schemathesis.sh: $2 did not start (see $work/*.log)" >&2
    cat "$work"/*.log >&2 || true
    exit 1
}

emulator_port="$(free_port)"
api_port="$(free_port)"
admin_port="$(free_port)"
"$bin" emulator --listen "127.0.0.1:$emulator_port" >"$work/emulator.log" 2>&1 &
pids+=($!)
sleep 0.2
station_key="schemathesis-station-key-0123456789"
admin_key="schemathesis-admin-key-0123456789"
pin_hash="$(echo 2468 | "$bin" hash-pin)"
cat >"$work/users.toml" <<USERS
[[user]]
upn = "ada@contoso.com"
display_name = "Ada Lovelace"
card = "0004521337"
pin_hash = "$pin_hash"
USERS
cat >"$work/pullprintd.toml" <<CONFIG
[graph]
tenant_id = "7d2a5c1e-0b5f-4c1a-9e6d-3f2b8a9c4e10"
client_id = "3c8e5b0a-6f4d-4e2b-a1c7-9d0e2f4b6a85"
client_secret = "emulator-demo-secret-not-for-production"
base_url = "http://127.0.0.1:$emulator_port"
login_url = "http://127.0.0.1:$emulator_port"
request_timeout = "5s"

[printing]
task_definition_id = "schemathesis-definition"

[intake]
mode = "poll"
poll_interval = "1h"

[[stations]]
id = "lobby"
printer_id = "schemathesis-printer"
key = "$station_key"

[users]
file = "$work/users.toml"
session_idle = "1h"
session_lifetime = "1h"
# The fuzzer's many failed sign-ins must not spend the budget the later passes need.
station_failure_budget = 100000
global_failure_budget = 100000

[api]
listen = "127.0.0.1:$api_port"
admin_listen = "127.0.0.1:$admin_port"
admin_key = "$admin_key"

[store]
path = "$work/state.db"
CONFIG
"$bin" run --config "$work/pullprintd.toml" >"$work/pullprintd.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$api_port"
admin="http://127.0.0.1:$admin_port"
wait_for "$base/healthz" "pullprintd"

session="$(curl -fsS -X POST "$base/api/v1/sessions" -H "Authorization: Bearer $station_key" \
    -H 'Content-Type: application/json' -d '{"card":"0004521337"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

run() {  # base URL, bearer, path regex, extra header arguments…
    local url="$1" bearer="$2" paths="$3"
    shift 3
    schemathesis run "$url/api/v1/openapi.json" \
        --checks not_a_server_error \
        --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
        --max-time "${SCHEMATHESIS_MAX_TIME:-20}" \
        --seed 4242 \
        --include-path-regex "$paths" \
        -H "Authorization: Bearer $bearer" "$@"
}
run "$admin" "$admin_key" '^/api/v1/(admin|audit)'
run "$base" "$station_key" '^/api/v1/(sessions|station)'
# Not sessions/current here: signing out would end the session the job routes are fuzzed with.
run "$base" "$session" '^/api/v1/jobs' -H "X-Station-Key: $station_key"
echo "schemathesis: no server errors"
