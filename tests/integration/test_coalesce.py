"""Coalescing (net/conn.c, conn_batch): what a WebSocket connection is sent
during one loop turn goes out in one write at the end of that turn, in
order, byte for byte, and a close frame sent in the same turn still comes
after them (then the FIN). The node counts its writes to WebSocket sockets
(/system/state wsWrites, wsWriteBytes; /metrics imgate_ws_writes_total).

Frames of one turn: pings pipelined in one TCP segment are read in one read
callback and answered in that turn; room pushes from several concurrent
API senders reach the client's worker several per turn. Nothing asserts on
timing: counts and order only."""

import ctypes
import http.client
import json
import os
import struct
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, NodeCase, RawWS, SLOW,  # noqa: E402
                     cmd_json, frame, main, text, wait_until)


def login(node, user, app=101):
    ws = RawWS(node.ws_port)
    ws.send(text(cmd_json("login", {"serviceToken": "", "appID": app, "userID": user}, seq="L")))
    m = ws.recv_json()
    assert m["cmd"] == "login" and m["response"]["code"] == 200, m
    return ws


def writes(node):
    s = node.state()
    return s["wsWrites"], s["wsWriteBytes"]


class Coalesce(NodeCase):
    NODE_KW = {"workers": 1}

    def test_pipelined_pings_one_write(self):
        """50 pings in one segment: 50 pongs, in order, in (about) one write
        instead of 50; the counted bytes are exactly the pongs'."""
        ws = login(self.node, "pinger")
        try:
            w0, b0 = writes(self.node)
            n = 50
            ws.send(b"".join(frame(OP_PING, b"p%d" % i) for i in range(n)))
            expect = 0
            for i in range(n):
                f = ws.recv_frame()
                self.assertIsNotNone(f)
                fin, op, payload = f
                self.assertEqual((fin, op, payload), (True, OP_PONG, b"p%d" % i))
                expect += 2 + len(payload)
            w1, b1 = writes(self.node)
            self.assertGreaterEqual(w1 - w0, 1)
            self.assertLess(w1 - w0, n // 5, "pongs of one read were not written together")
            self.assertEqual(b1 - b0, expect)
        finally:
            ws.close()

    def test_close_after_frames_of_the_turn(self):
        """Pings then a close frame in one segment: every pong, then the
        close answer, then the FIN — the close waits for the turn's frames."""
        ws = login(self.node, "closer")
        try:
            n = 20
            ws.send(b"".join(frame(OP_PING, b"c%d" % i) for i in range(n))
                    + frame(OP_CLOSE, struct.pack("!H", 1000)))
            code, _, before = ws.read_close()
            self.assertEqual(code, 1000)
            self.assertEqual([p for _, _, p in before], [b"c%d" % i for i in range(n)])
            self.assertTrue(ws.eof())
        finally:
            ws.close()

    def test_metrics_counters(self):
        body = self.node.http("/metrics")[2].decode()
        self.assertIn("imgate_ws_writes_total ", body)
        self.assertIn("imgate_ws_write_bytes_total ", body)


def kernel_allows_io_uring():
    """Whether a process here may set up an io_uring, as the node tries at
    start (io_uring_setup, x86-64 and arm64 number 425: 0 = refused by the
    kernel, its io_uring_disabled setting or a seccomp filter)."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)           # struct io_uring_params
    fd = libc.syscall(425, ctypes.c_uint(8), params)
    if fd < 0:
        return False
    os.close(fd)
    return True


class Ring(NodeCase):
    """The end-of-turn writes of a worker go to the kernel in one io_uring
    call where the kernel allows one and app.ioUring (IMGATE_IO_URING, this
    file's second ctest entry sets it to 0) is on; else one write system
    call per socket. Either way each of 40 members gets the room's pushes
    once, whole and in order."""
    NODE_KW = {"workers": 1}
    # no enter/exit pushes; room for what a stopped reader is sent
    ARGS = ("--set", "im.presenceEventsMaxRoom=10", "--set", "app.maxOutboundBytes=67108864")
    MEMBERS = 40
    PUSHES = 20

    def test_room_pushes_share_system_calls(self):
        expect = os.environ.get("IMGATE_IO_URING", "1") not in ("0", "false") and kernel_allows_io_uring()
        members = [login(self.node, "r%d" % i, app=104) for i in range(self.MEMBERS)]
        try:
            s0 = self.node.state()
            self.assertEqual(s0["ioUringWorkers"], 1 if expect else 0)
            for k in range(self.PUSHES):
                r = self.node.api("/user/sendMessageAll", form={
                    "appID": 104, "userID": "x", "msgID": "ring-%d" % k, "message": "ring %d" % k})
                self.assertEqual(r["code"], 200, r)
            for ws in members:
                got = []
                while len(got) < self.PUSHES:
                    f = ws.recv_frame()
                    self.assertIsNotNone(f, "EOF after %d pushes" % len(got))
                    m = json.loads(f[2]) if f[1] == OP_TEXT else {}
                    if m.get("cmd") == "msg":
                        got.append(m["response"]["data"]["msg"])
                self.assertEqual(got, ["ring %d" % k for k in range(self.PUSHES)])
            s1 = self.node.state()
            writes_n = s1["wsWrites"] - s0["wsWrites"]
            ring = s1["wsRingWrites"] - s0["wsRingWrites"]
            calls = s1["wsRingSubmits"] - s0["wsRingSubmits"]
            print("ring: %d writes, %d through the ring in %d calls" % (writes_n, ring, calls))
            if not expect:
                self.assertEqual((ring, calls), (0, 0))
                return
            # each push's walk writes to the 40 members in one turn: far
            # fewer calls than writes (a lone write to one socket still
            # goes the direct way)
            self.assertGreaterEqual(ring, self.PUSHES * self.MEMBERS // 2)
            self.assertLessEqual(calls * 10, ring)
            body = self.node.http("/metrics")[2].decode()
            self.assertIn("imgate_io_uring_workers 1", body)
        finally:
            for ws in members:
                ws.close()

    def test_partial_writes_queued_in_order(self):
        """A member that stops reading (4 KiB receive buffer) while 16 KiB
        pushes go round the room with 3 readers, twice what the kernel's send
        buffer grows to (net.ipv4.tcp_wmem): its socket takes part of a
        write, then nothing; the rest waits in its queue (outQueues) and
        arrives whole and in order once it reads — whichever way the writes
        went (a result taken from the ring is acted on like a direct one)."""
        slow = RawWS(self.node.ws_port, rcvbuf=4096)
        slow.send(text(cmd_json("login", {"serviceToken": "", "appID": 102, "userID": "slow"}, seq="L")))
        self.assertEqual(slow.recv_json()["response"]["code"], 200)
        readers = [login(self.node, "p%d" % i, app=102) for i in range(3)]
        pad = "y" * 16384
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])   # the most a send buffer grows to
        want = ["big %d %s" % (k, pad) for k in range(max(400, 2 * wmem_max // len(pad)))]

        def read_all(ws):
            got = []
            while len(got) < len(want):
                f = ws.recv_frame()
                self.assertIsNotNone(f, "EOF after %d pushes" % len(got))
                m = json.loads(f[2]) if f[1] == OP_TEXT else {}
                if m.get("cmd") == "msg":
                    got.append(m["response"]["data"]["msg"])
            return got
        try:
            for k in range(len(want)):
                r = self.node.api("/user/sendMessageAll", form={
                    "appID": 102, "userID": "x", "msgID": "big-%d" % k, "message": want[k]})
                self.assertEqual(r["code"], 200, r)
            for ws in readers:
                self.assertEqual(read_all(ws), want)
            wait_until(lambda: self.node.state()["outQueues"] >= 1, what="the slow member's queue")
            self.assertEqual(read_all(slow), want)
            wait_until(lambda: self.node.state()["outQueues"] == 0, what="queues drained")
        finally:
            slow.close()
            for ws in readers:
                ws.close()


class Burst(NodeCase):
    """10,000 room pushes from 4 concurrent senders to one client: each
    arrives once, whole, each sender's in its order, and they took fewer
    writes than frames (several pushes of one turn share a write)."""
    NODE_KW = {"workers": 1}
    SENDERS = 4
    PER_SENDER = 2500

    def sender(self, t, errors):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=30 * SLOW)
            for k in range(self.PER_SENDER):
                body = urllib.parse.urlencode({
                    "appID": 103, "userID": "s%d" % t, "msgID": "b-%d-%d" % (t, k),
                    "message": "m %d %d %s" % (t, k, "x" * (k % 97))})
                conn.request("POST", "/user/sendMessageAll", body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
                r = conn.getresponse()
                data = r.read()
                if r.status != 200 or json.loads(data)["code"] != 200:
                    raise AssertionError("send %d/%d: %d %r" % (t, k, r.status, data))
            conn.close()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    def test_burst_complete_in_order_fewer_writes(self):
        ws = login(self.node, "reader", app=103)
        try:
            w0, _ = writes(self.node)
            errors = []
            threads = [threading.Thread(target=self.sender, args=(t, errors))
                       for t in range(self.SENDERS)]
            for th in threads:
                th.start()
            total = self.SENDERS * self.PER_SENDER
            nxt = [0] * self.SENDERS
            got = 0
            try:
                while got < total:
                    f = ws.recv_frame()
                    self.assertIsNotNone(f, "EOF after %d pushes" % got)
                    fin, op, payload = f
                    if op == OP_PING:
                        ws.send(frame(OP_PONG, payload))
                        continue
                    self.assertEqual((fin, op), (True, OP_TEXT))
                    m = json.loads(payload)
                    if m.get("cmd") != "msg":
                        continue
                    _, t, k = m["seq"].split("-")
                    t, k = int(t), int(k)
                    self.assertEqual(k, nxt[t], "sender %d: push %d after %d" % (t, k, nxt[t] - 1))
                    self.assertEqual(m["response"]["data"]["msg"], "m %d %d %s" % (t, k, "x" * (k % 97)))
                    nxt[t] += 1
                    got += 1
            finally:
                for th in threads:
                    th.join()
            self.assertEqual(errors, [])
            self.assertEqual(nxt, [self.PER_SENDER] * self.SENDERS)
            w1, _ = writes(self.node)
            self.assertLess(w1 - w0, total, "no two pushes of a turn shared a write")
            print("burst: %d pushes in %d writes" % (total, w1 - w0))
        finally:
            ws.close()



class BigRoom(NodeCase):
    """One worker, one room of 300 members, pushes from concurrent senders:
    what the room walk (im/fanout.c) must keep exact and in order."""
    NODE_KW = {"workers": 1}
    ARGS = ("--set", "im.presenceEventsMaxRoom=10")   # no enter/exit pushes
    SENDERS = 4
    PER_SENDER = 25

    def test_big_room_same_order_everywhere(self):
        """300 members, 4 concurrent senders: the room walk (im/fanout.c)
        hands every member every push once, each sender's in its order, and
        every member sees the same sequence (the room's order); the walks end
        (roomPushesPending back to 0) and the pushes took fewer writes than
        deliveries."""
        members = [login(self.node, "m%d" % i, app=103) for i in range(300)]
        try:
            w0 = writes(self.node)[0]
            errors = []
            threads = [threading.Thread(target=Burst.sender, args=(self, t, errors))
                       for t in range(self.SENDERS)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.assertEqual(errors, [])
            total = self.SENDERS * self.PER_SENDER
            first = None
            for ws in members:
                seen = []
                while len(seen) < total:
                    f = ws.recv_frame()
                    self.assertIsNotNone(f, "EOF after %d pushes" % len(seen))
                    m = json.loads(f[2]) if f[1] == OP_TEXT else {}
                    if m.get("cmd") == "msg":
                        seen.append(m["seq"])
                nxt = [0] * self.SENDERS
                for seq in seen:
                    _, t, k = seq.split("-")
                    self.assertEqual(int(k), nxt[int(t)], "sender %s out of order" % t)
                    nxt[int(t)] += 1
                if first is None:
                    first = seen
                self.assertEqual(seen, first, "two members saw the room in different orders")
            w1 = writes(self.node)[0]
            self.assertEqual(self.node.state()["roomPushesPending"], 0)
            self.assertLess(w1 - w0, total * len(members))
            print("big room: %d deliveries in %d writes" % (total * len(members), w1 - w0))
        finally:
            for ws in members:
                ws.close()


if __name__ == "__main__":
    main(sys.modules[__name__])
