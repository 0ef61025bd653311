#!/usr/bin/env bash
# End-to-end load test of the quickstart API (issue #4), on this machine only (127.0.0.1), for both
# adapters side by side: the Actix quickstart and the axum one (the same routes and answers).
#
#   scripts/load.sh
#
# Builds both quickstarts in release mode, starts each against its own embedded test issuer on a
# free port, and runs wrk (2 threads, 50 connections, 10 s, after a 2 s warm-up) on /api/public and
# on /api/private-scoped with a Bearer token, alternating routes and adapters, ROUNDS times. Prints
# per adapter the rates, the ratio of the medians (target >= 0.80), the protected rate against
# 39 120 req/s (30x the reference Python SDK's 1 304 req/s) and the server's peak RSS (VmHWM;
# target < 30 MiB); then the axum/actix ratio of the medians. The servers and wrk share the
# machine's cores (only the server under load is busy). Stops by itself (every step is bounded;
# about 2.5 min once built) and stops the servers on exit.
#
# Environment: THREADS (2), CONNECTIONS (50), DURATION (10s), WARMUP (2s), ROUNDS (3).
set -euo pipefail

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-50}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
HOST=127.0.0.1

cd "$(dirname "$0")/.."

# --- wrk -------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get install -y wrk >/dev/null 2>&1 || {
        $SUDO apt-get update >/dev/null
        $SUDO apt-get install -y wrk >/dev/null
    }
fi

# --- build ---------------------------------------------------------------------------------
echo "== building the quickstarts (release)"
cargo build --release -p examples --example quickstart --example axum_quickstart
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
ADAPTERS=(actix axum)
declare -A BINARY=([actix]="$TARGET_DIR/release/examples/quickstart" [axum]="$TARGET_DIR/release/examples/axum_quickstart")
for adapter in "${ADAPTERS[@]}"; do
    [ -x "${BINARY[$adapter]}" ] || { echo "no binary at ${BINARY[$adapter]}" >&2; exit 1; }
done

# --- free ports ------------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
free_port() {
    local candidate
    for _ in $(seq 1 50); do
        candidate=$((20000 + RANDOM % 30000))
        if ! port_in_use "$candidate"; then echo "$candidate"; return 0; fi
    done
    echo "no free port found" >&2
    return 1
}

