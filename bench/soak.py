#!/usr/bin/python3
"""Soak test (`make soak`, not in CI): a steady churn of connects, logins,
messages and disconnects against one imgate node for a bounded time, with
the node's RSS sampled every few seconds. Passes when the node is still
serving at the end, every message reached its recipient, and the RSS at the
end is within 5 % of its level after warm-up (no growth = no leak).

  bench/soak.py [--minutes 10] [--pool 400] [--churn 40] [--bin build/imgate]

It starts its own node on loopback with free ports and stops it by PID."""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import websockets

from simple_load import ROOT, rss_bytes as rss  # noqa: E402  (same folder)


def api(port, path, params):
    url = "http://127.0.0.1:%d%s?%s" % (port, path, urllib.parse.urlencode(params))
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class Client:
    def __init__(self, ws, user):
        self.ws, self.user, self.got, self.expect = ws, user, set(), set()
        self.task = asyncio.ensure_future(self.reader())

    async def reader(self):
        try:
            async for m in self.ws:
                j = json.loads(m)
                if j.get("cmd") == "msg":
                    self.got.add(j["seq"])
        except websockets.ConnectionClosed:
            pass


async def retire(c, wait=10.0):
    """Closes c once every message sent to it arrived (or wait passed);
    returns how many never came."""
    deadline = time.time() + wait
    while c.expect - c.got and time.time() < deadline:
        await asyncio.sleep(0.05)
    missing = len(c.expect - c.got)
    await c.ws.close()
    await c.task
    return missing


async def open_client(ws_port, user):
    ws = await websockets.connect("ws://127.0.0.1:%d/acc" % ws_port, max_queue=None)
    await ws.send(json.dumps({"seq": "l", "cmd": "login", "data": {"appID": 101, "userID": user}}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply["response"]["code"] == 200, reply
    return Client(ws, user)


async def soak(a, node, http_port, ws_port):
    pool, serial, sent, lost = [], 0, 0, 0
    samples = []
    start = time.time()
    end = start + a.minutes * 60
    next_sample = start
    loop = asyncio.get_running_loop()
    while time.time() < end:
        tick = time.time()
        # churn: retire the oldest (after their messages arrived), open new ones
        for c in pool[:a.churn] if len(pool) >= a.pool else []:
            lost += await retire(c)
        if len(pool) >= a.pool:
            pool = pool[a.churn:]
        opened = await asyncio.gather(*[open_client(ws_port, "s%d" % (serial + i))
                                        for i in range(a.churn)])
        serial += a.churn
        pool += opened
        # messages: private ones to random users, checked on arrival
        targets = random.sample(pool, min(20, len(pool)))
        for c in targets:
            sent += 1
            mid = "m%d" % sent
            r = await loop.run_in_executor(None, api, http_port, "/user/sendMessage",
                                           {"appID": 101, "userID": c.user, "msgID": mid,
                                            "message": "soak %d" % sent})
            assert r["data"].get("sendResults") is True, r
            c.expect.add(mid)
        await loop.run_in_executor(None, api, http_port, "/user/sendMessageAll",
                                   {"appID": 101, "userID": "soak", "msgID": "b%d" % sent,
                                    "message": "all"})
        if time.time() >= next_sample:
            samples.append((round(time.time() - start), rss(node.pid)))
            next_sample += a.sample
            print("t=%4ds rss=%6.1f MiB pool=%d sent=%d lost=%d" %
                  (samples[-1][0], samples[-1][1] / 2**20, len(pool), sent, lost), file=sys.stderr)
        await asyncio.sleep(max(0, 1 - (time.time() - tick)))
    state = await loop.run_in_executor(None, api, http_port, "/system/state", {})
    for c in pool:
        lost += await retire(c)
    return samples, sent, lost, state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--pool", type=int, default=400)
    ap.add_argument("--churn", type=int, default=40, help="connections replaced per second")
    ap.add_argument("--sample", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=0.25, help="fraction of the run")
    ap.add_argument("--dedup-ttl", type=int, default=60)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "imgate"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="imgate-soak-")
    out = open(os.path.join(tmp, "out"), "w")
    node = subprocess.Popen([a.bin, "--http-port", "0", "--ws-port", "0", "--bind", "127.0.0.1",
                             "--workers", "2", "--log-level", "warn",
                             # msgIDs are remembered (im.dedupTtl): a short TTL lets that
                             # store reach its steady size within the warm-up
                             "--set", "im.dedupTtl=%d" % a.dedup_ttl],
                            cwd=tmp, stdout=out, stderr=open(os.path.join(tmp, "err"), "w"))
    try:
        ports = {}
        for _ in range(200):
            for line in open(os.path.join(tmp, "out")):
                k, _, v = line.partition(" listening on ")
                if v:
                    ports[k] = int(v.rsplit(":", 1)[1])
            if len(ports) >= 2:
                break
            time.sleep(0.05)
        samples, sent, lost, state = asyncio.run(soak(a, node, ports["http"], ports["ws"]))
    finally:
        node.terminate()
        rc = node.wait(timeout=30)
    warm = [r for t, r in samples if t >= a.minutes * 60 * a.warmup]
    base = warm[0] if warm else samples[0][1]
    last = samples[-1][1]
    growth = (last - base) / base
    result = {"minutes": a.minutes, "messages": sent, "lost": lost,
              "rss_after_warmup_bytes": base, "rss_end_bytes": last,
              "rss_growth_pct": round(100 * growth, 2), "node_exit": rc,
              "end_connections": state["data"]["wsConnections"]}
    print(json.dumps(result, indent=1))
    ok = lost == 0 and rc == 0 and growth <= 0.05
    print("soak:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
