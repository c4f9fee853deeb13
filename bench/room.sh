#!/bin/sh
# bench/room.sh — the fan-out throughput benchmark (bench/run.sh room).
#
# One machine, cluster mode: a redis-server and NODES imgate nodes (one
# worker thread each, every port picked by the kernel), N logged-in
# WebSocket clients spread round-robin over all nodes, all in one room
# (appID 101). For each rate R in RATES, a fresh imgate-bench run connects
# them, then posts R pushes per second for T seconds to node 0's
# /user/sendMessageAll (which reaches the other nodes over gRPC SendMsgAll)
# and checks that every push reached every connection exactly once; then the
# raw-TCP floor-stream with the same N sockets and the same R messages per
# second of a push frame's size, as single send()s per socket from as many
# sending processes as the nodes have worker threads. Both are bounded in
# time: a sender behind the rate stops at T, and what it sent is expected.
# Writes $OUT/$NAME.json (bench/room_merge.py: one entry per R, and the
# largest R's figures as the top-level keys); the runs' own JSON and text
# summaries go to $OUT/$NAME-r<R>.json / .txt (not committed).
#
# Environment (defaults):
#   N=20000            logged-in connections (100,000: see bench/README.md)
#   RATES="10 20 40"   room pushes per second, one run each
#   T=20               seconds of pushes per run
#   PER_NODE=16000     most connections per node (the open-file cap is 20,000)
#   NODES              ceil(N / PER_NODE), at least 2 (so pushes cross nodes)
#   PROCS              client processes, ceil(N / 16000), at least 2
#   NODE_WORKERS=1     worker threads per node; the floor-stream gets NODES x
#                      NODE_WORKERS sending processes
#   CONNECT_RATE=5000  connection set-up pacing
#   DRAIN=60           longest wait for deliveries after the last push, s
#   HEARTBEAT=30       the clients' heartbeat interval, s (the chat page's;
#                      each heartbeat is answered and rewrites the user's
#                      presence record in Redis)
#   RX_RING=1          the clients and the floor-stream's receivers read
#                      through an io_uring (imgate-bench --rx-ring; 0: epoll
#                      and read(), as before session 11)
#   NAME=room OUT=bench/results   output names
#   NODE_ARGS, BENCH_ARGS          extra flags for the nodes / imgate-bench
#   BUILT_FROM         recorded as the nodes' source (default: HEAD, with
#                      "+src" when src/ differs from it)
# Exit status: imgate-bench's (1 on any failed set-up, drop, loss or
# duplicate in any run), 2 on a usage or set-up error.
# shellcheck disable=SC2317   # the functions called from traps
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
IMGATE=${IMGATE_BIN:-$BUILD/imgate}
BENCH=${IMGATE_BENCH:-$BUILD/imgate-bench}
OUT=${OUT:-$ROOT/bench/results}
NAME=${NAME:-room}
N=${N:-20000}
RATES=${RATES:-10 20 40}
T=${T:-20}
PER_NODE=${PER_NODE:-16000}
NODES=${NODES:-$(((N + PER_NODE - 1) / PER_NODE))}
[ "$NODES" -ge 2 ] || NODES=2
PROCS=${PROCS:-$(((N + 15999) / 16000))}
[ "$PROCS" -ge 2 ] || PROCS=2
NODE_WORKERS=${NODE_WORKERS:-1}
CONNECT_RATE=${CONNECT_RATE:-5000}
DRAIN=${DRAIN:-60}
HEARTBEAT=${HEARTBEAT:-30}
RING_ARG=''
[ "${RX_RING:-1}" = 1 ] && RING_ARG=--rx-ring

say() { echo "room: $*" >&2; }
die() { say "$*"; exit 2; }

