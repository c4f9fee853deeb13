"""Limits as real clients see them: a slow consumer is closed (1008) instead of
growing memory, an oversize message is refused (1009), a connection that never
finishes its handshake is dropped, 500 clients log in across both workers, and
SIGTERM closes every client with 1001 and exits 0. All traffic is to
127.0.0.1; every wait is bounded; nothing asserts on timing."""

import asyncio
import http.client
import json
import os
import signal
import socket
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (IO_TIMEOUT, OP_CLOSE, SLOW, Node, NodeCase, RawWS, assert_serves,  # noqa: E402
                     cmd_json, is_push, main, online, text, wait_until)


def _login_frame(user, app=101, seq="L"):
    return text(cmd_json("login", {"serviceToken": "", "appID": app, "userID": user}, seq=seq))


class SlowConsumerTest(NodeCase):
    MAX_OUT = 65536
    ARGS = ("--set", "app.maxOutboundBytes=%d" % MAX_OUT,
            "--set", "app.maxMessageSize=1024")

    def test_slow_consumer_closed_with_1008(self):
        node = self.node
        slow = RawWS(node.ws_port, rcvbuf=4096)
        fast = RawWS(node.ws_port)
        try:
            slow.send(_login_frame("slow"))
            self.assertEqual(slow.recv_json()["response"]["code"], 200)
            fast.send(_login_frame("fast"))
            self.assertEqual(fast.recv_json()["response"]["code"], 200)
            self.assertEqual(node.state()["slowConsumersClosed"], 0)

            # Flood the non-reading client: ~4 MB in ~1000-byte messages.
            hc = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10 * SLOW)
            body_text = "m" * 950
            closed = 0
            sent = 0
            deadline = time.time() + 60 * SLOW
            try:
                for i in range(4200):
                    if time.time() > deadline:
                        break
                    form = urllib.parse.urlencode({"appID": 101, "userID": "slow",
                                                   "msgID": "flood-%d" % i,
                                                   "message": body_text})
                    hc.request("POST", "/user/sendMessage", body=form,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
                    r = hc.getresponse()
                    reply = json.loads(r.read())
                    self.assertEqual(r.status, 200)
                    self.assertEqual(reply["code"], 200, reply)
                    sent += 1
                    if i % 50 == 49:
                        hc.request("GET", "/system/state")
                        r = hc.getresponse()
                        closed = json.loads(r.read())["data"]["slowConsumersClosed"]
                        if closed >= 1:
                            break
            finally:
                hc.close()
            state = node.state()
            self.assertGreaterEqual(state["slowConsumersClosed"], 1,
                                    "no slow consumer closed after %d messages: %r" % (sent, state))
            # The server never held much more than the cap for this client.
            self.assertLessEqual(state["outQueueBytes"], 4 * self.MAX_OUT, state)

            # Now read everything: whole pushes, then the 1008 close frame
            # (queued behind the frame being written when the cap was hit;
            # read well within the 5 s a closing connection may linger), EOF.
            code, reason, before = self._drain(slow)
            for fin, op, payload in before:       # only whole pushes (and pings) came first
                self.assertTrue(fin)
                self.assertIn(op, (1, 9), payload[:100])
            self.assertEqual((code, reason), (1008, b"outbound queue full"))
            self.assertTrue(slow.eof(), "no EOF after the 1008 close frame")
            # the user is offline now
            self.assertFalse(online(node, 101, "slow"))

            # The other user still gets messages.
            r = node.api("/user/sendMessage", params={"appID": 101, "userID": "fast",
                                                      "msgID": "to-fast", "message": "still here"})
            self.assertTrue(r["data"]["sendResults"], r)
            # exactly: slow's exit (posted when it was closed, before it went
            # offline), then the push
            m = fast.recv_json(skip_pushes=False)
            self.assertTrue(is_push(m, "exit", "slow"), m)
            m = fast.recv_json(skip_pushes=False)
            self.assertEqual(m["response"]["data"]["msg"], "still here")
            self.assertEqual(m["seq"], "to-fast")
        finally:
            slow.close()
            fast.close()
        assert_serves(node, "after-flood")

    def _drain(self, ws):
        """Reads the slow client's socket until a close frame or EOF (bounded)."""
        deadline = time.time() + 60 * SLOW
        frames = []
        while time.time() < deadline:
            try:
                f = ws.recv_frame()
            except socket.timeout:
                self.fail("server neither closed nor sent more within %ss" % IO_TIMEOUT)
            if f is None:
                return None, None, frames
            fin, op, payload = f
            if op == OP_CLOSE:
                return (int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005,
                        payload[2:], frames)
            frames.append(f)
        self.fail("draining the slow client did not end")


class DefaultNodeTests(NodeCase):
    def test_oversize_message_1009(self):
        node = self.node

        async def go():
            ws = await harness.login(node, "big", max_size=None)
            await ws.send(json.dumps({"seq": "b", "cmd": "ping", "data": {"pad": "x" * 70000}}))
            await asyncio.wait_for(ws.wait_closed(), 10 * SLOW)
            return ws.close_code, ws.close_reason

        self.assertEqual(harness.run(go()), (1009, "message too big"))
        assert_serves(node, "after-big")

    def test_500_connections(self):
        node = self.node
        n = 500

        async def go():
            sem = asyncio.Semaphore(50)
            clients = []

            async def one(i):
                async with sem:
                    clients.append(await harness.login(node, "many%d" % i, app=101 + i % 4))

            try:
                await asyncio.gather(*(one(i) for i in range(n)))
                st = await asyncio.get_running_loop().run_in_executor(None, node.state)
                # every client still answers
                replies = await asyncio.gather(*(harness.request(c, "ping") for c in clients[::25]))
                assert all(r["response"]["data"] == "pong" for r in replies)
                return st
            finally:
                await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

        st = harness.run(go())
        self.assertEqual(st["loggedIn"], n, st)
        self.assertEqual(sum(w["loggedIn"] for w in st["perWorker"]), n, st)
        self.assertEqual(len(st["perWorker"]), 2, st)
        for w in st["perWorker"]:
            self.assertGreater(w["loggedIn"], 0, "a worker got no client: %r" % st["perWorker"])
        wait_until(lambda: (lambda st: st["loggedIn"] == 0 and st["wsConnections"] == 0)(node.state()),
                   timeout=20, what="every client gone")
        self.assertEqual(node.api("/user/list", params={"appID": 101})["data"]["userCount"], 0)
        assert_serves(node, "after-many")


class HandshakeTimeoutTests(NodeCase):
    """One worker, so one sweep: the handshakeTimeouts counter (only the
    sweep's handshake timeout increments it) shows that the sweep ran."""
    ARGS = ("--set", "app.handshakeTimeout=1", "--set", "app.sweepInterval=1")
    NODE_KW = {"workers": 1}

    def _closed_by_server(self, s, bound):
        """Whether the server ends the connection within `bound` seconds."""
        deadline = time.time() + bound
        s.settimeout(0.5)
        while time.time() < deadline:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return True
            if not chunk:
                return True
        return False

    def test_silent_and_half_request_dropped(self):
        node = self.node
        before = node.state()["handshakeTimeouts"]
        silent = socket.create_connection(("127.0.0.1", node.ws_port), timeout=5)
        half = socket.create_connection(("127.0.0.1", node.ws_port), timeout=5)
        try:
            half.sendall(b"GET /acc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            self.assertTrue(self._closed_by_server(silent, 10 * SLOW),
                            "a connection that sent nothing was not closed")
            self.assertTrue(self._closed_by_server(half, 10 * SLOW),
                            "a connection that sent half a request was not closed")
        finally:
            silent.close()
            half.close()
        self.assertEqual(node.state()["handshakeTimeouts"], before + 2,
                         "both closed by the handshake timeout")
        assert_serves(node, "after-timeout")

    def test_upgraded_connection_not_dropped(self):
        node = self.node

        async def go():
            ws = await harness.login(node, "stays", ping_interval=None)
            witness = None
            try:
                before = node.state()["handshakeTimeouts"]
                # accepted after "stays" upgraded, and silent: once the sweep
                # drops it for the handshake timeout, that timeout has passed
                # for "stays" as well
                witness = socket.create_connection(("127.0.0.1", node.ws_port), timeout=5)
                closed = await asyncio.get_running_loop().run_in_executor(
                    None, self._closed_by_server, witness, 10 * SLOW)
                self.assertTrue(closed, "the sweep never dropped a silent connection")
                self.assertEqual(node.state()["handshakeTimeouts"], before + 1)
                r = await harness.request(ws, "ping")
                return r["response"]["data"]
            finally:
                if witness:
                    witness.close()
                await ws.close()

        self.assertEqual(harness.run(go()), "pong")


class ShutdownTest(unittest.TestCase):
    def test_sigterm_closes_clients_1001_and_exits_0(self):
        node = Node()
        try:
            async def go():
                clients = [await harness.login(node, "sd%d" % i, app=101 + i % 2) for i in range(20)]
                node.proc.send_signal(signal.SIGTERM)

                async def close_code(c):
                    try:
                        await asyncio.wait_for(c.wait_closed(), 15 * SLOW)
                    except asyncio.TimeoutError:
                        return "not closed"
                    return c.close_code, c.close_reason

                codes = await asyncio.gather(*(close_code(c) for c in clients))
                loop = asyncio.get_running_loop()
                rc = await loop.run_in_executor(None, node.proc.wait, 20 * SLOW)
                return codes, rc

            codes, rc = harness.run(go())
            self.assertEqual(codes, [(1001, "server shutting down")] * 20)
            self.assertEqual(rc, 0)
        finally:
            node.stop()         # already exited: checks status 0 and no sanitizer report


if __name__ == "__main__":
    main(sys.modules[__name__])
