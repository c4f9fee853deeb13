"""Integration tests: edges of the connection core (issue "Connection core,
round 2"): the byte bound of msgID de-duplication and its figures in
/system/state and /metrics; CONNECT refused and the connection closed (its
body is never read as a request); /user/list refusing limit=0;
app.allowedOrigins given as a YAML list.

Run: /usr/bin/python3 tests/integration/test_core_edges.py"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, SLOW, NodeCase, close_all, login, main, parse_http,  # noqa: E402
                     run, upgrade_request)

RUN = "%x%x" % (os.getpid(), int(time.time() * 1000))


def api_get(conn, path, params):
    """One GET on a keep-alive connection; returns the JSON answer."""
    conn.request("GET", path + "?" + urllib.parse.urlencode(params))
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status, body)
    return json.loads(body)


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    assert m, "no metric %s in:\n%s" % (name, text)
    return int(m.group(1))


class DedupByteBoundTest(NodeCase):
    """im.dedupMaxBytes bounds what the remembered msgIDs hold: 255-byte
    msgIDs under a 64 KiB bound keep about 180 of them, not all."""
    CAP = 65536
    ARGS = ("--set", "im.dedupMaxBytes=%d" % CAP)
    SENDS = 400

    def msgid(self, i):
        return ("%s-%d-" % (RUN, i)).ljust(255, "m")

    def send(self, conn, i):
        return api_get(conn, "/user/sendMessageAll",
                       {"appID": 101, "userID": "system", "msgID": self.msgid(i), "message": "x"})

    def test_bytes_bounded_and_reported(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=10 * SLOW)
        try:
            for i in range(self.SENDS):
                r = self.send(conn, i)
                self.assertEqual(r["data"], {"sendResults": True}, r)
            state = self.node.state()
            entries, used = state["dedupEntries"], state["dedupBytes"]
            self.assertEqual(state["limits"]["dedupMaxBytes"], self.CAP)
            self.assertLessEqual(used, self.CAP)
            self.assertGreater(used, self.CAP // 2)
            self.assertLess(entries, self.SENDS)             # the bound forgot some
            self.assertGreater(entries * 255, self.CAP // 2)  # but keeps what fits
            self.assertLessEqual(entries * 255, self.CAP)
            _, _, body = self.node.http("/metrics")
            text = body.decode()
            self.assertEqual(metric(text, "imgate_dedup_entries"), entries)
            self.assertEqual(metric(text, "imgate_dedup_bytes"), used)
            self.assertEqual(metric(text, "imgate_dedup_cap_bytes"), self.CAP)
            # the newest msgID is still remembered, the oldest forgotten
            self.assertEqual(self.send(conn, self.SENDS - 1), {"code": 200, "msg": "Success", "data": {}})
            self.assertEqual(self.send(conn, 0)["data"], {"sendResults": True})
            self.assertLessEqual(self.node.state()["dedupBytes"], self.CAP)
        finally:
            conn.close()


# ---------- CONNECT ----------

def read_to_eof(port, data, timeout=10):
    """Sends data and reads until the server closes. Returns (bytes, closed):
    closed is False if the server kept the connection open for `timeout`."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    out = b""
    try:
        s.sendall(data)
        s.settimeout(timeout * SLOW)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
    finally:
        s.close()


