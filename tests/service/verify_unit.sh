#!/usr/bin/env bash
# Checks the generated simsinkd.service with systemd-analyze verify, with
# ExecStart pointed at the built binary (the install path does not exist yet).
# Usage: verify_unit.sh UNIT SIMSINKD
set -euo pipefail
unit=$1 daemon=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=[^ ]*#ExecStart=$daemon#" "$unit" > "$tmp/simsinkd.service"
out=$(systemd-analyze verify "$tmp/simsinkd.service" 2>&1 || true)
# Users and directories of the target system are not ours to check here.
problems=$(printf '%s\n' "$out" | grep -v -e '^$' -e "User=.*simsink" -e "Failed to resolve" -e "Unknown user" || true)
if [ -n "$problems" ]; then
  printf 'systemd-analyze verify found problems:\n%s\n' "$problems"
  exit 1
fi
grep -q '^Type=notify' "$tmp/simsinkd.service"
grep -q '^ProtectSystem=strict' "$tmp/simsinkd.service"
echo "simsinkd.service verified"
