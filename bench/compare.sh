#!/usr/bin/env bash
# Runs the Collab-Engine comparison in one command: W1 (hot document) and W2
# (many documents) against a bare relay, the reference y-websocket server,
# Hocuspocus and Collab-Engine, plus W3 (reconnect storm), W4 (cold load),
# W5 (durability modes) and an overload step against Collab-Engine; each
# server pinned to core 0 and the load generator to core 1; prints one
# combined table.
#
#   bench/compare.sh                 # everything (about 25 minutes plus the build)
#   bench/compare.sh --quick         # 3 s per rate, 200 documents, 2 W4 runs
#
# Environment (all optional):
#   SERVERS     servers to run, in order (default: "relay y-websocket hocuspocus collab-engine")
#   WORKLOADS   any of w1 w2 w3 w4 w5 overload, space- or comma-separated
#               (default: all). w3, w4, w5 and overload run against
#               collab-engine only (when it is in SERVERS).
#   RATES       W1 (and W5) offered rates (default 1000,2000,5000,10000,15000,20000)
#   RELAY_EXTRA_RATES  more W1 rates for the relay only, to show the load
#               generator is not the limit (default 25000,30000,40000,50000)
#   HOCUSPOCUS_EXTRA_RATES  more W1 rates for Hocuspocus, between the rate
#               it carries and the one where it collapses (default 17500)
#   ENGINE_EXTRA_RATES  more W1 rates for Collab-Engine, to find its highest
#               rate at p99 <= 50 ms (default 25000,30000,35000,40000)
#   OVERLOAD_RATES  rates of the overload workload, one server process
#               (default 20000,40000,80000: the target rate, 2x it, and
#               beyond what one core carries)
#   OVERLOAD_DRAIN_SECS  wait for late deliveries after each overload step (default 30)
#   CLIENTS     W1 clients (default 50)
#   STEP_SECS   W1 send phase per rate in seconds (default 10; --quick: 3)
#   DOCUMENTS   W2 documents (default 1000; --quick: 200)
#   W3_DOCUMENTS, W3_CLIENTS, W3_MISSED   W3 shape (default 100, 10, 100)
#   W4_OPS      W4 log length, patches of the trace (default 100000)
#   W4_RUNS     W4 cold loads per variant, each after a restart (default 5; --quick: 2)
#   TRACE       W4 trace (default /work/shared/data/automerge-paper.json.gz)
#   DURABILITY  Collab-Engine persistence.durability for w1, w2, w3, w4, overload (default full)
#   WORKERS     Collab-Engine server.workers (default 1: better than 2 on one pinned core)
#   SKIP_BUILD=1  do not run cargo build;  SKIP_NPM=1  do not run npm ci
#   FORCE=1     run even when the machine is busy (results are then suspect)
#   SERVER_CPU / BENCH_CPU  cores for taskset (default 0 and 1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
PEERS="$BENCH_DIR/peers"

SERVERS="${SERVERS:-relay y-websocket hocuspocus collab-engine}"
WORKLOADS="${WORKLOADS:-w1 w2 w3 w4 w5 overload}"
WORKLOADS="${WORKLOADS//,/ }"
RATES="${RATES:-1000,2000,5000,10000,15000,20000}"
RELAY_EXTRA_RATES="${RELAY_EXTRA_RATES-25000,30000,40000,50000}"
HOCUSPOCUS_EXTRA_RATES="${HOCUSPOCUS_EXTRA_RATES-17500}"
ENGINE_EXTRA_RATES="${ENGINE_EXTRA_RATES-25000,30000,35000,40000}"
OVERLOAD_RATES="${OVERLOAD_RATES:-20000,40000,80000}"
OVERLOAD_DRAIN_SECS="${OVERLOAD_DRAIN_SECS:-30}"
CLIENTS="${CLIENTS:-50}"
STEP_SECS="${STEP_SECS:-10}"
DOCUMENTS="${DOCUMENTS:-1000}"
W3_DOCUMENTS="${W3_DOCUMENTS:-100}"
W3_CLIENTS="${W3_CLIENTS:-10}"
W3_MISSED="${W3_MISSED:-100}"
W4_OPS="${W4_OPS:-100000}"
W4_RUNS="${W4_RUNS:-5}"
TRACE="${TRACE:-/work/shared/data/automerge-paper.json.gz}"
DURABILITY="${DURABILITY:-full}"
WORKERS="${WORKERS:-1}"
SERVER_CPU="${SERVER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"
PORT="${PORT:-9310}"

