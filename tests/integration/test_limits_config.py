"""Integration tests: the configurable limits, each triggered from a real
client and observed in its answer and in /system/state or /metrics.

app.maxConnections (503 before upgrade), app.maxMessagesPerSecond (1008),
app.maxOutboundBytesTotal (node-wide queue cap, 1008), app.maxHeaderBytes
(431), app.maxBodyBytes (413), app.httpIdleTimeout, app.maxListUsers (paged
/user/list) and app.shutdownGrace.

Run: /usr/bin/python3 tests/integration/test_limits_config.py"""

import http.client
import os
import socket
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Node, NodeCase, RawWS, assert_serves, cmd_json, login,  # noqa: E402
                     close_all, main, parse_http, run, text, upgrade_request, wait_until)


def login_frame(user, app=101):
    return text(cmd_json("login", {"serviceToken": "", "appID": app, "userID": user}, seq="L"))


class ConnectionCapTest(NodeCase):
    ARGS = ("--set", "app.maxConnections=4", "--workers", "1")

    def test_over_the_cap_gets_503_before_upgrade(self):
        node = self.node
        held = [RawWS(node.ws_port) for _ in range(4)]
        try:
            status, hdrs, body = parse_http(node.raw(upgrade_request()))
            self.assertEqual(status, 503, body)
            self.assertIn(b"connection limit", body)
            self.assertEqual(node.state()["limits"]["maxConnections"], 4)
        finally:
            for ws in held:
                ws.close()
        # with the clients gone there is room again
        wait_until(lambda: node.state()["connections"] <= 1, what="connections to close")
        assert_serves(node, "after-cap")


class MessageRateTest(NodeCase):
    ARGS = ("--set", "app.maxMessagesPerSecond=5")

    def test_flood_is_closed_with_1008(self):
        node = self.node
        ws = RawWS(node.ws_port)
        try:
            ws.send(b"".join(text(cmd_json("ping", seq="p%d" % i)) for i in range(50)))
            code, reason, before = ws.read_close()
            self.assertEqual(code, 1008, reason)
            self.assertIn(b"rate", reason)
            self.assertLessEqual(len(before), 5)       # at most the allowed replies
        finally:
            ws.close()
        self.assertGreaterEqual(node.state()["rateLimitedClosed"], 1)
        status, _, body = node.http("/metrics")
        self.assertIn(b"imgate_rate_limited_closed_total 1", body)

    def test_a_steady_client_is_not_limited(self):
        node = self.node
        ws = RawWS(node.ws_port)
        try:
            for i in range(8):                          # 4 a second, under the limit
                ws.send(text(cmd_json("ping", seq="s%d" % i)))
                self.assertEqual(ws.recv_json()["response"]["data"], "pong")
                time.sleep(0.25)
        finally:
            ws.close()


