#!/usr/bin/env bash
# Runs the conformance suite against a freshly started Parley server (its own data directory, a free loopback port),
# then stops the server. Needs: the server built (dotnet build -c Release) and `npm ci` done here.
#   --postgres   the server runs as a cluster node does: its store in a fresh PostgreSQL database made on the server
#                ConnectionStrings__Postgres names (dropped afterwards), the Redis backplane on ConnectionStrings__Redis.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dll="$root/src/Parley.Server/bin/Release/net10.0/parley.dll"
[ -f "$dll" ] || { echo "build the server first: dotnet build $root/Parley.slnx -c Release" >&2; exit 1; }

postgres=0
for arg in "$@"; do
  case $arg in
    --postgres) postgres=1 ;;
    *) echo "unknown argument '$arg' (expected --postgres)" >&2; exit 2 ;;
  esac
done

data="$(mktemp -d)"
log="$data/server.log"
server=
database=
cleanup() {
  [ -n "$server" ] && { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; }
  [ -n "$database" ] && pg_sql "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$data"
}
trap cleanup EXIT

# One Npgsql connection string field (Host, Port, Username, Password), for psql.
pg_field() { tr ';' '\n' <<<"$ConnectionStrings__Postgres" | sed -nE "s/^[[:space:]]*$1[[:space:]]*=(.*)$/\1/Ip" | head -n 1; }
pg_sql() {
  PGPASSWORD="$(pg_field Password)" psql -X -q -v ON_ERROR_STOP=1 -h "$(pg_field Host)" -p "$(pg_field Port)" \
    -U "$(pg_field Username)" -d "$(pg_field Database)" -c "$1"
}

engines=()
if [ $postgres -eq 1 ]; then
  [ -n "${ConnectionStrings__Postgres:-}" ] && [ -n "${ConnectionStrings__Redis:-}" ] \
    || { echo "--postgres needs ConnectionStrings__Postgres and ConnectionStrings__Redis: eval \"\$(scripts/start-services)\"" >&2; exit 1; }
  command -v psql >/dev/null || { echo "--postgres needs psql (scripts/install-services installs it)" >&2; exit 1; }
  name="parley_conformance_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  pg_sql "CREATE DATABASE $name" >/dev/null || { echo "could not create database $name" >&2; exit 1; }
  database=$name
  engines=(Parley__Storage__Provider=Postgres "ConnectionStrings__Postgres=${ConnectionStrings__Postgres%;};Database=$name"
    Parley__Backplane__Provider=Redis "ConnectionStrings__Redis=$ConnectionStrings__Redis" Parley__Node__Id=conformance)
fi

# The suite drives the demo deployment faster than a person types, all from 127.0.0.1: it raises the guest limits
# for its own server explicitly (the rate tests make deployments of their own with the platform's rate).
# Its webhook receivers listen on loopback, which Parley refuses as a webhook target unless allowed.
# Nothing else is inherited: a store or backplane is chosen here, or it is the default (SQLite, in-process).
env -u Parley__Storage__Provider -u Parley__Backplane__Provider -u ConnectionStrings__Postgres -u ConnectionStrings__Redis \
  PARLEY_DATA_DIR="$data" Parley__Demo__GuestMessagesPerSecond=10000 Parley__Limits__GuestMessagesPerAddressPerSecond=0 \
  Parley__Webhooks__AllowPrivateNetworks=true "${engines[@]}" dotnet "$dll" --urls http://127.0.0.1:0 >"$log" 2>&1 &
server=$!

url=""
for _ in $(seq 1 600); do
  url=$(sed -nE 's/^Parley is listening on (http:\/\/[^ ,]+).*/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 $server 2>/dev/null || { cat "$log"; echo "the server did not start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "the server did not say where it listens" >&2; exit 1; }
[ $postgres -eq 1 ] && echo "Server on PostgreSQL (database $database) with the Redis backplane: $url"

cd "$here"
PARLEY_URL="$url" node --test --test-concurrency=1 --test-reporter=spec
