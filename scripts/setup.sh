#!/usr/bin/env bash
# Set up a fresh Debian machine for ppr: the Debian packages the tests drive for real
# (a Mosquitto broker, socat for pseudo-terminal pairs, Chromium and its driver for the
# web terminal's browser tests) and a virtual environment with the project and its test
# extra. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(mosquitto socat chromium chromium-driver)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    }
    # the broker is started by the tests on a free port, not as a system service
    if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
        $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
    echo "setup: installed ${missing[*]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
echo "setup: ready (.venv)"
