#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests: initdb + pg_ctl from Debian's postgresql package.
#   deploy/postgres.sh start DIR   -> prints the admin URL (postgresql+asyncpg://...) on stdout; a cluster
#                                    already in DIR (stopped earlier) starts again on its own port, data kept
#   deploy/postgres.sh stop DIR
# initdb refuses to run as root, so as root the cluster belongs to the 'postgres' system user.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

find_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }
  done
  return 1
}

ensure_installed() {
  if ! find_bindir >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and this is not root: apt-get install postgresql"
    echo "postgres.sh: installing Debian's postgresql package" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    # Debian's package starts a system cluster; tests use their own, so leave that one alone.
  fi
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  local dir=$1 bindir port
  ensure_installed
  bindir=$(find_bindir)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$dir"; chmod 700 "$dir"; fi
  if [[ -f "$dir/data/PG_VERSION" && -f "$dir/port" ]]; then
    port=$(cat "$dir/port")  # a cluster stopped earlier starts again where it was, same data, same address
  else
    port=$(free_port)
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >&2 || { tail -50 "$dir/postgres.log" >&2; die "postgres did not start"; }
  echo "$port" >"$dir/port"
  echo "postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir=$1 bindir
  [[ -d "$dir/data" ]] || return 0
  bindir=$(find_bindir) || return 0
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >&2 || as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >&2 || true
}

case "${1:-}" in
  start) start "${2:?usage: postgres.sh start DIR}" ;;
  stop) stop "${2:?usage: postgres.sh stop DIR}" ;;
  *) die "usage: postgres.sh start|stop DIR" ;;
esac