# --- start the servers -----------------------------------------------------------------------
WORK=$(mktemp -d)
declare -A PID=() PORT=() TOKEN=()
cleanup() {
    local pid
    for pid in "${PID[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for adapter in "${ADAPTERS[@]}"; do
    PORT[$adapter]=$(free_port)
    while [ "$adapter" = axum ] && [ "${PORT[axum]}" = "${PORT[actix]}" ]; do PORT[axum]=$(free_port); done
    echo "== starting the $adapter quickstart on $HOST:${PORT[$adapter]}"
    # No AUTH0_DOMAIN: the quickstart starts its embedded issuer (and a .env in the repo would be
    # read, so run it from the scratch directory).
    (cd "$WORK" && exec env -u AUTH0_DOMAIN -u AUTH0_DOMAINS -u AUTH0_AUDIENCE PORT="${PORT[$adapter]}" \
        QUICKSTART_PRINT_TOKENS=1 "${BINARY[$adapter]}") >"$WORK/server-$adapter.log" 2>&1 &
    PID[$adapter]=$!
    TOKEN[$adapter]=""
    for _ in $(seq 1 100); do
        TOKEN[$adapter]=$(sed -n 's/^TOKEN_WITH_SCOPE=//p' "$WORK/server-$adapter.log" | head -n 1)
        if [ -n "${TOKEN[$adapter]}" ] && port_in_use "${PORT[$adapter]}"; then break; fi
        kill -0 "${PID[$adapter]}" 2>/dev/null ||
            { cat "$WORK/server-$adapter.log" >&2; echo "the $adapter server exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "${TOKEN[$adapter]}" ] && port_in_use "${PORT[$adapter]}" ||
        { cat "$WORK/server-$adapter.log" >&2; echo "the $adapter server did not start" >&2; exit 1; }
done

check() {
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@")
    echo "$status"
}
for adapter in "${ADAPTERS[@]}"; do
    base="http://$HOST:${PORT[$adapter]}"
    [ "$(check "$base/api/public")" = 200 ] || { echo "$adapter: /api/public does not answer 200" >&2; exit 1; }
    [ "$(check -H "Authorization: Bearer ${TOKEN[$adapter]}" "$base/api/private-scoped")" = 200 ] ||
        { echo "$adapter: /api/private-scoped does not answer 200 with the token" >&2; exit 1; }
done

# --- load ------------------------------------------------------------------------------------
run_wrk() { # adapter duration path [header]
    local adapter=$1 duration=$2 path=$3
    shift 3
    timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency "$@" "http://$HOST:${PORT[$adapter]}$path"
}
rate_of() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
errors_of() { awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print}' "$1"; }

for adapter in "${ADAPTERS[@]}"; do
    echo "== warm-up ($adapter): $WARMUP on each route"
    run_wrk "$adapter" "$WARMUP" /api/public >/dev/null
    run_wrk "$adapter" "$WARMUP" /api/private-scoped -H "Authorization: Bearer ${TOKEN[$adapter]}" >/dev/null
done

# The machine is shared (wrk, the servers, anything else running): alternate the routes and the
# adapters for ROUNDS rounds and compare the medians, so that a passing load burst does not decide
# a ratio.
for round in $(seq 1 "$ROUNDS"); do
    for adapter in "${ADAPTERS[@]}"; do
        echo "== round $round/$ROUNDS, $adapter: /api/public, $DURATION ($THREADS threads, $CONNECTIONS connections)"
        run_wrk "$adapter" "$DURATION" /api/public | tee "$WORK/$adapter-public-$round.txt"
        echo "== round $round/$ROUNDS, $adapter: /api/private-scoped (Bearer), $DURATION"
        run_wrk "$adapter" "$DURATION" /api/private-scoped -H "Authorization: Bearer ${TOKEN[$adapter]}" |
            tee "$WORK/$adapter-private-$round.txt"
    done
done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
declare -A PUBLIC=() PRIVATE=()
echo
echo "== results ($(nproc) cores, each server with its framework's default worker count, wrk on the same machine)"
for adapter in "${ADAPTERS[@]}"; do
    public_all=$(for f in "$WORK/$adapter"-public-*.txt; do rate_of "$f"; done | tr '\n' ' ')
    private_all=$(for f in "$WORK/$adapter"-private-*.txt; do rate_of "$f"; done | tr '\n' ' ')
    PUBLIC[$adapter]=$(echo "$public_all" | tr ' ' '\n' | grep . | median)
    PRIVATE[$adapter]=$(echo "$private_all" | tr ' ' '\n' | grep . | median)
    hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/${PID[$adapter]}/status")
    rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/${PID[$adapter]}/status")
    for f in "$WORK/$adapter"-public-*.txt "$WORK/$adapter"-private-*.txt; do
        e=$(errors_of "$f")
        if [ -n "$e" ]; then echo "warning: $(basename "$f" .txt) had errors: $e" >&2; fi
    done
    echo
    echo "-- $adapter"
    echo "public rounds (req/s):          $public_all"
    echo "private-scoped rounds (req/s):  $private_all"
    awk -v pub="${PUBLIC[$adapter]}" -v priv="${PRIVATE[$adapter]}" -v hwm="$hwm_kb" -v rss="$rss_kb" 'BEGIN {
        ratio = priv / pub
        mib = hwm / 1024
        printf "public          %10.0f req/s (median)\n", pub
        printf "private-scoped  %10.0f req/s (median)\n", priv
        printf "ratio           %10.3f   (target >= 0.80) %s\n", ratio, (ratio >= 0.80 ? "PASS" : "FAIL")
        printf "vs reference    %10.1fx  (target >= 30x the Python SDK'"'"'s 1 304 req/s = 39 120 req/s) %s\n", priv / 1304, (priv >= 39120 ? "PASS" : "FAIL")
        printf "peak RSS        %10.1f MiB (VmHWM; now %.1f MiB; target < 30 MiB) %s\n", mib, rss / 1024, (mib < 30 ? "PASS" : "FAIL")
    }'
done
echo
echo "-- axum / actix (medians)"
awk -v ap="${PUBLIC[actix]}" -v xp="${PUBLIC[axum]}" -v ar="${PRIVATE[actix]}" -v xr="${PRIVATE[axum]}" 'BEGIN {
    printf "public          %10.3f   (%.0f / %.0f req/s)\n", xp / ap, xp, ap
    printf "private-scoped  %10.3f   (%.0f / %.0f req/s)\n", xr / ar, xr, ar
}'
