#!/usr/bin/env bash
# The deploy test: pullprintd installed and run the way the README says, under real systemd and a real
# container engine, against the built-in Universal Print emulator on the host's loopback.
#
# 1. systemd: a minimal Debian 12 root file system (debootstrap, cached in $CACHE between runs) booted
#    with `systemd-nspawn --boot`; the .deb installed with apt; the README's configuration steps
#    (taken from the README between its install-steps markers, and checked equal to
#    deploy/install-steps.sh) run as written; then: READY, a job held and released, a watchdog restart
#    after SIGSTOP, a clean stop, `doctor` from a root shell with the service stopped, start at boot,
#    and `systemd-analyze security` at 2.0 or lower.
# 2. container: a base image imported from a debootstrapped Debian 13 root file system (no registry
#    is reachable), the Dockerfile's runtime stage built with `--build-arg BINARY=prebuilt`, run by
#    podman-compose from deploy/compose.yaml (the test changes only the Graph addresses, the network
#    and the port): ready, healthy, non-root, read-only root, the store kept across re-creation, and a
#    configuration error (exit 78) that does not restart in a loop.
#
# Needs root and: debootstrap, systemd-container, podman, runc, cargo-deb, curl, jq, python3-venv (for
# podman-compose from PyPI), python3-yaml. Outside CI a missing tool skips the test; under CI=true it fails.
# Time: about 4 min for the two debootstraps on the first run (cached afterwards), then ~3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

