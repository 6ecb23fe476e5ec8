#!/usr/bin/env bash
# Runs every test of the repository: unit, storage contract and end-to-end (real Kestrel on loopback).
# The last line is the summary: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log=$(mktemp)
trap 'rm -f "$log"' EXIT

if ! dotnet build Parley.slnx -c Release -nologo -v quiet >"$log" 2>&1; then
  cat "$log"
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

dotnet test Parley.slnx -c Release --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$log" \
  | grep -E '^\s+(Failed|Skipped) [A-Za-z_]|trials:|^Total tests|^\s+(Passed|Failed): ' || true
status=${PIPESTATUS[0]}

# Count the per-test result lines ("  Passed Name [12 ms]", "  Failed Name [..]").
passed=$(grep -cE '^\s+Passed [A-Za-z_]' "$log" || true)
failed=$(grep -cE '^\s+Failed [A-Za-z_]' "$log" || true)
if [ "$failed" -gt 0 ]; then
  echo; echo "Failures:"; grep -A 15 -E '^\s+Failed [A-Za-z_]' "$log"; echo
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