for arg in "$@"; do
    case "$arg" in
        --quick) STEP_SECS=3; DOCUMENTS=200; W4_RUNS=2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
for workload in $WORKLOADS; do
    case "$workload" in
        w1|w2|w3|w4|w5|overload) ;;
        *) echo "unknown workload: $workload" >&2; exit 2 ;;
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

# W2 and W3 keep thousands of sockets open.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

RESULTS_DIR="$BENCH_DIR/results"
mkdir -p "$RESULTS_DIR"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
RESULTS="$RESULTS_DIR/compare-$STAMP.jsonl"
WORK="$(mktemp -d /tmp/collab-bench.XXXXXX)"
SHM=""
SERVER_PID=""

cleanup() {
    if [[ -n "${MONITOR_PID:-}" ]]; then kill "$MONITOR_PID" 2>/dev/null || true; fi
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    if [[ -n "$SHM" ]]; then rm -rf "$SHM"; fi
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

# Starts Collab-Engine on $PORT pinned to $SERVER_CPU over SQLite file $1,
# durability $2, a snapshot every $3 ops, log filter $4, log file $5.
# The [limits] made for production (connections and upgrades per IP, ops
# and bytes per session...) are raised out of the benchmarks' way.
start_engine() {
    local db=$1 durability=$2 snapshot_every=$3 level=$4 log=$5
    (cd "$ROOT" && \
        COLLAB__SERVER__PORT=$PORT \
        COLLAB__SERVER__WORKERS="$WORKERS" \
        COLLAB__DATABASE__URL="sqlite://$db" \
        COLLAB__PERSISTENCE__DURABILITY="$durability" \
        COLLAB__DOCUMENTS__SNAPSHOT_EVERY_OPS="$snapshot_every" \
        COLLAB__DOCUMENTS__IDLE_UNLOAD_SECS=2 \
        COLLAB__LOGGING__LEVEL="$level" \
        COLLAB__LIMITS__MAX_SESSIONS_PER_DOCUMENT=1000000 \
        COLLAB__LIMITS__UPGRADES_PER_IP_PER_SEC=1000000 \
        COLLAB__LIMITS__MAX_CONNECTIONS_PER_IP=1000000 \
        COLLAB__LIMITS__OPS_PER_SEC_PER_SESSION=1000000 \
        COLLAB__LIMITS__BYTES_PER_SEC_PER_SESSION=1099511627776 \
        COLLAB__LIMITS__AWARENESS_PER_SEC_PER_SESSION=1000000 \
        COLLAB__LIMITS__DOCUMENTS_CREATED_PER_IP_PER_MIN=1000000 \
        exec taskset -c "$SERVER_CPU" "$ENGINE" --config "$ROOT/settings.toml") >"$log" 2>&1 &
    SERVER_PID=$!
    URL="ws://127.0.0.1:$PORT"; PROTOCOL=native
    # A document unloads 2-4 s after its last session left (idle 2 s,
    # checked every 2 s); the freed memory goes back to the OS 2 s after
    # the first unload of a wave: read the RSS after that.
    UNLOAD_FLAGS=(--unload-min-secs 10)
    if ! wait_for_port "$PORT"; then
        say "collab-engine did not start; its log:"
        tail -20 "$log" >&2
        exit 1
    fi
}

# Starts server $1 on $PORT pinned to $SERVER_CPU; sets SERVER_PID, URL,
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
            rm -f "$WORK/collab-engine.db"*
            start_engine "$WORK/collab-engine.db" "$DURABILITY" 1000 warn "$log"
            return ;;
        *) say "unknown server: $name"; exit 2 ;;
    esac
    SERVER_PID=$!
    if ! wait_for_port "$PORT"; then
        say "$name did not start; its log:"
        tail -20 "$log" >&2
        exit 1
    fi
}

