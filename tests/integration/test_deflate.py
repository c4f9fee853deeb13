"""permessage-deflate (RFC 7692, SPEC 7.4) with real clients: Debian's
python3-websockets negotiates it (compression="deflate") and exchanges
text and binary messages, large and small, on the echo path and /acc; a
hand-made client checks the bytes on the wire (RSV1 only on messages of
app.deflateMinSize or more, only to clients that negotiated it, inflating
with zlib to the exact push), the negotiation answers, that a room push is
compressed once per worker whatever the number of recipients, that a
decompression bomb closes with 1009 without growing the node, that bad
data closes with 1007 and RSV1 where it may not be with 1002, and that the
extension is off unless configured. Every wait is bounded; absence is
proven by order (markers), never by a quiet window."""

import asyncio
import base64
import json
import os
import socket
import struct
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (IO_TIMEOUT, OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: E402
                     SANITIZED, SLOW, Node, NodeCase, accept_for, close_all, cmd_json, connect,
                     frame, is_push, login, main, parse_http, recv_until, request, run,
                     upgrade_request, wait_until)

ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"
TAIL = b"\x00\x00\xff\xff"
DEFLATE_ON = ("--set", "app.perMessageDeflate=true", "--set", "app.echoPath=/echo",
              "--set", "im.presenceEventsMaxRoom=1")


def compress(data, level=6):
    """A message's payload as RFC 7692 7.2.1 makes it (raw DEFLATE, sync
    flush, the 00 00 ff ff tail removed)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def inflate(payload):
    """The receiver's side of RFC 7692 7.2.2, from a fresh state."""
    return zlib.decompressobj(-15).decompress(payload + TAIL)


