"""The connection core under hostile clients: output is decided per whole
frame (a push that can never fit is refused up front, a slow consumer is
closed on a frame boundary), HTTP answers are bounded by back-pressure
instead of memory, a half-closed HTTP client gets every answer, and a large
pipeline behind a deferred send is answered instead of reset. Real clients
(raw sockets, RawWS) against a real node on 127.0.0.1; nothing asserts on
timing: every wait polls for a state the node reports. The pipeline behind
a pending send runs in cluster mode behind a Redis whose replies are slowed
down (SlowRedisProxy), so that the send stays pending for seconds."""

import json
import os
import socket
import ssl
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (IO_TIMEOUT, OP_PING, OP_TEXT, SLOW, Node, NodeCase, RawWS,  # noqa: E402
                     RedisServer, cluster_args, cmd_json, main, text, wait_until)
from test_shutdown_faults import SlowRedisProxy  # noqa: E402


def login_frame(user, app=101, seq="L"):
    return text(cmd_json("login", {"serviceToken": "", "appID": app, "userID": user}, seq=seq))


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def http_get(path, host="127.0.0.1"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode()


def count_answers(data):
    return data.count(b"HTTP/1.1 ")


def read_until_eof(sock, limit_s=30):
    sock.settimeout(limit_s * SLOW)
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            raise AssertionError("connection reset after %d bytes (%d answers)"
                                 % (len(out), count_answers(out)))
        if not chunk:
            return bytes(out)
        out += chunk


def next_push(ws):
    """The next push on a RawWS (pings answered); whole frames only."""
    while True:
        f = ws.recv_frame()
        assert f is not None, "EOF while waiting for a push"
        fin, op, payload = f
        if op == OP_PING:
            continue
        assert op == OP_TEXT and fin, (op, payload[:80])
        return payload


def next_message(ws):
    """The next "msg" push on a RawWS: enter/exit pushes of other tests'
    users leaving or joining the shared node's room are passed over."""
    while True:
        payload = next_push(ws)
        if json.loads(payload).get("cmd") not in ("enter", "exit"):
            return payload


class FrameCapTest(NodeCase):
    MAX_OUT = 65536
    ARGS = ("--set", "app.maxOutboundBytes=%d" % MAX_OUT, "--set", "app.maxMessageSize=1024")

    def test_push_frame_over_the_cap_is_refused_up_front(self):
        """A push whose frame is larger than app.maxOutboundBytes (JSON makes
        a control character 6 bytes) is answered 1001 naming `message`, and
        the recipient is neither sent a byte of it nor disconnected."""
        node = self.node
        ws = RawWS(node.ws_port)
        try:
            ws.send(login_frame("capped"))
            self.assertEqual(ws.recv_json()["response"]["code"], 200)
            big = "\x01" * (self.MAX_OUT // 4)         # ~16 KB of text, ~96 KB framed
            reply = node.api("/user/sendMessage", form={"appID": 101, "userID": "capped",
                                                        "msgID": "big-1", "message": big})
            self.assertEqual(reply["code"], 1001, reply)
            self.assertIn("message", reply["msg"])
            self.assertIn("maxOutboundBytes", reply["msg"])
            self.assertEqual(node.state()["slowConsumersClosed"], 0)
            # Order proves absence: the next push is the marker, whole.
            ok = node.api("/user/sendMessage", form={"appID": 101, "userID": "capped",
                                                     "msgID": "after-big", "message": "marker"})
            self.assertTrue(ok["data"]["sendResults"], ok)
            self.assertIn(b'"after-big"', next_push(ws))
            # The refused msgID was not used up: the same id may be sent again.
            again = node.api("/user/sendMessage", form={"appID": 101, "userID": "capped",
                                                        "msgID": "big-1", "message": "small now"})
            self.assertTrue(again["data"]["sendResults"], again)
            self.assertIn(b"small now", next_push(ws))
        finally:
            ws.close()

    def test_slow_consumer_is_closed_between_frames(self):
        """Pushes that fit one by one but pile up for a client that does not
        read: the connection ends with 1008 after whole frames only, and each
        push is either wholly delivered or not at all."""
        node = self.node
        slow = RawWS(node.ws_port, rcvbuf=4096)
        try:
            slow.send(login_frame("slowpoke"))
            self.assertEqual(slow.recv_json()["response"]["code"], 200)
            body = "\x02" * 9000                        # ~54 KB framed: under the cap, not twice
            sent = 0
            while node.state()["slowConsumersClosed"] == 0:
                self.assertLess(sent, 200, "the slow client was never closed")
                node.api("/user/sendMessage", form={"appID": 101, "userID": "slowpoke",
                                                    "msgID": "s-%d" % sent, "message": body})
                sent += 1
            code, reason, before = slow.read_close()
            self.assertEqual(code, 1008, (code, reason))
            self.assertEqual(reason, b"outbound queue full")
            self.assertGreaterEqual(len(before), 1)
            for fin, op, payload in before:            # every frame before it parsed whole
                self.assertTrue(fin)
                if op == OP_TEXT:
                    self.assertIn(b'"msg"', payload)
        finally:
            slow.close()


class NodeCapTest(NodeCase):
    MAX_OUT = 65536
    TOTAL = 61440
    ARGS = ("--set", "app.maxOutboundBytes=%d" % MAX_OUT,
            "--set", "app.maxOutboundBytesTotal=%d" % TOTAL, "--set", "app.maxMessageSize=1024")
    NODE_KW = {"workers": 1}

    def test_node_cap_closes_the_slow_client_not_a_reading_one(self):
        """With a client that does not read holding most of the node's
        queue cap, a push to a client that reads goes out whole: the
        node-wide cap only counts against a connection that queues."""
        node = self.node
        slow = RawWS(node.ws_port, rcvbuf=4096)
        fast = RawWS(node.ws_port)
        try:
            slow.send(login_frame("hoarder"))
            self.assertEqual(slow.recv_json()["response"]["code"], 200)
            fast.send(login_frame("reader"))
            self.assertEqual(fast.recv_json()["response"]["code"], 200)
            ten_kb = "\x03" * 1700                      # ~10 KB framed
            for i in range(3000):                        # until the node holds >= 30 KB for it
                if node.state()["outQueueBytes"] >= self.TOTAL // 2:
                    break
                node.api("/user/sendMessage", form={"appID": 101, "userID": "hoarder",
                                                    "msgID": "h-%d" % i, "message": ten_kb})
            state = node.state()
            self.assertGreaterEqual(state["outQueueBytes"], self.TOTAL // 2, state)
            self.assertEqual(state["slowConsumersClosed"], 0, state)
            thirty_kb = "\x04" * 5000                   # ~30 KB framed: with the hoard, over TOTAL
            r = node.api("/user/sendMessage", form={"appID": 101, "userID": "reader",
                                                    "msgID": "big-for-reader", "message": thirty_kb})
            self.assertTrue(r["data"]["sendResults"], r)
            self.assertIn(b'"big-for-reader"', next_push(fast))
            self.assertEqual(node.state()["slowConsumersClosed"], 0)
        finally:
            slow.close()
            fast.close()


class HttpBackPressureTest(NodeCase):
    def test_pipelining_client_that_never_reads_is_bounded(self):
        """One client pipelines chat-page requests and never reads: the node
        stops reading it at a bound instead of growing, WebSocket clients are
        not closed as slow consumers for it, and once the client reads it
        gets every answer."""
        node = self.node
        ws = RawWS(node.ws_port)
        ws.send(login_frame("bystander"))
        self.assertEqual(ws.recv_json()["response"]["code"], 200)
        page = len(node.http("/home/index")[2])
        self.assertGreater(page, 1000)
        requests = 4000                                  # ~page × 4000 if answers were all kept
        s = socket.create_connection(("127.0.0.1", node.http_port), timeout=IO_TIMEOUT)
        try:
            before = rss_bytes(node.proc.pid)
            blob = http_get("/home/index") * requests
            # The requests (a few hundred KB) fit in the socket buffers; the
            # answers (page × requests) would not fit in any bound.
            s.sendall(blob)
            wait_until(lambda: node.state()["httpOutQueueBytes"] >= 256 * 1024, timeout=30,
                       what="the node to hold answers up to its bound")
            state = node.state()
            self.assertLessEqual(state["httpOutQueueBytes"], 512 * 1024 + 2 * page, state)
            self.assertEqual(state["outQueueBytes"], 0, state)
            self.assertLess(rss_bytes(node.proc.pid) - before, 64 << 20)
            # The WebSocket client is served as before.
            r = node.api("/user/sendMessage", form={"appID": 101, "userID": "bystander",
                                                    "msgID": "bp-1", "message": "still here"})
            self.assertTrue(r["data"]["sendResults"], r)
            self.assertIn(b"still here", next_message(ws))
            self.assertEqual(node.state()["slowConsumersClosed"], 0)
            # Now the client reads: every request it managed to send is answered.
            s.shutdown(socket.SHUT_WR)
            data = read_until_eof(s, limit_s=120)
            self.assertEqual(count_answers(data), requests)
        finally:
            s.close()
            ws.close()

    def test_half_close_gets_every_answer(self):
        """Sends answered after delivery (deferred) followed by FIN: one, then
        200 pipelined; every one is answered before the node closes."""
        node = self.node
        ws = RawWS(node.ws_port)
        ws.send(login_frame("halfclose"))
        self.assertEqual(ws.recv_json()["response"]["code"], 200)
        try:
            for n in (1, 200):
                s = socket.create_connection(("127.0.0.1", node.http_port), timeout=IO_TIMEOUT)
                try:
                    s.sendall(b"".join(send_request("halfclose", "hc-%d-%d" % (n, i), "x")
                                       for i in range(n)))
                    s.shutdown(socket.SHUT_WR)
                    data = read_until_eof(s)
                    self.assertEqual(count_answers(data), n, data[-300:])
                    self.assertEqual(data.count(b'"sendResults":true'), n)
                finally:
                    s.close()
                for i in range(n):                         # each delivered once, in order
                    self.assertIn(b'"hc-%d-%d"' % (n, i), next_push(ws))
        finally:
            ws.close()


class TlsHalfCloseTest(unittest.TestCase):
    def test_tls_request_then_fin_is_answered(self):
        """Over TLS too: a send answered after delivery, then a TCP FIN from
        the client (no close_notify): the answer still arrives."""
        node = Node(tls=True)
        self.addCleanup(node.stop)
        ws_ctx = node.ssl_context
        raw = socket.create_connection(("127.0.0.1", node.ws_port), timeout=IO_TIMEOUT)
        wsock = ws_ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.addCleanup(wsock.close)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        wsock.sendall(("GET /acc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = wsock.recv(4096)
            self.assertTrue(chunk, "EOF during the TLS upgrade")
            head += chunk
        self.assertIn(b" 101 ", head.split(b"\r\n", 1)[0])
        wsock.sendall(login_frame("tlsuser"))
        s = node.ssl_context.wrap_socket(socket.create_connection(("127.0.0.1", node.http_port),
                                                                  timeout=IO_TIMEOUT),
                                         server_hostname="127.0.0.1")
        try:
            wait_until(lambda: node.state()["loggedIn"] == 1, what="the TLS user logged in")
            s.sendall(send_request("tlsuser", "tls-hc", "over tls"))
            # FIN on the TCP socket under the TLS session (a dup of its fd).
            socket.socket(fileno=os.dup(s.fileno())).shutdown(socket.SHUT_WR)
            data = b""
            s.settimeout(IO_TIMEOUT)
            while True:
                try:
                    chunk = s.recv(65536)
                except (ssl.SSLError, ConnectionResetError, OSError):
                    break
                if not chunk:
                    break
                data += chunk
            self.assertEqual(count_answers(data), 1, data[:300])
            self.assertIn(b'"sendResults":true', data)
        finally:
            s.close()


class SeparateCapsTest(NodeCase):
    ARGS = ("--set", "app.maxConnections=4", "--set", "app.maxHttpConnections=3")

    def test_idle_http_clients_do_not_lock_websocket_clients_out(self):
        """Idle API sockets count toward app.maxHttpConnections only: with
        the HTTP port full, WebSocket clients still log in up to their own
        cap, and the next HTTP client is told 503."""
        node = self.node
        idle = []
        try:
            for _ in range(3):
                idle.append(socket.create_connection(("127.0.0.1", node.http_port), timeout=IO_TIMEOUT))
            # Asked over one of the three (keep-alive): no fourth connection.
            wait_until(lambda: state_over(idle[0])["httpConnections"] == 3,
                       what="the 3 HTTP clients counted")
            self.assertEqual(state_over(idle[0])["maxHttpConnections"], 3)
            over = node.raw(b"", port=node.http_port, read_timeout=5)
            self.assertIn(b" 503 ", over.split(b"\r\n", 1)[0])
            ws = [RawWS(node.ws_port) for _ in range(4)]
            for i, w in enumerate(ws):
                w.send(login_frame("capped-%d" % i))
                self.assertEqual(w.recv_json()["response"]["code"], 200)
            extra = socket.create_connection(("127.0.0.1", node.ws_port), timeout=IO_TIMEOUT)
            extra.sendall(b"GET /acc HTTP/1.1\r\nHost: x\r\n\r\n")
            extra.settimeout(IO_TIMEOUT)
            self.assertIn(b" 503 ", extra.recv(4096).split(b"\r\n", 1)[0])
            extra.close()
            for w in ws:
                w.close()
        finally:
            for s in idle:
                s.close()
        # Every count goes back: only the asking connection is left.
        def back_to_baseline():
            status, _, body = node.http("/system/state")   # 503 while the idle ones still close
            data = json.loads(body)["data"] if status == 200 else {}
            return data.get("httpConnections") == 1 and data.get("connections") == 1
        wait_until(back_to_baseline, what="the counters back to the baseline")


def state_over(sock):
    """/system/state's data, asked on an open keep-alive connection."""
    sock.sendall(http_get("/system/state"))
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "EOF before the answer"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "EOF in the answer"
        body += chunk
    return json.loads(body)["data"]


def send_request(user, msgid, message, host="x"):
    form = urllib.parse.urlencode({"appID": 101, "userID": user, "msgID": msgid,
                                   "message": message}).encode()
    return (b"POST /user/sendMessage HTTP/1.1\r\nHost: %s\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
            % (host.encode(), len(form), form))


class SlowRedisPipelineTest(unittest.TestCase):
    """Cluster mode behind the slow Redis proxy of test_shutdown_faults.py:
    a send is answered only after several Redis round trips (seconds), so
    whatever the client pipelines behind it arrives while it is pending."""

    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.proxy = SlowRedisProxy(self.redis, delay=0.3)
        self.addCleanup(self.proxy.stop)
        self.node = Node(*cluster_args(self.proxy, register_interval=3600),
                         "--set", "cluster.redisTimeout=20000")
        self.addCleanup(self.node.stop)
        wait_until(lambda: self.node.self_addr in self.redis.hgetall("acc:hash:servers"),
                   timeout=20, what="the node registered in Redis")

    def test_pipeline_behind_a_deferred_send_is_answered(self):
        """More than 1 MB pipelined behind a pending send (and then FIN):
        every request is answered, the send first, no reset."""
        node = self.node
        pad = "p" * 900
        rest = b"".join(("OPTIONS /user/online?pad=%s&i=%d HTTP/1.1\r\nHost: x\r\n\r\n"
                         % (pad, i)).encode() for i in range(1500))
        self.assertGreater(len(rest), 1 << 20)
        s = socket.create_connection(("127.0.0.1", node.http_port), timeout=IO_TIMEOUT)
        try:
            s.sendall(send_request("nobody", "deferred-%s" % os.getpid(), "first") + rest)
            s.shutdown(socket.SHUT_WR)
            data = read_until_eof(s, limit_s=120)
            first_end = data.index(b"HTTP/1.1 ", 10)
            self.assertIn(b'"sendResults":false', data[:first_end])   # nobody is online
            self.assertEqual(count_answers(data), 1501)
            self.assertEqual(data.count(b"HTTP/1.1 204 "), 1500)
        finally:
            s.close()


if __name__ == "__main__":
    main(sys.modules[__name__])
