#!/bin/sh
# bench/run.sh — runs imgate-bench against a fresh local imgate node.
#
#   bench/run.sh quick    10,000 connections over 4 worker processes: every
#                         scenario (connect, hold, broadcast, p2p) plus the
#                         raw-TCP floor; under 3 minutes. Writes
#                         bench/results/quick.json and bench/results/quick.html.
#   bench/run.sh tiny     the same with 200 connections in a few seconds
#                         (bench/results/tiny.*, not committed).
#   bench/run.sh deflate  permessage-deflate off vs on, side by side in one
#                         imgate-bench run: 10,000 connections to a fresh node
#                         with app.perMessageDeflate false, then 10,000 that
#                         negotiate it to a second fresh node with it true;
#                         hold, 20 broadcasts of a 512-byte-padded push each.
#                         Writes bench/results/deflate.json and .html (N=...
#                         for another size: deflate-nN.*, not committed).
#   bench/run.sh history  delivery logging (room history) off vs on, side by
#                         side in one imgate-bench run: a fresh node with
#                         delivery.enabled=false and a fresh node with it true,
#                         10,000 plain connections to each, connected in turn,
#                         then held and broadcast to at the same time: 20
#                         broadcasts per node, the two nodes' rounds alternating
#                         half a second apart (who goes first swaps every round)
#                         so that this shared machine's noise hits both alike;
#                         then one raw-TCP floor for both. Reports each node's
#                         memory per idle connection and broadcast ÷ floor,
#                         and how much that ratio moved. Writes
#                         bench/results/history.json and .html (history-nN.*
#                         for another N, not committed). ~2 minutes.
#   bench/run.sh room     fan-out throughput: N (20,000) connections in one
#                         room over a cluster of nodes with a real
#                         redis-server, R = 10, 20, 40 room pushes/s for
#                         T = 20 s each, beside the raw-TCP floor-stream
#                         (bench/room.sh; N, RATES, T, NODES overridable;
#                         ~5 minutes). Writes bench/results/room.json.
#   bench/run.sh c1m      1,000,000 connections over a cluster of nodes with a
#                         real redis-server (bench/c1m.sh: needs root for the
#                         kernel settings it raises and restores; <= 25 min).
#
# The node is started here on free loopback ports (--http-port 0 --ws-port 0
# --bind 127.0.0.1), its ports are read from its "... listening on" lines,
# and it is stopped by its PID at the end. The node runs WORKERS worker
# threads (default: the CPU count) and the raw-TCP floor gets as many
# sending processes, so both sides of the comparison send with the same
# parallelism. The warm-up must log every connection in, and imgate-bench
# exits non-zero on any failed set-up, drop, loss or duplicate: so does this
# script. Environment: BUILD (build/), IMGATE_BIN, IMGATE_BENCH, OUT
# (bench/results), WORKERS (not --workers in NODE_ARGS), NODE_ARGS (extra
# node flags), BENCH_ARGS (extra imgate-bench flags).
set -eu

MODE=${1:-quick}
[ "$MODE" = c1m ] && exec "$(dirname "$0")/c1m.sh"
[ "$MODE" = room ] && exec "$(dirname "$0")/room.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
IMGATE=${IMGATE_BIN:-$BUILD/imgate}
BENCH=${IMGATE_BENCH:-$BUILD/imgate-bench}
OUT=${OUT:-$ROOT/bench/results}
WORKERS=${WORKERS:-$(nproc)}

case "$MODE" in
deflate)
    N=${N:-10000} PROCS=4
    ARGS="--connect-rate 5000 --hold-duration 5 --heartbeat 5 --rounds 20 --interval 1
          --pad 512 --deflate"
    ;;
history)
    N=${N:-10000} PROCS=4
    ARGS="--connect-rate 5000 --hold-duration 5 --heartbeat 5 --rounds 20 --interval 1
          --with-floor --interleave"
    ;;
quick)
    N=10000 PROCS=4
    ARGS="--connect-rate 5000 --hold-duration 20 --heartbeat 5 --rounds 20 --interval 1
          --p2p-rate 1000 --p2p-duration 10"
    ;;
uws)
    # imgate --workers $UWS_WORKERS (1) beside uWebSockets.js on its one
    # thread, both holding N connections at once, broadcasts interleaved
    # (one server at a time), delivery logging off so that the frames are
    # the same bytes. Outside CI: it installs the npm package `uwebsockets`
    # (a third party's republish of the upstream binaries) into $UWS_DIR and
    # runs it as an unprivileged user (nobody when run as root).
    N=${N:-10000} PROCS=4 WORKERS=${UWS_WORKERS:-1}
    ARGS="--connect-rate 5000 --hold-duration 5 --heartbeat 5 --rounds ${ROUNDS:-30} --interval 1
          --interleave"
    ;;