class NodeQueueCapTest(NodeCase):
    # each connection may queue 1 MiB, but the node only 64 KiB in all
    ARGS = ("--set", "app.maxOutboundBytesTotal=65536", "--set", "app.maxMessageSize=4096")

    def test_node_cap_closes_the_slow_client(self):
        node = self.node
        slow = RawWS(node.ws_port, rcvbuf=4096)
        try:
            slow.send(login_frame("slowpoke"))
            self.assertEqual(slow.recv_json()["response"]["code"], 200)
            hc = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10 * SLOW)
            try:
                for i in range(3000):
                    form = urllib.parse.urlencode({"appID": 101, "userID": "slowpoke",
                                                   "msgID": "n%d" % i, "message": "q" * 900})
                    hc.request("POST", "/user/sendMessage", body=form,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
                    r = hc.getresponse()
                    r.read()
                    if i % 50 == 49 and node.state()["slowConsumersClosed"] >= 1:
                        break
            finally:
                hc.close()
            state = node.state()
            self.assertGreaterEqual(state["slowConsumersClosed"], 1, state)
            self.assertEqual(state["limits"]["maxOutboundBytesTotal"], 65536)
        finally:
            slow.close()
        assert_serves(node, "after-node-cap")


class HttpSizeTests(NodeCase):
    ARGS = ("--set", "app.maxHeaderBytes=2048", "--set", "app.maxBodyBytes=2048",
            "--set", "app.httpIdleTimeout=1", "--set", "app.sweepInterval=1")

    def test_headers_over_the_limit_get_431(self):
        req = b"GET /system/state HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 3000 + b"\r\n\r\n"
        status, _, body = parse_http(self.node.raw(req, port=self.node.http_port))
        self.assertEqual(status, 431, body)

    def test_headers_under_the_limit_pass(self):
        req = (b"GET /system/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: " +
               b"a" * 1500 + b"\r\n\r\n")
        status, _, body = parse_http(self.node.raw(req, port=self.node.http_port))
        self.assertEqual(status, 200, body)

    def test_body_over_the_limit_gets_413(self):
        body = b"appID=101&message=" + b"b" * 4000
        req = (b"POST /user/sendMessageAll HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
        status, _, resp = parse_http(self.node.raw(req, port=self.node.http_port))
        self.assertEqual(status, 413, resp)

    def test_idle_keepalive_connection_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.node.http_port), timeout=10 * SLOW)
        try:
            s.sendall(b"GET /system/state HTTP/1.1\r\nHost: x\r\n\r\n")
            first = s.recv(65536)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first[:100])
            s.settimeout(10 * SLOW)            # idle 1 s + a 1 s sweep: closed well before this
            rest = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
            self.assertEqual(rest, b"")
        finally:
            s.close()


class ListPagingTest(NodeCase):
    ARGS = ("--set", "app.maxListUsers=10",)

    def test_list_is_paged(self):
        node = self.node

        async def t():
            socks = [await login(node, "pager%02d" % i) for i in range(25)]
            try:
                first = node.api("/user/list", params={"appID": 101})["data"]
                self.assertEqual(first["userCount"], 25)
                self.assertEqual(len(first["userList"]), 10)
                self.assertEqual(first["nextOffset"], 10)
                seen = list(first["userList"])
                page = node.api("/user/list", params={"appID": 101, "offset": 10})["data"]
                self.assertEqual(page["nextOffset"], 20)
                seen += page["userList"]
                last = node.api("/user/list", params={"appID": 101, "offset": 20})["data"]
                self.assertEqual(len(last["userList"]), 5)
                self.assertNotIn("nextOffset", last)
                seen += last["userList"]
                self.assertEqual(sorted(seen), ["pager%02d" % i for i in range(25)])
                small = node.api("/user/list", params={"appID": 101, "limit": 3})["data"]
                self.assertEqual(len(small["userList"]), 3)
                self.assertEqual(small["nextOffset"], 3)
                big = node.api("/user/list", params={"appID": 101, "limit": 50})["data"]
                self.assertEqual(len(big["userList"]), 10)      # the cap still applies
                bad = node.api("/user/list", params={"appID": 101, "offset": "x"})
                self.assertEqual(bad["code"], 1001)
                self.assertIn("offset", bad["msg"])
            finally:
                await close_all(*socks)
        run(t())


class ShutdownGraceTest(unittest.TestCase):
    def test_clients_that_ignore_the_close_do_not_hold_shutdown(self):
        node = Node("--set", "app.shutdownGrace=1")
        ws = RawWS(node.ws_port)            # reads nothing, never answers the close
        try:
            ws.send(login_frame("stubborn"))
            self.assertEqual(ws.recv_json()["response"]["code"], 200)
            self.assertEqual(node.stop(timeout=10), 0)   # stop() fails if shutdown hangs
            code, reason, _ = ws.read_close()
            self.assertEqual((code, reason), (1001, b"server shutting down"))
        finally:
            ws.close()


if __name__ == "__main__":
    main(sys.modules[__name__])
