#!/usr/bin/env bash
# `make test`'s set-up: what the suite needs besides the Python and Node packages.
# - MariaDB and Redis on 127.0.0.1 (TEST_DB_HOST / TEST_REDIS_URL elsewhere are left alone):
#   started when they do not answer.
# - Debian packages the suites drive: node + npm (the JS client suite), chromium (the browser
#   suite), nginx (the load-balancer example), redis-server / redis-cli (private Redis servers of
#   the fault suite). Installed with apt-get when running as root; otherwise this stops at once
#   with one line naming what is missing and the command that installs it.
set -euo pipefail

wait_for() {  # wait_for NAME COMMAND...: poll for up to 30 s
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "prepare: $name did not come up" >&2; return 1
}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have node || missing+=(nodejs)
have npm || missing+=(npm)
have chromium || missing+=(chromium)
have nginx || missing+=(nginx-light)
have redis-server || missing+=(redis-server)
have redis-cli || missing+=(redis-tools)
have mariadb || missing+=(mariadb-client)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "prepare: missing ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' (or make test as root)" >&2
    exit 1
  fi
  echo "prepare: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
  }
fi

db_host=${TEST_DB_HOST:-127.0.0.1}
if ! mariadb -uroot -h"$db_host" -P"${TEST_DB_PORT:-3306}" -e 'SELECT 1' >/dev/null 2>&1; then
  if [ "$db_host" != 127.0.0.1 ] || [ ! -x /usr/sbin/mariadbd ]; then
    echo "prepare: MariaDB does not answer on $db_host:${TEST_DB_PORT:-3306}: start it, or set TEST_DB_HOST" >&2
    exit 1
  fi
  echo "prepare: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB mariadb -uroot -h127.0.0.1 -e 'SELECT 1'
fi

redis_url=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
if ! redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
  if [ "$redis_url" != redis://127.0.0.1:6379/0 ]; then
    echo "prepare: Redis does not answer at $redis_url: start it, or set TEST_REDIS_URL" >&2
    exit 1
  fi
  echo "prepare: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi
