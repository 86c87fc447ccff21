#!/usr/bin/env bash
# Installs what the end-to-end tests need from Debian's packages when it is missing and we are root
# (as in CI): HAProxy (proxy mode), systemd-notify (a real sd_notify client for the notify
# health checks), chromium (the status page in a real browser), eu-stack (elfutils) and gdb (ctl debug
# run on real workers), prometheus (promtool and a real Prometheus server scraping Monoceros), tini
# (deploy/Dockerfile's PID 1, in the zombie-reaping test).
# Otherwise says why those tests will be skipped. Never fails make.
ensure() { # command package what-for
  local command=$1 package=$2 purpose=$3
  if command -v "$command" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: $command is not installed and cannot be installed here (needs root and apt-get); $purpose will be skipped"
    return 0
  fi
  echo "installing $package (apt-get install -y $package) for $command…"
  export DEBIAN_FRONTEND=noninteractive
  # Waits for the dpkg lock (another install may hold it) rather than failing at once.
  local wait=(-o DPkg::Lock::Timeout=120)
  apt-get "${wait[@]}" install -y -q "$package" >/dev/null 2>&1 || { apt-get "${wait[@]}" update -q >/dev/null 2>&1 && apt-get "${wait[@]}" install -y -q "$package" >/dev/null 2>&1; } || echo "note: installing $package failed; $purpose will be skipped"
}
ensure haproxy haproxy "the HAProxy tests"
# The package may start a system service on hosts with an init system; the tests run their own.
if command -v haproxy >/dev/null 2>&1; then haproxy -v | head -n 1; fi
ensure systemd-notify systemd "the systemd-notify test"
ensure chromium chromium "the status page browser tests"
ensure eu-stack elfutils "the ctl debug tests with eu-stack"
ensure gdb gdb "the ctl debug tests with gdb"
# The package gives both /usr/bin/promtool and /usr/bin/prometheus. On a host with an init system it
# may also start a Prometheus service; the tests run their own, on a port of their own.
ensure promtool prometheus "the Prometheus tests"
ensure tini tini "the PID 1 reaping test"
exit 0
