#!/usr/bin/env bash
# One command for the whole benchmark: fresh databases, ours and the Node peer started on their
# own ports with the same limits, every scenario against each in turn (same run, one after the
# other), then bench/RESULTS.md. Needs MariaDB and Redis on 127.0.0.1, Node 20 + npm, .venv.
#
#   bench/run.sh                      # or: make bench
#   PEER_DIR=/path/to/node-seed bench/run.sh
#   PROFILE="throughput socket" bench/run.sh   # also py-spy records our worker in those scenarios
#   TARGETS=ours SCENARIOS=batch bench/run.sh   # one server, some scenarios (RESULTS.md needs both)
#   TARGETS=ours SCENARIOS=scale bench/run.sh   # 1-8 processes, routed vs broadcast: its section of RESULTS.md
#
# Everything is bounded: each scenario has a hard time limit in the load generator.
set -euo pipefail

BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCH")"
PEER_SRC="${PEER_DIR:-$ROOT/../shared/peers/node-seed}"
WORK="${BENCH_WORK:-/tmp/notify-bench}"
OUT="$WORK/out"
DB_HOST=127.0.0.1
# Ports and names are overridable, so that two checkouts can run the benchmark side by side.
OURS_PORT="${OURS_PORT:-3310}"  # +5..7 floors, +10..17 scale: clear of MariaDB's 3306
PEER_PORT="${PEER_PORT:-3400}"
BENCH_DB="${BENCH_DB:-notify_bench}"
BENCH_PREFIX="${BENCH_PREFIX:-notifybench}"
SECRET="bench-jwt-secret-0123456789abcdef0123456789abcdef"
KEY="bench-webhook-key-0123456789abcdef"
BIG=100000000
MYSQL=(mariadb -uroot -h"$DB_HOST")
SCENARIOS_GIVEN="${SCENARIOS:-}"
SCENARIOS="${SCENARIOS:-connect latency throughput socket fanout batch two floor scale}"
# scale: process counts, webhooks per second (the same total at every count), seconds per level.
SCALE_COUNTS="${SCALE_COUNTS:-1 2 4 8}"
SCALE_RATE="${SCALE_RATE:-40}"
SCALE_SECONDS="${SCALE_SECONDS:-10}"
# Which servers to measure (both for RESULTS.md; "ours" alone while working on a change).
TARGETS="${TARGETS:-ours peer}"

# 10,000 sockets need 10,000 descriptors on each side; raise the soft limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log
echo "work dir $WORK, fd limit $(ulimit -n)"

# ---- preparation ----------------------------------------------------------------------------
(cd "$BENCH" && npm ci --no-audit --no-fund --loglevel=error)
"${MYSQL[@]}" -e "DROP DATABASE IF EXISTS $BENCH_DB; CREATE DATABASE $BENCH_DB CHARACTER SET utf8mb4;"
if [[ " $TARGETS " == *" peer "* ]]; then
  rm -rf "$WORK/peer" && mkdir -p "$WORK/peer"
  cp "$PEER_SRC"/{package.json,package-lock.json,server.js,schema.sql} "$WORK/peer/"
  (cd "$WORK/peer" && npm ci --no-audit --no-fund --loglevel=error)
  "${MYSQL[@]}" -e "DROP DATABASE IF EXISTS ${BENCH_DB}_peer; CREATE DATABASE ${BENCH_DB}_peer CHARACTER SET utf8mb4;"
  "${MYSQL[@]}" ${BENCH_DB}_peer < "$WORK/peer/schema.sql"
fi

# Both servers: production profile, the same secrets, Redis, and limits raised alike.
common_env=(
  JWT_SECRET="$SECRET" WEBHOOK_API_KEY="$KEY" REDIS_URL=redis://127.0.0.1:6379/0
  DB_HOST="$DB_HOST" DB_PORT=3306 DB_USER=root DB_PASSWORD=
  HTTP_RATE_LIMIT_MAX=$BIG SOCKET_RATE_LIMIT_POINTS=$BIG HOST=127.0.0.1
)
ours_env=(
  "${common_env[@]}" APP_ENV=production LOG_LEVEL=WARNING DB_NAME=$BENCH_DB
  REDIS_PREFIX=$BENCH_PREFIX WEBHOOK_RATE_LIMIT=$BIG/minute CONNECT_RATE_LIMIT=$BIG/minute
  # every collection pausing the worker 5 ms or more is logged (bench/gc_align.py reads them)
  GC_PAUSE_LOG_MS="${GC_PAUSE_LOG_MS:-5}" GC_FREEZE="${GC_FREEZE:-1}"
)
peer_env=("${common_env[@]}" NODE_ENV=production DB_NAME=${BENCH_DB}_peer)

