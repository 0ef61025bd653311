#!/usr/bin/env bash
# End-to-end load test of the quickstart API (issue #4), on this machine only (127.0.0.1).
#
#   scripts/load.sh
#
# Builds the quickstart in release mode, starts it against its embedded test issuer on a free
# port, and runs wrk (2 threads, 50 connections, 10 s, after a 2 s warm-up) on /api/public and on
# /api/private-scoped with a Bearer token, alternating, ROUNDS times. Prints the rates, the ratio
# of the medians (target >= 0.80), the protected rate against 39 120 req/s (30x the reference
# Python SDK's 1 304 req/s) and the server's peak RSS (VmHWM; target < 30 MiB). The server and wrk
# share the machine's cores. Stops by itself (every step is bounded; about 70 s once built) and
# stops the server on exit.
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

# --- build -----------------------------------------------------------------------------------
echo "== building the quickstart (release)"
cargo build --release -p examples --example quickstart
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
SERVER="$TARGET_DIR/release/examples/quickstart"
[ -x "$SERVER" ] || { echo "no binary at $SERVER" >&2; exit 1; }

# --- a free port -----------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
PORT=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 30000))
    if ! port_in_use "$candidate"; then PORT=$candidate; break; fi
done
[ -n "$PORT" ] || { echo "no free port found" >&2; exit 1; }

# --- start the server ------------------------------------------------------------------------
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting the quickstart on $HOST:$PORT"
# No AUTH0_DOMAIN: the quickstart starts its embedded issuer (and a .env in the repo would be read,
# so run it from the scratch directory).
(cd "$WORK" && exec env -u AUTH0_DOMAIN -u AUTH0_DOMAINS -u AUTH0_AUDIENCE PORT="$PORT" \
    QUICKSTART_PRINT_TOKENS=1 "$SERVER") >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

TOKEN=""
for _ in $(seq 1 100); do
    TOKEN=$(sed -n 's/^TOKEN_WITH_SCOPE=//p' "$WORK/server.log" | head -n 1)
    if [ -n "$TOKEN" ] && port_in_use "$PORT"; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "the server exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$TOKEN" ] && port_in_use "$PORT" || { cat "$WORK/server.log" >&2; echo "the server did not start" >&2; exit 1; }

BASE="http://$HOST:$PORT"
check() {
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@")
    echo "$status"
}
[ "$(check "$BASE/api/public")" = 200 ] || { echo "/api/public does not answer 200" >&2; exit 1; }
[ "$(check -H "Authorization: Bearer $TOKEN" "$BASE/api/private-scoped")" = 200 ] ||
    { echo "/api/private-scoped does not answer 200 with the token" >&2; exit 1; }

# --- load ------------------------------------------------------------------------------------
run_wrk() { # duration path [header]
    local duration=$1 path=$2
    shift 2
    timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency "$@" "$BASE$path"
}
rate_of() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
errors_of() { awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print}' "$1"; }

AUTH=(-H "Authorization: Bearer $TOKEN")

echo "== warm-up: $WARMUP on each route"
run_wrk "$WARMUP" /api/public >/dev/null
run_wrk "$WARMUP" /api/private-scoped "${AUTH[@]}" >/dev/null

# The machine is shared (wrk, the server, anything else running): alternate the two routes for
# ROUNDS rounds and compare the medians, so that a passing load burst does not decide the ratio.
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round/$ROUNDS: /api/public, $DURATION ($THREADS threads, $CONNECTIONS connections)"
    run_wrk "$DURATION" /api/public | tee "$WORK/public-$round.txt"
    echo "== round $round/$ROUNDS: /api/private-scoped (Bearer), $DURATION"
    run_wrk "$DURATION" /api/private-scoped "${AUTH[@]}" | tee "$WORK/private-$round.txt"
done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
PUBLIC_ALL=$(for f in "$WORK"/public-*.txt; do rate_of "$f"; done | tr '\n' ' ')
PRIVATE_ALL=$(for f in "$WORK"/private-*.txt; do rate_of "$f"; done | tr '\n' ' ')
PUBLIC=$(echo "$PUBLIC_ALL" | tr ' ' '\n' | grep . | median)
PRIVATE=$(echo "$PRIVATE_ALL" | tr ' ' '\n' | grep . | median)
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
for f in "$WORK"/public-*.txt "$WORK"/private-*.txt; do
    e=$(errors_of "$f")
    if [ -n "$e" ]; then echo "warning: $(basename "$f" .txt) had errors: $e" >&2; fi
done

echo
echo "== results ($(nproc) cores, server with actix's default worker count, wrk on the same machine)"
echo "public rounds (req/s):          $PUBLIC_ALL"
echo "private-scoped rounds (req/s):  $PRIVATE_ALL"
awk -v pub="$PUBLIC" -v priv="$PRIVATE" -v hwm="$HWM_KB" -v rss="$RSS_KB" 'BEGIN {
    ratio = priv / pub
    mib = hwm / 1024
    printf "public          %10.0f req/s (median)\n", pub
    printf "private-scoped  %10.0f req/s (median)\n", priv
    printf "ratio           %10.3f   (target >= 0.80) %s\n", ratio, (ratio >= 0.80 ? "PASS" : "FAIL")
    printf "vs reference    %10.1fx  (target >= 30x the Python SDK'"'"'s 1 304 req/s = 39 120 req/s) %s\n", priv / 1304, (priv >= 39120 ? "PASS" : "FAIL")
    printf "peak RSS        %10.1f MiB (VmHWM; now %.1f MiB; target < 30 MiB) %s\n", mib, rss / 1024, (mib < 30 ? "PASS" : "FAIL")
}'
