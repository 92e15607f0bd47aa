#!/usr/bin/env bash
# Headless Chromium for tests/test_audit.py (the HTML report is rendered in a real browser).
# Installs the Debian package when missing and we are root (CI); otherwise says what to do.
set -euo pipefail
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "install_chromium.sh: chromium is missing and this is not root with apt-get;" \
       "install it (apt-get install chromium) or the HTML report test is skipped" >&2
fi