CACHE=${PULLPRINTD_DEPLOY_CACHE:-/var/cache/pullprintd-deploy-test}
MIRROR=${PULLPRINTD_DEPLOY_MIRROR:-http://deb.debian.org/debian}
MACHINE=pullprintd-deploy-test
# `systemd`, `container` or `all` (default): run one part alone while working on it.
PART=${PULLPRINTD_DEPLOY_PART:-all}

say() { printf '== deploy-test: %s\n' "$*"; }
fail() {
    printf 'deploy-test: FAIL: %s\n' "$*" >&2
    exit 1
}
skip() {
    if [ "${CI:-}" = true ]; then
        fail "$* (CI=true: the deploy test must run)"
    fi
    printf 'deploy-test: SKIPPED: %s\n' "$*" >&2
    exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, systemd-nspawn, podman)"
for tool in debootstrap systemd-nspawn nsenter podman runc cargo-deb curl jq; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is missing (apt-get install debootstrap systemd-container podman runc curl jq python3-yaml python3-venv; cargo install cargo-deb)"
done
/usr/bin/python3 -c 'import yaml, venv, ensurepip' 2>/dev/null || skip "python3-yaml or python3-venv is missing"

work=$(mktemp -d /tmp/pullprintd-deploy.XXXXXX)
nspawn_pid=
emulator_pid=
cleanup() {
    set +e
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        kill -TERM "$nspawn_pid"
        for _ in $(seq 30); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
        kill -KILL "$nspawn_pid" 2>/dev/null
    fi
    if [ -f "$work/compose/compose.yaml" ]; then
        (cd "$work/compose" && "$podman_compose" -f compose.yaml down -v >/dev/null 2>&1)
    fi
    [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# Everything is bounded: a step that hangs fails the test with its name instead of blocking CI.
wait_for() { # SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    fail "$what: not within ${seconds}s"
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- build -----------------------------------------------------------------------------------------
# The binary under test is the debug build the test command has already made (PULLPRINTD_DEPLOY_PROFILE
# =release tests a release build instead, at the cost of building one). What is tested here is the
# packaging, the unit, the image and the README's steps; both profiles build the same source.
profile=${PULLPRINTD_DEPLOY_PROFILE:-dev}
case $profile in
    dev) profile_dir=debug ;;
    release) profile_dir=release ;;
    *) fail "PULLPRINTD_DEPLOY_PROFILE must be dev or release, not '$profile'" ;;
esac
say "building the .deb ($profile binary)"
if [ "${PULLPRINTD_DEPLOY_REUSE_BUILD:-}" != 1 ]; then
    PULLPRINTD_DEB_PROFILE=$profile scripts/build-deb.sh >"$work/build-deb.log" 2>&1 \
        || { tail -30 "$work/build-deb.log"; fail "scripts/build-deb.sh"; }
fi
deb=$(ls -t target/debian/pullprintd_*.deb 2>/dev/null | head -1 || true)
[ -f "$deb" ] || [ "$PART" = container ] || fail "no .deb in target/debian/"
binary=$repo/target/$profile_dir/pullprintd

# ---- root file systems (cached) ----------------------------------------------------------------------
rootfs() { # SUITE INCLUDE
    local suite=$1 include=$2
    if [ ! -x "$CACHE/$suite/usr/bin/apt-get" ]; then
        say "debootstrap $suite into $CACHE/$suite (once; cached afterwards)"
        mkdir -p "$CACHE"
        rm -rf "$CACHE/$suite.tmp"
        timeout 900 debootstrap --variant=minbase --include="$include" "$suite" "$CACHE/$suite.tmp" "$MIRROR" \
            >"$work/debootstrap-$suite.log" 2>&1 || { tail -20 "$work/debootstrap-$suite.log"; fail "debootstrap $suite"; }
        mv "$CACHE/$suite.tmp" "$CACHE/$suite"
    fi
}
rootfs bookworm systemd,systemd-sysv,dbus,ca-certificates
rootfs trixie ca-certificates

# podman-compose from PyPI, in a virtual environment in the cache: Debian 12's 1.0.3 adds the project
# network even with `network_mode: host` (fixed upstream since).
PODMAN_COMPOSE_VERSION=1.6.0
podman_compose=$CACHE/venv/bin/podman-compose
if ! "$podman_compose" --version 2>/dev/null | grep -q "podman-compose version $PODMAN_COMPOSE_VERSION"; then
    say "installing podman-compose $PODMAN_COMPOSE_VERSION into $CACHE/venv"
    /usr/bin/python3 -m venv "$CACHE/venv" && "$CACHE/venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION" ||
        fail "cannot install podman-compose $PODMAN_COMPOSE_VERSION from PyPI"
fi

# ---- the emulator ------------------------------------------------------------------------------------
const() { sed -n "s/^pub const $1: &str = \"\(.*\)\";/\1/p" src/emulator/mod.rs; }
TENANT=$(const DEMO_TENANT_ID)
CLIENT=$(const DEMO_CLIENT_ID)
SECRET=$(const DEMO_CLIENT_SECRET)
[ -n "$TENANT" ] && [ -n "$CLIENT" ] && [ -n "$SECRET" ] || fail "the emulator's demo app was not found in src/emulator/mod.rs"
emu_port=$(free_port)
EMU=http://127.0.0.1:$emu_port
"$binary" emulator --listen "127.0.0.1:$emu_port" >"$work/emulator.log" 2>&1 &
emulator_pid=$!
wait_for 20 "the emulator answers" curl -fsS "$EMU/_emulator/clock"
emu() { # METHOD PATH [JSON]
    curl -fsS -X "$1" -H 'content-type: application/json' ${3:+--data "$3"} "$EMU$2"
}
printer=$(emu POST /_emulator/printers '{"displayName":"Lobby MFP"}' | jq -r .id)
[ -n "$printer" ] && [ "$printer" != null ] || fail "the emulator made no printer"

# Approves the device code a command prints in LOG as a Printer Administrator.
approve_device_code() { # LOG
    local code
    for _ in $(seq 60); do
        code=$(grep -o 'enter the code [A-Z0-9-]*' "$1" 2>/dev/null | head -1 | awk '{print $4}') || true
        if [ -n "$code" ]; then
            emu POST "/_emulator/device-codes/$code/approve" '{"userPrincipalName":"admin@contoso.com","printerAdmin":true}' >/dev/null
            return 0
        fi
        sleep 1
    done
    cat "$1" >&2
    fail "no device-code prompt in $1"
}

# =======================================================================================================
# 1. systemd
# =======================================================================================================
if [ "$PART" != container ]; then
root=$work/root
say "copying the Debian 12 root file system"
cp -a "$CACHE/bookworm" "$root"
mkdir -p "$root/deb"
cp "$deb" "$root/deb/"
echo "$MACHINE" >"$root/etc/hostname"

leader=
boot() {
    systemd-nspawn --boot --register=no --keep-unit --quiet -D "$root" --machine="$MACHINE" \
        >>"$work/console.log" 2>&1 </dev/null &
    nspawn_pid=$!
    leader=
    for _ in $(seq 60); do
        leader=$(pgrep -P "$nspawn_pid" | head -1) || true
        if [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ]; then break; fi
        leader=
        sleep 1
    done
    [ -n "$leader" ] || { tail -20 "$work/console.log"; fail "the container's systemd did not start"; }
    # `is-system-running --wait` returns once start-up is over (running or degraded).
    timeout 120 nsenter -t "$leader" -a systemctl is-system-running --wait >/dev/null 2>&1 || true
}
# A command inside the booted container, as root in a login-like environment.
in_box() {
    nsenter -t "$leader" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 "$@"
}
poweroff() {
    in_box systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$nspawn_pid" 2>/dev/null && fail "the container did not power off within 60s"
    wait "$nspawn_pid" 2>/dev/null || true
    nspawn_pid=
}

say "booting it with systemd-nspawn --boot"
boot

say "apt install ./pullprintd_*.deb"
in_box sh -c 'cd /deb && apt-get install -y -q ./pullprintd_*.deb' >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; fail "apt install of the .deb"; }
in_box test -x /usr/bin/pullprintd || fail "the .deb installed no /usr/bin/pullprintd"
in_box test -f /usr/share/man/man1/pullprintd.1.gz || fail "the .deb has no man page"
in_box test -f /usr/share/bash-completion/completions/pullprintd || fail "the .deb has no bash completion"
in_box getent passwd pullprintd >/dev/null || fail "installing the .deb created no pullprintd user"