# Stops the server (SIGTERM, graceful) and shows the end of log $1.
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    if [[ -s "$1" ]]; then
        say "server log (last lines):"
        tail -5 "$1" >&2
    fi
}

# Stops the server with SIGKILL: no final snapshot (every acked op is
# committed, so nothing acknowledged is lost).
kill_server() {
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

bench() {
    taskset -c "$BENCH_CPU" "$BIN" "$@" --json >>"$RESULTS"
}

next_port() { PORT=$((PORT + 1)); }

run_w1() {
    local server=$1 rates=$RATES extra=""
    case "$server" in
        relay) extra=$RELAY_EXTRA_RATES ;;
        hocuspocus) extra=$HOCUSPOCUS_EXTRA_RATES ;;
        collab-engine) extra=$ENGINE_EXTRA_RATES ;;
    esac
    if [[ -n "$extra" ]]; then
        # In increasing order, so that a collapse comes last.
        rates=$(echo "$RATES,$extra" | tr ',' '\n' | sort -n | uniq | paste -sd, -)
    fi
    start_server "$server"
    say "$server: W1, $CLIENTS clients, rates $rates, ${STEP_SECS}s each"
    bench w1 --url "$URL" --protocol "$PROTOCOL" --label "$server" \
        --server-pid "$SERVER_PID" --clients "$CLIENTS" --rates "$rates" \
        --seconds "$STEP_SECS" || say "$server: W1 failed"
    stop_server "$WORK/$server.log"
}

run_w2() {
    local server=$1
    start_server "$server"
    say "$server: W2, $DOCUMENTS documents x 2 clients"
    bench w2 --url "$URL" --protocol "$PROTOCOL" --label "$server" \
        --server-pid "$SERVER_PID" --documents "$DOCUMENTS" "${UNLOAD_FLAGS[@]}" \
        || say "$server: W2 failed"
    stop_server "$WORK/$server.log"
}

run_w3() {
    start_server collab-engine
    say "collab-engine: W3, $W3_DOCUMENTS documents x $W3_CLIENTS clients, $W3_MISSED missed ops"
    bench w3 --url "$URL" --label collab-engine --server-pid "$SERVER_PID" \
        --documents "$W3_DOCUMENTS" --clients-per-doc "$W3_CLIENTS" --missed-ops "$W3_MISSED" \
        || say "collab-engine: W3 failed"
    stop_server "$WORK/collab-engine.log"
}

# W4: cold loads of database $2 (snapshot every $3 ops while loading),
# W4_RUNS times: start, one load, SIGKILL (a graceful stop would snapshot).
w4_loads() {
    local label=$1 db=$2 every=$3 level=$W4_LEVEL run
    say "collab-engine: W4 $label: snapshots in the database: $(sqlite3 "$db" \
        'select count(*) || " (latest at seq " || ifnull(max(server_seq), "-") || ")" from snapshots' 2>/dev/null || echo '?')"
    for run in $(seq 1 "$W4_RUNS"); do
        next_port
        start_engine "$db" "$DURABILITY" "$every" "$level" "$WORK/w4-$label-$run.log"
        bench w4 --phase load --url "$URL" --label "$label" --trace "$TRACE" --ops "$W4_OPS" \
            --run "$run" --server-log "$WORK/w4-$label-$run.log" || say "W4 $label run $run failed"
        kill_server
        grep 'loaded:' "$WORK/w4-$label-$run.log" >&2 || true
    done
}

