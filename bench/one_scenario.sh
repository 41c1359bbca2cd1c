#!/usr/bin/env bash
# One scenario of bench/loadgen.mjs against our server started from any checkout (a snapshot of a
# commit for A/B pairs), with run.sh's environment, and extra loadgen arguments (--rounds 15).
# Always under the bench lock, with your own port and database:
#
#   git archive <commit> | tar -x -C /tmp/A && ln -s "$PWD/.venv" /tmp/A/.venv
#   flock /work/coord/bench.lock env OURS_PORT=21200 BENCH_DB=notify_bench_h11c \
#     bench/one_scenario.sh /tmp/A A batch --rounds 15          # then the same for B
#   SPY=1 bench/one_scenario.sh ...                              # py-spy (non-blocking) meanwhile
#   LOOP_BLOCK_LOG_MS=5 bench/one_scenario.sh ... latency         # log greenlets holding the loop
#
# Prints the scenario's server CPU per notification (or per batch) and what was lost.
set -euo pipefail
TREE=$1 LABEL=$2 SC=$3
shift 3
BENCH="$(cd "$(dirname "$0")" && pwd)"
PORT=${OURS_PORT:-21200}
DB=${BENCH_DB:-notify_bench_one}
OUT=${BENCH_WORK:-/tmp/notify-bench-one}/out
mkdir -p "$OUT"
SECRET="bench-jwt-secret-0123456789abcdef0123456789abcdef"
KEY="bench-webhook-key-0123456789abcdef"
BIG=100000000
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
env_=(JWT_SECRET="$SECRET" WEBHOOK_API_KEY="$KEY" REDIS_URL=redis://127.0.0.1:6379/0
  DB_HOST=127.0.0.1 DB_PORT=3306 DB_USER=root DB_PASSWORD= HTTP_RATE_LIMIT_MAX=$BIG
  SOCKET_RATE_LIMIT_POINTS=$BIG HOST=127.0.0.1 APP_ENV=production LOG_LEVEL=WARNING DB_NAME="$DB"
  REDIS_PREFIX="${BENCH_PREFIX:-notifybench_one}" WEBHOOK_RATE_LIMIT=$BIG/minute
  CONNECT_RATE_LIMIT=$BIG/minute GC_PAUSE_LOG_MS=5 GC_FREEZE="${GC_FREEZE:-1}"
  LOOP_BLOCK_LOG_MS="${LOOP_BLOCK_LOG_MS:-0}")
mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4;"
(cd "$TREE" && env "${env_[@]}" ALLOWED_ORIGINS=http://127.0.0.1:$PORT .venv/bin/flask db upgrade >"$OUT/migrate.log" 2>&1)
(cd "$TREE" && exec env "${env_[@]}" PORT="$PORT" ALLOWED_ORIGINS=http://127.0.0.1:$PORT \
  SERVER_URL=http://127.0.0.1:$PORT .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app \
  >"$OUT/$LABEL-server.log" 2>&1) &
ARB=$!
trap 'kill -TERM $ARB 2>/dev/null; wait $ARB 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.2; done
PID=$(pgrep -P $ARB | head -1)
SPYPID=
if [[ -n "${SPY:-}" ]]; then
  (sleep "${SPY_DELAY:-6}" && exec "$TREE/.venv/bin/py-spy" record --pid "$PID" --duration "${SPY_SECONDS:-10}" \
    --rate 200 --nonblocking --format raw --output "$OUT/$LABEL-$SC.pyspy.txt" >"$OUT/py-spy.log" 2>&1) &
  SPYPID=$!
fi
node "$BENCH/loadgen.mjs" "$SC" --label "$LABEL" --url "http://127.0.0.1:$PORT" --pids "$PID" \
  --secret "$SECRET" --key "$KEY" --run "$LABEL$RANDOM" --limit 150 "$@" \
  >"$OUT/$LABEL-$SC.json" 2>>"$OUT/loadgen.log"
[[ -n "$SPYPID" ]] && { wait "$SPYPID" || true; }
node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const head = `${process.argv[2]} ${d.scenario}`;
if (d.perRound) console.log(head, "recipients/s", d.recipientsPerSec, "lost", d.lost,
  "server CPU ms per batch", d.perRound.map((r) => r.serverCpuMs).join(" "));
for (const l of d.levels || []) if (l.clients) console.log(head, l.clients, "sockets: handshakes/s",
  l.connectsPerSec, "server CPU ms per handshake", l.serverCpuMsPerConnect, "load generator",
  l.loadgenCpuMsPerConnect, "failed", l.failed);
  else console.log(head, "in flight", l.inFlight, "server CPU ms",
  l.serverCpuMsPerNotification, "per s", l.deliveredPerSec, "lost", l.lost);
' "$OUT/$LABEL-$SC.json" "$LABEL"
