#!/bin/sh
# bench/c1m.sh — the million-connection benchmark (bench/run.sh c1m).
#
# One machine, cluster mode: a redis-server and as many imgate nodes as it
# takes to hold N connections with fewer than 20,000 each (one worker thread
# each, every port picked by the kernel and read from the node's "...
# listening on" lines). Then imgate-bench connects N logged-in WebSocket
# clients over all nodes, holds them, broadcasts through one node's
# /user/sendMessageAll (which reaches the other nodes over gRPC SendMsgAll)
# and runs the raw-TCP floor with the same N. Writes $OUT/$NAME.json and
# $OUT/$NAME.html (imgate-bench) and $OUT/$NAME.txt (this run: nodes,
# Redis memory, kernel settings, node warnings).
#
# It needs root (or password-less sudo) for sysctl: it saves, raises and on
# exit restores net.ipv4.ip_local_port_range, net.core.somaxconn,
# net.ipv4.tcp_max_syn_backlog, net.ipv4.tcp_mem, net.core.netdev_max_backlog,
# fs.file-max and fs.nr_open (only values below what the run needs are
# changed). The saved values are kept in $SAVE until they are restored; a run
# that was killed with SIGKILL leaves that file and the next run restores it
# first. The whole run is bounded by LIMIT seconds (a watchdog), and every
# process it started is stopped by its PID on exit, error or Ctrl-C.
#
# Environment (defaults):
#   N=1000000          logged-in connections
#   PER_NODE=19000     most connections per node (the open-file cap is 20,000)
#   NODES              ceil(N / PER_NODE), at most 64
#   PROCS              client processes, ceil(N / 19000)
#   CONNECT_RATE=30000 INFLIGHT=5000   connection set-up pacing (whole machine)
#   HOLD=60 HEARTBEAT=150              idle hold and client heartbeat, s: under
#                                      the 180 s after which a presence record
#                                      counts as offline (each heartbeat also
#                                      rewrites it in Redis)
#   PING=0                             the nodes' app.pingInterval, s (0 = none:
#                                      the heartbeats keep connections alive);
#                                      at 1 M connections the default (30 s)
#                                      would be 33,000 pings and pongs a second
#   ROUNDS=5 INTERVAL=45 DRAIN=40      broadcast rounds, s between them, s to wait
#                                      (rounds must not overlap: each is timed
#                                      to its last delivery, as each floor
#                                      trial is, alone; a 1 M broadcast takes
#                                      20-40 s on this machine)
#   FLOOR_TRIALS=3     raw-TCP floor trials (their median and the fastest)
#   NODE_WORKERS=1     worker threads per node; the floor gets NODES x
#                      NODE_WORKERS sending processes (53 at 1 M)
#   LIMIT=1500         hard bound of the whole run, s (floors included)
#   MEM_PER_CONN=10240 bytes of MemAvailable needed per connection (+1 GiB)
#   NAME=c1m OUT=bench/results   output names
#   HSFLOOR=1          first, before the nodes start, the raw-handshake
#                      floor: `imgate-bench handshake-server --procs NODES`
#                      (upgrade + login answers only) and the same connect
#                      against it (same N, processes, pacing):
#                      $NAME-hsfloor.json, and the connect rates side by side
#                      in $NAME.txt
#   HSREDIS=1          then the floor with a login's Redis work
#                      (handshake-server --redis, on the run's Redis, emptied
#                      after it): the five commands a node sends per login,
#                      the reply after the two reads: $NAME-hsredis.json
#   PERF=0             1: perf record -a -g for PERF_SECONDS (16) from about
#                      2 s before the first broadcast; top symbols go to
#                      $NAME.txt (pv_native_safe_halt there is idle time)
#   NODE_ARGS, BENCH_ARGS          extra flags for the nodes / imgate-bench
# shellcheck disable=SC2317   # the functions called from traps
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
IMGATE=${IMGATE_BIN:-$BUILD/imgate}
BENCH=${IMGATE_BENCH:-$BUILD/imgate-bench}
OUT=${OUT:-$ROOT/bench/results}
NAME=${NAME:-c1m}
N=${N:-1000000}
PER_NODE=${PER_NODE:-19000}
NODES=${NODES:-$(((N + PER_NODE - 1) / PER_NODE))}
PROCS=${PROCS:-$(((N + 18999) / 19000))}
CONNECT_RATE=${CONNECT_RATE:-30000}
INFLIGHT=${INFLIGHT:-5000}
HOLD=${HOLD:-60}
HEARTBEAT=${HEARTBEAT:-150}
PING=${PING:-0}
ROUNDS=${ROUNDS:-5}
INTERVAL=${INTERVAL:-45}
DRAIN=${DRAIN:-40}
FLOOR_TRIALS=${FLOOR_TRIALS:-3}
NODE_WORKERS=${NODE_WORKERS:-1}
LIMIT=${LIMIT:-1500}
MEM_PER_CONN=${MEM_PER_CONN:-10240}
PERF=${PERF:-0}
HSFLOOR=${HSFLOOR:-1}
HSREDIS=${HSREDIS:-1}
PERF_SECONDS=${PERF_SECONDS:-16}
SAVE=${SAVE:-${TMPDIR:-/tmp}/imgate-c1m.sysctl}
RESERVE=90                    # seconds kept for stopping everything at the end

