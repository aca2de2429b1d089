#!/usr/bin/env bash
# Hostile load (issue 13): runs each probe of `collab-bench hostile` against
# a freshly started Collab-Engine (its own SQLite file in a temp directory,
# its settings file as shipped: the production [limits], nothing raised),
# the server pinned to one core and the generator to the other, and writes
# bench/results/hostile-<label>-<UTC time>.{jsonl,txt}.
#
#   bench/hostile.sh                                  # build here, every probe
#   ENGINE=/work/wt-before/target/release/collab-engine LABEL=before bench/hostile.sh
#   PROBES="flood alloc-bomb" SECS=5 bench/hostile.sh
#
# Environment (all optional):
#   ENGINE      the collab-engine binary (default: build this tree's release binary)
#   SETTINGS    its settings file (default: settings.toml of the tree ENGINE was
#               built in, ENGINE/../../settings.toml, else this tree's)
#   LABEL       name of the server in the results (default "current")
#   PROBES      probes to run, in order, space- or comma-separated (default all:
#               conflicts never-integrate big-deletes alloc-bomb flood
#               awareness-flood idle-connections)
#   SECS        length of each attack (default 10)
#   BENCH       the collab-bench binary (default: build this tree's release binary)
#   SKIP_BUILD=1  do not run cargo build
#   SERVER_CPU / BENCH_CPU  cores for taskset (default 0 and 1; empty: no pinning)
#   PORT        first port to try (default 9410; the next free one is used)
#   RSS_LIMIT_MIB  the generator stops an attack when the server's RSS passes
#               this (default 8192: a safety limit for a shared machine)
#
# Only settings that both the current server and the one before the
# hardening (dd63228, no [limits] beyond max_sessions_per_document) know
# are passed: port, database URL, log level.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
ALL_PROBES="conflicts never-integrate big-deletes alloc-bomb flood awareness-flood idle-connections"
PROBES="${PROBES:-$ALL_PROBES}"
PROBES="${PROBES//,/ }"
LABEL="${LABEL:-current}"
SECS="${SECS:-10}"
SERVER_CPU="${SERVER_CPU-0}"
BENCH_CPU="${BENCH_CPU-1}"
PORT="${PORT:-9410}"
RSS_LIMIT_MIB="${RSS_LIMIT_MIB:-8192}"

for arg in "$@"; do
    case "$arg" in
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
for probe in $PROBES; do
    case " $ALL_PROBES " in
        *" $probe "*) ;;
        *) echo "unknown probe: $probe (one of: $ALL_PROBES)" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*" >&2; }

