#!/usr/bin/env bash
# A local PostgreSQL server for tests and CI (not the system's cluster).
#
# usage: deploy/postgres/pg.sh start|stop|status|url
#
#   start   initdb if needed, start, wait for pg_isready, make sure the role
#           and the database exist; the LAST line of stdout is the URL
#   stop    fast shutdown; succeeds if not running
#   status  exit 0 if running
#   url     print the URL
#
# environment:
#   PG_PORT      TCP port on 127.0.0.1   (default 55432)
#   PG_DATA_DIR  cluster directory       (default <repo>/var/postgres)
#
# Role learnstream / password learnstream is the cluster's superuser (so it
# can CREATE DATABASE); database learnstream. Only 127.0.0.1 is listened on,
# with scram-sha-256 password auth; no unix socket. As root the server runs
# as the `postgres` system user (created if missing), which owns the data dir.
# The server log is <data dir>/server.log.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

PG_PORT="${PG_PORT:-55432}"
DATA_DIR="$(realpath -m -- "${PG_DATA_DIR:-$REPO_ROOT/var/postgres}")"
LOG_FILE="$DATA_DIR/server.log"
DB_USER=learnstream
DB_PASSWORD=learnstream
DB_NAME=learnstream
RUN_AS=postgres # the OS user that runs the server when we are root

die() { echo "pg.sh: $*" >&2; exit 1; }
note() { echo "pg.sh: $*" >&2; }

find_bin() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    d="$(dirname "$(realpath "$(command -v pg_ctl)")")"
    [[ -x $d/initdb && -x $d/postgres ]] && { echo "$d"; return 0; }
  fi
  # Debian/Ubuntu keep the server binaries out of PATH; newest version first
  for d in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -rV); do
    [[ -x $d/pg_ctl && -x $d/initdb && -x $d/postgres ]] && { echo "$d"; return 0; }
  done
  return 1
}

need_bin() {
  PG_BIN="$(find_bin)" ||
    die "PostgreSQL server binaries (pg_ctl, initdb) not found: apt-get install -y postgresql"
}

# run a PostgreSQL program as the server's OS user (they refuse to run as root)
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u "$RUN_AS" -- "$@")
  else
    "$@"
  fi
}

ensure_os_user() {
  [[ $(id -u) -eq 0 ]] || return 0
  id -u "$RUN_AS" >/dev/null 2>&1 && return 0
  note "creating system user $RUN_AS"
  useradd --system --user-group --home-dir /var/lib/postgresql \
    --shell /bin/bash --comment "PostgreSQL administrator" "$RUN_AS"
}

# The data dir belongs to the server's user, and every parent must be
# traversable by it.
prepare_data_dir() {
  mkdir -p "$DATA_DIR"
  [[ $(id -u) -eq 0 ]] || { chmod 700 "$DATA_DIR"; return 0; }
  if [[ $(stat -c %U "$DATA_DIR") != "$RUN_AS" ]]; then
    chown -R "$RUN_AS:" "$DATA_DIR"
  fi
  chmod 700 "$DATA_DIR"
  local d
  d="$(dirname "$DATA_DIR")"
  while [[ $d != / ]]; do
    if ! runuser -u "$RUN_AS" -- test -x "$d"; then
      note "making $d traversable (o+x) for the $RUN_AS user"
      chmod o+x "$d"
    fi
    d="$(dirname "$d")"
  done
}

running() {
  [[ -f $DATA_DIR/postmaster.pid ]] || return 1
  as_pg "$PG_BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

# the port of the running server (4th line of postmaster.pid), else PG_PORT
current_port() {
  local p
  p="$(sed -n 4p "$DATA_DIR/postmaster.pid" 2>/dev/null || true)"
  [[ $p =~ ^[0-9]+$ ]] && running && { echo "$p"; return; }
  echo "$PG_PORT"
}

url() {
  echo "postgresql+psycopg://$DB_USER:$DB_PASSWORD@127.0.0.1:$1/$DB_NAME"
}

psql_admin() {
  PGPASSWORD="$DB_PASSWORD" PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$1" -U "$DB_USER" -d postgres "${@:2}"
}

do_initdb() {
  local pwfile out
  note "initdb in $DATA_DIR"
  pwfile="$(mktemp)"
  printf '%s\n' "$DB_PASSWORD" >"$pwfile"
  [[ $(id -u) -eq 0 ]] && chown "$RUN_AS" "$pwfile"
  if ! out="$(as_pg "$PG_BIN/initdb" -D "$DATA_DIR" -U "$DB_USER" --pwfile="$pwfile" \
      --auth-host=scram-sha-256 --auth-local=scram-sha-256 \
      --encoding=UTF8 --no-locale 2>&1)"; then
    rm -f "$pwfile"
    echo "$out" >&2
    die "initdb failed"
  fi
  rm -f "$pwfile"
  as_pg tee -a "$DATA_DIR/postgresql.conf" >/dev/null <<'EOF'

# ---- learnstream local test server (deploy/postgres/pg.sh) ----
# the port is given on the command line (PG_PORT)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
EOF
}

do_start() {
  local t0 port i
  t0=$SECONDS
  need_bin
  if running; then
    url "$(current_port)"
    return 0
  fi
  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PG_PORT" 2>/dev/null; then
    die "port 127.0.0.1:$PG_PORT is already in use by another process (set PG_PORT)"
  fi
  ensure_os_user
  prepare_data_dir
  [[ -f $DATA_DIR/PG_VERSION ]] || do_initdb

  note "starting PostgreSQL ($("$PG_BIN/postgres" --version)) on 127.0.0.1:$PG_PORT"
  if ! as_pg "$PG_BIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 \
      -o "-p $PG_PORT" >/dev/null; then
    tail -n 30 "$LOG_FILE" >&2 || true
    die "PostgreSQL did not start (log: $LOG_FILE)"
  fi
  port="$PG_PORT"
  for ((i = 0; i < 120; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 && break
    sleep 0.5
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 ||
    { tail -n 30 "$LOG_FILE" >&2 || true; die "pg_isready: server on 127.0.0.1:$port is not accepting connections"; }

  if [[ -z $(psql_admin "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
    psql_admin "$port" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
  fi
  note "PostgreSQL ready in $((SECONDS - t0))s (data $DATA_DIR, log $LOG_FILE)"
  url "$port"
}

do_stop() {
  need_bin
  if ! running; then
    echo "postgres not running (data $DATA_DIR)"
    return 0
  fi
  as_pg "$PG_BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t 60 >/dev/null
  echo "postgres stopped"
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status)
    need_bin
    if running; then
      echo "postgres running on 127.0.0.1:$(current_port) (data $DATA_DIR)"
      exit 0
    fi
    echo "postgres not running (data $DATA_DIR)"
    exit 1
    ;;
  url)
    if find_bin >/dev/null && PG_BIN="$(find_bin)" && running; then
      url "$(current_port)"
    else
      url "$PG_PORT"
    fi
    ;;
  *)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
