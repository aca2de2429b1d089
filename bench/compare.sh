#!/usr/bin/env bash
# Runs the Collab-Engine comparison in one command: W1 (hot document) and W2
# (many documents) against a bare relay, the reference y-websocket server,
# Hocuspocus and Collab-Engine, each server pinned to core 0 and the load
# generator to core 1, and prints one combined table.
#
#   bench/compare.sh                 # everything (about 15 minutes)
#   bench/compare.sh --quick         # 3 s per rate, 200 documents
#
# Environment (all optional):
#   SERVERS     servers to run, in order (default: "relay y-websocket hocuspocus collab-engine")
#   WORKLOADS   "w1 w2" (default), or just one of them
#   RATES       W1 offered rates (default 1000,2000,5000,10000,20000)
#   CLIENTS     W1 clients (default 50)
#   STEP_SECS   W1 send phase per rate in seconds (default 10; --quick: 3)
#   DOCUMENTS   W2 documents (default 1000; --quick: 200)
#   DURABILITY  Collab-Engine persistence.durability (default full)
#   SKIP_BUILD=1  do not run cargo build;  SKIP_NPM=1  do not run npm ci
#   FORCE=1     run even when the machine is busy (results are then suspect)
#   SERVER_CPU / BENCH_CPU  cores for taskset (default 0 and 1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
PEERS="$BENCH_DIR/peers"

SERVERS="${SERVERS:-relay y-websocket hocuspocus collab-engine}"
WORKLOADS="${WORKLOADS:-w1 w2}"
RATES="${RATES:-1000,2000,5000,10000,20000}"
CLIENTS="${CLIENTS:-50}"
STEP_SECS="${STEP_SECS:-10}"
DOCUMENTS="${DOCUMENTS:-1000}"
DURABILITY="${DURABILITY:-full}"
SERVER_CPU="${SERVER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"
PORT="${PORT:-9310}"

for arg in "$@"; do
    case "$arg" in
        --quick) STEP_SECS=3; DOCUMENTS=200 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*" >&2; }

# --- (a) is the machine quiet enough to measure? -----------------------------

# Prints "PID NAME PERCENT" for processes that used more than 20 % of a core
# over one second (the lifetime average of `ps` would miss bursts).
busy_processes() {
    local -A before
    local f pid t
    for f in /proc/[0-9]*/stat; do
        pid="${f#/proc/}"; pid="${pid%/stat}"
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$f" 2>/dev/null) || continue
        before[$pid]=$t
    done
    sleep 1
    for pid in "${!before[@]}"; do
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || continue
        if (( t - before[$pid] > 20 )); then
            echo "$pid $(cat "/proc/$pid/comm" 2>/dev/null) $(( t - before[$pid] ))%"
        fi
    done
}

check_quiet() {
    local cores load busy
    cores=$(nproc)
    load=$(cut -d' ' -f1 /proc/loadavg)
    busy=$(busy_processes)
    local problem=""
    if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l > 0.5 * c) }'; then
        problem="load average $load on $cores cores (over 0.5 per core)"
    fi
    if [[ -n "$busy" ]]; then
        problem="${problem:+$problem; }busy processes (pid name cpu): $(echo "$busy" | tr '\n' ';')"
    fi
    if [[ -n "$problem" ]]; then
        if [[ "${FORCE:-0}" == 1 ]]; then
            say "WARNING: the machine is busy: $problem"
            say "WARNING: FORCE=1 given, running anyway; the numbers will be noisy."
        else
            say "the machine is busy: $problem"
            say "wait for it to calm down, or run with FORCE=1 (numbers will be noisy)"
            exit 3
        fi
    fi
}

check_quiet

# --- (b) build, (c) peers --------------------------------------------------------

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "building release binaries"
    (cd "$ROOT" && cargo build --release -p collab-engine -p collab-bench)
fi
BIN="$ROOT/target/release/collab-bench"
ENGINE="$ROOT/target/release/collab-engine"

if [[ "$SERVERS" == *y-websocket* || "$SERVERS" == *hocuspocus* ]] && [[ "${SKIP_NPM:-0}" != 1 ]]; then
    say "installing the pinned peers (npm ci in bench/peers)"
    (cd "$PEERS" && npm ci --no-audit --no-fund --loglevel=error)
fi

# W2 keeps thousands of sockets open.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