T0=$(date +%s)
say() { echo "c1m: $*" >&2; }
die() { say "$*"; exit 1; }
elapsed() { echo $(($(date +%s) - T0)); }

# ---------- checks ----------

[ "$NODES" -ge 1 ] && [ "$NODES" -le 64 ] || die "NODES=$NODES: 1 to 64 nodes (imgate-bench takes 64 --ws)"
[ $(((N + NODES - 1) / NODES)) -le 19900 ] || die "$N connections over $NODES nodes exceed 19,900 per node"
[ $(((N + PROCS - 1) / PROCS)) -le 19900 ] || die "$N connections over $PROCS client processes exceed 19,900 each"
ALL_WORKERS=$((NODES * NODE_WORKERS))  # the floor's sending processes
[ $(((N + ALL_WORKERS - 1) / ALL_WORKERS)) -le 19900 ] ||
    die "$N floor sockets over $ALL_WORKERS senders (NODES x NODE_WORKERS) exceed 19,900 each"
[ "$LIMIT" -ge 300 ] || die "LIMIT=$LIMIT: at least 300 s"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    die "needs root or password-less sudo to change (and restore) kernel settings"
fi
command -v redis-server >/dev/null 2>&1 || die "redis-server not found (apt-get install redis-server)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found"
command -v curl >/dev/null 2>&1 || die "curl not found"
# shellcheck disable=SC3045   # dash, bash and busybox sh all have ulimit -H
HARD=$(ulimit -Hn)
[ "$HARD" = unlimited ] || [ "$HARD" -ge $(((N + NODES - 1) / NODES + 100)) ] ||
    die "open-file hard limit $HARD is below $(((N + NODES - 1) / NODES + 100)) per node"
AVAIL_KB=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
NEED_KB=$((N * (MEM_PER_CONN / 1024) + 1048576))
if [ "$AVAIL_KB" -lt "$NEED_KB" ]; then
    die "not enough memory: $N connections need about $((NEED_KB / 1048576 + 1)) GiB available" \
        "(both ends' kernel sockets, nodes, clients, Redis); MemAvailable is $((AVAIL_KB / 1048576)) GiB." \
        "Use a smaller N."
fi

