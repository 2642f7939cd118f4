#!/bin/sh
# What the tests need from Debian: Chromium for the browser tests (tests/test_web_browser.py
# drives it with Playwright's Python package; nothing is downloaded at test time), fonts for
# its screenshots, shellcheck for the installer's lint test, and a PostgreSQL server with
# libpq for the data layer's PostgreSQL runs (tests/utils/db.py). Run by `make test`.
# Does nothing when they are installed and running; needs root or sudo otherwise.
# APPLIANCE_TEST_POSTGRES_URL pointing elsewhere skips the local server.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium fonts-dejavu-core fonts-noto-color-emoji"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
local_pg=1
case "${APPLIANCE_TEST_POSTGRES_URL:-}" in
    ""|*@127.0.0.1*|*@localhost*) ;;
    *) local_pg=0 ;;
esac
if [ "$local_pg" = 1 ]; then
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"
fi
ldconfig -p 2>/dev/null | grep -q 'libpq\.so\.5' || missing="$missing libpq5"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        if [ -n "$missing" ]; then
            echo "install-test-deps: run as root (or install sudo) to apt-get install:$missing" >&2
            exit 1
        fi
    fi
fi
if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-test-deps: no apt-get here; install:$missing (or set APPLIANCE_CHROMIUM=/path/to/chromium)" >&2
        exit 1
    fi
    echo "installing for the tests:$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The tests connect as postgres over TCP without a password (trust on loopback), as the
# project's machines are set up; a cluster this script creates is set up the same way.
if [ "$local_pg" = 1 ] && command -v pg_lsclusters >/dev/null 2>&1; then
    if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
        version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
        $SUDO pg_createcluster "$version" main -- --auth-host=trust --auth-local=trust >/dev/null
    fi
    pg_lsclusters -h | while read -r version cluster _port status _rest; do
        case "$status" in
            online*) ;;
            *) $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start ;;
        esac
    done
fi
