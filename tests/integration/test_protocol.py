"""Integration tests: the WebSocket protocol (SPEC §2).

Login/heartbeat/ping/logout and their error codes, invalid frames, enter/exit
pushes (rooms, tabs, platforms), multi-tab delivery, server pings, the
heartbeat timeout sweep, client pings and the echo endpoint.

Run: /usr/bin/python3 tests/integration/test_protocol.py"""

import asyncio
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, NodeCase, absent_until_marker, absent_until_pong,  # noqa: E402
                     close_all, connect, expect_pushes, frame, login, main, online, recv_json,
                     request, run, upgrade_request, wait_idle, wait_until, without_id)


# ---------- helpers ----------

async def send_raw(ws, obj):
    await ws.send(json.dumps(obj))


async def recv_push(ws, cmd, timeout=5):
    """Receives the next message and asserts it is a `cmd` push."""
    m = await recv_json(ws, timeout)
    assert m.get("cmd") == cmd, "expected a %r push, got %r" % (cmd, m)
    return m


def assert_push(tc, m, cmd, frm, msg=""):
    tc.assertIsInstance(m.get("seq"), str, m)
    tc.assertEqual(set(m), {"seq", "cmd", "response"}, m)
    tc.assertEqual(m["cmd"], cmd, m)
    tc.assertEqual(without_id(m)["response"], {"code": 200, "codeMsg": "Ok",
                                               "data": {"target": "", "type": "text", "msg": msg,
                                                        "from": frm}}, m)


class RawWS:
    """A minimal RFC 6455 client on a plain socket: it sees every frame the
    server sends (pings included) and never answers anything by itself.
    Unlike harness.RawWS it does not check the handshake answer (tests read
    .status and .head) and reads frames with a per-call timeout."""

    def __init__(self, port, path="/acc"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
        self.sock.sendall(upgrade_request(path, Host="127.0.0.1:%d" % port))
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ", 2)[1]) if self.head.startswith("HTTP/") else 0

    def send(self, opcode, payload=b"", fin=True):
        """Sends one masked frame."""
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock.sendall(frame(opcode, payload, fin=fin))

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise socket.timeout("no frame")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=5.0):
        """Returns (opcode, payload) of the next frame."""
        deadline = time.time() + timeout * SLOW
        b0, b1 = self._need(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8, deadline))[0]
        assert not (b1 & 0x80), "server frames must not be masked"
        return b0 & 0x0F, self._need(n, deadline)

    def close(self):
        self.sock.close()


# ---------- the protocol on a default node ----------