if [ ! -x "$IMGATE" ] || [ ! -x "$BENCH" ]; then
    [ -f "$BUILD/Makefile" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$BUILD" -j "$(nproc)" --target imgate imgate-bench
fi
mkdir -p "$OUT"

# ---------- kernel settings: save, raise, restore ----------

sysctl_get() { sysctl -n "$1" | tr -s '\t ' '  '; }
sysctl_set() { $SUDO sysctl -q -w "$1=$2" >/dev/null || say "cannot set $1=$2"; }

sysctl_restore() {
    [ -f "$SAVE" ] || return 0
    sed 1d "$SAVE" | while IFS='=' read -r k v; do
        [ "$(sysctl_get "$k")" = "$v" ] || sysctl_set "$k" "$v"
    done
    rm -f "$SAVE"
}

# A save file of a run that cannot restore it any more (killed): restore it.
if [ -f "$SAVE" ]; then
    OWNER=$(sed -n '1s/^pid=//p' "$SAVE")
    if [ -n "$OWNER" ] && kill -0 "$OWNER" 2>/dev/null; then
        die "another c1m run (pid $OWNER) holds $SAVE"
    fi
    say "restoring the kernel settings an interrupted run left in $SAVE"
    sysctl_restore
fi

KEYS="net.ipv4.ip_local_port_range net.core.somaxconn net.ipv4.tcp_max_syn_backlog
      net.ipv4.tcp_mem net.core.netdev_max_backlog fs.file-max fs.nr_open"

# Raises a single-number setting to at least $2.
raise_to() {
    [ "$(sysctl_get "$1")" -ge "$2" ] || sysctl_set "$1" "$2"
}

# tcp_mem (pages): every socket holding an unread message charges one page,
# and the floor and the broadcast each fill N sockets: min 3N, pressure 4N,
# max 6N pages, never below the current values.
raise_tcp_mem() {
    # shellcheck disable=SC2046
    set -- $(sysctl_get net.ipv4.tcp_mem)
    lo=$((N * 3)) mid=$((N * 4)) hi=$((N * 6))
    [ "$1" -gt $lo ] && lo=$1
    [ "$2" -gt $mid ] && mid=$2
    [ "$3" -gt $hi ] && hi=$3
    sysctl_set net.ipv4.tcp_mem "$lo $mid $hi"
}

settings_apply() {
    {
        echo "pid=$$"
        for k in $KEYS; do echo "$k=$(sysctl_get "$k")"; done
    } >"$SAVE.tmp" && mv "$SAVE.tmp" "$SAVE"
    # shellcheck disable=SC2046
    set -- $(sysctl_get net.ipv4.ip_local_port_range)
    [ "$1" -le 10240 ] && [ "$2" -ge 65535 ] || sysctl_set net.ipv4.ip_local_port_range "10240 65535"
    raise_to net.core.somaxconn 65535
    raise_to net.ipv4.tcp_max_syn_backlog 65535
    raise_to net.core.netdev_max_backlog 16384
    raise_to fs.file-max $((2 * N + 500000))
    raise_to fs.nr_open 1048576
    raise_tcp_mem
}

settings_show() {
    for k in $KEYS; do printf '  %s = %s\n' "$k" "$(sysctl_get "$k")"; done
}

# ---------- processes ----------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/imgate-c1m.XXXXXX")
NODE_PIDS='' REDIS_PID='' BENCH_PID='' WATCHDOG='' PERF_PID='' SAMPLER='' RC=1 KEEP_TMP=${KEEP_TMP:-0}

# Stops the given PIDs: SIGTERM, then SIGKILL after $1 seconds.
stop_pids() {
    bound=$1
    shift
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    i=0
    while [ $i -lt $((bound * 5)) ]; do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1 && break; done
        [ $alive -eq 1 ] || break
        sleep 0.2
        i=$((i + 1))
    done
    for p in "$@"; do
        kill -0 "$p" 2>/dev/null && say "pid $p did not stop in ${bound}s: SIGKILL" &&
            kill -KILL "$p" 2>/dev/null
    done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

stop_bench() {
    [ -n "$BENCH_PID" ] || return 0
    if kill -0 "$BENCH_PID" 2>/dev/null; then
        kids=$(pgrep -P "$BENCH_PID" || true)
        kill -INT "$BENCH_PID" 2>/dev/null || true       # it still writes its reports
        i=0
        while kill -0 "$BENCH_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
        # shellcheck disable=SC2086
        stop_pids 5 "$BENCH_PID" $kids
    fi
    wait "$BENCH_PID" 2>/dev/null || true
    BENCH_PID=
}

cleanup() {
    trap '' INT TERM
    [ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null || true
    [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
    stop_bench
    [ -z "$PERF_PID" ] || stop_pids 5 "$PERF_PID"
    # shellcheck disable=SC2086
    [ -z "$NODE_PIDS" ] || stop_pids 30 $NODE_PIDS
    [ -z "$REDIS_PID" ] || stop_pids 10 "$REDIS_PID"
    sysctl_restore
    if [ "$KEEP_TMP" -eq 1 ] || [ "$RC" -ne 0 ]; then
        say "node logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    say "stopped everything after $(elapsed) s; kernel settings now:"
    settings_show >&2
}
trap 'cleanup' EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "stopped (time limit or SIGTERM)"; exit 124' TERM

# The watchdog: SIGTERM to this script before LIMIT, leaving RESERVE seconds
# for stopping. It exits by itself when the script is gone.
(
    i=0
    while [ $i -lt $((LIMIT - RESERVE)) ]; do
        sleep 1
        kill -0 $$ 2>/dev/null || exit 0
        i=$((i + 1))
    done
    echo "c1m: time limit: $((LIMIT - RESERVE)) s" >&2
    kill -TERM $$
) &
WATCHDOG=$!

settings_apply
say "kernel settings for the run (saved in $SAVE):"
settings_show >&2

# Redis on a free port: tries random ports until one binds.
start_redis() {
    tries=0
    while [ $tries -lt 20 ]; do
        RPORT=$(awk -v s="$(($$ * 31 + tries + $(date +%s)))" 'BEGIN { srand(s); print 20000 + int(rand() * 9000) }')
        (cd "$TMP" && exec nice -n -10 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' \
            --appendonly no --maxclients 10000 >"$TMP/redis.out" 2>&1) &
        REDIS_PID=$!
        i=0
        while [ $i -lt 50 ] && kill -0 "$REDIS_PID" 2>/dev/null; do
            redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0
            sleep 0.1
            i=$((i + 1))
        done
        stop_pids 5 "$REDIS_PID"
        REDIS_PID=
        tries=$((tries + 1))
    done
    die "redis-server did not start: $(tail -3 "$TMP/redis.out")"
}

redis_used() { redis-cli -p "$RPORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }

start_redis
say "redis-server pid $REDIS_PID on 127.0.0.1:$RPORT"

# ---------- the connect floors at the same process count, first ----------

# They run before the nodes start: after imgate's run (a minute's hold, five
# broadcasts to a million, Redis at 580 MB) whatever came next ran up to
# 1.4 x slower than on a fresh machine (the floors of session 13's million
# run: 10,124 and 6,505/s after it, 13,462-15,530 and 9,682/s alone), which
# flattered imgate; one floor run after another shows no such effect.
#
# hs_floor KIND [server flags]: the handshake-server with the flags and the
# same connect against it: $NAME-KIND.json, its summary in $TMP/KIND.txt.
rate_of() { sed -n 's/^ *"connect_rate_per_s": *\([0-9.]*\).*/\1/p' "$1" | head -1; }
hs_floor() {
    kind=$1
    shift
    "$BENCH" handshake-server --procs "$NODES" "$@" >"$TMP/$kind.out" 2>"$TMP/$kind.err" &
    HS_PID=$!
    NODE_PIDS=$HS_PID                        # stopped by the exit trap if need be
    i=0
    while [ "$(grep -c '^ws listening' "$TMP/$kind.out")" -lt "$NODES" ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    HS_ARGS=$(sed -n 's/^ws listening on \(.*\)$/--ws ws:\/\/\1\/acc/p' "$TMP/$kind.out" | tr '\n' ' ')
    say "$kind: $NODES processes, the connect of the run"
    HRC=0
    # shellcheck disable=SC2086
    "$BENCH" connect -n "$N" --procs "$PROCS" $HS_ARGS --api "http://127.0.0.1:1" \
        --connect-rate "$CONNECT_RATE" --inflight "$INFLIGHT" --timeout 20 \
        --max-time $((N / 2000 + 60)) --json "$OUT/$NAME-$kind.json" -q \
        >"$TMP/$kind.txt" 2>&1 || HRC=$?
    echo "$HRC" >"$TMP/$kind.rc"
    stop_pids 10 "$HS_PID"
    NODE_PIDS=
}

# hs_report KIND LABEL: both rates into $NAME.txt (after the run).
hs_report() {
    [ -f "$TMP/$1.rc" ] || return 0
    OURS=$(rate_of "$OUT/$NAME.json") FLOOR=$(rate_of "$OUT/$NAME-$1.json")
    {
        echo "$2 ($NODES processes, before the nodes; imgate-bench exit $(cat "$TMP/$1.rc")):" \
            "connect + login imgate ${OURS:-?}/s, floor ${FLOOR:-?}/s" \
            "$(awk -v a="${OURS:-0}" -v b="${FLOOR:-0}" 'BEGIN { if (a > 0) printf "(floor / imgate %.2f x)", b / a }')"
        grep -E 'logged in|connect rate|handshake|login ' "$TMP/$1.txt" | sed 's/^/  floor /'
    } >>"$OUT/$NAME.txt"
}

if [ "$HSFLOOR" = 1 ]; then
    hs_floor hsfloor
    # the same with a login's Redis work, on the run's Redis
    [ "$HSREDIS" = 1 ] && hs_floor hsredis --redis "127.0.0.1:$RPORT"
    # imgate starts on an empty Redis, its counters at zero
    redis-cli -p "$RPORT" FLUSHALL >/dev/null && redis-cli -p "$RPORT" CONFIG RESETSTAT >/dev/null ||
        die "cannot empty Redis after the floors"
fi

# ---------- nodes ----------

# Node settings, and why:
# - im.presenceEventsMaxRoom=1: only the first user of a node's room is
#   announced. With 10, the first 10 logins of each node go to the 52 other
#   nodes as gRPC SendMsgAll calls (53 x 10 x 52 = 27,560 calls, and as
#   many again for the warm-up's exits), which stalled every set-up for
#   3-25 s at the start and made handshakes time out.
# - cluster.redisTimeout=30000: with ~110 busy processes on two cores Redis
#   can take more than the default 2 s to answer; the node then drops the
#   connection and rewrites all its users' presence records, which makes
#   Redis slower still. redis-server also runs at nice -10 for its share.
# - cluster.rpcTimeout=25000: with ~110 busy processes on two cores a node
#   can take seconds to be scheduled; a generous deadline keeps a busy peer
#   from being counted as failing (SendMsgAll itself is answered once the
#   push is queued on the node's workers).
# - app.pingInterval (PING) and the client heartbeat: see the header.
# - --log-level warn: no request line per WebSocket upgrade (1 M lines).

k=0
while [ $k -lt "$NODES" ]; do
    # shellcheck disable=SC2086
    (cd "$TMP" && exec "$IMGATE" --http-port 0 --ws-port 0 --rpc-port 0 --bind 127.0.0.1 \
        --advertise-ip 127.0.0.1 --redis "127.0.0.1:$RPORT" --workers "$NODE_WORKERS" \
        --log-level warn --set im.presenceEventsMaxRoom=1 --set cluster.registerInterval=5 \
        --set cluster.rpcTimeout=25000 --set cluster.redisTimeout=30000 \
        --set app.pingInterval="$PING" \
        ${NODE_ARGS:-} >"$TMP/node$k.out" 2>"$TMP/node$k.err") &
    NODE_PIDS="$NODE_PIDS $!"
    k=$((k + 1))
done

port_of() { sed -n "s/^$1 listening on .*:\([0-9][0-9]*\)\$/\1/p" "$2"; }

# Every node's ports, in node order: HTTP_PORTS, WS_ARGS, PID_ARGS.
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
say "$NODES nodes up (pids$NODE_PIDS); API on node 0: $API"

# The number of live servers a node lists in /system/state "cluster.servers".
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
say "every node lists all $NODES nodes (after $(elapsed) s)"

# Warm-up: the first handshakes of a process page in libcrypto's code (~2 MB
# per node, once); without it that would count as per-connection memory.
# shellcheck disable=SC2086
"$BENCH" connect -n $((NODES * 40)) --procs 1 $WS_ARGS --api "$API" -q >"$TMP/warmup.out" 2>&1 ||
    say "warm-up: $(tail -2 "$TMP/warmup.out")"
sleep 2
REDIS_BEFORE=$(redis_used)

# ---------- optional profile of the first broadcast ----------

# The broadcast starts HOLD + 4 s after set-up (two 2 s settles): once node
# 0 holds its share of the connections, the profile starts HOLD + 2 s later
# and lasts PERF_SECONDS, so it covers the first broadcast even if node 0
# was seen late.
node0_logged_in() {
    curl -s -m 2 "$API/system/state" | grep -o '"loggedIn":[0-9]*' | head -1 | cut -d: -f2
}

perf_watch() {
    share=$((N / NODES))
    while kill -0 $$ 2>/dev/null; do
        sleep 0.5
        li=$(node0_logged_in)
        if [ -n "$li" ] && [ "$li" -ge "$share" ]; then
            echo "node 0 holds $li connections at $(date +%T.%N)" >"$TMP/perf.out"
            sleep $((HOLD + 2))
            echo "perf starts at $(date +%T.%N)" >>"$TMP/perf.out"
            : >"$TMP/perf.started"
            exec perf record -a -g -o "$TMP/perf.data" -- sleep "$PERF_SECONDS" >>"$TMP/perf.out" 2>&1
        fi
    done
}

if [ "$PERF" = 1 ]; then
    command -v perf >/dev/null 2>&1 || die "PERF=1 needs perf (apt-get install linux-perf)"
    perf_watch &
    PERF_PID=$!
fi

# Redis memory during the run: the peak of used_memory, sampled every 5 s.
redis_sampler() {
    peak=0
    while kill -0 $$ 2>/dev/null && kill -0 "$REDIS_PID" 2>/dev/null; do
        u=$(redis_used)
        [ -n "$u" ] && [ "$u" -gt "$peak" ] && peak=$u && echo "$peak" >"$TMP/redis.peak"
        sleep 5
    done
}
redis_sampler &
SAMPLER=$!

# ---------- the run ----------

BENCH_MAX=$((LIMIT - RESERVE - $(elapsed) - 150))
[ $BENCH_MAX -gt 120 ] || die "no time left for the run (LIMIT=$LIMIT)"
say "imgate-bench: $N connections over $NODES nodes, $PROCS client processes, max $BENCH_MAX s"
# shellcheck disable=SC2086
"$BENCH" connect,hold,broadcast --with-floor -n "$N" --procs "$PROCS" $WS_ARGS --api "$API" \
    $PID_ARGS --connect-rate "$CONNECT_RATE" --inflight "$INFLIGHT" --timeout 20 \
    --hold-duration "$HOLD" --heartbeat "$HEARTBEAT" --rounds "$ROUNDS" --interval "$INTERVAL" \
    --drain "$DRAIN" --settle 2 --floor-trials "$FLOOR_TRIALS" --max-time "$BENCH_MAX" \
    --node-workers "$ALL_WORKERS" \
    --json "$OUT/$NAME.json" --html "$OUT/$NAME.html" ${BENCH_ARGS:-} &
BENCH_PID=$!
BRC=0
wait "$BENCH_PID" || BRC=$?
BENCH_PID=
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=

# ---------- what the run left: $NAME.txt ----------

REDIS_PEAK=$(cat "$TMP/redis.peak" 2>/dev/null || echo 0)
{
    echo "c1m run: N=$N nodes=$NODES client_procs=$PROCS connect_rate=$CONNECT_RATE" \
        "inflight=$INFLIGHT hold=$HOLD heartbeat=$HEARTBEAT ping=$PING rounds=$ROUNDS" \
        "interval=$INTERVAL floor_trials=$FLOOR_TRIALS imgate-bench exit=$BRC"
    echo "machine: $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)," \
        "Linux $(uname -r)"
    echo "redis used_memory: before $REDIS_BEFORE B, peak $REDIS_PEAK B," \
        "$(((REDIS_PEAK - REDIS_BEFORE) / N)) B per connection"
    echo "kernel settings during the run:"
    settings_show
    echo "node warnings and errors, all nodes, by kind (numbers as N):"
    cat "$TMP"/node*.err | grep -E ' (WARN|ERROR) ' | cut -d' ' -f2- |
        sed 's/[0-9][0-9.:]*/N/g' | sort | uniq -c | sort -rn | head -20
    printf 'softnet drops since boot (per CPU):'
    while read -r _ dropped _; do printf ' %d' "0x$dropped"; done </proc/net/softnet_stat
    echo
} >"$OUT/$NAME.txt"

if [ -n "$PERF_PID" ]; then
    if [ -f "$TMP/perf.started" ]; then
        wait "$PERF_PID" 2>/dev/null || true
    else
        stop_pids 2 "$PERF_PID"              # no broadcast was seen
    fi
    PERF_PID=
    if [ -s "$TMP/perf.data" ]; then
        {
            echo "perf record -a -g around the first broadcast ($PERF_SECONDS s), top symbols (self):"
            grep -E '^(node 0|perf starts)' "$TMP/perf.out"
            perf report -i "$TMP/perf.data" --no-children -g none --sort sym --stdio 2>/dev/null |
                grep -E '^ +[0-9]' | head -30
            echo "by command and object:"
            perf report -i "$TMP/perf.data" --no-children -g none --sort comm,dso --stdio 2>/dev/null |
                grep -E '^ +[0-9]' | head -12
        } >>"$OUT/$NAME.txt"
    fi
fi

# ---------- the connect floors, side by side in $NAME.txt ----------

hs_report hsfloor "raw-handshake floor"
hs_report hsredis "handshake floor with Redis"

cat "$OUT/$NAME.txt" >&2
say "results: $OUT/$NAME.json $OUT/$NAME.html $OUT/$NAME.txt ($(elapsed) s)"
RC=$BRC
exit $BRC