# The steps exactly as the README shows them.
sed -n '/<!-- install-steps:begin -->/,/<!-- install-steps:end -->/p' README.md | sed '1,2d;$d' | sed '$d' >"$work/steps.sh"
[ -s "$work/steps.sh" ] || fail "README.md has no install steps between <!-- install-steps:begin --> and <!-- install-steps:end -->"
diff -u deploy/install-steps.sh "$work/steps.sh" >&2 || fail "the README's install steps differ from deploy/install-steps.sh"
cp "$work/steps.sh" "$root/root/install-steps.sh"

# The only test-specific settings: Graph is the emulator, the station and admin listeners on free ports
# (the box shares the host's network), a quick poll. The same variables are given to the steps'
# commands (setup, doctor, jobs) and, through a drop-in, to the unit.
api_port=$(free_port)
admin_port=$(free_port)
graph_env="PULLPRINTD__GRAPH__BASE_URL=$EMU PULLPRINTD__GRAPH__LOGIN_URL=$EMU PULLPRINTD__API__LISTEN=127.0.0.1:$api_port PULLPRINTD__API__ADMIN_LISTEN=127.0.0.1:$admin_port PULLPRINTD__INTAKE__POLL_INTERVAL=2s"
mkdir -p "$root/etc/systemd/system/pullprintd.service.d"
{
    echo "[Service]"
    for assignment in $graph_env; do echo "Environment=$assignment"; done
} >"$root/etc/systemd/system/pullprintd.service.d/emulator.conf"
in_box systemctl daemon-reload

say "running the README's install steps (setup's sign-in approved through the emulator)"
# shellcheck disable=SC2086
in_box env $graph_env TENANT_ID="$TENANT" CLIENT_ID="$CLIENT" QUEUE_PRINTER="$printer" \
    sh /root/install-steps.sh <<<"$SECRET" >"$work/steps.log" 2>&1 &
steps_pid=$!
approve_device_code "$work/steps.log"
if ! timeout 180 tail --pid="$steps_pid" -f /dev/null; then fail "the install steps did not finish within 180s"; fi
wait "$steps_pid" || { cat "$work/steps.log" >&2; fail "the README's install steps failed"; }

say "checking: READY, permissions, /readyz"
in_box systemctl is-active --quiet pullprintd || { in_box journalctl -u pullprintd --no-pager | tail -30 >&2; fail "pullprintd is not active after the install steps"; }
[ "$(in_box stat -c '%U:%G %a' /etc/pullprintd)" = "root:pullprintd 750" ] || fail "/etc/pullprintd is not root:pullprintd 0750"
[ "$(in_box stat -c '%U:%G %a' /etc/pullprintd/pullprintd.toml)" = "root:pullprintd 640" ] || fail "pullprintd.toml is not root:pullprintd 0640"
[ "$(in_box stat -c '%U:%G %a' /etc/pullprintd/secrets)" = "root:root 700" ] || fail "the secrets folder is not root:root 0700"
API=http://127.0.0.1:$api_port
wait_for 30 "/readyz answers 200" curl -fsS "$API/readyz"
in_box systemctl show -p StatusText --value pullprintd | grep -q '^ready' || fail "the status line does not say ready"

