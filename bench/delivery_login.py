#!/usr/bin/python3
"""What stored messages cost (SPEC 7.1), embedded and cluster mode, in one
run: memory per stored message, and the time from a login to the last of
the user's stored messages arriving.

For each N in --counts and each mode, a fresh node (so the RSS figures are
its own); in cluster mode also a fresh redis-server started here on a free
loopback port (the node gets harness.cluster_args, so the logs are Redis
streams):
  1. N /user/sendMessage calls to an offline user over one keep-alive HTTP
     connection (each answers sendResults:false, stored:true);
  2. memory: the node's RSS growth over the sends ÷ N, and the logs' own
     bytes: embedded, /system/state deliveryBytes ÷ deliveryEntries;
     cluster, Redis's used_memory growth ÷ N and MEMORY USAGE of the inbox
     stream ÷ N;
  3. a login (a raw WebSocket client, a login without lastID: the stored
     messages come after the pushed cursor) and the time until the N-th
     push has been read, every push checked in order
     (login_to_last_push_ms);
  4. --repeats more logins that resume from the start ("lastID":"0-0":
     every retained entry again), timed the same way; their median is
     resume_to_last_push_ms_median (the same work, measured a few times).
Writes bench/results/delivery_login.json ("runs": embedded, as before;
"cluster_runs": cluster mode) and prints a line per N and mode.

  bench/delivery_login.py [--counts 100,1000,10000] [--modes embedded,cluster]
                          [--repeats 4] [--out FILE]

Environment: IMGATE_BIN (the node binary, default build/imgate),
IMGATE_BUILT_FROM (recorded as the binary's source; default: git HEAD).
Bounded (every read has a timeout); every node and redis-server it starts is
stopped by PID."""

import argparse
import http.client
import statistics
import json
import os
import platform
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from benchenv import loadavg, source_version  # noqa: E402


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def store(node, user, n, message):
    hc = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=30)
    for i in range(n):
        body = urllib.parse.urlencode({"appID": 101, "userID": user, "msgID": "st-%d" % i,
                                       "message": message})
        hc.request("POST", "/user/sendMessage", body=body,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = json.loads(hc.getresponse().read())
        if r["data"] != {"sendResults": False, "stored": True}:
            raise SystemExit("send %d was not stored: %r" % (i, r))
    hc.close()


def login_and_drain(node, user, n, last_id=None):
    """Seconds from the login frame to the n-th push, and the pushes in order?"""
    ws = harness.RawWS(node.ws_port)
    data = {"serviceToken": "", "appID": 101, "userID": user}
    if last_id is not None:
        data["lastID"] = last_id
    t0 = time.monotonic()
    ws.send(harness.text(harness.cmd_json("login", data, seq="L")))
    reply = ws.recv_json(skip_pushes=True)
    if reply["response"]["code"] != 200:
        raise SystemExit("login failed: %r" % reply)
    got = 0
    while got < n:
        f = ws.recv_frame()
        if f is None:
            raise SystemExit("EOF after %d of %d pushes" % (got, n))
        m = json.loads(f[2])
        if m.get("cmd") != "msg":
            continue
        if m["seq"] != "st-%d" % got:
            raise SystemExit("push %d out of order: %r" % (got, m["seq"]))
        got += 1
    elapsed = time.monotonic() - t0
    ws.close()
    return elapsed


def redis_used_memory(redis):
    for line in redis.cmd("INFO", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


def one(n, message, mode, repeats):
    redis = harness.RedisServer() if mode == "cluster" else None
    node = None
    try:
        node = harness.Node(*(harness.cluster_args(redis) if redis else []),
                            "--set", "delivery.inboxMax=%d" % max(n, 1000), workers=2)
        before = rss(node.proc.pid)
        rbefore = redis_used_memory(redis) if redis else 0
        t0 = time.monotonic()
        store(node, "stored-user", n, message)
        store_s = time.monotonic() - t0
        after = rss(node.proc.pid)
        r = {"messages": n, "message_bytes": len(message),
             "node_rss_bytes_per_message": round((after - before) / n, 1)}
        if redis:
            r["redis_used_memory_bytes_per_message"] = round((redis_used_memory(redis) - rbefore) / n, 1)
            r["stream_bytes_per_message"] = round(
                redis.cmd("MEMORY", "USAGE", "acc:user:inbox:101_stored-user", "SAMPLES", "0") / n, 1)
        else:
            st = node.state()
            r["log_bytes_per_message"] = round(st["deliveryBytes"] / max(st["deliveryEntries"], 1), 1)
        r["stores_per_s"] = round(n / store_s, 1)
        r["login_to_last_push_ms"] = round(login_and_drain(node, "stored-user", n) * 1000, 2)
        again = [round(login_and_drain(node, "stored-user", n, "0-0") * 1000, 2) for _ in range(repeats)]
        r["resume_to_last_push_ms"] = again
        r["resume_to_last_push_ms_median"] = statistics.median(again) if again else None
        return r
    finally:
        if node:
            node.stop()
        if redis:
            redis.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,1000,10000")
    ap.add_argument("--modes", default="embedded,cluster")
    ap.add_argument("--repeats", type=int, default=4, help="resume logins after the first login")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "delivery_login.json"))
    a = ap.parse_args()
    modes = a.modes.split(",")
    if not set(modes) <= {"embedded", "cluster"}:
        ap.error("--modes: embedded, cluster")
    message = "m" * 100
    t_start = time.time()
    load_start = loadavg()
    source = source_version()
    rows = {"embedded": [], "cluster": []}
    for n in (int(x) for x in a.counts.split(",")):
        for mode in modes:
            r = one(n, message, mode, a.repeats)
            rows[mode].append(r)
            mem = ("log %6.1f B" % r["log_bytes_per_message"] if mode == "embedded" else
                   "Redis %6.1f B, stream %6.1f B" % (r["redis_used_memory_bytes_per_message"],
                                                      r["stream_bytes_per_message"]))
            print("%-8s %6d stored: node %7.1f B/message (%s), login to last push %8.2f ms, "
                  "resume median %8.2f ms" % (mode, n, r["node_rss_bytes_per_message"], mem,
                                              r["login_to_last_push_ms"],
                                              r["resume_to_last_push_ms_median"] or 0))
    out = {"tool": "bench/delivery_login.py",
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
           "duration_s": round(time.time() - t_start, 1),
           "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                       "loadavg_start": load_start, "loadavg_end": loadavg()},
           "config": {"message_bytes": len(message), "workers": 2, "repeats": a.repeats, "binary": harness.BIN,
                      "source": source,
                      "node_flags": "--set delivery.inboxMax=max(N,1000); cluster: + harness.cluster_args "
                                    "(a fresh redis-server per N)"},
           "runs": rows["embedded"],
           "cluster_runs": rows["cluster"]}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("results:", a.out)


if __name__ == "__main__":
    main()