# --- binaries ------------------------------------------------------------------

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    packages=()
    [[ -z "${ENGINE:-}" ]] && packages+=(-p collab-engine)
    [[ -z "${BENCH:-}" ]] && packages+=(-p collab-bench)
    if (( ${#packages[@]} > 0 )); then
        say "building ${packages[*]} (release)"
        (cd "$ROOT" && cargo build --release --locked "${packages[@]}")
    fi
fi
ENGINE="${ENGINE:-$ROOT/target/release/collab-engine}"
BENCH="${BENCH:-$ROOT/target/release/collab-bench}"
for bin in "$ENGINE" "$BENCH"; do
    [[ -x "$bin" ]] || { say "no executable $bin"; exit 1; }
done
ENGINE="$(cd "$(dirname "$ENGINE")" && pwd)/$(basename "$ENGINE")"
if [[ -z "${SETTINGS:-}" ]]; then
    SETTINGS="$(dirname "$ENGINE")/../../settings.toml"
    [[ -f "$SETTINGS" ]] || SETTINGS="$ROOT/settings.toml"
fi
SETTINGS="$(cd "$(dirname "$SETTINGS")" && pwd)/$(basename "$SETTINGS")"

SERVER_PIN=(); BENCH_PIN=()
[[ -n "$SERVER_CPU" ]] && SERVER_PIN=(taskset -c "$SERVER_CPU")
[[ -n "$BENCH_CPU" ]] && BENCH_PIN=(taskset -c "$BENCH_CPU")

# Thousands of sockets (idle-connections): as many files as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

RESULTS_DIR="$BENCH_DIR/results"
mkdir -p "$RESULTS_DIR"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
RESULTS="$RESULTS_DIR/hostile-$LABEL-$STAMP.jsonl"
TEXT="${RESULTS%.jsonl}.txt"
WORK="$(mktemp -d /tmp/collab-hostile.XXXXXX)"
NOTES="$WORK/notes.txt"
: >"$NOTES"
: >"$RESULTS"
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

next_free_port() {
    PORT=$((PORT + 1))
    while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
}

# Starts the server on a free port with a fresh database; sets SERVER_PID.
start_engine() {
    local dir=$1
    next_free_port
    mkdir -p "$dir"
    (cd "$dir" && \
        COLLAB__SERVER__PORT=$PORT \
        COLLAB__DATABASE__URL="sqlite://$dir/collab.db" \
        COLLAB__LOGGING__LEVEL=warn \
        exec "${SERVER_PIN[@]}" "$ENGINE" --config "$SETTINGS") >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 100); do
        if port_in_use "$PORT"; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    say "collab-engine did not start; its log:"
    tail -20 "$dir/server.log" >&2
    exit 1
}

# Stops the server (SIGTERM, then SIGKILL after 15 s); notes how it ended.
stop_engine() {
    local probe=$1 dir=$2 status=0 i
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || status=$?
        echo "$probe: the server had exited by itself (status $status)" >>"$NOTES"
    else
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for i in $(seq 1 150); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            kill -KILL "$SERVER_PID" 2>/dev/null || true
            echo "$probe: the server did not stop within 15 s of SIGTERM (killed)" >>"$NOTES"
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
    local log="$dir/server.log" warns errors
    warns=$(grep -c ' WARN ' "$log" 2>/dev/null || true)
    errors=$(grep -c ' ERROR ' "$log" 2>/dev/null || true)
    {
        echo "$probe: server log: ${warns:-0} WARN, ${errors:-0} ERROR lines; most frequent:"
        { grep -E ' (WARN|ERROR) ' "$log" 2>/dev/null || true; } \
            | sed -E 's/^\[[^]]*(WARN|ERROR) +([^]]*)\] */\1 \2: /; s/[0-9a-f]{32}/<id>/g; s/[0-9]+/N/g' \
            | cut -c1-160 | sort | uniq -c | sort -rn | head -4 | sed 's/^/    /'
    } >>"$NOTES"
}

say "server $ENGINE ($LABEL), settings $SETTINGS"
say "probes: $PROBES; ${SECS}s each; server on core ${SERVER_CPU:-any}, generator on core ${BENCH_CPU:-any}"
for probe in $PROBES; do
    dir="$WORK/$probe"
    start_engine "$dir"
    say "$probe (server pid $SERVER_PID, port $PORT)"
    if ! "${BENCH_PIN[@]}" "$BENCH" hostile --url "ws://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --probe "$probe" --secs "$SECS" --label "$LABEL" --rss-limit-mib "$RSS_LIMIT_MIB" \
        --json >>"$RESULTS"; then
        say "$probe: collab-bench failed"
        echo "$probe: collab-bench failed (no row)" >>"$NOTES"
    fi
    stop_engine "$probe" "$dir"
    # Let the sockets of the last probe go.
    sleep 2
done

{
    echo "Collab-Engine hostile load, $LABEL, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; server on core ${SERVER_CPU:-any}, generator on core ${BENCH_CPU:-any}"
    echo "server: $ENGINE"
    echo "settings: $SETTINGS (as shipped: default [limits]); ${SECS}s per probe; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    "$BENCH" table "$RESULTS"
    echo
    cat "$NOTES"
} | tee "$TEXT"
echo
echo "raw results: $RESULTS"
