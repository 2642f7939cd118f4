#!/bin/sh
# Debian's Chromium for the browser tests (tests/test_web_browser.py drives it with
# Playwright's Python package; nothing is downloaded at test time). Run by `make test`.
# Skipped when chromium is already installed; needs root or sudo otherwise.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-browser: no apt-get here; install Chromium and set APPLIANCE_CHROMIUM=/path/to/it" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-test-browser: run as root (or install sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi
echo "installing Debian's chromium for the browser tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core fonts-noto-color-emoji >/dev/null
/usr/bin/chromium --version