# Writes trace patches $3..$4 into database $2 with a snapshot every $5 ops;
# then stops the server with $6 (KILL: no final snapshot; TERM: final snapshot).
w4_build() {
    local label=$1 db=$2 from=$3 to=$4 every=$5 signal=$6
    next_port
    start_engine "$db" "$DURABILITY" "$every" "$W4_LEVEL" "$WORK/w4-$label-build-$from.log"
    say "collab-engine: W4 $label: writing trace ops $from..$to (snapshot every $every ops), then SIG$signal"
    bench w4 --phase build --url "$URL" --label "$label" --trace "$TRACE" --ops "$to" --from "$from" \
        || { say "collab-engine: W4 build failed"; kill_server; return 1; }
    if [[ "$signal" == KILL ]]; then
        kill_server
    else
        stop_server "$WORK/w4-$label-build-$from.log"
    fi
}

W4_LEVEL="warn,collab_engine::document::lifecycle=info"
NO_SNAPSHOTS=1000000000

run_w4() {
    local db
    # Without snapshots: the load applies the whole log.
    db="$WORK/w4-a.db"; rm -f "$db"*
    w4_build no-snapshots "$db" 0 "$W4_OPS" "$NO_SNAPSHOTS" KILL \
        && w4_loads no-snapshots "$db" "$NO_SNAPSHOTS"
    # A snapshot every 1,000 ops; the graceful stop snapshots the head.
    db="$WORK/w4-b.db"; rm -f "$db"*
    w4_build snapshot-every-1000 "$db" 0 "$W4_OPS" 1000 TERM \
        && w4_loads snapshot-every-1000 "$db" 1000
    # The worst case of a snapshot every 1,000 ops: 999 ops after the
    # latest snapshot.
    db="$WORK/w4-c.db"; rm -f "$db"*
    w4_build snapshot-1000+999-tail "$db" 0 $((W4_OPS - 999)) 1000 TERM \
        && w4_build snapshot-1000+999-tail "$db" $((W4_OPS - 999)) "$W4_OPS" "$NO_SNAPSHOTS" KILL \
        && w4_loads snapshot-1000+999-tail "$db" 1000
}

run_w5() {
    local mode db durability
    for mode in full normal full-ramdisk; do
        case "$mode" in
            full-ramdisk)
                SHM="$(mktemp -d /dev/shm/collab-bench.XXXXXX)"
                db="$SHM/collab-engine.db"; durability=full ;;
            *) db="$WORK/w5-$mode.db"; durability=$mode ;;
        esac
        rm -f "$db"*
        start_engine "$db" "$durability" 1000 warn "$WORK/w5-$mode.log"
        say "collab-engine: W5 $mode (database $db), rates $RATES"
        bench w1 --url "$URL" --protocol native --label "collab-engine $mode" --workload w5 \
            --server-pid "$SERVER_PID" --clients "$CLIENTS" --rates "$RATES" \
            --seconds "$STEP_SECS" || say "W5 $mode failed"
        stop_server "$WORK/w5-$mode.log"
        next_port
    done
    if [[ -n "$SHM" ]]; then rm -rf "$SHM"; SHM=""; fi
}

run_overload() {
    start_server collab-engine
    say "collab-engine: overload, rates $OVERLOAD_RATES, drain up to ${OVERLOAD_DRAIN_SECS}s"
    bench w1 --url "$URL" --protocol native --label collab-engine --workload overload \
        --server-pid "$SERVER_PID" --clients "$CLIENTS" --rates "$OVERLOAD_RATES" \
        --seconds "$STEP_SECS" --drain-secs "$OVERLOAD_DRAIN_SECS" --resync-closed \
        || say "overload failed"
    # How the server handled it: refusals and dropped sessions.
    grep -c 'refusing op' "$WORK/collab-engine.log" | sed 's/^/==> ops refused (log lines): /' >&2 || true
    grep -c 'dropping it (close 1013)' "$WORK/collab-engine.log" | sed 's/^/==> slow sessions dropped: /' >&2 || true
    stop_server "$WORK/collab-engine.log"
}

# Other processes busy while a workload runs make its numbers suspect: a
# monitor samples every second (processes started by this script excluded)
# and each busy process seen is noted in the final table.
BUSY_NOTES="$WORK/busy.txt"