class ProtocolTest(NodeCase):
    def setUp(self):
        wait_idle(self.node)

    async def nothing_more(self, *targets, what="nothing"):
        """No message reached any target (ws, appID, userID) since its last
        expected one: proven by a marker push read after it."""
        await absent_until_marker(self.node, list(targets), what=what)

    # ---- login ----

    def test_login_reply_shape(self):
        async def t():
            ws = await connect(self.node)
            try:
                await send_raw(ws, {"seq": "abc-123", "cmd": "login",
                                    "data": {"serviceToken": "", "appID": 101, "userID": "shape"}})
                m = await recv_json(ws)
                self.assertEqual(m, {"seq": "abc-123", "cmd": "login",
                                     "response": {"code": 200, "codeMsg": "Success", "data": None}})
            finally:
                await close_all(ws)
        run(t())

    def test_login_field_spellings(self):
        cases = [("appID", "userID", 101), ("appId", "userId", 102), ("appid", "userid", 103),
                 ("APPID", "USERID", 104), ("appID", "userID", "102")]
        async def t():
            for i, (ak, uk, app) in enumerate(cases):
                user = "spell%d" % i
                ws = await connect(self.node)
                try:
                    r = await request(ws, "login", {"serviceToken": "", ak: app, uk: user})
                    self.assertEqual(r["response"]["code"], 200, (ak, uk, app, r))
                    self.assertTrue(online(self.node, int(app), user), (ak, uk, app))
                    other = 101 if int(app) != 101 else 102
                    self.assertFalse(online(self.node, other, user), (ak, uk, app))
                finally:
                    await close_all(ws)
        run(t())

    def test_login_errors(self):
        bad = [
            ({"appID": 101}, 1002),                                  # userID missing
            ({"appID": 101, "userID": ""}, 1002),                    # empty
            ({"appID": 101, "userID": "x" * 20}, 1002),              # 20 bytes
            ({"appID": 101, "userID": "é" * 10}, 1002),              # 20 bytes of UTF-8
            ({"appID": 101, "userID": 12345}, 1002),                 # not a string
            ({"appID": 999, "userID": ""}, 1002),                    # userID checked first
            ({"appID": 100, "userID": "u"}, 1003),
            ({"appID": 105, "userID": "u"}, 1003),
            ({"appID": 0, "userID": "u"}, 1003),
            ({"appID": -101, "userID": "u"}, 1003),
            ({"appID": "abc", "userID": "u"}, 1003),
            ({"appID": "999", "userID": "u"}, 1003),
            ({"userID": "u"}, 1003),                                 # appID missing
        ]
        async def t():
            ws = await connect(self.node)
            try:
                for i, (data, code) in enumerate(bad):
                    seq = "e%d" % i
                    r = await request(ws, "login", dict(data, serviceToken=""), seq=seq)
                    self.assertEqual(r["seq"], seq)
                    self.assertEqual(r["response"]["code"], code, (data, r))
                    self.assertIsNone(r["response"]["data"], r)
                # no data at all
                await send_raw(ws, {"seq": "nodata", "cmd": "login"})
                r = await recv_json(ws)
                self.assertEqual((r["seq"], r["cmd"], r["response"]["code"]), ("nodata", "login", 1002), r)
                # failed logins leave the connection usable and not logged in
                r = await request(ws, "heartbeat", {})
                self.assertEqual(r["response"]["code"], 1000, r)
                # a 19-byte userID is fine
                r = await request(ws, "login", {"serviceToken": "", "appID": 101, "userID": "y" * 19})
                self.assertEqual(r["response"]["code"], 200, r)
                self.assertTrue(online(self.node, 101, "y" * 19))
                self.assertFalse(online(self.node, 101, "u"))
            finally:
                await close_all(ws)
        run(t())

    def test_second_login_same_connection(self):
        async def t():
            ws = await login(self.node, "twice")
            try:
                r = await request(ws, "login", {"serviceToken": "", "appID": 101, "userID": "twice"})
                self.assertEqual(r["response"]["code"], 1009, r)
                self.assertEqual(r["response"]["codeMsg"], "Operation failed", r)
                r = await request(ws, "login", {"serviceToken": "", "appID": 102, "userID": "other"})
                self.assertEqual(r["response"]["code"], 1009, r)
                self.assertFalse(online(self.node, 102, "other"))
                self.assertTrue(online(self.node, 101, "twice"))
            finally:
                await close_all(ws)
        run(t())

    # ---- heartbeat, ping, logout, unknown ----

    def test_heartbeat_ping_logout(self):
        async def t():
            ws = await connect(self.node)
            try:
                r = await request(ws, "ping", {}, seq="p0")
                self.assertEqual(r, {"seq": "p0", "cmd": "ping",
                                     "response": {"code": 200, "codeMsg": "Success", "data": "pong"}})
                r = await request(ws, "heartbeat", {}, seq="h0")
                self.assertEqual(r, {"seq": "h0", "cmd": "heartbeat",
                                     "response": {"code": 1000, "codeMsg": "Not logged in", "data": None}})
                r = await request(ws, "logout", {}, seq="o0")
                self.assertEqual(r["response"]["code"], 1000, r)
                r = await request(ws, "login", {"serviceToken": "", "appID": 101, "userID": "hb"})
                self.assertEqual(r["response"]["code"], 200, r)
                r = await request(ws, "heartbeat", {}, seq="h1")
                self.assertEqual(r, {"seq": "h1", "cmd": "heartbeat",
                                     "response": {"code": 200, "codeMsg": "Success", "data": None}})
                r = await request(ws, "heartbeat", {"userID": "hb"}, seq="h2")
                self.assertEqual(r["response"]["code"], 200, r)
                r = await request(ws, "ping", {}, seq="p1")
                self.assertEqual(r["response"]["data"], "pong", r)
                r = await request(ws, "logout", {}, seq="o1")
                self.assertEqual(r, {"seq": "o1", "cmd": "logout",
                                     "response": {"code": 200, "codeMsg": "Success", "data": None}})
                r = await request(ws, "heartbeat", {}, seq="h3")
                self.assertEqual(r["response"]["code"], 1000, r)
                r = await request(ws, "logout", {}, seq="o2")
                self.assertEqual(r["response"]["code"], 1000, r)
                self.assertFalse(online(self.node, 101, "hb"))
                # the socket stays usable: log in again
                r = await request(ws, "login", {"serviceToken": "", "appID": 101, "userID": "hb"})
                self.assertEqual(r["response"]["code"], 200, r)
                self.assertTrue(online(self.node, 101, "hb"))
            finally:
                await close_all(ws)
        run(t())

    def test_unknown_cmd(self):
        async def t():
            ws = await connect(self.node)
            try:
                r = await request(ws, "nosuch", {}, seq="u1")
                self.assertEqual(r, {"seq": "u1", "cmd": "nosuch",
                                     "response": {"code": 1010, "codeMsg": "Route does not exist",
                                                  "data": None}})
                await login_on(ws, "unk")
                r = await request(ws, "Login2", {}, seq="u2")
                self.assertEqual(r["response"]["code"], 1010, r)
            finally:
                await close_all(ws)
        run(t())

    def test_invalid_frames(self):
        frames = ["{not json", "[1,2,3]", "\"a string\"", "42", "null", "",
                  json.dumps({"seq": "x", "data": {}}),
                  json.dumps({"seq": "x", "cmd": 5, "data": {}}),
                  json.dumps({"seq": "x", "cmd": None}),
                  json.dumps({"seq": "x", "cmd": ["login"]})]
        async def t():
            ws = await connect(self.node)
            try:
                for i, text in enumerate(frames):
                    await ws.send(text)
                    m = await recv_json(ws)
                    self.assertIsInstance(m, dict, (text, m))
                    self.assertEqual(m.get("response", {}).get("code"), 1001, (text, m))
                    # exactly one reply, and the connection still works
                    seq = "after%d" % i
                    await send_raw(ws, {"seq": seq, "cmd": "ping", "data": {}})
                    m = await recv_json(ws)
                    self.assertEqual((m["seq"], m["cmd"], m["response"]["data"]), (seq, "ping", "pong"),
                                     (text, m))
                # a binary frame is not part of the protocol either
                await ws.send(b'{"seq":"b","cmd":"ping","data":{}}')
                m = await recv_json(ws)
                self.assertEqual(m.get("response", {}).get("code"), 1001, m)
                r = await request(ws, "ping", {})
                self.assertEqual(r["response"]["data"], "pong", r)
                # also after login, and the login survives
                await login_on(ws, "inval")
                await ws.send("{oops")
                m = await recv_json(ws)
                self.assertEqual(m["response"]["code"], 1001, m)
                r = await request(ws, "heartbeat", {})
                self.assertEqual(r["response"]["code"], 200, r)
            finally:
                await close_all(ws)
        run(t())

    # ---- enter / exit ----

    def test_enter_exit_room(self):
        async def t():
            alice = bob = carol = None
            try:
                alice = await login(self.node, "alice", 101)
                carol = await login(self.node, "carol", 102)
                bob = await login(self.node, "bob", 101)
                m = await recv_json(alice)
                assert_push(self, m, "enter", "bob")
                await self.nothing_more((bob, 101, "bob"), (carol, 102, "carol"), (alice, 101, "alice"),
                                        what="no own enter at bob, none in another room, one at alice")
                # bob goes away (clean close): exit to the room
                await bob.close()
                m = await recv_json(alice)
                assert_push(self, m, "exit", "bob")
                await self.nothing_more((carol, 102, "carol"), (alice, 101, "alice"),
                                        what="no exit in another room, one at alice")
            finally:
                await close_all(alice, bob, carol)
        run(t())

    def test_exit_on_abrupt_disconnect(self):
        async def t():
            alice = bob = None
            try:
                alice = await login(self.node, "alice", 103)
                bob = await login(self.node, "bob", 103)
                assert_push(self, await recv_json(alice), "enter", "bob")
                bob.transport.abort()                 # TCP reset, no close frame
                assert_push(self, await recv_json(alice), "exit", "bob")
                wait_until(lambda: not online(self.node, 103, "bob"), what="bob offline")
                await self.nothing_more((alice, 103, "alice"), what="one exit")
            finally:
                await close_all(alice, bob)
        run(t())

    def test_exit_after_logout(self):
        async def t():
            alice = bob = None
            try:
                alice = await login(self.node, "alice", 101)
                bob = await login(self.node, "bob", 101)
                assert_push(self, await recv_json(alice), "enter", "bob")
                r = await request(bob, "logout", {})
                self.assertEqual(r["response"]["code"], 200, r)
                assert_push(self, await recv_json(alice), "exit", "bob")
                # logged out, bob can get no marker push: his own worker's
                # answer to a ping is the marker (his exit was posted before
                # the logout reply)
                await absent_until_pong(bob, what="no own exit at bob")
                self.assertFalse(online(self.node, 101, "bob"))
                # log in again on the same socket: a new enter
                r = await request(bob, "login", {"serviceToken": "", "appID": 101, "userID": "bob"})
                self.assertEqual(r["response"]["code"], 200, r)
                assert_push(self, await recv_json(alice), "enter", "bob")
                await self.nothing_more((alice, 101, "alice"), (bob, 101, "bob"),
                                        what="one enter at alice, none at bob")
            finally:
                await close_all(alice, bob)
        run(t())

    def test_second_tab_no_extra_enter_exit(self):
        async def t():
            alice = tab1 = tab2 = None
            try:
                alice = await login(self.node, "alice", 101)
                tab1 = await login(self.node, "bob", 101)
                assert_push(self, await recv_json(alice), "enter", "bob")
                tab2 = await login(self.node, "bob", 101)
                # no second enter at alice; bob does not hear himself
                await self.nothing_more((alice, 101, "alice"), (tab1, 101, "bob"), (tab2, 101, "bob"),
                                        what="no enter for a second tab")
                await tab1.close()                    # an exit would be posted before the close frame
                await self.nothing_more((alice, 101, "alice"), (tab2, 101, "bob"),
                                        what="no exit while a tab is left")
                self.assertTrue(online(self.node, 101, "bob"))
                await tab2.close()
                assert_push(self, await recv_json(alice), "exit", "bob")
                await self.nothing_more((alice, 101, "alice"), what="one exit")
            finally:
                await close_all(alice, tab1, tab2)
        run(t())

    def test_multi_platform_rooms(self):
        async def t():
            alice = dave = b1 = b2 = None
            try:
                alice = await login(self.node, "alice", 101)
                dave = await login(self.node, "dave", 102)
                b1 = await login(self.node, "bob", 101)
                assert_push(self, await recv_json(alice), "enter", "bob")
                await self.nothing_more((dave, 102, "dave"), what="no enter from another room")
                b2 = await login(self.node, "bob", 102)
                assert_push(self, await recv_json(dave), "enter", "bob")
                await self.nothing_more((alice, 101, "alice"), (b1, 101, "bob"), (dave, 102, "dave"),
                                        what="one enter per room")
                self.assertTrue(online(self.node, 101, "bob"))
                self.assertTrue(online(self.node, 102, "bob"))
                await b1.close()
                assert_push(self, await recv_json(alice), "exit", "bob")
                await self.nothing_more((dave, 102, "dave"), (alice, 101, "alice"),
                                        what="an exit only in the room bob left")
                self.assertTrue(online(self.node, 102, "bob"))
                wait_until(lambda: not online(self.node, 101, "bob"), what="bob offline on 101")
                await b2.close()
                assert_push(self, await recv_json(dave), "exit", "bob")
                await self.nothing_more((alice, 101, "alice"), (dave, 102, "dave"),
                                        what="one exit, in room 102 only")
            finally:
                await close_all(alice, dave, b1, b2)
        run(t())

    # ---- delivery to every tab ----

    def test_multi_tab_delivery(self):
        async def t():
            t1 = t2 = t3 = other = None
            try:
                t1 = await login(self.node, "tabby", 101)
                t2 = await login(self.node, "tabby", 101)
                t3 = await login(self.node, "tabby", 102)
                other = await login(self.node, "other", 101)
                for ws in (t1, t2):                   # "other" came after tabby, in room 101
                    await expect_pushes(ws, [("enter", "other")])
                r = self.node.api("/user/sendMessage", params={
                    "appID": 101, "userID": "tabby", "msgID": "tab-1", "message": "to all tabs"})
                self.assertEqual(r["data"], {"sendResults": True}, r)
                for ws in (t1, t2):
                    m = await recv_json(ws)
                    self.assertEqual(m["seq"], "tab-1", m)
                    assert_push(self, m, "msg", "tabby", "to all tabs")
                await self.nothing_more((t1, 101, "tabby"), (t2, 101, "tabby"), (t3, 102, "tabby"),
                                        (other, 101, "other"),
                                        what="one copy per tab of app 101, none on app 102 or at other")
            finally:
                await close_all(t1, t2, t3, other)
        run(t())

    # ---- RFC 6455 pings from the client ----

    def test_client_ping_pong(self):
        async def t():
            ws = await login(self.node, "pinger", 101)
            try:
                waiter = await ws.ping(b"abc")
                await asyncio.wait_for(waiter, 5 * SLOW)
                r = await request(ws, "heartbeat", {})
                self.assertEqual(r["response"]["code"], 200, r)
            finally:
                await close_all(ws)
        run(t())

    def test_client_ping_pong_raw(self):
        raw = RawWS(self.node.ws_port)
        try:
            self.assertEqual(raw.status, 101, raw.head)
            raw.send(0x9, b"abc")
            op, payload = raw.recv_frame()
            self.assertEqual((op, payload), (0xA, b"abc"))
            raw.send(0x9, b"")
            op, payload = raw.recv_frame()
            self.assertEqual((op, payload), (0xA, b""))
            raw.send(0x1, json.dumps({"seq": "1", "cmd": "ping", "data": {}}))
            op, payload = raw.recv_frame()
            self.assertEqual(op, 0x1)
            self.assertEqual(json.loads(payload)["response"]["data"], "pong")
        finally:
            raw.close()

    # ---- no echo endpoint unless configured ----

    def test_echo_off_by_default(self):
        raw = RawWS(self.node.ws_port, "/echo")
        try:
            self.assertEqual(raw.status, 404, raw.head)
        finally:
            raw.close()
        raw = RawWS(self.node.ws_port, "/acc")
        try:
            self.assertEqual(raw.status, 101, raw.head)
        finally:
            raw.close()


