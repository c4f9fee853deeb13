#!/usr/bin/python3
"""Same-node against cross-node delivery latency of /user/sendMessage.

Starts its own redis-server and two imgate nodes (A and B) in cluster mode on
loopback (the flags of the cluster tests), one WebSocket client per node
("lat-a" on A, "lat-b" on B), then sends N /user/sendMessage calls to node A
over one persistent HTTP connection (http.client) at a bounded rate,
alternating between the user on A (same-node path: A delivers itself) and
the user on B (cross-node path: A reads the presence record in Redis and
forwards over gRPC to B).

For each path it measures, with one monotonic clock:
  delivery = API call sent -> push received by the client
  api      = API call sent -> API answer received
and prints p50/p99 of both paths side by side, plus lost and duplicated
messages; the same goes to bench/results/cluster_latency.json.

  bench/cluster_latency.py [--count 2000] [--rate 500] [--workers 2] [--out FILE]

Bounded in time (the sender stops at count/rate + 60 s; deliveries are
awaited 10 s more at most); every process it starts is stopped by PID.
The client, the sender and both nodes share this machine: the numbers
include that contention."""

import argparse
import asyncio
import http.client
import json
import os
import platform
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402


def pct(values, p):
    """Nearest-rank percentile of a list (None when empty)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary(values_ms):
    if not values_ms:
        return {"count": 0}
    r3 = lambda v: round(v, 3)  # noqa: E731
    return {"count": len(values_ms), "min": r3(min(values_ms)), "mean": r3(sum(values_ms) / len(values_ms)),
            "p50": r3(pct(values_ms, 50)), "p90": r3(pct(values_ms, 90)), "p99": r3(pct(values_ms, 99)),
            "max": r3(max(values_ms))}


def sender(http_port, plan, rate, deadline, sent, errors, stop):
    """Blocking: the API calls of `plan` [(msgid, user, path)] to node A at
    `rate` per second over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    t_start = time.perf_counter()
    try:
        for i, (msgid, user, path) in enumerate(plan):
            if stop.is_set() or time.time() > deadline:
                errors.append("sender stopped at call %d (deadline)" % i)
                break
            due = t_start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            q = urllib.parse.urlencode({"appID": 101, "userID": user, "msgID": msgid, "message": msgid})
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/user/sendMessage?" + q)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                errors.append("%s: %s" % (msgid, e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
                continue
            t1 = time.perf_counter()
            ok = resp.status == 200 and json.loads(body).get("data") == {"sendResults": True}
            if not ok:
                errors.append("%s: HTTP %d %r" % (msgid, resp.status, body[:200]))
            sent[msgid] = (path, t0, t1, ok)
    finally:
        conn.close()


async def receiver(ws, received, dups, done):
    """Records the arrival time of every msg push (by msgID)."""
    while not done.is_set():
        try:
            raw = await asyncio.wait_for(ws.recv(), 0.5)
        except asyncio.TimeoutError:
            continue
        except Exception:
            return
        t = time.perf_counter()
        m = json.loads(raw)
        if m.get("cmd") != "msg":
            continue
        seq = m.get("seq")
        if seq in received:
            dups[seq] = dups.get(seq, 1) + 1
        else:
            received[seq] = t


