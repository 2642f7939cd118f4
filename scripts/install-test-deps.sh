#!/bin/sh
# What the tests need from Debian: Chromium for the browser tests (tests/test_web_browser.py
# drives it with Playwright's Python package; nothing is downloaded at test time), fonts for
# its screenshots, and shellcheck for the installer's lint test. Run by `make test`.
# Does nothing when they are installed; needs root or sudo otherwise.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium fonts-dejavu-core fonts-noto-color-emoji"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
if [ -z "$missing" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: no apt-get here; install:$missing (or set APPLIANCE_CHROMIUM=/path/to/chromium)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-test-deps: run as root (or install sudo) to apt-get install:$missing" >&2
        exit 1
    fi
fi
echo "installing for the tests:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