async def login_on(ws, user, app=101):
    r = await request(ws, "login", {"serviceToken": "", "appID": app, "userID": user})
    assert r["response"]["code"] == 200, r


# ---------- server pings ----------

class ServerPingTest(NodeCase):
    """Pings every second of idleness; a connection idle for more than 3 s is
    closed. Raw clients see every ping frame and decide whether to answer."""
    ARGS = ("--set", "app.pingInterval=1", "--set", "app.sweepInterval=1",
            "--set", "app.connectionTimeout=3")

    def setUp(self):
        wait_idle(self.node)

    def _raw_login(self, user):
        raw = RawWS(self.node.ws_port)
        self.assertEqual(raw.status, 101, raw.head)
        raw.send(0x1, json.dumps({"seq": "l", "cmd": "login",
                                  "data": {"serviceToken": "", "appID": 101, "userID": user}}))
        op, payload = raw.recv_frame()
        self.assertEqual(op, 0x1)
        self.assertEqual(json.loads(payload)["response"]["code"], 200, payload)
        return raw

    def test_idle_client_gets_ping(self):
        raw = RawWS(self.node.ws_port)
        try:
            self.assertEqual(raw.status, 101, raw.head)
            raw.send(0x1, json.dumps({"seq": "l", "cmd": "login",
                                      "data": {"serviceToken": "", "appID": 101, "userID": "idle"}}))
            op, payload = raw.recv_frame()
            self.assertEqual(op, 0x1)
            self.assertEqual(json.loads(payload)["response"]["code"], 200)
            deadline = time.time() + 8 * SLOW
            seen = []
            while time.time() < deadline:
                op, payload = raw.recv_frame(timeout=8)
                seen.append(op)
                if op == 0x9:
                    break
            self.assertIn(0x9, seen, "no WebSocket ping from the server")
            # answering the ping keeps the connection usable
            raw.send(0xA, payload)
            raw.send(0x1, json.dumps({"seq": "p", "cmd": "ping", "data": {}}))
            while True:
                op, payload = raw.recv_frame()
                if op == 0x1:
                    break
                self.assertEqual(op, 0x9)
            self.assertEqual(json.loads(payload)["response"]["data"], "pong")
        finally:
            raw.close()

    PINGS = 6

    def test_answered_pings_keep_the_connection(self):
        """A client that sends nothing but pongs outlives app.connectionTimeout:
        one ping per sweep (1 s apart), so 6 pings span at least 5 s, more
        than the 3 s after which a silent connection is closed."""
        raw = self._raw_login("ponger")
        try:
            pings = 0
            while pings < self.PINGS:
                op, payload = raw.recv_frame(timeout=10)
                self.assertNotEqual(op, 0x8, "closed after %d answered pings: %r" % (pings, payload))
                self.assertEqual(op, 0x9, "expected only pings, got op %d %r" % (op, payload))
                raw.send(0xA, payload)
                pings += 1
            raw.send(0x1, json.dumps({"seq": "p", "cmd": "ping", "data": {}}))
            while True:
                op, payload = raw.recv_frame()
                if op != 0x9:
                    break
                raw.send(0xA, payload)
            self.assertEqual(op, 0x1, payload)
            self.assertEqual(json.loads(payload)["response"]["data"], "pong")
            self.assertTrue(online(self.node, 101, "ponger"))
        finally:
            raw.close()

    def test_unanswered_pings_do_not_keep_the_connection(self):
        """The counterpart: pings left unanswered do not count as activity;
        the connection gets the timeout's close (1001 "heartbeat timeout")."""
        raw = self._raw_login("deaf")
        try:
            pings = 0
            while True:
                op, payload = raw.recv_frame(timeout=10)
                if op != 0x9:
                    break
                pings += 1
            self.assertEqual(op, 0x8, "expected pings then a close frame, got op %d %r" % (op, payload))
            self.assertEqual(struct.unpack("!H", payload[:2])[0], 1001, payload)
            self.assertEqual(payload[2:], b"heartbeat timeout")
            self.assertGreaterEqual(pings, 1, "no ping before the timeout")
            wait_until(lambda: not online(self.node, 101, "deaf"), what="deaf offline")
        finally:
            raw.close()


