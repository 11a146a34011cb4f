#!/usr/bin/env bash
# PostgreSQL and Redis for the Airflow integration tests (tests/integration/airflow_stack.py) and for anyone
# who wants a deployment-like Airflow on one machine: each server on a loopback port, its state in a
# directory of its own that is created from scratch on every start. Debian's packages (postgresql,
# redis-server) are installed with apt-get when missing (as root; otherwise the command to run is printed).
#
#   services.sh install                   install what is missing (make test and CI run this)
#   services.sh postgres start DIR PORT   new cluster in DIR (initdb), server on 127.0.0.1:PORT,
#                                         superuser postgres, trust auth on loopback (a test database)
#   services.sh postgres stop DIR         stop it and remove DIR
#   services.sh redis start DIR PORT      redis-server on 127.0.0.1:PORT, nothing persisted
#   services.sh redis stop DIR            stop it and remove DIR
set -euo pipefail

log() { echo "services.sh: $*" >&2; }

pg_bin() { find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1; }

install() {
  local missing=()
  [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]}; install them: sudo apt-get install -y ${missing[*]}"
    exit 3
  fi
  log "installing ${missing[*]} with apt-get (once per machine)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# initdb and postgres refuse to run as root: as root they run as the postgres user (made by the package)
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_start() {
  local dir="$1" port="$2" bin
  install
  bin="$(pg_bin)"
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_postgres "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync \
    >"$dir.initdb.log" 2>&1 || { cat "$dir.initdb.log" >&2; exit 1; }
  rm -f "$dir.initdb.log"
  # a throw-away test database: no fsync; connections for scheduler, dag-processor, api-server, workers
  as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 120 \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
    start >/dev/null || { tail -30 "$dir/server.log" >&2; exit 1; }
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $dir)"
}

postgres_stop() {
  local dir="$1"
  if [ -f "$dir/postmaster.pid" ]; then
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null || true
  fi
  rm -rf "$dir"
}

redis_start() {
  local dir="$1" port="$2"
  install
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$port" >"$dir/port"
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --save '' --appendonly no \
    --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
      log "Redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$port (dir $dir)"
      return 0
    fi
    sleep 0.2
  done
  log "Redis did not answer on 127.0.0.1:$port"; tail -20 "$dir/redis.log" >&2; exit 1
}

redis_stop() {
  local dir="$1"
  if [ -f "$dir/port" ]; then
    redis-cli -h 127.0.0.1 -p "$(cat "$dir/port")" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
  rm -rf "$dir"
}

case "${1:-} ${2:-}" in
  "install "*) install ;;
  "postgres start") postgres_start "${3:?DIR}" "${4:?PORT}" ;;
  "postgres stop") postgres_stop "${3:?DIR}" ;;
  "redis start") redis_start "${3:?DIR}" "${4:?PORT}" ;;
  "redis stop") redis_stop "${3:?DIR}" ;;
  *) echo "usage: $0 install | postgres start DIR PORT | postgres stop DIR | redis start DIR PORT | redis stop DIR" >&2; exit 2 ;;
esac
