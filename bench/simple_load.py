#!/usr/bin/python3
"""A simple load script (the full generator is tools/bench, another issue):
opens N logged-in WebSocket connections to one imgate node from several
client processes (raw sockets, hand-made handshake), measures the node's
memory per idle logged-in connection, then times room broadcasts sent
through /user/sendMessageAll until every connection has its copy.

  bench/simple_load.py [--conns 10000] [--procs 4] [--broadcasts 20] [--workers 2]

It starts its own node (build/imgate) on loopback with free ports, and
stops it at the end. Output: one JSON object on stdout."""

import argparse
import base64
import json
import multiprocessing as mp
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def masked_text(payload):
    mask = os.urandom(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        hdr = bytes([0x81, 0x80 | n])
    else:
        hdr = bytes([0x81, 0x80 | 126, n >> 8, n & 255])
    return hdr + mask + data


def drain(ep, fds, timeout):
    n = 0
    for fd, _ in ep.poll(timeout):
        try:
            n += len(fds[fd].recv(1 << 16))
        except BlockingIOError:
            pass
    return n


def client(idx, n, ws_port, src_ip, ready, go, done_q, expect_frames):
    ep = select.epoll()
    fds = {}
    for i in range(n):
        s = socket.socket()
        s.bind((src_ip, 0))
        s.connect(("127.0.0.1", ws_port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /acc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            resp += s.recv(4096)
        assert resp.startswith(b"HTTP/1.1 101"), resp
        login = json.dumps({"seq": "1", "cmd": "login",
                            "data": {"appID": 101, "userID": "p%du%d" % (idx, i)}}).encode()
        s.sendall(masked_text(login))
        s.setblocking(False)
        fds[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
        if i % 50 == 0:
            drain(ep, fds, 0)          # read replies and enter pushes as we go
    quiet = time.time() + 2
    while time.time() < quiet:
        if drain(ep, fds, 0.2):
            quiet = time.time() + 1
    ready.put(idx)
    go.wait()
    got = 0
    start = time.time()
    # count frames of the broadcasts: each is one text frame starting 0x81
    pending = {}
    while got < expect_frames and time.time() - start < 120:
        for fd, _ in ep.poll(0.5):
            try:
                data = fds[fd].recv(1 << 16)
            except BlockingIOError:
                continue
            buf = pending.get(fd, b"") + data
            off = 0
            while len(buf) - off >= 2:
                ln = buf[off + 1] & 0x7F
                hl = 2
                if ln == 126:
                    if len(buf) - off < 4:
                        break
                    ln = int.from_bytes(buf[off + 2:off + 4], "big")
                    hl = 4
                if len(buf) - off < hl + ln:
                    break
                if buf[off] == 0x81 and b'"cmd":"msg"' in buf[off + hl:off + hl + ln]:
                    got += 1
                off += hl + ln
            pending[fd] = buf[off:]
    done_q.put((idx, got, time.time()))
    for s in fds.values():
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--broadcasts", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "imgate"))
    ap.add_argument("--set", action="append", default=[], help="node config key=value")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="imgate-load-")
    out = open(os.path.join(tmp, "out"), "w")
    err = open(os.path.join(tmp, "err"), "w")
    node = subprocess.Popen([a.bin, "--http-port", "0", "--ws-port", "0", "--bind", "127.0.0.1",
                             "--workers", str(a.workers), "--log-level", "warn"] +
                            [x for kv in a.set for x in ("--set", kv)],
                            cwd=tmp, stdout=out, stderr=err)
    print("node output in", tmp, file=sys.stderr)
    try:
        http_port = ws_port = None
        for _ in range(200):
            txt = open(os.path.join(tmp, "out")).read()
            for line in txt.splitlines():
                if line.startswith("http listening on "):
                    http_port = int(line.rsplit(":", 1)[1])
                if line.startswith("ws listening on "):
                    ws_port = int(line.rsplit(":", 1)[1])
            if http_port and ws_port:
                break
            time.sleep(0.05)
        # Warm-up: the first handshakes page in libcrypto's code (~2 MB of
        # shared-library pages, once per process); take the baseline after.
        wq, wg, wd = mp.Queue(), mp.Event(), mp.Queue()
        warm = mp.Process(target=client, args=(99, 200, ws_port, "127.0.0.200", wq, wg, wd, 0))
        warm.start()
        wq.get(timeout=120)
        wg.set()
        warm.join()
        time.sleep(0.5)
        rss0 = rss_bytes(node.pid)
        state0 = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/system/state" % http_port).read())
        per = a.conns // a.procs
        ready, done_q = mp.Queue(), mp.Queue()
        go = mp.Event()
        procs = [mp.Process(target=client, args=(i, per, ws_port, "127.0.0.%d" % (2 + i), ready, go,
                                                 done_q, per * a.broadcasts)) for i in range(a.procs)]
        t0 = time.time()
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=600)
        t_connect = time.time() - t0
        time.sleep(1)
        state = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/system/state" % http_port).read())
        rss1 = rss_bytes(node.pid)
        heap0 = state0["data"]["memory"].get("heapInUseBytes", 0)
        heap1 = state["data"]["memory"].get("heapInUseBytes", 0)
        conns = state["data"]["loggedIn"]
        go.set()
        t1 = time.time()
        for i in range(a.broadcasts):
            body = ("appID=101&userID=nobody&msgID=b%d&message=%s" % (i, "x" * 60)).encode()
            urllib.request.urlopen("http://127.0.0.1:%d/user/sendMessageAll" % http_port, data=body).read()
        results = [done_q.get(timeout=180) for _ in procs]
        t_last = max(r[2] for r in results) - t1
        delivered = sum(r[1] for r in results)
        rss2 = rss_bytes(node.pid)
        for p in procs:
            p.join()
        print(json.dumps({
            "connections": conns,
            "connect_seconds": round(t_connect, 2),
            "node_rss_idle_bytes": rss0,
            "node_rss_loaded_bytes": rss1,
            "rss_bytes_per_conn": round((rss1 - rss0) / max(conns, 1), 1),
            "heap_in_use_bytes_per_conn": round((heap1 - heap0) / max(conns, 1), 1),
            "heap_free_bytes_per_conn": round((state["data"]["memory"].get("heapFreeBytes", 0) -
                                               state0["data"]["memory"].get("heapFreeBytes", 0)) / max(conns, 1), 1),
            "broadcasts": a.broadcasts,
            "delivered": delivered,
            "expected": conns * a.broadcasts,
            "broadcast_seconds": round(t_last, 3),
            "deliveries_per_second": round(delivered / t_last) if t_last > 0 else None,
            "node_rss_after_broadcast_bytes": rss2,
        }, indent=1))
    finally:
        node.terminate()
        node.wait(timeout=30)


if __name__ == "__main__":
    main()