# ---------- the heartbeat timeout sweep ----------

class TimeoutSweepTest(NodeCase):
    """One worker, so one sweep: a silent connection opened later than a
    client that must survive is a witness of the sweep having run past that
    client's timeout."""
    ARGS = ("--set", "app.connectionTimeout=2", "--set", "app.pingInterval=0",
            "--set", "app.sweepInterval=1")
    NODE_KW = {"workers": 1}

    def setUp(self):
        wait_idle(self.node)

    async def _heartbeats(self, ws, stop):
        i = 0
        while not stop.is_set():
            i += 1
            await send_raw(ws, {"seq": "hb%d" % i, "cmd": "heartbeat", "data": {}})
            try:
                await asyncio.wait_for(stop.wait(), 0.4)
            except asyncio.TimeoutError:
                pass

    def test_idle_client_is_closed(self):
        async def t():
            watcher = idle = None
            stop = asyncio.Event()
            hb = None
            try:
                watcher = await login(self.node, "watcher", 101, ping_interval=None)
                hb = asyncio.ensure_future(self._heartbeats(watcher, stop))
                idle = await login(self.node, "idler", 101, ping_interval=None)
                self.assertTrue(online(self.node, 101, "idler"))
                got = []
                deadline = time.time() + 15 * SLOW
                while time.time() < deadline:
                    m = await recv_json(watcher, 15)
                    if m["cmd"] == "heartbeat":
                        self.assertEqual(m["response"]["code"], 200, m)
                        continue
                    got.append(m)
                    if m["cmd"] == "exit":
                        break
                self.assertEqual([m["cmd"] for m in got], ["enter", "exit"], got)
                assert_push(self, got[0], "enter", "idler")
                assert_push(self, got[1], "exit", "idler")
                await asyncio.wait_for(idle.wait_closed(), 10 * SLOW)
                self.assertEqual((idle.close_code, idle.close_reason), (1001, "heartbeat timeout"))
                self.assertFalse(online(self.node, 101, "idler"))
                self.assertFalse(online(self.node, 0, "idler"))
                # the heartbeating client is still there
                self.assertTrue(watcher.open)
                self.assertTrue(online(self.node, 101, "watcher"))
                users = self.node.api("/user/list", params={"appID": 101})["data"]
                self.assertEqual(users, {"userCount": 1, "userList": ["watcher"]})
            finally:
                stop.set()
                if hb:
                    await hb
                await close_all(watcher, idle)
        run(t())

    def test_heartbeats_keep_connection(self):
        async def t():
            ws = witness = None
            stop = asyncio.Event()
            hb = None
            try:
                ws = await login(self.node, "keeper", 102, ping_interval=None)
                hb = asyncio.ensure_future(self._heartbeats(ws, stop))
                # silent from its upgrade on, which is later than keeper's
                # login: once the sweep closes it, keeper's own silence (had
                # the heartbeats not counted) would have passed the timeout too
                witness = await connect(self.node, ping_interval=None)
                await asyncio.wait_for(witness.wait_closed(), 15 * SLOW)
                self.assertEqual((witness.close_code, witness.close_reason), (1001, "heartbeat timeout"))
                stop.set()
                await hb
                hb = None
                seq = "after-witness"
                await send_raw(ws, {"seq": seq, "cmd": "ping", "data": {}})
                replies = []
                while True:
                    m = await recv_json(ws)
                    if m.get("seq") == seq:
                        break
                    replies.append(m)
                self.assertEqual(m["response"]["data"], "pong", m)
                self.assertGreaterEqual(len(replies), 1, "no heartbeat was answered")
                for m in replies:
                    self.assertEqual((m["cmd"], m["response"]["code"]), ("heartbeat", 200), m)
                self.assertTrue(online(self.node, 102, "keeper"))
            finally:
                stop.set()
                if hb:
                    await hb
                await close_all(ws, witness)
        run(t())

    def test_unauthenticated_idle_client_is_closed(self):
        async def t():
            ws = await connect(self.node, ping_interval=None)
            try:
                await asyncio.wait_for(ws.wait_closed(), 10 * SLOW)
                self.assertEqual((ws.close_code, ws.close_reason), (1001, "heartbeat timeout"))
            finally:
                await close_all(ws)
        run(t())


