#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (what CI runs).
# Creates .venv, installs requirements-dev.txt, installs Debian's Chromium for the browser
# test when apt-get is available, then runs pytest (slow and browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -r requirements-dev.txt
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  # The browser test drives Debian's Chromium; Playwright never downloads its own browser here.
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