tiny)
    N=200 PROCS=2
    ARGS="--connect-rate 2000 --hold-duration 2 --heartbeat 1 --rounds 3 --interval 0.5
          --p2p-rate 200 --p2p-duration 2 --settle 0.3 --drain 5 --floor-trials 2"
    ;;
*)
    echo "usage: bench/run.sh quick|tiny|deflate|history|uws|room|c1m" >&2
    exit 2
    ;;
esac

if [ ! -x "$IMGATE" ] || [ ! -x "$BENCH" ]; then
    [ -f "$BUILD/Makefile" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$BUILD" -j "$(nproc)" --target imgate imgate-bench
fi
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/imgate-bench.XXXXXX")
NODES=

stop_node() {  # PID
    if kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
        i=0
        while kill -0 "$1" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
        kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
stop_nodes() {
    for p in $NODES; do stop_node "$p"; done
    NODES=
}
cleanup() { stop_nodes; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_node NAME [FLAGS...]: a fresh node in $TMP/NAME; sets NODE, HTTP, WS.
# Rooms above 10 users get no enter/exit pushes: a 10,000-user room would
# otherwise cost N^2 presence frames while it connects.
start_node() {
    name=$1
    shift
    mkdir -p "$TMP/$name"
    # shellcheck disable=SC2086
    (cd "$TMP/$name" && exec "$IMGATE" --http-port 0 --ws-port 0 --bind 127.0.0.1 \
        --workers "$WORKERS" --set im.presenceEventsMaxRoom=10 "$@" ${NODE_ARGS:-} \
        >"$TMP/$name/node.out" 2>"$TMP/$name/node.err") &
    NODE=$!
    NODES="$NODES $NODE"
    HTTP= WS= i=0
    while [ $i -lt 150 ]; do
        HTTP=$(sed -n 's/^http listening on .*:\([0-9][0-9]*\)$/\1/p' "$TMP/$name/node.out")
        WS=$(sed -n 's/^ws listening on .*:\([0-9][0-9]*\)$/\1/p' "$TMP/$name/node.out")
        [ -n "$HTTP" ] && [ -n "$WS" ] && break
        kill -0 "$NODE" 2>/dev/null || { echo "imgate exited:" >&2; cat "$TMP/$name/node.err" >&2; exit 1; }
        sleep 0.1
        i=$((i + 1))
    done
    if [ -z "$HTTP" ] || [ -z "$WS" ]; then
        echo "imgate did not print its ports" >&2
        exit 1
    fi
    echo "imgate ($name) pid $NODE: http 127.0.0.1:$HTTP, ws 127.0.0.1:$WS" >&2
}

# Warm-up: the first handshakes page in libcrypto's code (~2 MB of shared
# library pages, once per process); without it that one-time cost would be
# counted as per-connection memory. It must succeed: a node that cannot log
# 200 connections in is not worth measuring.
warm_up() {  # WS HTTP
    if ! "$BENCH" connect -n 200 --procs 1 --ws "ws://127.0.0.1:$1/acc" \
        --api "http://127.0.0.1:$2" -q >"$TMP/warmup.out" 2>&1; then
        echo "warm-up failed:" >&2
        tail -5 "$TMP/warmup.out" >&2
        exit 1
    fi
}

# start_uws: uWebSockets.js (bench/peers/uws_room.js) on a free port as an
# unprivileged user; sets NODE, HTTP, WS.
start_uws() {
    command -v node >/dev/null && command -v npm >/dev/null ||
        { echo "uws: node and npm are needed" >&2; exit 2; }
    UWS_DIR=${UWS_DIR:-/tmp/imgate-uws}
    RUN_AS=
    [ "$(id -u)" = 0 ] && RUN_AS=${UWS_USER:-nobody}
    as_user() {  # COMMAND: as $RUN_AS (or as oneself), in $UWS_DIR
        if [ -n "$RUN_AS" ]; then
            su -s /bin/sh "$RUN_AS" -c "cd '$UWS_DIR' && HOME='$UWS_DIR' $1"
        else
            sh -c "cd '$UWS_DIR' && $1"
        fi
    }
    mkdir -p "$UWS_DIR"
    [ -z "$RUN_AS" ] || chown "$RUN_AS" "$UWS_DIR"
    cp "$ROOT/bench/peers/uws_room.js" "$UWS_DIR/uws_room.js"
    chmod a+r "$UWS_DIR/uws_room.js"
    if [ ! -d "$UWS_DIR/node_modules/uwebsockets" ]; then
        as_user "npm_config_cache='$UWS_DIR/.npm' npm install --no-audit --no-fund --ignore-scripts uwebsockets@3.0.6" >&2 ||
            { echo "uws: npm install uwebsockets@3.0.6 failed" >&2; exit 2; }
    fi
    mkdir -p "$TMP/uws"
    chmod a+rwx "$TMP" "$TMP/uws"
    (as_user "exec node uws_room.js >'$TMP/uws/node.out' 2>'$TMP/uws/node.err'") &
    i=0 WS=
    while [ $i -lt 100 ] && [ -z "$WS" ]; do
        sleep 0.1
        WS=$(sed -n 's/^ws listening on .*:\([0-9][0-9]*\)$/\1/p' "$TMP/uws/node.out" 2>/dev/null)
        i=$((i + 1))
    done
    [ -n "$WS" ] || { echo "uws did not start:" >&2; cat "$TMP/uws/node.err" >&2; exit 1; }
    HTTP=$WS
    NODE=$(pgrep -n -f "node uws_room.js" -u "${RUN_AS:-$(id -un)}")
    NODES="$NODES $NODE"
    echo "uWebSockets.js pid $NODE: 127.0.0.1:$WS" >&2
}

rc=0
NAME=$MODE
if [ "$MODE" = uws ]; then
    [ "$N" = 10000 ] || NAME=$MODE-n$N
    [ "$WORKERS" = 1 ] || NAME=$NAME-w$WORKERS
    start_node imgate --set delivery.enabled=false
    NODE_A=$NODE HTTP_A=$HTTP WS_A=$WS
    start_uws
    warm_up "$WS_A" "$HTTP_A"
    warm_up "$WS" "$HTTP"
    sleep 1
    # shellcheck disable=SC2086
    "$BENCH" connect,hold,broadcast -n "$N" --procs "$PROCS" \
        --ws "ws://127.0.0.1:$WS_A/acc" --api "http://127.0.0.1:$HTTP_A" --pid "$NODE_A" \
        --second-ws "ws://127.0.0.1:$WS/acc" --second-api "http://127.0.0.1:$HTTP" \
        --second-pid "$NODE" --node-workers "$WORKERS" \
        --first-label "imgate --workers $WORKERS" --second-label "uWebSockets.js" \
        --json "$OUT/$NAME.json" --html "$OUT/$NAME.html" $ARGS ${BENCH_ARGS:-} || rc=$?
    stop_nodes
    echo "results: $OUT/$NAME.json $OUT/$NAME.html" >&2
    exit $rc
fi
if [ "$MODE" = deflate ] || [ "$MODE" = history ]; then
    [ "$N" = 10000 ] || NAME=$MODE-n$N
    # Two fresh nodes, so that each pass's memory per connection is the
    # growth of a node that served nothing before.
    if [ "$MODE" = deflate ]; then
        start_node off --set app.perMessageDeflate=false
        NODE_A=$NODE HTTP_A=$HTTP WS_A=$WS
        start_node on --set app.perMessageDeflate=true
        SECOND=--deflate
        set --
    else
        start_node off --set delivery.enabled=false
        NODE_A=$NODE HTTP_A=$HTTP WS_A=$WS
        start_node on --set delivery.enabled=true
        SECOND=--second
        set -- --first-label "delivery off" --second-label "delivery on"
    fi
    warm_up "$WS_A" "$HTTP_A"
    warm_up "$WS" "$HTTP"
    sleep 1
    # shellcheck disable=SC2086
    "$BENCH" connect,hold,broadcast -n "$N" --procs "$PROCS" \
        --ws "ws://127.0.0.1:$WS_A/acc" --api "http://127.0.0.1:$HTTP_A" --pid "$NODE_A" \
        $SECOND-ws "ws://127.0.0.1:$WS/acc" $SECOND-api "http://127.0.0.1:$HTTP" \
        $SECOND-pid "$NODE" --node-workers "$WORKERS" "$@" \
        --json "$OUT/$NAME.json" --html "$OUT/$NAME.html" $ARGS ${BENCH_ARGS:-} || rc=$?
else
    start_node node
    warm_up "$WS" "$HTTP"
    sleep 1
    # shellcheck disable=SC2086
    "$BENCH" connect,hold,broadcast,p2p --with-floor -n "$N" --procs "$PROCS" \
        --ws "ws://127.0.0.1:$WS/acc" --api "http://127.0.0.1:$HTTP" --pid "$NODE" \
        --node-workers "$WORKERS" --json "$OUT/$NAME.json" --html "$OUT/$NAME.html" \
        $ARGS ${BENCH_ARGS:-} || rc=$?
fi

stop_nodes
echo "results: $OUT/$NAME.json $OUT/$NAME.html" >&2
exit $rc
