#!/usr/bin/python3
"""What stored messages cost (embedded mode, SPEC 7.1), side by side in one
run: memory per stored message, and the time from a login to the last of
the user's stored messages arriving.

For each N in --counts, a fresh node (so the RSS figures are its own):
  1. N /user/sendMessage calls to an offline user over one keep-alive HTTP
     connection (each answers sendResults:false, stored:true);
  2. memory: the node's RSS growth over the sends ÷ N, and the logs' own
     bytes (/system/state deliveryBytes ÷ deliveryEntries);
  3. a login (a raw WebSocket client) and the time until the N-th push has
     been read, every push checked in order.
Writes bench/results/delivery_login.json and prints a line per N.

  bench/delivery_login.py [--counts 100,1000,10000] [--out FILE]

Bounded (every read has a timeout); every node it starts is stopped by PID."""

import argparse
import http.client
import json
import os
import platform
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402


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


def login_and_drain(node, user, n):
    """Seconds from the login frame to the n-th push, and the pushes in order?"""
    ws = harness.RawWS(node.ws_port)
    t0 = time.monotonic()
    ws.send(harness.text(harness.cmd_json("login", {"serviceToken": "", "appID": 101,
                                                     "userID": user}, seq="L")))
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


def one(n, message):
    node = harness.Node("--set", "delivery.inboxMax=%d" % max(n, 1000), workers=2)
    try:
        before = rss(node.proc.pid)
        store(node, "stored-user", n, message)
        after = rss(node.proc.pid)
        st = node.state()
        secs = login_and_drain(node, "stored-user", n)
        return {"messages": n, "message_bytes": len(message),
                "node_rss_bytes_per_message": round((after - before) / n, 1),
                "log_bytes_per_message": round(st["deliveryBytes"] / max(st["deliveryEntries"], 1), 1),
                "login_to_last_push_ms": round(secs * 1000, 2)}
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,1000,10000")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "delivery_login.json"))
    a = ap.parse_args()
    message = "m" * 100
    rows = []
    for n in (int(x) for x in a.counts.split(",")):
        r = one(n, message)
        rows.append(r)
        print("%6d stored: node %7.1f B/message (log %6.1f B), login to last push %8.2f ms" % (
            n, r["node_rss_bytes_per_message"], r["log_bytes_per_message"], r["login_to_last_push_ms"]))
    out = {"tool": "bench/delivery_login.py", "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
           "runs": rows}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("results:", a.out)


if __name__ == "__main__":
    main()
