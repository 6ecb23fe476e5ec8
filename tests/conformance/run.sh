#!/usr/bin/env bash
# Runs the conformance suite against a freshly started Parley server (its own data directory, a free loopback port),
# then stops the server. Needs: the server built (dotnet build -c Release) and `npm ci` done here.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dll="$root/src/Parley.Server/bin/Release/net10.0/parley.dll"
[ -f "$dll" ] || { echo "build the server first: dotnet build $root/Parley.slnx -c Release" >&2; exit 1; }

data="$(mktemp -d)"
log="$data/server.log"
# The suite drives the demo deployment faster than a person types, all from 127.0.0.1: it raises the guest limits
# for its own server explicitly (the rate tests make deployments of their own with the platform's rate).
# Its webhook receivers listen on loopback, which Parley refuses as a webhook target unless allowed.
PARLEY_DATA_DIR="$data" Parley__Demo__GuestMessagesPerSecond=10000 Parley__Limits__GuestMessagesPerAddressPerSecond=0 \
  Parley__Webhooks__AllowPrivateNetworks=true dotnet "$dll" --urls http://127.0.0.1:0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT

url=""
for _ in $(seq 1 200); do
  url=$(sed -nE 's/^Parley is listening on (http:\/\/[^ ,]+).*/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 $server 2>/dev/null || { cat "$log"; echo "the server did not start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "the server did not say where it listens" >&2; exit 1; }

cd "$here"
PARLEY_URL="$url" node --test --test-concurrency=1 --test-reporter=spec