RESULTS_DIR="$BENCH_DIR/results"
mkdir -p "$RESULTS_DIR"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
RESULTS="$RESULTS_DIR/compare-$STAMP.jsonl"
WORK="$(mktemp -d /tmp/collab-bench.XXXXXX)"
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_for_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# --- (d) each server -----------------------------------------------------------------

# Starts server $1 on $PORT pinned to $SERVER_CPU; sets SERVER_PID, URL_W1,
# PROTOCOL and UNLOAD_FLAGS.
start_server() {
    local name=$1 log="$WORK/$1.log"
    UNLOAD_FLAGS=()
    case "$name" in
        relay)
            taskset -c "$SERVER_CPU" "$BIN" relay --port "$PORT" >"$log" 2>&1 &
            URL="ws://127.0.0.1:$PORT"; PROTOCOL=raw; UNLOAD_FLAGS=(--no-unload) ;;
        y-websocket)
            # Without YPERSISTENCE the reference server keeps every document
            # in memory for good: no unload.
            HOST=127.0.0.1 PORT=$PORT taskset -c "$SERVER_CPU" \
                node "$PEERS/node_modules/y-websocket/bin/server.js" >"$log" 2>&1 &
            URL="ws://127.0.0.1:$PORT"; PROTOCOL=yjs; UNLOAD_FLAGS=(--no-unload) ;;
        hocuspocus)
            HOST=127.0.0.1 PORT=$PORT taskset -c "$SERVER_CPU" \
                node "$PEERS/hocuspocus-server.mjs" >"$log" 2>&1 &
            URL="ws://127.0.0.1:$PORT"; PROTOCOL=hocuspocus ;;
        collab-engine)
            (cd "$ROOT" && \
                COLLAB__SERVER__PORT=$PORT \
                COLLAB__DATABASE__URL="sqlite://$WORK/collab-engine.db" \
                COLLAB__PERSISTENCE__DURABILITY="$DURABILITY" \
                COLLAB__DOCUMENTS__IDLE_UNLOAD_SECS=2 \
                COLLAB__LOGGING__LEVEL=warn \
                exec taskset -c "$SERVER_CPU" "$ENGINE" --config "$ROOT/settings.toml") >"$log" 2>&1 &
            URL="ws://127.0.0.1:$PORT"; PROTOCOL=native
            UNLOAD_FLAGS=(--unload-min-secs 4) ;;
        *) say "unknown server: $name"; exit 2 ;;
    esac
    SERVER_PID=$!
    if ! wait_for_port "$PORT"; then
        say "$name did not start; its log:"
        tail -20 "$log" >&2
        exit 1
    fi
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    if [[ -s "$WORK/$1.log" ]]; then
        say "$1 log (last lines):"
        tail -5 "$WORK/$1.log" >&2
    fi
}

bench() {
    taskset -c "$BENCH_CPU" "$BIN" "$@" --json >>"$RESULTS"
}

# Each workload gets a freshly started server, so that W2's baseline is not
# inflated (or its per-document cost hidden) by what W1 left behind.
for server in $SERVERS; do
    for workload in $WORKLOADS; do
        say "$server: starting on core $SERVER_CPU, port $PORT"
        start_server "$server"
        case "$workload" in
            w1)
                say "$server: W1, $CLIENTS clients, rates $RATES, ${STEP_SECS}s each"
                bench w1 --url "$URL" --protocol "$PROTOCOL" --label "$server" \
                    --server-pid "$SERVER_PID" --clients "$CLIENTS" --rates "$RATES" \
                    --seconds "$STEP_SECS" || say "$server: W1 failed"
                ;;
            w2)
                say "$server: W2, $DOCUMENTS documents x 2 clients"
                bench w2 --url "$URL" --protocol "$PROTOCOL" --label "$server" \
                    --server-pid "$SERVER_PID" --documents "$DOCUMENTS" "${UNLOAD_FLAGS[@]}" \
                    || say "$server: W2 failed"
                ;;
            *) say "unknown workload: $workload"; exit 2 ;;
        esac
        stop_server "$server"
        PORT=$((PORT + 1))
    done
done

# --- (e) one table -----------------------------------------------------------------------

echo
echo "Collab-Engine comparison, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; servers on core $SERVER_CPU, generator on core $BENCH_CPU"
echo "durability: relay none, y-websocket none (memory), hocuspocus none (no storage extension), collab-engine $DURABILITY (SQLite, ack after commit)"
"$BIN" table "$RESULTS" | tee "${RESULTS%.jsonl}.txt"
echo
echo "raw results: $RESULTS"