say "checking: a job is held, listed from a root shell, released and printed"
job=$(emu POST /_emulator/jobs "{\"printerId\":\"$printer\",\"userPrincipalName\":\"ada.lovelace@contoso.example\",\"documentName\":\"deploy-test.pdf\"}" | jq -r .jobId)
listed() { in_box env $graph_env pullprintd jobs | grep -q deploy-test.pdf; }
wait_for 30 "the job is held and listed by \`pullprintd jobs\`" listed
id=$(in_box env $graph_env pullprintd jobs | awk '/deploy-test.pdf/ {print $1}')
# shellcheck disable=SC2086
in_box env $graph_env pullprintd release "$id" | grep -q released || fail "pullprintd release $id"
printed() { emu GET "/_emulator/printers/$printer/printed" | grep -q "$job"; }
wait_for 30 "the released job is printed" printed

say "checking: the watchdog restarts a stopped (SIGSTOP) daemon"
pid=$(in_box systemctl show -p MainPID --value pullprintd)
in_box sh -c "kill -STOP $pid"
restarted() {
    local now
    now=$(in_box systemctl show -p MainPID --value pullprintd)
    [ "$now" != 0 ] && [ "$now" != "$pid" ] && in_box systemctl is-active --quiet pullprintd
}
wait_for 150 "a restart by the watchdog (WatchdogSec=30s, then SIGABRT and SIGKILL)" restarted
in_box journalctl -u pullprintd --no-pager | grep -qi watchdog || fail "the journal does not mention the watchdog"

say "checking: a clean stop, and doctor from a root shell with the service stopped"
in_box systemctl stop pullprintd
[ "$(in_box systemctl show -p ExecMainStatus --value pullprintd)" = 0 ] || fail "the stop did not exit 0"
# shellcheck disable=SC2086
in_box env $graph_env pullprintd doctor >"$work/doctor.log" 2>&1 || { cat "$work/doctor.log" >&2; fail "doctor from a root shell with the service stopped"; }