async def measure(args, A, B):
    ws_a = await harness.login(A, "lat-a", 101)
    ws_b = await harness.login(B, "lat-b", 101)
    try:
        # both users' presence visible to node A before the clock starts
        for user in ("lat-a", "lat-b"):
            await harness.await_until(lambda: harness.online(A, 101, user), timeout=15,
                                      what="%s online as seen by node A" % user)
        await harness.drain(ws_a, ws_b, wait=0.3)

        tag = "%x" % int(time.time() * 1000)
        plan = []
        for i in range(args.count):
            same = i % 2 == 0
            plan.append(("lat-%s-%d" % (tag, i), "lat-a" if same else "lat-b", "same" if same else "cross"))
        sent, errors, received, dups = {}, [], {}, {}
        done, stop = asyncio.Event(), threading.Event()
        recv_tasks = [asyncio.ensure_future(receiver(ws, received, dups, done)) for ws in (ws_a, ws_b)]
        deadline = time.time() + args.count / args.rate + 60
        loop = asyncio.get_running_loop()
        t_begin = time.perf_counter()
        try:
            await loop.run_in_executor(None, sender, A.http_port, plan, args.rate, deadline, sent, errors, stop)
        finally:
            stop.set()
        send_secs = time.perf_counter() - t_begin
        wanted = [m for m, v in sent.items() if v[3]]
        grace = time.time() + 10
        while time.time() < grace and not all(m in received for m in wanted):
            await asyncio.sleep(0.05)
        done.set()
        await asyncio.gather(*recv_tasks)
    finally:
        await harness.close_all(ws_a, ws_b)

    out = {"paths": {}}
    for path in ("same", "cross"):
        ids = [m for m, v in sent.items() if v[0] == path]
        delivery = [(received[m] - sent[m][1]) * 1000 for m in ids if m in received]
        api = [(sent[m][2] - sent[m][1]) * 1000 for m in ids]
        out["paths"][path] = {
            "sent": len(ids),
            "accepted": len([m for m in ids if sent[m][3]]),
            "delivered": len(delivery),
            "lost": len([m for m in ids if sent[m][3] and m not in received]),
            "duplicated": len([m for m in ids if m in dups]),
            "delivery_ms": summary(delivery),
            "api_ms": summary(api),
        }
    out["send_seconds"] = round(send_secs, 3)
    out["achieved_rate_per_s"] = round(len(sent) / send_secs, 1) if send_secs else None
    out["errors"] = errors[:20]
    out["error_count"] = len(errors)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000, help="API calls in total (half per path)")
    ap.add_argument("--rate", type=float, default=500.0, help="API calls per second (bounded)")
    ap.add_argument("--workers", type=int, default=2, help="event-loop threads per node")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "cluster_latency.json"))
    args = ap.parse_args()
    if args.count < 2 or args.rate <= 0:
        ap.error("--count >= 2 and --rate > 0")

    redis = harness.RedisServer()
    nodes = []
    try:
        nodes = harness.start_cluster(redis, 2, workers=args.workers)
        A, B = nodes
        res = asyncio.run(asyncio.wait_for(measure(args, A, B), args.count / args.rate + 120))
    finally:
        for n in nodes:
            n.stop(check=False)
        redis.stop()

    res.update({
        "tool": "bench/cluster_latency.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {"count": args.count, "rate": args.rate, "workers_per_node": args.workers,
                   "nodes": 2, "api_node": "A", "same_user_on": "A", "cross_user_on": "B",
                   "node_flags": " ".join(harness.cluster_args(redis)),
                   "binary": harness.BIN},
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "kernel": platform.release()},
    })
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")

    def cell(d, k):
        v = d.get(k)
        return "%9.3f" % v if isinstance(v, (int, float)) else "%9s" % "-"
    print("cluster sendMessage latency, %d calls at %.0f/s to node A (ms)" % (args.count, args.rate))
    print("%-22s %9s %9s %9s %9s" % ("", "p50", "p99", "max", "mean"))
    for path, label in (("same", "same-node"), ("cross", "cross-node")):
        p = res["paths"][path]
        for what in ("delivery_ms", "api_ms"):
            d = p[what]
            print("%-22s %s %s %s %s" % ("%s %s" % (label, what[:-3]), cell(d, "p50"), cell(d, "p99"),
                                         cell(d, "max"), cell(d, "mean")))
    for path in ("same", "cross"):
        p = res["paths"][path]
        print("%-5s sent %d, accepted %d, delivered %d, lost %d, duplicated %d"
              % (path, p["sent"], p["accepted"], p["delivered"], p["lost"], p["duplicated"]))
    if res["error_count"]:
        print("errors: %d (first: %s)" % (res["error_count"], res["errors"][0]))
    print("written to %s" % args.out)
    lost = sum(res["paths"][p]["lost"] for p in res["paths"])
    return 1 if res["error_count"] or lost else 0


if __name__ == "__main__":
    sys.exit(main())
