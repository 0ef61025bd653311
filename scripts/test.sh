#!/usr/bin/env bash
# Every test of the workspace, on a fresh machine: the README's test command.
#
#   scripts/test.sh [--quick] [cargo test arguments…]
#
# The Redis tests (the shared DPoP replay store) start real `redis-server` processes on free
# loopback ports, so this installs Redis first when it is missing (Debian/Ubuntu: `apt-get install
# redis-server`, after `apt-get update` when the package lists are empty), then runs
# `cargo test --workspace` with the arguments given. Set REDIS_SERVER to use another binary.
#
# --quick skips the trybuild suite (the ui-tests packages, which compile every case and take the
# longest) for a fast loop: `scripts/test.sh --quick`, `scripts/test.sh --quick -p tests`. Every
# other argument goes to cargo as given (after `--`, to the test binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

# The packages of ui-tests/ (see the workspace members in Cargo.toml).
UI_TESTS=(ui-tests ui-tests-2021 ui-tests-renamed-crate)

args=()
quick=false
seen_separator=false
for arg in "$@"; do
    if [ "$seen_separator" = false ] && [ "$arg" = "--quick" ]; then
        quick=true
        continue
    fi
    [ "$arg" = "--" ] && seen_separator=true
    args+=("$arg")
done

REDIS_SERVER=${REDIS_SERVER:-redis-server}

if ! command -v "$REDIS_SERVER" >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: $REDIS_SERVER is not installed and this machine has no apt-get:" >&2
        echo "  install Redis (7.0 or later, the redis-server program) with your package manager," >&2
        echo "  or set REDIS_SERVER to the path of a redis-server binary, then run this again." >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "scripts/test.sh: installing redis-server needs root (or sudo): run" >&2
            echo "  apt-get update && apt-get install -y redis-server" >&2
            echo "  as root, then run this again." >&2
            exit 1
        fi
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "== installing redis-server (apt-get)"
    # A fresh container has no package lists at all: fetch them first.
    if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
        $SUDO apt-get update
    fi
    # Lists that are there but stale name package versions the mirror no longer has: refresh them
    # and try once more.
    if ! $SUDO apt-get install -y --no-install-recommends redis-server; then
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends redis-server
    fi
    command -v "$REDIS_SERVER" >/dev/null 2>&1 || {
        echo "scripts/test.sh: redis-server was installed but $REDIS_SERVER is not on the PATH" >&2
        exit 1
    }
fi

# `SET … PXAT` needs Redis 6.2; the expiry checks read `PEXPIRETIME`, Redis 7.0.
version=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
read -r major minor <<<"${version:-0 0}"
if [ "$major" -lt 7 ]; then
    echo "scripts/test.sh: $("$REDIS_SERVER" --version) is too old: the tests need Redis 7.0 or later" >&2
    exit 1
fi
echo "== $("$REDIS_SERVER" --version | cut -d' ' -f1-3)"

export REDIS_SERVER
# `-p` picks packages itself (cargo ignores it next to `--workspace`).
scope=(--workspace)
for arg in ${args[@]+"${args[@]}"}; do
    case "$arg" in
        --) break ;;
        -p | --package | -p* | --package=*) scope=() ;;
    esac
done
if [ "$quick" = true ] && [ ${#scope[@]} -gt 0 ]; then
    excluded=()
    for package in "${UI_TESTS[@]}"; do
        excluded+=(--exclude "$package")
    done
    echo "== --quick: skipping the trybuild suite (${UI_TESTS[*]})"
    exec cargo test ${scope[@]+"${scope[@]}"} "${excluded[@]}" ${args[@]+"${args[@]}"}
fi
exec cargo test ${scope[@]+"${scope[@]}"} ${args[@]+"${args[@]}"}