def split_response(data):
    """(status, headers, body, rest) of the first HTTP response in data."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, "no complete response head in %r" % data
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    return int(lines[0].split(" ", 2)[1]), headers, rest[:n], rest[n:]


SMUGGLED = b"GET /user/list?appID=101 HTTP/1.1\r\nHost: x\r\n\r\n"


def connect_request(body=SMUGGLED):
    return (b"CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


class ConnectTest(NodeCase):

    def test_connect_with_a_body_is_refused_and_closed(self):
        data, closed = read_to_eof(self.node.http_port, connect_request())
        status, headers, body, rest = split_response(data)
        self.assertEqual(status, 405, data)
        self.assertEqual(headers.get("connection"), "close", data)
        self.assertEqual(headers.get("allow"), "GET, POST, OPTIONS", data)
        answer = json.loads(body)
        self.assertEqual(answer["code"], 1010, answer)
        self.assertIn("GET or POST", answer["msg"])
        self.assertEqual(rest, b"", "the body was answered as a request: %r" % rest)
        self.assertTrue(closed, "the connection stayed open after CONNECT")

    def test_connect_on_the_websocket_port_is_refused_and_closed(self):
        data, closed = read_to_eof(self.node.ws_port, connect_request())
        status, _, _, rest = split_response(data)
        self.assertGreaterEqual(status, 400, data)
        self.assertEqual(rest, b"", data)
        self.assertTrue(closed, "the connection stayed open after CONNECT")

    def test_other_methods_keep_the_connection(self):
        """The 405 of an ordinary unsupported method keeps alive: the next
        request on the connection is answered."""
        req = (b"DELETE /user/list HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /user/list?appID=101 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, closed = read_to_eof(self.node.http_port, req)
        status, _, _, rest = split_response(data)
        self.assertEqual(status, 405, data)
        status2, _, body2, _ = split_response(rest)
        self.assertEqual(status2, 200, rest)
        self.assertEqual(json.loads(body2)["code"], 200)
        self.assertTrue(closed)


# ---------- /user/list paging ----------

class ListLimitTest(NodeCase):

    def list_(self, **params):
        return self.node.api("/user/list", params=dict(appID=102, **params))

    def test_limit_zero_or_negative_is_refused(self):
        async def t():
            ws = await login(self.node, "pager", 102)
            try:
                for bad in ("0", "-1", "00"):
                    r = self.list_(limit=bad)
                    self.assertEqual(r["code"], 1001, (bad, r))
                    self.assertIn("limit", r["msg"])
                    self.assertIn("positive", r["msg"])
                    self.assertEqual(r["data"], {})
                one = self.list_(limit=1)
                self.assertEqual(one["data"], {"userCount": 1, "userList": ["pager"]})
                self.assertEqual(self.list_(offset=0)["code"], 200)   # offset 0 stays valid
            finally:
                await close_all(ws)
        run(t())


# ---------- app.allowedOrigins as a YAML list ----------

ORIGINS_YAML = """app:
  allowedOrigins:
    - https://chat.example.com
    - "http://localhost:8080"
"""


class OriginsListTest(NodeCase):
    NODE_KW = {"config": ORIGINS_YAML}

    def upgrade_status(self, origin):
        """The status of an upgrade from `origin` (read until its head is in)."""
        s = socket.create_connection(("127.0.0.1", self.node.ws_port), timeout=10 * SLOW)
        data = b""
        try:
            s.sendall(upgrade_request(Origin=origin))
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        return parse_http(data)[0]

    def test_list_items_allowed_others_refused(self):
        self.assertEqual(self.upgrade_status("https://chat.example.com"), 101)
        self.assertEqual(self.upgrade_status("http://localhost:8080"), 101)
        self.assertEqual(self.upgrade_status("https://evil.example.com"), 403)
        self.assertEqual(self.upgrade_status("https://chat.example.com,http://localhost:8080"), 403)


class OriginsListErrorTest(unittest.TestCase):
    """A list item that is not a string stops start-up with exit status 2
    and FILE:LINE: key '...'."""

    def start(self, text):
        d = tempfile.mkdtemp(prefix="imgate-test-")
        path = os.path.join(d, "app.yaml")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([BIN, "-c", path, "--http-port", "0", "--ws-port", "0",
                            "--bind", "127.0.0.1"], cwd=d, capture_output=True,
                           timeout=30 * SLOW)
        return p.returncode, p.stderr.decode(), path

    def test_non_string_items_stop_start_up(self):
        cases = [
            ("app:\n  allowedOrigins:\n    - https://a.com\n    - {x: 1}\n", 4,
             "expected a string in the list, got a mapping"),
            ("app:\n  allowedOrigins: [https://a.com, [b]]\n", 2,
             "expected a string in the list, got a sequence"),
            ("app:\n  allowedOrigins:\n    - ~\n", 3, "expected a string in the list, got null"),
        ]
        for text, line, why in cases:
            rc, err, path = self.start(text)
            self.assertEqual(rc, 2, err)
            self.assertIn("%s:%d: key 'app.allowedOrigins': %s" % (path, line, why), err)


if __name__ == "__main__":
    main(sys.modules[__name__])