def story(n):
    """n bytes of text that compresses like prose."""
    words = ("the node pushes one frame to every recipient of the room while "
             "each worker compresses it once for those that asked ").split()
    out, i = [], 0
    while sum(len(w) + 1 for w in out) < n:
        out.append(words[(i * 7 + i // 3) % len(words)])
        i += 1
    return " ".join(out)[:n]


def deflate_state(node):
    return node.state()["deflate"]


class ZRaw:
    """A hand-made client that may offer permessage-deflate, sends frames
    with any RSV bits and returns the server's frames with theirs."""

    def __init__(self, port, path="/acc", offer=BROWSER_OFFER):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.settimeout(IO_TIMEOUT)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        extra = {"Sec-WebSocket-Extensions": offer} if offer is not None else {}
        self.sock.sendall(upgrade_request(path, key=key, **extra))
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), "EOF during handshake: %r" % self.buf
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, self.headers, _ = parse_http(head + b"\r\n\r\n")
        assert status == 101, head
        assert self.headers["sec-websocket-accept"] == accept_for(key)
        self.extensions = self.headers.get("sec-websocket-extensions")

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self.buf += chunk
        return bool(chunk)

    def _need(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return False
        return True

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """(fin, rsv, opcode, payload) or None at EOF."""
        if not self._need(2):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frame is masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            assert self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            assert self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        if not self._need(off + n):
            return None
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload

    def recv_message(self):
        """(compressed, opcode, bytes) of the next data message (pings are
        answered); fails on a close frame."""
        while True:
            f = self.recv_frame()
            assert f is not None, "EOF while waiting for a message"
            fin, rsv, op, payload = f
            if op == OP_PING:
                self.send(frame(OP_PONG, payload))
                continue
            assert op != OP_CLOSE, "server closed: %r" % (payload,)
            assert fin, "the server fragments nothing"
            assert rsv in (0, 4), "RSV bits %d" % rsv
            if op == OP_PONG:
                continue
            return rsv == 4, op, inflate(payload) if rsv == 4 else payload

    def recv_json_until(self, pred):
        """Messages until one whose JSON satisfies pred: (compressed, JSON)."""
        for _ in range(1000):
            z, op, data = self.recv_message()
            assert op == OP_TEXT
            m = json.loads(data)
            if pred(m):
                return z, m
        raise AssertionError("no matching message")

    def read_close(self):
        """(code, reason) of the server's close frame; None at EOF first."""
        while True:
            f = self.recv_frame()
            if f is None:
                return None
            if f[2] == OP_CLOSE:
                p = f[3]
                return struct.unpack("!H", p[:2])[0], p[2:].decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def zframe(opcode, data, fin=True, rsv=4):
    """A client frame of data compressed (RSV1 set unless rsv says other)."""
    return frame(opcode, compress(data), fin=fin, rsv=rsv)


def login_frame(user, app=101, seq="L"):
    return cmd_json("login", {"serviceToken": "", "appID": app, "userID": user}, seq=seq)


def push_all(node, app, msgid, message, frm="deflate-sender"):
    r = node.api("/user/sendMessageAll", params={"appID": app, "userID": frm, "msgID": msgid,
                                                 "message": message})
    assert r["code"] == 200, r


class DeflateTest(NodeCase):
    ARGS = DEFLATE_ON

    def test_python_websockets_echo(self):
        """python3-websockets negotiates it; text and binary, large and
        small, come back unchanged; both directions were compressed."""
        node = self.node
        before = deflate_state(node)
        msgs = ["hi", story(200), story(60000), "é" * 40, "",
                b"\x00\x01", bytes(range(256)) * 100, os.urandom(3000)]

        async def go():
            ws = await connect(node, "/echo", compression="deflate")
            try:
                self.assertEqual(ws.response_headers["Sec-WebSocket-Extensions"], ANSWER)
                for m in msgs:
                    await ws.send(m)
                    got = await asyncio.wait_for(ws.recv(), 10 * SLOW)
                    self.assertEqual(type(got), type(m))
                    self.assertEqual(got, m)
            finally:
                await ws.close()
        run(go())
        after = deflate_state(node)
        self.assertGreaterEqual(after["messagesInflated"] - before["messagesInflated"], 6)
        # the server compressed the large compressible echoes (200, 60000,
        # 25600 bytes) and skipped the random one (no gain)
        self.assertGreaterEqual(after["messagesCompressed"] - before["messagesCompressed"], 3)
        self.assertGreaterEqual(after["compressSkipped"] - before["compressSkipped"], 1)
        self.assertLess(after["compressBytesOut"] - before["compressBytesOut"],
                        (after["compressBytesIn"] - before["compressBytesIn"]) / 3)

    def test_python_websockets_acc_push_and_login(self):
        """A compressed login on /acc, then pushes both ways of sizes around
        app.deflateMinSize reach deflate and plain clients alike."""
        node = self.node

        async def go():
            zc = await login(node, "pyz-a", app=103, compression="deflate")
            plain = await login(node, "pyz-b", app=103, compression=None)
            try:
                self.assertEqual(zc.response_headers["Sec-WebSocket-Extensions"], ANSWER)
                self.assertNotIn("Sec-WebSocket-Extensions", plain.response_headers)
                for i, text in enumerate(["short", story(5000)]):
                    msgid = "pyz-%s-%d" % (harness.RUN_ID, i)
                    await asyncio.get_running_loop().run_in_executor(
                        None, push_all, node, 103, msgid, text)
                    for ws in (zc, plain):
                        m, _ = await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid),
                                                "push %s" % msgid)
                        self.assertEqual(m["response"]["data"]["msg"], text)
                r = await request(zc, "ping", {"pad": story(3000)})
                self.assertEqual(r["response"]["data"], "pong")
            finally:
                await close_all(zc, plain)
        run(go())

    def test_wire_bytes(self):
        """On the wire: replies under app.deflateMinSize go plain, pushes
        over it go compressed to a client that negotiated it and plain to
        one that did not; the compressed bytes inflate to the plain ones."""
        node = self.node
        z = ZRaw(node.ws_port)
        p = ZRaw(node.ws_port, offer=None)
        try:
            self.assertEqual(z.extensions, ANSWER)
            self.assertIsNone(p.extensions)
            z.send(zframe(OP_TEXT, login_frame("wire-z", 104)))          # compressed login
            comp, reply = z.recv_json_until(lambda m: m.get("cmd") == "login")
            self.assertEqual(reply["response"]["code"], 200)
            self.assertFalse(comp, "a %d-byte reply was compressed" % len(json.dumps(reply)))
            p.send(frame(OP_TEXT, login_frame("wire-p", 104)))
            p.recv_json_until(lambda m: m.get("cmd") == "login")
            text = story(800)
            msgid = "wire-%s" % harness.RUN_ID
            push_all(node, 104, msgid, text)
            comp_z, mz = z.recv_json_until(lambda m: m.get("seq") == msgid)
            comp_p, mp = p.recv_json_until(lambda m: m.get("seq") == msgid)
            self.assertTrue(comp_z, "the push went plain to the deflate client")
            self.assertFalse(comp_p, "the push went compressed to a plain client")
            self.assertEqual(mz, mp)
            self.assertEqual(mz["response"]["data"]["msg"], text)
            # a client ping with a large payload is never compressed (control)
            z.send(frame(OP_PING, b"x" * 125))
            f = z.recv_frame()
            self.assertEqual((f[1], f[2], f[3]), (0, OP_PONG, b"x" * 125))
        finally:
            z.close()
            p.close()

    def test_room_push_compressed_once_per_worker(self):
        """Many recipients on two workers: each push is compressed once per
        worker (counted in /metrics), plain clients get the plain frame."""
        node = self.node
        app, n_z, n_plain, pushes = 102, 16, 4, 3

        harness.wait_idle(node)
        base = [w["loggedIn"] for w in node.state()["perWorker"]]

        async def go():
            zs = []
            try:
                for i in range(n_z):
                    zs.append(await login(node, "once-z%d" % i, app=app, compression="deflate"))
                per_worker = [w["loggedIn"] - b for w, b in zip(node.state()["perWorker"], base)]
                for i in range(n_plain):
                    zs.append(await login(node, "once-p%d" % i, app=app, compression=None))
                workers_with_z = sum(1 for k in per_worker if k > 0)
                self.assertEqual(workers_with_z, 2, "16 clients all on one worker: %r" % per_worker)
                before = self.metric("imgate_deflate_messages_total")
                for k in range(pushes):
                    msgid = "once-%s-%d" % (harness.RUN_ID, k)
                    await asyncio.get_running_loop().run_in_executor(
                        None, push_all, node, app, msgid, story(700))
                    for ws in zs:
                        await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid),
                                         "push %s" % msgid)
                after = self.metric("imgate_deflate_messages_total")
                self.assertEqual(after - before, pushes * workers_with_z)
            finally:
                await close_all(*zs)
        run(go())

    def metric(self, name):
        _, _, body = self.node.http("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        raise AssertionError("no metric %s" % name)

    def test_negotiation_answers(self):
        """The answer to each offer (declined ones get no header at all)."""
        node = self.node
        cases = [
            ("permessage-deflate", ANSWER),
            (BROWSER_OFFER, ANSWER),
            ("permessage-deflate; client_max_window_bits=12", ANSWER + "; client_max_window_bits=12"),
            ("permessage-deflate; server_max_window_bits=15", ANSWER + "; server_max_window_bits=15"),
            ('permessage-deflate; client_max_window_bits="10"', ANSWER + "; client_max_window_bits=10"),
            ("permessage-deflate; server_max_window_bits=10", None),
            ("permessage-deflate; server_max_window_bits=10, permessage-deflate", ANSWER),
            ("x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover", ANSWER),
            ("permessage-deflate; foo", None),
            ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
            ("permessage-deflate; client_max_window_bits=16", None),
            ("permessage-deflate;", None),
            ('permessage-deflate; client_max_window_bits="1 0"', None),
            ("x-other", None),
        ]
        for offer, want in cases:
            c = ZRaw(node.ws_port, offer=offer)
            try:
                self.assertEqual(c.extensions, want, offer)
                # the connection works either way
                c.send(frame(OP_TEXT, cmd_json("ping", seq="neg")))
                _, m = c.recv_json_until(lambda m: m.get("seq") == "neg")
                self.assertEqual(m["response"]["data"], "pong")
            finally:
                c.close()
        # several header lines are one list
        s = socket.create_connection(("127.0.0.1", node.ws_port), timeout=IO_TIMEOUT)
        try:
            req = upgrade_request("/acc", Sec_WebSocket_Extensions="x-foo")
            req = req[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                self.assertTrue(chunk)
                data += chunk
            status, hdrs, _ = parse_http(data)
            self.assertEqual((status, hdrs.get("sec-websocket-extensions")), (101, ANSWER))
        finally:
            s.close()

    def test_fragmented_and_interleaved(self):
        """A compressed message in three frames with a ping between them,
        a 0-length final fragment, and an empty compressed message."""
        node = self.node
        c = ZRaw(node.ws_port, path="/echo")
        try:
            data = story(4000).encode()
            z = compress(data)
            c.send(frame(OP_TEXT, z[:10], fin=False, rsv=4) + frame(OP_PING, b"p")
                   + frame(OP_CONT, z[10:-5], fin=False) + frame(OP_CONT, z[-5:]))
            f = c.recv_frame()
            self.assertEqual((f[2], f[3]), (OP_PONG, b"p"))
            self.assertEqual(c.recv_message(), (True, OP_TEXT, data))
            c.send(frame(OP_BIN, compress(b"\x01" * 500), fin=False, rsv=4) + frame(OP_CONT, b""))
            self.assertEqual(c.recv_message(), (True, OP_BIN, b"\x01" * 500))
            c.send(frame(OP_TEXT, b"\x00", rsv=4))                     # empty, compressed
            self.assertEqual(c.recv_message(), (False, OP_TEXT, b""))
            c.send(frame(OP_TEXT, b"not compressed " * 20))            # plain still works
            self.assertEqual(c.recv_message(), (True, OP_TEXT, b"not compressed " * 20))
        finally:
            c.close()

    def expect_close(self, send, code, path="/echo", offer=BROWSER_OFFER):
        c = ZRaw(self.node.ws_port, path=path, offer=offer)
        try:
            c.send(send)
            got = c.read_close()
            self.assertIsNotNone(got, "EOF without a close frame")
            self.assertEqual(got[0], code, got)
            return got[1]
        finally:
            c.close()

    def test_protocol_errors(self):
        """Bad compressed data 1007; invalid UTF-8 once inflated 1007; RSV1
        on a control frame, on a continuation, or without the extension 1002."""
        reason = self.expect_close(frame(OP_TEXT, b"\xff\xff\xff", rsv=4), 1007)
        self.assertEqual(reason, "invalid UTF-8 or compressed data")
        self.expect_close(frame(OP_TEXT, compress(b"\xc3\x28 bad"), rsv=4), 1007)
        self.expect_close(frame(OP_TEXT, compress(b"Hello")[:3], rsv=4), 1007)  # cut short
        self.expect_close(frame(OP_PING, b"", rsv=4), 1002)
        self.expect_close(frame(OP_TEXT, compress(b"ab")[:1], fin=False, rsv=4)
                          + frame(OP_CONT, compress(b"ab")[1:], rsv=4), 1002)
        self.expect_close(frame(OP_TEXT, compress(b"Hello"), rsv=4), 1002, offer=None)
        self.expect_close(frame(OP_TEXT, compress(b"Hello"), rsv=2), 1002)     # RSV2
        harness.assert_serves(self.node, "after-z-errors")

    def test_decompression_bomb(self):
        """A few KB that inflate past app.maxMessageSize close with 1009
        (whole or fragmented, text or binary); the node's memory does not
        grow with the number of bombs."""
        bomb = compress(bytes(8 << 20), 9)            # 8 MiB of zeros
        self.assertLess(len(bomb), 10000)
        self.expect_close(frame(OP_BIN, bomb, rsv=4), 1009)
        self.expect_close(frame(OP_TEXT, bomb[:4000], fin=False, rsv=4)
                          + frame(OP_CONT, bomb[4000:]), 1009, path="/acc")
        errors0 = deflate_state(self.node)["inflateErrors"]
        rss0 = self.node.state()["memory"]["rssBytes"]
        rounds = 60
        for _ in range(rounds):
            self.expect_close(frame(OP_BIN, bomb, rsv=4), 1009)
        growth = self.node.state()["memory"]["rssBytes"] - rss0
        bound = (48 if SANITIZED else 4) << 20        # ASan keeps freed memory in quarantine
        self.assertLess(growth, bound, "RSS grew by %d bytes over %d bombs" % (growth, rounds))
        self.assertEqual(deflate_state(self.node)["inflateErrors"] - errors0, rounds)
        # compressed bytes that could never fit are refused from the header
        self.expect_close(frame(OP_BIN, b"\x00" * (80 * 1024), rsv=4), 1009)
        harness.assert_serves(self.node, "after-bombs")

    def test_memory_accounting(self):
        """The zlib streams are per worker, counted; connections are not."""
        c = ZRaw(self.node.ws_port, path="/echo")
        try:
            c.send(zframe(OP_TEXT, story(1000).encode()))
            self.assertEqual(c.recv_message(), (True, OP_TEXT, story(1000).encode()))
        finally:
            c.close()
        st = deflate_state(self.node)
        self.assertTrue(st["enabled"])
        self.assertEqual(st["minSize"], 128)
        self.assertGreater(st["zlibBytes"], 0)
        # two workers: at most one deflate and one inflate stream each, and
        # a kept compression buffer (<= 64 KiB)
        self.assertLess(st["zlibBytes"], 2 * (300 + 50 + 70) * 1024)
        conns = [ZRaw(self.node.ws_port) for _ in range(20)]
        try:
            wait_until(lambda: deflate_state(self.node)["connections"] >= 20,
                       what="20 deflate connections counted")
        finally:
            for c in conns:
                c.close()
        wait_until(lambda: deflate_state(self.node)["connections"] == 0,
                   what="deflate connections back to 0")
        self.assertLess(deflate_state(self.node)["zlibBytes"], 2 * (300 + 50 + 70) * 1024)


class DeflateMinSizeTest(NodeCase):
    """app.deflateMinSize: pushes under it go plain to deflate clients."""
    ARGS = DEFLATE_ON + ("--set", "app.deflateMinSize=2000")

    def test_min_size(self):
        node = self.node
        z = ZRaw(node.ws_port)
        try:
            z.send(frame(OP_TEXT, login_frame("min-z", 101)))
            z.recv_json_until(lambda m: m.get("cmd") == "login")
            for size, want in ((1500, False), (3000, True)):
                msgid = "min-%s-%d" % (harness.RUN_ID, size)
                push_all(node, 101, msgid, story(size))
                comp, m = z.recv_json_until(lambda m: m.get("seq") == msgid)
                self.assertEqual(comp, want, size)
                self.assertEqual(len(m["response"]["data"]["msg"]), size)
        finally:
            z.close()


class DeflateOffTest(NodeCase):
    """Off by default: offers get no answer and RSV1 stays a protocol error."""
    ARGS = ("--set", "app.echoPath=/echo")

    def test_off_by_default(self):
        node = self.node
        self.assertFalse(deflate_state(node)["enabled"])

        async def go():
            ws = await connect(node, "/echo", compression="deflate")
            try:
                self.assertNotIn("Sec-WebSocket-Extensions", ws.response_headers)
                await ws.send(story(3000))
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10 * SLOW), story(3000))
            finally:
                await ws.close()
        run(go())
        c = ZRaw(node.ws_port, path="/echo")
        try:
            self.assertIsNone(c.extensions)
            c.send(frame(OP_TEXT, compress(b"Hello"), rsv=4))
            self.assertEqual(c.read_close()[0], 1002)
        finally:
            c.close()
        self.assertEqual(deflate_state(node)["zlibBytes"], 0)


if __name__ == "__main__":
    main(sys.modules[__name__])