command -v redis-server >/dev/null 2>&1 || die "redis-server not found (apt-get install redis-server)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found"
command -v curl >/dev/null 2>&1 || die "curl not found"
if [ ! -x "$IMGATE" ] || [ ! -x "$BENCH" ]; then
    [ -f "$BUILD/Makefile" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$BUILD" -j "$(nproc)" --target imgate imgate-bench
fi
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/imgate-room.XXXXXX")
REDIS_PID='' NODE_PIDS=''

stop_pids() {  # SECONDS PID...
    t=$1
    shift
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    i=0
    for p in "$@"; do
        while kill -0 "$p" 2>/dev/null && [ $i -lt $((t * 10)) ]; do sleep 0.1; i=$((i + 1)); done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
cleanup() {
    # shellcheck disable=SC2086
    [ -z "$NODE_PIDS" ] || stop_pids 20 $NODE_PIDS
    [ -z "$REDIS_PID" ] || stop_pids 5 "$REDIS_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -z "${BUILT_FROM:-}" ]; then
    BUILT_FROM=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || BUILT_FROM="$BUILT_FROM+src"
fi
say "$N connections over $NODES nodes x $NODE_WORKERS worker(s), $PROCS client processes," \
    "R = $RATES pushes/s for $T s; load average $LOAD"

# Redis on a free port: tries random ports until one binds.
tries=0
while [ -z "$REDIS_PID" ] && [ $tries -lt 20 ]; do
    RPORT=$(awk -v s="$(($$ * 31 + tries + $(date +%s)))" 'BEGIN { srand(s); print 20000 + int(rand() * 9000) }')
    (cd "$TMP" && exec redis-server --port "$RPORT" --bind 127.0.0.1 --save '' \
        --appendonly no --maxclients 10000 >"$TMP/redis.out" 2>&1) &
    REDIS_PID=$!
    i=0
    while [ $i -lt 50 ] && kill -0 "$REDIS_PID" 2>/dev/null; do
        redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
        i=$((i + 1))
    done
    if ! redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG; then
        stop_pids 5 "$REDIS_PID"
        REDIS_PID=
    fi
    tries=$((tries + 1))
done
[ -n "$REDIS_PID" ] || die "redis-server did not start: $(tail -3 "$TMP/redis.out")"

# The nodes. im.presenceEventsMaxRoom=1: no enter/exit pushes in a room this
# size (each would cross every node). Generous cluster timeouts: two cores
# shared by every process of the run.
k=0
while [ $k -lt "$NODES" ]; do
    # shellcheck disable=SC2086
    (cd "$TMP" && exec "$IMGATE" --http-port 0 --ws-port 0 --rpc-port 0 --bind 127.0.0.1 \
        --advertise-ip 127.0.0.1 --redis "127.0.0.1:$RPORT" --workers "$NODE_WORKERS" \
        --log-level warn --set im.presenceEventsMaxRoom=1 --set cluster.registerInterval=5 \
        --set cluster.rpcTimeout=25000 --set cluster.redisTimeout=30000 \
        ${NODE_ARGS:-} >"$TMP/node$k.out" 2>"$TMP/node$k.err") &
    NODE_PIDS="$NODE_PIDS $!"
    k=$((k + 1))
done

port_of() { sed -n "s/^$1 listening on .*:\([0-9][0-9]*\)\$/\1/p" "$2"; }
HTTP_PORTS='' WS_ARGS='' PID_ARGS='' k=0
for pid in $NODE_PIDS; do
    i=0 h='' w='' r=''
    while [ $i -lt 300 ]; do
        h=$(port_of http "$TMP/node$k.out") w=$(port_of ws "$TMP/node$k.out")
        r=$(port_of rpc "$TMP/node$k.out")
        [ -n "$h" ] && [ -n "$w" ] && [ -n "$r" ] && break
        kill -0 "$pid" 2>/dev/null || die "node $k exited: $(tail -5 "$TMP/node$k.err")"
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$h" ] && [ -n "$w" ] && [ -n "$r" ] || die "node $k did not print its ports"
    HTTP_PORTS="$HTTP_PORTS $h"
    WS_ARGS="$WS_ARGS --ws ws://127.0.0.1:$w/acc"
    PID_ARGS="$PID_ARGS --pid $pid"
    k=$((k + 1))
done
# shellcheck disable=SC2086
set -- $HTTP_PORTS
API="http://127.0.0.1:$1"

# Every node must list every node before a push can reach them all.
servers_of() {
    curl -s -m 5 "http://127.0.0.1:$1/system/state" | tr -d ' \n' |
        sed -n 's/.*"servers":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | grep -c . || true
}
i=0 ready=0
while [ $i -lt 60 ]; do
    ready=0
    for h in $HTTP_PORTS; do
        if [ "$(servers_of "$h")" -ge "$NODES" ]; then ready=$((ready + 1)); fi
    done
    [ $ready -eq "$NODES" ] && break
    sleep 1
    i=$((i + 1))
done
[ $ready -eq "$NODES" ] || die "only $ready of $NODES nodes list every node after 60 s"
say "$NODES nodes up (pids$NODE_PIDS), API on node 0: $API"

# Warm-up: the first handshakes of a process page in libcrypto's code; it
# must succeed, a cluster that cannot log these in is not worth measuring.
# shellcheck disable=SC2086
"$BENCH" connect -n $((NODES * 40)) --procs 1 $WS_ARGS --api "$API" -q >"$TMP/warmup.out" 2>&1 ||
    die "warm-up failed: $(tail -3 "$TMP/warmup.out")"
sleep 2

rc=0 FILES=''
for R in $RATES; do
    say "R = $R: $N connections, $R pushes/s for $T s, then floor-stream"
    # shellcheck disable=SC2086
    "$BENCH" room --with-floor -n "$N" --procs "$PROCS" $WS_ARGS --api "$API" $PID_ARGS \
        --node-workers $((NODES * NODE_WORKERS)) --connect-rate "$CONNECT_RATE" \
        --heartbeat "$HEARTBEAT" --room-rate "$R" --room-duration "$T" --drain "$DRAIN" --settle 1 \
        --json "$OUT/$NAME-r$R.json" -q $RING_ARG ${BENCH_ARGS:-} >"$OUT/$NAME-r$R.txt" || rc=1
    cat "$OUT/$NAME-r$R.txt" >&2
    FILES="$FILES $OUT/$NAME-r$R.json"
    sleep 2
done

# shellcheck disable=SC2086
/usr/bin/env python3 "$ROOT/bench/room_merge.py" --nodes "$NODES" --node-workers "$NODE_WORKERS" \
    --load "$LOAD" --built-from "$BUILT_FROM" --out "$OUT/$NAME.json" $FILES || rc=2
say "results: $OUT/$NAME.json"
exit $rc
