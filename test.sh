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

dotnet test Parley.slnx -c Release --no-build -nologo --filter "FullyQualifiedName!~Parley.Browser.Tests" --logger "console;verbosity=normal" 2>&1 | tee "$log" \
  | grep -E '^\s+(Failed|Skipped) [A-Za-z_]|trials:|^Total tests|^\s+(Passed|Failed): ' || true
status=${PIPESTATUS[0]}
# The browser tests (headless Chromium) run after the others, on a machine no longer busy with them: they time what a
# person sees (a termination shown within a second), which the other suites' load would blur.
echo "Browser tests (tests/Parley.Browser.Tests):"
dotnet test tests/Parley.Browser.Tests -c Release --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee -a "$log" \
  | grep -E '^\s+(Failed|Skipped) [A-Za-z_]|^Total tests|^\s+(Passed|Failed): ' || true
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# Sum each test run's own totals ("     Passed: 301"): counting the per-test lines ("  Passed Name [12 ms]") once came
# to 682 where the totals said 683 (a result line not at a line's start). A run that died before its totals fails the
# status check below.
passed=$(sed -nE 's/^\s+Passed: ([0-9]+)$/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(sed -nE 's/^\s+Failed: ([0-9]+)$/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
if [ "$failed" -gt 0 ]; then
  echo; echo "Failures:"; grep -A 15 -E '^\s+Failed [A-Za-z_]' "$log"; echo
fi

# The conformance suite: the official Genesys Cloud JavaScript SDK and a guest client written from the public protocol against a fresh server;
# a second time against a node on PostgreSQL with the Redis backplane when their connection strings are set
# (eval "$(scripts/start-services)"; .ci/run does).
if [ ! -d tests/conformance/node_modules ]; then
  conf=$(mktemp)
  (cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error) >"$conf" 2>&1 || { cat "$conf"; failed=$((failed + 1)); }
  rm -f "$conf"
fi
conformance() {
  local conf conf_status conf_passed conf_failed
  conf=$(mktemp)
  bash tests/conformance/run.sh "$@" >"$conf" 2>&1
  conf_status=$?
  grep -E '^(✔|✖) |ℹ (tests|pass|fail) ' "$conf" | grep -vE '^✔ ' || true
  conf_passed=$(sed -nE 's/^ℹ pass ([0-9]+)$/\1/p' "$conf" | tail -n 1)
  conf_failed=$(sed -nE 's/^ℹ fail ([0-9]+)$/\1/p' "$conf" | tail -n 1)
  if [ -z "$conf_passed" ]; then cat "$conf"; conf_passed=0; conf_failed=${conf_failed:-1}; fi
  if [ "$conf_status" -ne 0 ] && [ "${conf_failed:-0}" -eq 0 ]; then conf_failed=1; fi
  if [ "${conf_failed:-0}" -gt 0 ]; then echo; echo "Conformance failures:"; sed -n '/failing tests:/,$p' "$conf"; fi
  rm -f "$conf"
  passed=$((passed + conf_passed))
  failed=$((failed + ${conf_failed:-0}))
}
echo "Conformance suite (tests/conformance):"
conformance
if [ -n "${ConnectionStrings__Postgres:-}" ] && [ -n "${ConnectionStrings__Redis:-}" ]; then
  echo "Conformance suite on PostgreSQL + Redis (tests/conformance/run.sh --postgres):"
  conformance --postgres
elif [ "${CI:-}" = true ]; then
  echo "Conformance suite on PostgreSQL: ConnectionStrings__Postgres / ConnectionStrings__Redis not set in CI"
  failed=$((failed + 1))
else
  echo "Conformance suite on PostgreSQL: skipped (ConnectionStrings__Postgres / ConnectionStrings__Redis not set)"
fi

if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
