#!/usr/bin/env bash
# Memory per idle socket without the whole harness (bench/PROFILE.md, "second pass"): our server
# on PROBE_PORT with run.sh's settings, from a `git archive` of COMMIT, then
# bench/memory_probe.mjs (two rounds of N websocket clients). Needs the bench database
# (run.sh creates it) and bench/node_modules.
#
#   bash bench/memory_probe.sh <commit> [N]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
COMMIT=$1 N=${2:-1000} PORT=${PROBE_PORT:-21101} DB=${BENCH_DB:-notify_bench}
DIR=/tmp/notify-probe/$COMMIT
if [[ ! -d $DIR ]]; then
  mkdir -p "$DIR" && git -C "$ROOT" archive "$COMMIT" | tar -x -C "$DIR" && ln -s "$ROOT/.venv" "$DIR/.venv"
fi
SECRET="bench-jwt-secret-0123456789abcdef0123456789abcdef" BIG=100000000
(cd "$DIR" && exec env JWT_SECRET="$SECRET" WEBHOOK_API_KEY=bench-webhook-key-0123456789abcdef \
  REDIS_URL=redis://127.0.0.1:6379/0 DB_HOST=127.0.0.1 DB_PORT=3306 DB_USER=root DB_PASSWORD= \
  HTTP_RATE_LIMIT_MAX=$BIG SOCKET_RATE_LIMIT_POINTS=$BIG HOST=127.0.0.1 APP_ENV=production \
  LOG_LEVEL=WARNING DB_NAME="$DB" REDIS_PREFIX=notifyprobe WEBHOOK_RATE_LIMIT=$BIG/minute \
  CONNECT_RATE_LIMIT=$BIG/minute GC_PAUSE_LOG_MS=5 PORT="$PORT" ALLOWED_ORIGINS="http://127.0.0.1:$PORT" \
  SERVER_URL="http://127.0.0.1:$PORT" .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app >"$DIR/server.log" 2>&1) &
ARBITER=$!
trap 'kill -TERM $ARBITER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.3; done
echo "$COMMIT load $(cut -d' ' -f1 /proc/loadavg)"
node "$ROOT/bench/memory_probe.mjs" "$(pgrep -P $ARBITER | head -1)" "$N" 50 "http://127.0.0.1:$PORT" "$SECRET"