(cd "$ROOT" && env "${ours_env[@]}" ALLOWED_ORIGINS=http://127.0.0.1:$OURS_PORT .venv/bin/flask db upgrade >"$OUT/migrate.log" 2>&1)
redis-cli --scan --pattern "$BENCH_PREFIX:*" | xargs -r redis-cli del >/dev/null

PIDS_TO_STOP=()
stop_all() {
  for pid in "${PIDS_TO_STOP[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS_TO_STOP[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  PIDS_TO_STOP=()
}
trap stop_all EXIT

wait_healthy() { # url
  for _ in $(seq 1 150); do
    curl -fsS "$1/health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server at $1 did not become healthy" >&2
  return 1
}

start_ours() { # port [VAR=value...] -> SERVER_PID (the worker), ARBITER_PID
  local port=$1
  shift
  (cd "$ROOT" && exec env "${ours_env[@]}" "$@" PORT="$port" ALLOWED_ORIGINS=http://127.0.0.1:$port \
    SERVER_URL=http://127.0.0.1:$port .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app \
    >"$OUT/ours-$port.log" 2>&1) &
  local arbiter=$!
  PIDS_TO_STOP+=("$arbiter")
  ARBITER_PID=$arbiter
  wait_healthy "http://127.0.0.1:$port"
  SERVER_PID=$(pgrep -P "$arbiter" | head -1)
}

run_scale() { # base port: for routed and broadcast, 1..8 processes, each its own start and stop
  local mode n i arbiters pids urls
  for n in $SCALE_COUNTS; do
    for mode in routed broadcast; do
      arbiters=() pids=() urls=()
      for ((i = 0; i < n; i++)); do
        start_ours $(($1 + 10 + i)) ROUTED_DELIVERY=$([[ $mode == routed ]] && echo 1 || echo 0)
        arbiters+=("$ARBITER_PID") pids+=("$SERVER_PID") urls+=("http://127.0.0.1:$(($1 + 10 + i))")
      done
      sleep 2
      local spy=()
      # PROFILE=scale: py-spy samples every process over the sending window (a diagnosis: the
      # samplers take CPU of their own on the same cores, so the figures of such a run are not kept)
      [[ " ${PROFILE:-} " == *" scale "* ]] &&
        spy=(--pyspy "$ROOT/.venv/bin/py-spy" --pyspy-out "$OUT/ours-scale-$mode-$n.pyspy")
      loadgen "scale-$mode-$n" scale "${urls[0]}" "$(IFS=,; echo "${pids[*]}")" \
        --urls "$(IFS=,; echo "${urls[*]}")" --rate "$SCALE_RATE" --seconds "$SCALE_SECONDS" \
        "${spy[@]}" ${SCALE_ARGS:-}
      for pid in "${arbiters[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
      for pid in "${arbiters[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      done
    done
  done
}

start_floor() { # port -> SERVER_PID: bench/floor_app.py under the same gunicorn settings
  local port=$1
  (cd "$ROOT" && exec env HOST=127.0.0.1 PORT="$port" LOG_LEVEL=WARNING .venv/bin/gunicorn \
    -c gunicorn.conf.py --pythonpath bench floor_app:app >"$OUT/floor-$port.log" 2>&1) &
  local arbiter=$!
  PIDS_TO_STOP+=("$arbiter")
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
      -d '{"recipientId": "x"}' "http://127.0.0.1:$port/webhook/notify" 2>/dev/null && break
    sleep 0.2
  done
  SERVER_PID=$(pgrep -P "$arbiter" | head -1)
}

start_floor_socket() { # port module -> SERVER_PID: a bare Socket.IO app of bench/ under the same worker
  local port=$1 module=$2
  (cd "$ROOT" && exec env HOST=127.0.0.1 PORT="$port" LOG_LEVEL=WARNING .venv/bin/gunicorn \
    -c gunicorn.conf.py --pythonpath bench "$module:app" >"$OUT/$module-$port.log" 2>&1) &
  local arbiter=$!
  PIDS_TO_STOP+=("$arbiter")
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/socket.io/?EIO=4&transport=polling" 2>/dev/null && break
    sleep 0.2
  done
  SERVER_PID=$(pgrep -P "$arbiter" | head -1)
}

start_peer() { # port -> SERVER_PID
  local port=$1
  (cd "$WORK/peer" && exec env "${peer_env[@]}" PORT="$port" ALLOWED_ORIGINS=http://127.0.0.1:$port \
    node server.js >"$OUT/peer-$port.log" 2>&1) &
  local pid=$!
  PIDS_TO_STOP+=("$pid")
  wait_healthy "http://127.0.0.1:$port"
  SERVER_PID=$pid
}

loadgen() { # label scenario url pids [extra args]
  local label=$1 scenario=$2 url=$3 pids=$4
  shift 4
  echo "== $label $scenario" >&2
  node "$BENCH/loadgen.mjs" "$scenario" --label "$label" --url "$url" --pids "$pids" \
    --secret "$SECRET" --key "$KEY" --run "$label$RANDOM" --limit 150 "$@" \
    >"$OUT/$label-$scenario.json" 2>>"$OUT/loadgen.log" || echo "{\"scenario\":\"$scenario\",\"error\":\"loadgen failed\"}" >"$OUT/$label-$scenario.json"
}

run_all() { # label start_fn
  local label=$1 start=$2 base=$3
  local pid url="http://127.0.0.1:$base"
  $start "$base"
  pid=$SERVER_PID
  for scenario in $SCENARIOS; do
    case $scenario in
      floor)
        # Ours only: what pywsgi + Flask cost per request before the service does anything.
        [[ $label == ours ]] || continue
        start_floor $((base + 5))
        loadgen floor floor "http://127.0.0.1:$((base + 5))" "$SERVER_PID"
        # ... and what an acked event with one emit costs on bare python-socketio / Flask-SocketIO
        start_floor_socket $((base + 6)) floor_socketio
        loadgen floor-sio socket "http://127.0.0.1:$((base + 6))" "$SERVER_PID"
        start_floor_socket $((base + 7)) floor_flask_socketio
        loadgen floor-fsio socket "http://127.0.0.1:$((base + 7))" "$SERVER_PID"
        ;;
      scale)
        [[ $label == ours ]] || continue
        run_scale "$base"
        ;;
      two)
        local pid2
        $start $((base + 1))
        pid2=$SERVER_PID
        loadgen "$label" two "$url" "$pid,$pid2" --url2 "http://127.0.0.1:$((base + 1))"
        ;;
      *)
        if [[ $label == ours && " ${PROFILE:-} " == *" $scenario "* ]]; then
          # Steady state only: PROFILE_DELAY s in (after the clients connected), PROFILE_SECONDS long.
          (sleep "${PROFILE_DELAY:-8}" && exec "$ROOT/.venv/bin/py-spy" record --pid "$pid" \
            --duration "${PROFILE_SECONDS:-8}" --rate 100 --format raw \
            --output "$OUT/ours-$scenario.pyspy.txt" >"$OUT/py-spy.log" 2>&1) &
          local spy=$!
          loadgen "$label" "$scenario" "$url" "$pid"
          wait "$spy" || true
        else
          loadgen "$label" "$scenario" "$url" "$pid"
        fi
        # the server finishes 10,000 disconnects before the next scenario connects
        [[ $scenario == connect ]] && sleep 15
        ;;
    esac
    sleep 1
  done
  stop_all
}