# "PID PPID CPU_TICKS COMM" of every process, in one awk run (cheap enough
# to sample every 2 s without disturbing the measurement).
proc_sample() {
    awk '{ pid = FILENAME; sub(/^\/proc\//, "", pid); sub(/\/stat$/, "", pid)
           comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\) [^)]*$/, "", comm); gsub(/ /, "_", comm)
           rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
           print pid, f[2], f[12] + f[13], comm }' /proc/[0-9]*/stat 2>/dev/null
}

MONITOR_PID=""
monitor_start() {
    : >"$WORK/busy-now.txt"
    (
        prev=$(proc_sample)
        while sleep 2; do
            cur=$(proc_sample)
            # Busy: above 20 % of a core over the 2 s; ours: descends from $$.
            awk -v self=$$ 'NR == FNR { t0[$1] = $3; next }
                { ppid[$1] = $2; t[$1] = $3; c[$1] = $4 }
                END { for (p in t) if ((p in t0) && t[p] - t0[p] > 40) {
                        q = p; ours = 0
                        for (i = 0; i < 64 && q > 1; i++) { if (q == self) { ours = 1; break }; q = ppid[q] }
                        if (!ours) printf "%s %s %d\n", p, c[p], (t[p] - t0[p]) / 2 } }' \
                <(echo "$prev") <(echo "$cur")
            prev=$cur
        done >>"$WORK/busy-now.txt"
    ) &
    MONITOR_PID=$!
    taskset -pc "$BENCH_CPU" "$MONITOR_PID" >/dev/null 2>&1 || true
}
monitor_stop() {
    kill "$MONITOR_PID" 2>/dev/null || true
    wait "$MONITOR_PID" 2>/dev/null || true
    MONITOR_PID=""
    if [[ -s "$WORK/busy-now.txt" ]]; then
        local summary
        # pid name: seconds seen busy, highest share of a core
        summary=$(awk '{ n[$1" "$2]++; p=$3+0; if (p > m[$1" "$2]) m[$1" "$2]=p }
            END { for (k in n) printf "%s (%d s, up to %d%%); ", k, 2 * n[k], m[k] }' "$WORK/busy-now.txt")
        say "WARNING: other processes were busy during $1: $summary"
        echo "$1: $summary" >>"$BUSY_NOTES"
    fi
}

# Each workload gets a freshly started server, so that W2's baseline is not
# inflated (or its per-document cost hidden) by what W1 left behind.
for server in $SERVERS; do
    for workload in $WORKLOADS; do
        case "$workload:$server" in
            w1:*|w2:*|w3:collab-engine|w4:collab-engine|w5:collab-engine|overload:collab-engine) ;;
            *) continue ;;
        esac
        monitor_start
        case "$workload:$server" in
            w1:*) run_w1 "$server" ;;
            w2:*) run_w2 "$server" ;;
            w3:*) run_w3 ;;
            w4:*) run_w4 ;;
            w5:*) run_w5 ;;
            overload:*) run_overload ;;
        esac
        monitor_stop "$workload $server"
        next_port
    done
done

# --- (e) one table -----------------------------------------------------------------------

{
    echo
    echo "Collab-Engine comparison, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; servers on core $SERVER_CPU, generator on core $BENCH_CPU"
    echo "durability: relay none; y-websocket none (memory only, no YPERSISTENCE); hocuspocus none (no storage extension; with one it stores after a 2 s debounce, at most 10 s);"
    echo "            collab-engine $DURABILITY (SQLite, ack after commit; workers $WORKERS)"
    if [[ -s "$BUSY_NOTES" ]]; then
        echo "WARNING: other processes were busy during this run:"
        sed 's/^/  /' "$BUSY_NOTES"
    else
        echo "no other process above 20 % of a core during any workload (sampled every 2 s)"
    fi
    "$BIN" table "$RESULTS"
} | tee "${RESULTS%.jsonl}.txt"
echo
echo "raw results: $RESULTS"
