# shellcheck shell=bash disable=SC2034  # the paths below are used by the scripts that source this file
# Shared by scripts/install-services, start-services and stop-services: where the local PostgreSQL and Redis live
# and how to reach them. Sourced, not run. Every setting has a default and an environment override.

# State (data, logs, pid files, generated passwords) in one directory the scripts own, never the distribution's
# own cluster or Redis: a developer's system servers on 5432 / 6379 are left alone.
if [ "$(id -u)" -eq 0 ]; then
  PARLEY_SERVICES_DIR=${PARLEY_SERVICES_DIR:-/var/lib/parley-services}
else
  PARLEY_SERVICES_DIR=${PARLEY_SERVICES_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/parley-services}
fi
PARLEY_PG_PORT=${PARLEY_PG_PORT:-55432}
PARLEY_REDIS_PORT=${PARLEY_REDIS_PORT:-56379}

PG_DIR=$PARLEY_SERVICES_DIR/postgres
PG_DATA=$PG_DIR/data
PG_SOCKETS=$PG_DIR/run
PG_LOG=$PG_DIR/postgres.log
PG_PASSWORD_FILE=$PARLEY_SERVICES_DIR/postgres.password
REDIS_DIR=$PARLEY_SERVICES_DIR/redis
REDIS_CONF=$REDIS_DIR/redis.conf
REDIS_PID=$REDIS_DIR/redis.pid
REDIS_PASSWORD_FILE=$PARLEY_SERVICES_DIR/redis.password
ENV_FILE=$PARLEY_SERVICES_DIR/env

say() { echo "[services] $*" >&2; }
die() { echo "[services] error: $*" >&2; exit 1; }

# PostgreSQL refuses to run as root, so as root the servers run as the accounts the Debian packages create;
# as anyone else they run as that user, in a directory that user owns.
service_user() {
  if [ "$(id -u)" -ne 0 ]; then id -un; return; fi
  case $1 in
    postgres) echo postgres ;;
    redis) if getent passwd redis >/dev/null; then echo redis; else echo root; fi ;;
  esac
}
as_user() {
  local user=$1; shift
  if [ "$(id -un)" = "$user" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

# Debian keeps pg_ctl and initdb out of PATH, under /usr/lib/postgresql/VERSION/bin; the newest installed wins.
pg_bindir() {
  if [ -n "${PARLEY_PG_BINDIR:-}" ]; then echo "$PARLEY_PG_BINDIR"; return; fi
  local dir
  dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return; fi
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return; fi
  return 1
}

# A password made once and kept (mode 600), so a second run prints the same connection string.
password_in() {
  local file=$1
  if [ ! -s "$file" ]; then
    (umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when process PID runs the program NAME. A zombie does not count: a killed server whose parent has not
# reaped it yet is gone all the same (kill -0 and the servers' own lock checks would still see it).
pid_runs() {
  local pid=$1 name=$2 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && grep -q "$name" "/proc/$pid/comm" 2>/dev/null
}

# The pid in Redis's pid file, when that process is alive and is Redis (a stale file after a crash can name another).
redis_running_pid() {
  local pid
  [ -s "$REDIS_PID" ] || return 1
  pid=$(cat "$REDIS_PID")
  pid_runs "$pid" redis && echo "$pid"
}

# The postmaster's pid, when it is alive; a pid file left by one that died (SIGKILL, a machine restart) is removed,
# with the socket lock beside it, so that the next start is not refused.
postgres_running_pid() {
  local pid
  [ -s "$PG_DATA/postmaster.pid" ] || return 1
  pid=$(sed -n 1p "$PG_DATA/postmaster.pid")
  if pid_runs "$pid" postgres; then echo "$pid"; return 0; fi
  rm -f "$PG_DATA/postmaster.pid" "$PG_SOCKETS"/.s.PGSQL.*.lock
  return 1
}

# One start or stop at a time (two test runs starting at once would otherwise race to initialise the same cluster).
# The servers must not inherit descriptor 9, or they would hold the lock for as long as they run.
lock_services() {
  mkdir -p "$PARLEY_SERVICES_DIR"
  exec 9>"$PARLEY_SERVICES_DIR/.lock"
  flock -w 120 9 || die "another start or stop of the services holds $PARLEY_SERVICES_DIR/.lock"
}