# ---------- the echo endpoint ----------

class EchoTest(NodeCase):
    NODE_KW = {"config": "app:\n  echoPath: /echo\n"}

    def test_echo_text_and_binary(self):
        async def t():
            ws = await connect(self.node, "/echo")
            try:
                for text in ["hello", "", "héllo wörld ✓ 😀", "x" * 5000,
                             json.dumps({"seq": "1", "cmd": "login", "data": {}})]:
                    await ws.send(text)
                    back = await asyncio.wait_for(ws.recv(), 5 * SLOW)
                    self.assertIsInstance(back, str)
                    self.assertEqual(back, text)
                for data in [b"\x00\x01\x02\xff", b"", os.urandom(70000 // 2)]:
                    await ws.send(data)
                    back = await asyncio.wait_for(ws.recv(), 5 * SLOW)
                    self.assertIsInstance(back, bytes)
                    self.assertEqual(back, data)
            finally:
                await close_all(ws)
        run(t())

    def test_acc_still_works(self):
        async def t():
            ws = await login(self.node, "echoer", 101)
            try:
                r = await request(ws, "ping", {})
                self.assertEqual(r["response"]["data"], "pong")
            finally:
                await close_all(ws)
        run(t())


if __name__ == "__main__":
    main(sys.modules[__name__])
