#!/usr/bin/env bash
# Installs HAProxy from Debian's packages when it is missing and we are root (as in CI), so the
# proxy-mode tests run end to end. Otherwise says why they will be skipped. Never fails make.
if command -v haproxy >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: haproxy is not installed and cannot be installed here (needs root and apt-get); the HAProxy tests will be skipped"
  exit 0
fi
echo "installing haproxy (apt-get install -y haproxy)…"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q haproxy >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q haproxy >/dev/null 2>&1; } || echo "note: installing haproxy failed; the HAProxy tests will be skipped"
# The package may start a system service on hosts with an init system; the tests run their own.
if command -v haproxy >/dev/null 2>&1; then haproxy -v | head -n 1; fi
exit 0
