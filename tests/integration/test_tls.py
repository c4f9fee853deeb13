"""Native TLS (app.tlsCert / app.tlsKey): the node speaks https:// on the HTTP
port and wss:// on the WebSocket port, and nothing else there. Real clients:
python3-websockets and urllib over Python's ssl, with a fresh self-signed
certificate the client trusts (harness.Node(tls=True)). Also: a plain-text
client is dropped and the node keeps serving; a client that never starts
its TLS handshake is dropped after the handshake timeout (WebSocket port)
or the idle timeout (HTTP port); 60 KB messages both ways; a broadcast
reaches 20 wss clients exactly once each; a slow TLS consumer is dropped;
bad TLS settings stop start-up with exit status 2. All traffic is to
127.0.0.1; every wait is bounded; nothing asserts on timing."""

import asyncio
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BIN, SLOW, Node, NodeCase, assert_serves, cmd_json, main,  # noqa: E402
                     online, text, upgrade_request)


def closed_by_server(s, bound):
    """Whether the server ends the connection within `bound` seconds; the
    bytes it sent first (e.g. a TLS alert) are returned too."""
    deadline = time.time() + bound
    s.settimeout(0.5)
    got = b""
    while time.time() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def tls_socket(node, port, rcvbuf=None):
    """A TCP connection to port with a finished TLS handshake."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(10 * SLOW)
    raw.connect(("127.0.0.1", port))
    return node.ssl_context.wrap_socket(raw, server_hostname="127.0.0.1")


class TLSTests(NodeCase):
    NODE_KW = {"tls": True}
    ARGS = ("--set", "app.echoPath=/echo")

    def setUp(self):
        harness.wait_idle(self.node)

    def test_state_reports_tls(self):
        st = self.node.state()
        self.assertIs(st["tls"], True, st)

    def test_login_heartbeat_ping_over_wss(self):
        node = self.node

        async def go():
            ws = await harness.login(node, "tls-alice")
            try:
                hb = await harness.request(ws, "heartbeat")
                ping = await harness.request(ws, "ping")
                on = await asyncio.get_running_loop().run_in_executor(
                    None, online, node, 101, "tls-alice")
                return hb, ping, on
            finally:
                await ws.close()

        hb, ping, on = harness.run(go())
        self.assertEqual(hb["response"]["code"], 200, hb)
        self.assertEqual(ping["response"]["data"], "pong", ping)
        self.assertTrue(on)

    def test_https_api_send_message_to_wss_client(self):
        node = self.node

        async def go():
            ws = await harness.login(node, "tls-bob", app=102)
            try:
                loop = asyncio.get_running_loop()
                listed = await loop.run_in_executor(
                    None, lambda: node.api("/user/list", params={"appID": 102}))
                sent = await loop.run_in_executor(None, lambda: node.api(
                    "/user/sendMessage", form={"appID": 102, "userID": "tls-bob",
                                               "msgID": "tls-m1", "message": "over https"}))
                while True:
                    m = await harness.recv_json(ws)
                    if m["cmd"] == "msg":
                        return listed, sent, m
            finally:
                await ws.close()

        listed, sent, m = harness.run(go())
        self.assertIn("tls-bob", listed["data"]["userList"], listed)
        self.assertTrue(sent["data"]["sendResults"], sent)
        self.assertEqual(m["seq"], "tls-m1")
        self.assertEqual(m["response"]["data"]["msg"], "over https")

    def test_https_keep_alive_requests(self):
        """Several requests on one TLS connection (keep-alive), then close."""
        node = self.node
        hc = http.client.HTTPSConnection("127.0.0.1", node.http_port, timeout=10 * SLOW,
                                         context=node.ssl_context)
        try:
            for i in range(5):
                hc.request("GET", "/user/online?appID=0&userID=nobody%d" % i)
                r = hc.getresponse()
                body = json.loads(r.read())
                self.assertEqual(r.status, 200)
                self.assertFalse(body["data"]["online"], body)
                self.assertEqual(r.getheader("Connection"), "keep-alive")
        finally:
            hc.close()

    def test_plaintext_clients_dropped(self):
        node = self.node
        for port, data in ((node.ws_port, upgrade_request()),
                           (node.http_port, b"GET /system/state HTTP/1.1\r\nHost: x\r\n\r\n")):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                s.sendall(data)
                closed, got = closed_by_server(s, 10 * SLOW)
                self.assertTrue(closed, "a plain-text client on port %d was not closed" % port)
                self.assertNotIn(b"HTTP/1.1", got)      # at most a TLS alert came back
            finally:
                s.close()
        assert_serves(node, "tls-after-plain")
        self.assertIs(node.state()["tls"], True)

    def test_60k_messages_both_ways(self):
        node = self.node
        big_text = "".join(chr(0x41 + i % 26) for i in range(60 * 1024))
        big_bin = os.urandom(60 * 1024)

        async def go():
            ws = await harness.connect(node, "/echo", max_size=None)
            try:
                await ws.send(big_text)
                t = await asyncio.wait_for(ws.recv(), 10 * SLOW)
                await ws.send(big_bin)
                b = await asyncio.wait_for(ws.recv(), 10 * SLOW)
                return t, b
            finally:
                await ws.close()

        t, b = harness.run(go())
        self.assertEqual(t, big_text)
        self.assertEqual(b, big_bin)

    def test_broadcast_to_20_wss_clients_exactly_once(self):
        node = self.node
        n = 20

        async def go():
            clients = await asyncio.gather(*(harness.login(node, "tls-b%d" % i, app=103)
                                             for i in range(n)))
            try:
                loop = asyncio.get_running_loop()
                r = await loop.run_in_executor(None, lambda: node.api(
                    "/user/sendMessageAll", form={"appID": 103, "userID": "system",
                                                  "msgID": "tls-all-1", "message": "to all"}))
                assert r["data"]["sendResults"] is True, r
                # up to a later room-wide marker push (behind any copy of
                # tls-all-1): that push and the enter pushes of the logins
                got = await harness.until_marker(node, [(ws, 103, "tls-b%d" % i) for i, ws in enumerate(clients)],
                                                 room=True)
                counts = []
                for msgs in got:
                    for m in msgs:
                        assert harness.is_push(m, "enter") or m["seq"] == "tls-all-1", msgs
                    copies = harness.copies(msgs, "tls-all-1")
                    for m in copies:
                        assert m["response"]["data"]["msg"] == "to all", m
                    counts.append(len(copies))
                return counts
            finally:
                await harness.close_all(*clients)

        self.assertEqual(harness.run(go()), [1] * n)


class TLSTimeoutTests(NodeCase):
    """A client that opens TCP and never does the TLS handshake is closed.
    Timeouts count whole seconds from the accept, so with a 1 s timeout even
    a quick client may be cut when its handshake straddles a second: the
    checks here use raw sockets, and the API (status checks) gets 2 s."""
    NODE_KW = {"tls": True}
    ARGS = ("--set", "app.handshakeTimeout=1", "--set", "app.sweepInterval=1",
            "--set", "app.httpIdleTimeout=2")

    def test_no_handshake_on_ws_port_dropped(self):
        node = self.node
        before = node.state()["handshakeTimeouts"]
        silent = socket.create_connection(("127.0.0.1", node.ws_port), timeout=5)
        try:
            closed, got = closed_by_server(silent, 10 * SLOW)
            self.assertTrue(closed, "a connection without a TLS handshake was not closed")
            self.assertEqual(got, b"")
        finally:
            silent.close()
        harness.wait_until(lambda: node.state()["handshakeTimeouts"] > before,
                           what="handshakeTimeouts to count the dropped client")
        self.assertTrue(node.alive())

    def test_half_handshake_on_ws_port_dropped(self):
        """The first bytes of a ClientHello, then nothing."""
        node = self.node
        before = node.state()["handshakeTimeouts"]
        s = socket.create_connection(("127.0.0.1", node.ws_port), timeout=5)
        try:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            closed, _ = closed_by_server(s, 10 * SLOW)
            self.assertTrue(closed, "a connection with half a ClientHello was not closed")
        finally:
            s.close()
        # by the handshake timeout (counted before the close), not by an error
        self.assertEqual(node.state()["handshakeTimeouts"], before + 1)

    def test_no_handshake_on_http_port_dropped(self):
        node = self.node
        silent = socket.create_connection(("127.0.0.1", node.http_port), timeout=5)
        try:
            closed, got = closed_by_server(silent, 10 * SLOW)
            self.assertTrue(closed, "an HTTP-port connection without a TLS handshake was not closed")
            self.assertEqual(got, b"")
        finally:
            silent.close()
        self.assertIs(node.state()["tls"], True)


class TLSSlowConsumerTest(NodeCase):
    """A wss client that stops reading is dropped at app.maxOutboundBytes;
    others keep getting messages."""
    MAX_OUT = 65536
    NODE_KW = {"tls": True}
    ARGS = ("--set", "app.maxOutboundBytes=%d" % MAX_OUT, "--set", "app.maxMessageSize=1024")

    def _login(self, s, user):
        s.sendall(upgrade_request())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "EOF during the upgrade")
            buf += chunk
        self.assertTrue(buf.startswith(b"HTTP/1.1 101"), buf[:100])
        s.sendall(text(cmd_json("login", {"serviceToken": "", "appID": 101, "userID": user})))
        harness.wait_until(lambda: online(self.node, 101, user), what="%s online" % user)

    def test_slow_tls_consumer_dropped(self):
        node = self.node
        slow = tls_socket(node, node.ws_port, rcvbuf=4096)
        try:
            self._login(slow, "tls-slow")
            form_base = {"appID": 101, "userID": "tls-slow", "message": "m" * 950}
            hc = http.client.HTTPSConnection("127.0.0.1", node.http_port, timeout=10 * SLOW,
                                             context=node.ssl_context)
            try:
                for i in range(4200):
                    hc.request("POST", "/user/sendMessage",
                               body=urllib.parse.urlencode(dict(form_base, msgID="tf-%d" % i)),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
                    r = hc.getresponse()
                    reply = json.loads(r.read())
                    self.assertEqual(reply["code"], 200, reply)
                    if reply["data"] and reply["data"].get("sendResults") is False:
                        break                        # the client is gone
            finally:
                hc.close()
            st = node.state()
            self.assertGreaterEqual(st["slowConsumersClosed"], 1, st)
            self.assertLessEqual(st["outQueueBytes"], 4 * self.MAX_OUT, st)
            self.assertFalse(online(node, 101, "tls-slow"))
        finally:
            slow.close()
        assert_serves(node, "tls-after-flood")


class TLSConfigTests(unittest.TestCase):
    """Bad TLS settings stop start-up with status 2 and a clear message."""

    def _start(self, *sets, cwd=None):
        cmd = [BIN, "--http-port", "0", "--ws-port", "0", "--bind", "127.0.0.1", "--workers", "1"]
        for kv in sets:
            cmd += ["--set", kv]
        return subprocess.run(cmd, cwd=cwd or tempfile.mkdtemp(prefix="imgate-test-"),
                              capture_output=True, text=True, timeout=30 * SLOW)

    def test_cert_without_key(self):
        for kv in ("app.tlsCert=/tmp/none.pem", "app.tlsKey=/tmp/none.key"):
            p = self._start(kv)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("app.tlsCert", p.stderr)
            self.assertIn("app.tlsKey", p.stderr)

    def test_bad_files_named(self):
        d = tempfile.mkdtemp(prefix="imgate-test-")
        cert, key = harness.make_cert(d)
        junk = os.path.join(d, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        missing = os.path.join(d, "missing.pem")
        for c, k, named in ((missing, key, missing), (junk, key, junk),
                            (cert, missing, missing), (cert, junk, junk)):
            p = self._start("app.tlsCert=" + c, "app.tlsKey=" + k, cwd=d)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(named, p.stderr)
            self.assertIn("TLS", p.stderr)

    def test_key_of_another_certificate(self):
        a = tempfile.mkdtemp(prefix="imgate-test-")
        b = tempfile.mkdtemp(prefix="imgate-test-")
        cert, _ = harness.make_cert(a)
        _, other_key = harness.make_cert(b)
        p = self._start("app.tlsCert=" + cert, "app.tlsKey=" + other_key)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("does not match", p.stderr)

    def test_plain_node_reports_no_tls(self):
        with Node() as node:
            self.assertIs(node.state()["tls"], False)


if __name__ == "__main__":
    main(sys.modules[__name__])