STARTED="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
cat >"$OUT/commands.txt" <<EOF
make bench            # = bench/run.sh
# databases
mariadb -uroot -h127.0.0.1 -e "CREATE DATABASE notify_bench CHARACTER SET utf8mb4"   (then: flask db upgrade)
mariadb -uroot -h127.0.0.1 -e "CREATE DATABASE ${BENCH_DB}_peer CHARACTER SET utf8mb4"
mariadb -uroot -h127.0.0.1 ${BENCH_DB}_peer < schema.sql
# ours (port $OURS_PORT; a second process on $((OURS_PORT + 1)) for "two processes")
env ${ours_env[*]} PORT=$OURS_PORT ALLOWED_ORIGINS=http://127.0.0.1:$OURS_PORT .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app
# peer (port $PEER_PORT; a second process on $((PEER_PORT + 1)) for "two processes")
env ${peer_env[*]} PORT=$PEER_PORT ALLOWED_ORIGINS=http://127.0.0.1:$PEER_PORT node server.js
# load generator, one process per scenario (scenarios: $SCENARIOS)
node bench/loadgen.mjs <scenario> --url http://127.0.0.1:<port> --pids <server pid(s)> --secret <JWT_SECRET> --key <WEBHOOK_API_KEY> [--url2 ...]
EOF
[[ " $TARGETS " == *" ours "* ]] && run_all ours start_ours $OURS_PORT
[[ " $TARGETS " == *" peer "* ]] && run_all peer start_peer $PEER_PORT

# ---- report -------------------------------------------------------------------------------------
export BENCH_STARTED="$STARTED" BENCH_OUT="$OUT" BENCH_OURS_PORT="$OURS_PORT"
export BENCH_MACHINE="$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/Mem:/ {print $2}') GB RAM"
export BENCH_VERSIONS="Python $("$ROOT/.venv/bin/python" -c 'import platform; print(platform.python_version())'), Node $(node -v), $(mariadb --version | grep -o '[0-9.]*-MariaDB' | head -1), Redis $(redis-cli INFO server | sed -n 's/^redis_version:\(.*\)\r$/\1/p')"
# Only a run of both servers over every scenario replaces the committed report.
REPORT="$BENCH/RESULTS.md"
[[ "$TARGETS" == "ours peer" && -z "${SCENARIOS_GIVEN:-}" ]] || REPORT="$OUT/RESULTS.md"
if [[ "$REPORT" == "$OUT/RESULTS.md" && " $SCENARIOS " == *" scale "* && " $TARGETS " == *" ours "* ]]; then
  # The scale section stands alone (ours only): it replaces its part of the committed report.
  node "$BENCH/scale_report.mjs" --splice "$BENCH/RESULTS.md"
  echo "wrote the scale section of $BENCH/RESULTS.md"
fi
node "$BENCH/report.mjs" >"$REPORT"
echo "wrote $REPORT"
