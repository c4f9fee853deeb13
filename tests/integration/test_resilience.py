"""Integration tests: regressions found in review — clients that reset
right after a request, invalid UTF-8 in push parameters, byte-by-byte
trickles against the timeouts, HEAD/OPTIONS answers, and a sender ID too
long to be a user.

Run: /usr/bin/python3 tests/integration/test_resilience.py"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, NodeCase, RawWS, absent_until_marker, assert_serves,  # noqa: E402
                     close_all, is_push, login, main, parse_http, recv_json, recv_until, run,
                     upgrade_request)


def reset_after(port, data):
    """Sends data and resets the connection (RST) without reading."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(data)
    s.close()


class ResetTests(NodeCase):
    def test_reset_right_after_requests(self):
        node = self.node
        simple = b"GET /user/list?appID=101 HTTP/1.1\r\nHost: x\r\n\r\n"
        # a deferred answer (sendMessage goes through the workers) + a pipelined one
        deferred = (b"GET /user/sendMessage?appID=101&userID=nobody&msgID=&message=hi HTTP/1.1\r\n"
                    b"Host: x\r\n\r\n" + simple)
        for _ in range(150):
            reset_after(node.http_port, simple)
            reset_after(node.http_port, deferred)
        self.assertTrue(node.alive())
        assert_serves(node, "after-resets")
        self.assertEqual(node.api("/user/list", params={"appID": 101})["code"], 200)


class Utf8ParamTests(NodeCase):
    def test_invalid_utf8_is_refused_and_the_room_stays(self):
        node = self.node

        async def t():
            ws = await login(node, "listener")
            try:
                for name, raw in (("message", "message=%FF%FE"), ("userID", "userID=%C0%AF"),
                                  ("msgID", "msgID=%ED%A0%80")):
                    params = "appID=101&message=ok&msgID=u1&userID=x".split("&")
                    params = [p for p in params if not p.startswith(name + "=")] + [raw]
                    status, _, body = node.http("/user/sendMessageAll?" + "&".join(params))
                    self.assertEqual(status, 200)
                    self.assertIn(b'"code":1001', body)
                    self.assertIn(("%s is not valid UTF-8" % name).encode(), body)
                # a valid send along the same path is the marker: nothing of
                # the refused ones came before it
                r = node.api("/user/sendMessageAll", params={"appID": 101, "userID": "x",
                                                              "msgID": "u2", "message": "h\u00e9llo"})
                self.assertTrue(r["data"]["sendResults"])
                m, before = await recv_until(ws, lambda m: is_push(m, "msg", seq="u2"), "push u2")
                self.assertEqual(before, [], "a refused send reached the room")
                self.assertEqual(m["response"]["data"]["msg"], "h\u00e9llo")
            finally:
                await close_all(ws)
        run(t())


class TrickleTests(NodeCase):
    ARGS = ("--set", "app.handshakeTimeout=1", "--set", "app.sweepInterval=1",
            "--set", "app.connectionTimeout=3", "--set", "app.pingInterval=0")

    def _trickle_until_closed(self, sock, data, limit):
        """Sends one byte every 0.25 s until the server answers or closes;
        then reads what it sends until it closes. Returns (closed, the bytes
        the server sent)."""
        deadline = time.time() + limit
        i = 0
        got = b""
        sock.settimeout(0.25)
        while time.time() < deadline:
            try:
                chunk = sock.recv(65536)
                if chunk == b"":
                    return True, got
                got += chunk
            except socket.timeout:
                pass
            except ConnectionResetError:
                return True, got
            if got:                              # the server spoke: stop sending, read to the end
                continue
            try:
                sock.send(data[i % len(data):i % len(data) + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True, got
            i += 1
        return False, got

    def test_trickled_handshake_is_timed_out(self):
        before = self.node.state()["handshakeTimeouts"]
        s = socket.create_connection(("127.0.0.1", self.node.ws_port), timeout=5)
        try:
            # a request that never ends: one header byte at a time
            req = upgrade_request()[:-2] + b"X-Slow: " + b"a" * 4000
            closed, got = self._trickle_until_closed(s, req, 12 * SLOW)
            self.assertTrue(closed, "a byte-by-byte upgrade request kept the connection open")
            self.assertEqual(got, b"", "the handshake timeout closes without an answer")
        finally:
            s.close()
        # closed by the handshake timeout (the only close that counts here)
        self.assertEqual(self.node.state()["handshakeTimeouts"], before + 1)

    def test_trickled_frame_does_not_keep_a_socket_alive(self):
        ws = RawWS(self.node.ws_port)
        try:
            # a 60-byte text frame header + payload, sent one byte at a time
            big = bytes([0x81, 0x80 | 60]) + b"\0\0\0\0" + b"x" * 60
            ws.sock.settimeout(0.25)
            closed, got = self._trickle_until_closed(ws.sock, big * 10, 15 * SLOW)
            self.assertTrue(closed, "a trickled frame reset the connection timeout")
            # the connection timeout's close frame, and nothing else
            got = ws.buf + got
            self.assertGreaterEqual(len(got), 4, "no close frame before the connection ended: %r" % got)
            self.assertEqual(got[0], 0x88, "not a close frame: %r" % got)
            n = got[1]
            self.assertLess(n, 126, got)
            self.assertEqual(len(got), 2 + n, "bytes besides one close frame: %r" % got)
            self.assertEqual(struct.unpack("!H", got[2:4])[0], 1001, got)
            self.assertEqual(got[4:], b"heartbeat timeout", got)
        finally:
            ws.close()


class HttpMethodTests(NodeCase):
    def test_head_is_refused_and_sends_nothing(self):
        node = self.node

        async def t():
            ws = await login(node, "headless")
            try:
                out = node.raw(port=node.http_port, data=
                               b"HEAD /user/sendMessage?appID=101&userID=headless&msgID=h1&message=no"
                               b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status, hdrs, _ = parse_http(out)
                self.assertEqual(status, 405)
                self.assertIn("GET", hdrs.get("allow", ""))
                await absent_until_marker(node, [(ws, 101, "headless")], what="no push from a HEAD request")
            finally:
                await close_all(ws)
        run(t())

    def test_options_has_no_content_length(self):
        out = self.node.raw(port=self.node.http_port, data=
                       b"OPTIONS /user/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, hdrs, _ = parse_http(out)
        self.assertEqual(status, 204)
        self.assertNotIn("content-length", hdrs)
        self.assertEqual(hdrs.get("access-control-allow-origin"), "*")

    def test_put_gets_json_405(self):
        out = self.node.raw(port=self.node.http_port, data=
                       b"PUT /user/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        status, _, body = parse_http(out)
        self.assertEqual(status, 405)
        self.assertIn(b'"code":1010', body)


class LongSenderTests(NodeCase):
    def test_sender_id_too_long_to_exist_excludes_nobody(self):
        node = self.node

        async def t():
            prefix = "a" * 19
            ws = await login(node, prefix)
            try:
                r = node.api("/user/sendMessageAll", params={
                    "appID": 101, "userID": prefix + "bcdef", "msgID": "long1", "message": "hi"})
                self.assertTrue(r["data"]["sendResults"])
                m = await recv_json(ws)
                self.assertEqual(m["seq"], "long1")
            finally:
                await close_all(ws)
        run(t())


if __name__ == "__main__":
    main(sys.modules[__name__])