say "checking: systemd-analyze security"
exposure=$(in_box systemd-analyze security pullprintd.service 2>/dev/null | sed -n 's/.*Overall exposure level for pullprintd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure is above 2.0"
say "exposure level $exposure"

say "checking: pullprintd starts at boot"
poweroff
boot
wait_for 60 "pullprintd is active after a reboot" in_box systemctl is-active --quiet pullprintd
wait_for 30 "/readyz after a reboot" curl -fsS "$API/readyz"
poweroff
say "systemd: passed"
fi

# =======================================================================================================
# 2. container
# =======================================================================================================
[ "$PART" = systemd ] && { say "passed (systemd part only)"; exit 0; }
# crun refuses hybrid cgroup hosts; podman's default rlimits are above what a container without
# CAP_SYS_RESOURCE (cap_drop: ALL) may set on some hosts, so they are lowered to what the daemon needs.
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$work/containers.conf

base=docker.io/library/debian:trixie-slim
if ! podman image exists "$base"; then
    say "importing $CACHE/trixie as $base"
    tar -C "$CACHE/trixie" -c . | podman import - "$base" >/dev/null
fi
say "building the image's runtime stage with the prebuilt binary"
podman build --pull=never --network=host --format docker --build-arg BINARY=prebuilt \
    --build-arg PREBUILT_DIR="$profile_dir" -t localhost/pullprintd:latest . \
    >"$work/podman-build.log" 2>&1 || { tail -30 "$work/podman-build.log"; fail "podman build"; }

# The compose project: deploy/compose.yaml with only the Graph addresses, the ids, the network and the
# port changed (the emulator listens on the host's loopback).
# The printer keeps the trigger `setup` made above, for the definition it wrote into the configuration.
if [ "$PART" = container ]; then
    definition=$(emu POST /_emulator/task-definitions "{\"appId\":\"$CLIENT\",\"displayName\":\"pullprintd\"}" | jq -r .id)
    emu POST "/_emulator/printers/$printer/trigger" "{\"definitionId\":\"$definition\"}" >/dev/null
else
    definition=$(sed -n 's/^task_definition_id = "\(.*\)"$/\1/p' "$root/etc/pullprintd/pullprintd.toml")
fi
[ -n "$definition" ] || fail "no task_definition_id in the configuration the install steps wrote"
mkdir -p "$work/compose/secrets"
cp deploy/compose.yaml deploy/branch.toml deploy/users.toml "$work/compose/"
printf '%s' "$SECRET" >"$work/compose/secrets/client-secret"
random_key() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
random_key >"$work/compose/secrets/station-lobby.key"
random_key >"$work/compose/secrets/admin.key"
chown -R 10001:10001 "$work/compose/secrets"
sed -i "s/11111111-1111-1111-1111-111111111111/$printer/" "$work/compose/branch.toml"
c_port=$(free_port)
c_admin_port=$(free_port)
compose_for() { # TENANT -> compose.yaml for this test
    /usr/bin/python3 - "$work/compose/compose.yaml" "$1" <<PY
import sys, yaml
path, tenant = sys.argv[1], sys.argv[2]
doc = yaml.safe_load(open("$repo/deploy/compose.yaml"))
svc = doc["services"]["pullprintd"]
env = svc["environment"]
env.update({
    "PULLPRINTD__GRAPH__TENANT_ID": tenant,
    "PULLPRINTD__GRAPH__CLIENT_ID": "$CLIENT",
    "PULLPRINTD__GRAPH__BASE_URL": "$EMU",
    "PULLPRINTD__GRAPH__LOGIN_URL": "$EMU",
    "PULLPRINTD__PRINTING__TASK_DEFINITION_ID": "$definition",
    "PULLPRINTD__PRINTING__QUEUE_PRINTERS": "$printer",
    "PULLPRINTD__INTAKE__POLL_INTERVAL": "2s",
    "PULLPRINTD__API__LISTEN": "127.0.0.1:$c_port",
    "PULLPRINTD__API__ADMIN_LISTEN": "127.0.0.1:$c_admin_port",
})
svc.pop("build", None)
svc.pop("ports", None)
svc["network_mode"] = "host"
svc["healthcheck"] = {"test": ["CMD", "pullprintd", "healthcheck", "--url", "http://127.0.0.1:$c_port/readyz"],
                      "interval": "30s", "timeout": "10s", "retries": 3}
yaml.safe_dump(doc, open(path, "w"), sort_keys=False)
PY
}
compose() { (cd "$work/compose" && timeout 120 "$podman_compose" -f compose.yaml "$@") >>"$work/compose.log" 2>&1; }
container=pullprintd-branch_pullprintd_1
container_logs() {
    tail -20 "$work/compose.log" >&2
    podman ps -a >&2 || true
    podman logs --tail 30 "$container" >&2 || true
}

say "container: podman-compose up"
compose_for "$TENANT"
compose up -d || { tail -30 "$work/compose.log"; fail "podman-compose up"; }
CAPI=http://127.0.0.1:$c_port
container_ready() { curl -fsS "$CAPI/readyz"; }
for _ in $(seq 30); do container_ready >/dev/null 2>&1 && break; sleep 1; done
container_ready >/dev/null 2>&1 || { container_logs; fail "the container's /readyz does not answer 200 within 30s"; }
podman healthcheck run "$container" >/dev/null || fail "the HEALTHCHECK does not pass"
[ "$(podman inspect --format '{{.State.Health.Status}}' "$container")" = healthy ] || fail "the container is not healthy"
[ "$(podman exec "$container" id -u)" = 10001 ] || fail "the container does not run as uid 10001"
[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$container")" = true ] || fail "the root file system is not read-only"
podman exec "$container" touch /usr/local/bin/x 2>/dev/null && fail "the root file system takes writes"

say "container: a held job survives re-creation"
cjob_doc=container-test.pdf
emu POST /_emulator/jobs "{\"printerId\":\"$printer\",\"userPrincipalName\":\"ada.lovelace@contoso.example\",\"documentName\":\"$cjob_doc\"}" >/dev/null
c_listed() { podman exec "$container" pullprintd jobs | grep -q "$cjob_doc"; }
wait_for 30 "the job is held in the container" c_listed
compose down || fail "podman-compose down"
compose up -d || fail "podman-compose up (again)"
wait_for 30 "the re-created container is ready" curl -fsS "$CAPI/readyz"
c_listed || fail "the held job was lost when the container was re-created (the store volume)"
compose down -v || true

say "container: a configuration error (exit 78) does not restart in a loop"
compose_for ""
compose up -d || true
stopped() { [ "$(podman inspect --format '{{.State.Status}}' "$container")" = exited ]; }
wait_for 60 "the misconfigured container stops" stopped
sleep 10
[ "$(podman inspect --format '{{.State.Status}}' "$container")" = exited ] || fail "the misconfigured container keeps restarting"
[ "$(podman inspect --format '{{.State.ExitCode}}' "$container")" = 78 ] || fail "the configuration error did not exit 78"
restarts=$(podman inspect --format '{{.RestartCount}}' "$container")
[ "$restarts" -le 5 ] || fail "restarted $restarts times"
compose down -v || true
say "container: passed (restarts after exit 78: $restarts)"
say "passed"
