"""Integration tests: the HTTP API (SPEC §3).

Every path, parameter sources (query, form, JSON), parameter errors, CORS,
keep-alive and pipelining, msgID de-duplication and a room broadcast across
both workers.

Run: /usr/bin/python3 tests/integration/test_api.py"""

import asyncio
import http.client
import json
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, NodeCase, absent_until_marker, close_all, connect,  # noqa: E402
                     expect_pushes, is_push, login, main, recv_json, request, run,
                     until_marker, wait_idle, wait_until, without_id)


# ---------- helpers ----------

def expected_push(msgid, message, frm):
    return {"seq": msgid, "cmd": "msg",
            "response": {"code": 200, "codeMsg": "Ok",
                         "data": {"target": "", "type": "text", "msg": message, "from": frm}}}


def read_http_response(sock_file):
    """Reads one HTTP/1.1 response (Content-Length framed) from a file object."""
    status_line = sock_file.readline().decode("latin-1")
    if not status_line:
        raise EOFError("connection closed")
    headers = {}
    while True:
        line = sock_file.readline().decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = sock_file.read(n) if n else b""
    return int(status_line.split(" ", 2)[1]), headers, body


class ApiTestBase(NodeCase):

    def setUp(self):
        wait_idle(self.node)

    def api(self, path, **kw):
        return self.node.api(path, **kw)

    def send(self, app, user, message, msgid, path="/user/sendMessage"):
        return self.api(path, params={"appID": app, "userID": user, "msgID": msgid, "message": message})

    def online(self, app, user):
        r = self.api("/user/online", params={"appID": app, "userID": user})
        self.assertEqual(r["code"], 200, r)
        return r["data"]["online"]

    def user_list(self, app):
        r = self.api("/user/list", params={"appID": app})
        self.assertEqual(r["code"], 200, r)
        return r["data"]

    async def nothing_more(self, *targets, what="nothing"):
        """No message reached any target (ws, appID, userID) since its last
        expected one: proven by a marker push read after it."""
        await absent_until_marker(self.node, list(targets), what=what)


# ---------- paths ----------

class PathsTest(ApiTestBase):

    def test_user_list(self):
        async def t():
            socks = []
            try:
                self.assertEqual(self.user_list(104), {"userCount": 0, "userList": []})
                socks.append(await login(self.node, "alice", 104))
                socks.append(await login(self.node, "bob", 104))
                socks.append(await login(self.node, "bob", 104))        # a second tab
                socks.append(await login(self.node, "carol", 103))      # another room
                d = self.user_list(104)
                self.assertEqual(d["userCount"], 2, d)
                self.assertEqual(sorted(d["userList"]), ["alice", "bob"], d)
                self.assertEqual(self.user_list(103), {"userCount": 1, "userList": ["carol"]})
                self.assertEqual(self.user_list(102), {"userCount": 0, "userList": []})
                # one of bob's tabs goes: bob stays; alice goes: she is gone
                await socks[2].close()
                await socks[0].close()
                wait_until(lambda: self.user_list(104) == {"userCount": 1, "userList": ["bob"]},
                           what="only bob in room 104")
                await socks[1].close()
                wait_until(lambda: self.user_list(104) == {"userCount": 0, "userList": []},
                           what="room 104 empty")
                self.assertEqual(self.user_list(103), {"userCount": 1, "userList": ["carol"]})
            finally:
                await close_all(*socks)
        run(t())

    def test_user_online(self):
        async def t():
            a = b = None
            try:
                r = self.api("/user/online", params={"appID": 101, "userID": "olive"})
                self.assertEqual(r, {"code": 200, "msg": "Success",
                                     "data": {"userID": "olive", "online": False}})
                a = await login(self.node, "olive", 102)
                r = self.api("/user/online", params={"appID": 102, "userID": "olive"})
                self.assertEqual(r, {"code": 200, "msg": "Success",
                                     "data": {"userID": "olive", "online": True}})
                self.assertFalse(self.online(101, "olive"))
                self.assertTrue(self.online(0, "olive"))           # any platform
                self.assertFalse(self.online(0, "oliv"))
                self.assertFalse(self.online(0, "olivee"))
                b = await login(self.node, "olive", 101)
                self.assertTrue(self.online(101, "olive"))
                r = await request(b, "logout", {})
                self.assertEqual(r["response"]["code"], 200, r)
                self.assertFalse(self.online(101, "olive"))
                self.assertTrue(self.online(0, "olive"))
                r = await request(a, "logout", {})
                self.assertEqual(r["response"]["code"], 200, r)
                self.assertFalse(self.online(102, "olive"))
                self.assertFalse(self.online(0, "olive"))
            finally:
                await close_all(a, b)
        run(t())

    def test_send_message(self):
        async def t():
            ws = other = None
            try:
                ws = await login(self.node, "sam", 101)
                other = await login(self.node, "tom", 101)
                await expect_pushes(ws, [("enter", "tom")])      # tom came after sam
                status, hdrs, body = self.node.http("/user/sendMessage", params={
                    "appID": 101, "userID": "sam", "msgID": "m-1", "message": "hello sam"})
                self.assertEqual(status, 200, body)
                self.assertIn("application/json", hdrs.get("content-type", ""))
                self.assertEqual(json.loads(body), {"code": 200, "msg": "Success",
                                                    "data": {"sendResults": True}})
                m = await recv_json(ws)
                self.assertEqual(without_id(m), expected_push("m-1", "hello sam", "sam"))
                await self.nothing_more((ws, 101, "sam"), (other, 101, "tom"),
                                        what="one copy of m-1 at sam and none at tom")
                # offline user, and a user of another room
                # (stored in their inboxes for their next login: SPEC 7.1)
                r = self.send(101, "nobody", "x", "m-2")
                self.assertEqual(r, {"code": 200, "msg": "Success",
                                     "data": {"sendResults": False, "stored": True}})
                r = self.send(102, "sam", "x", "m-3")
                self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
                r = self.send(101, "s" * 20, "x", "m-4")             # no such userID can log in
                self.assertEqual(r["data"], {"sendResults": False}, r)
                # a large message in a POST body
                big = "0123456789abcdef" * 2000
                r = self.api("/user/sendMessage", form={"appID": 101, "userID": "sam",
                                                        "msgID": "m-big", "message": big})
                self.assertEqual(r["data"], {"sendResults": True}, r)
                # nothing from the refused sends came first, and one copy of m-big
                self.assertEqual(without_id(await recv_json(ws)), expected_push("m-big", big, "sam"))
                await self.nothing_more((ws, 101, "sam"), what="one copy of m-big")
            finally:
                await close_all(ws, other)
        run(t())

    def test_send_message_all(self):
        async def t():
            socks = []
            try:
                alice1 = await login(self.node, "alice", 102)
                alice2 = await login(self.node, "alice", 102)
                bob1 = await login(self.node, "bob", 102)
                bob2 = await login(self.node, "bob", 102)
                carol = await login(self.node, "carol", 102)
                dave = await login(self.node, "dave", 101)               # another room
                socks = [alice1, alice2, bob1, bob2, carol, dave]
                # the enters of the users who came later (a second tab: none)
                for ws in (alice1, alice2):
                    await expect_pushes(ws, [("enter", "bob"), ("enter", "carol")])
                for ws in (bob1, bob2):
                    await expect_pushes(ws, [("enter", "carol")])
                targets = [(alice1, 102, "alice"), (alice2, 102, "alice"), (bob1, 102, "bob"),
                           (bob2, 102, "bob"), (carol, 102, "carol"), (dave, 101, "dave")]
                await self.nothing_more(*targets, what="no other enter push")
                r = self.send(102, "alice", "to the room", "all-1", "/user/sendMessageAll")
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {"sendResults": True}})
                for ws in (bob1, bob2, carol):
                    m = await recv_json(ws)
                    self.assertEqual(without_id(m), expected_push("all-1", "to the room", "alice"))
                await self.nothing_more(*targets, what="one copy at bob's tabs and carol, "
                                        "none at the sender alice or at dave (another room)")
                # a sender who is not in the room: everyone
                r = self.send(102, "system", "all of you", "all-2", "/user/sendMessageAll")
                self.assertEqual(r["data"], {"sendResults": True}, r)
                for ws in (alice1, alice2, bob1, bob2, carol):
                    m = await recv_json(ws)
                    self.assertEqual(without_id(m), expected_push("all-2", "all of you", "system"))
                await self.nothing_more(*targets, what="one copy in room 102, none in room 101")
            finally:
                await close_all(*socks)
        run(t())

    def test_system_state(self):
        async def t():
            socks = []
            try:
                s0 = self.node.state()
                self.assertEqual((s0["wsConnections"], s0["loggedIn"], s0["users"]), (0, 0, 0), s0)
                self.assertEqual(s0["workers"], 2, s0)
                self.assertIn("memory", s0)
                self.assertGreaterEqual(s0["connections"], 1, s0)    # this request
                plain = await connect(self.node)
                socks.append(plain)
                wait_until(lambda: self.node.state()["wsConnections"] == 1, what="1 ws connection")
                s = self.node.state()
                self.assertEqual((s["loggedIn"], s["users"]), (0, 0), s)
                self.assertGreaterEqual(s["connections"], 2, s)
                a1 = await login(self.node, "alice", 101)
                a2 = await login(self.node, "alice", 101)
                b = await login(self.node, "bob", 102)
                socks += [a1, a2, b]
                s = self.node.state()
                self.assertEqual((s["wsConnections"], s["loggedIn"], s["users"]), (4, 3, 2), s)
                self.assertGreaterEqual(s["connections"], 5, s)
                self.assertEqual(sum(w["loggedIn"] for w in s["perWorker"]), 3, s)
                # isDebug lists the clients and user keys
                st, _, body = self.node.http("/system/state", params={"isDebug": "true"})
                self.assertEqual(st, 200, body)
                d = json.loads(body)["data"]
                clients = sorted((c["appID"], c["userID"], c["addr"]) for c in d["clients"])
                want = sorted([(101, "alice", "127.0.0.1:%d" % a1.local_address[1]),
                               (101, "alice", "127.0.0.1:%d" % a2.local_address[1]),
                               (102, "bob", "127.0.0.1:%d" % b.local_address[1])])
                self.assertEqual(clients, want, d["clients"])
                self.assertEqual(sorted(d["userKeys"]), ["101_alice", "102_bob"], d)
                # without isDebug: no client list
                self.assertNotIn("clients", self.node.state())
                await a2.close()
                await plain.close()
                wait_until(lambda: (lambda s: (s["wsConnections"], s["loggedIn"], s["users"]) == (2, 2, 2))(
                    self.node.state()), what="2 connections, 2 users")
                await a1.close()
                await b.close()
                wait_until(lambda: (lambda s: (s["wsConnections"], s["loggedIn"], s["users"]) == (0, 0, 0))(
                    self.node.state()), what="no connection left")
                d = self.api("/system/state", params={"isDebug": "true"})["data"]
                self.assertEqual((d["clients"], d["userKeys"]), ([], []), d)
            finally:
                await close_all(*socks)
        run(t())

    def test_home_index(self):
        st, hdrs, p101 = self.node.http("/home/index", params={"appID": 101})
        self.assertEqual(st, 200)
        self.assertIn("text/html", hdrs.get("content-type", ""))
        self.assertIn(b"<html", p101.lower())
        st, hdrs, p103 = self.node.http("/home/index", params={"appID": 103})
        self.assertEqual(st, 200)
        self.assertIn(b"103", p103)
        self.assertNotEqual(p103, p101)
        self.assertNotIn(b"{{APP_ID}}", p103)
        for bad in ({"appID": 999}, {"appID": "abc"}, {}):
            st, _, page = self.node.http("/home/index", params=bad)
            self.assertEqual(st, 200, bad)
            self.assertEqual(page, p101, bad)

    def test_metrics(self):
        st, hdrs, body = self.node.http("/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hdrs.get("content-type", "").startswith("text/plain"), hdrs)
        text = body.decode()
        self.assertRegex(text, r"(?m)^# TYPE imgate_connections gauge$")
        m = re.search(r"(?m)^imgate_connections (\d+(\.\d+)?)$", text)
        self.assertIsNotNone(m, text)
        self.assertGreaterEqual(float(m.group(1)), 1)
        for line in text.splitlines():                      # every line is valid exposition
            if line and not line.startswith("#"):
                self.assertRegex(line, r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+\-]+$", line)

    def test_unknown_path(self):
        for path in ("/nope", "/user/nope", "/user/list/extra"):
            st, hdrs, body = self.node.http(path, params={"appID": 101})
            self.assertEqual(st, 404, path)
            d = json.loads(body)
            self.assertEqual(d["code"], 1010, (path, d))
            self.assertEqual(hdrs.get("access-control-allow-origin"), "*", path)


# ---------- parameters ----------

class ParamsTest(ApiTestBase):

    def test_sources_and_names(self):
        async def t():
            ws = await login(self.node, "pat", 103)
            try:
                n = 0
                variants = [
                    dict(params={"appID": 103, "userID": "pat", "msgID": "", "message": "q"}),
                    dict(form={"appID": "103", "userID": "pat", "message": "f"}),
                    dict(form={"appID": "103", "userID": "pat", "message": "f2"}, method="POST"),
                    dict(json_body={"appID": "103", "userID": "pat", "message": "js"}),
                    dict(json_body={"appID": 103, "userID": "pat", "message": "jn"}),
                    dict(params={"appid": 103, "userid": "pat", "MESSAGE": "lc"}),
                    dict(params={"APPID": 103, "USERID": "pat", "message": "uc"}),
                    dict(json_body={"appId": 103, "userId": "pat", "Message": "jc"}),
                    dict(json_body={"appID": 103, "userID": "pat", "message": "charset"},
                         headers={"Content-Type": "application/json; charset=utf-8"}),
                    dict(params={"appID": 103}, form={"userID": "pat", "message": "mix"}),
                ]
                for kw in variants:
                    r = self.api("/user/sendMessage", **kw)
                    self.assertEqual(r["data"], {"sendResults": True}, (kw, r))
                    m = await recv_json(ws)
                    want = kw.get("form") or kw.get("json_body") or kw.get("params")
                    want = {k.lower(): v for k, v in want.items()}["message"]
                    self.assertEqual(m["response"]["data"]["msg"], want, (kw, m))
                    n += 1
                await self.nothing_more((ws, 103, "pat"), what="one push per send")
                # the read paths too
                for kw in (dict(params={"appid": 103, "USERID": "pat"}),
                           dict(form={"appID": 103, "userID": "pat"}),
                           dict(json_body={"appID": 103, "userID": "pat"}),
                           dict(json_body={"appID": "103", "userID": "pat"})):
                    r = self.api("/user/online", **kw)
                    self.assertEqual(r["data"], {"userID": "pat", "online": True}, (kw, r))
                for kw in (dict(params={"APPID": 103}), dict(form={"appID": 103}),
                           dict(json_body={"appID": 103})):
                    r = self.api("/user/list", **kw)
                    self.assertEqual(r["data"], {"userCount": 1, "userList": ["pat"]}, (kw, r))
            finally:
                await close_all(ws)
        run(t())

    def test_message_bytes_exact(self):
        messages = ['unicode: héllo wörld ✓ 日本語 😀',
                    'quotes: "double" \'single\' back\\slash',
                    'newlines:\nline2\r\nline3\ttab',
                    '<script>alert("x")</script> & &amp; %20 + = ? #',
                    '{"json":"inside"}',
                    ' leading and trailing spaces ']
        async def t():
            ws = await login(self.node, "exact", 101)
            try:
                i = 0
                for msg in messages:
                    for how in ("params", "form", "json_body"):
                        i += 1
                        msgid = "exact-%d" % i
                        r = self.api("/user/sendMessage", **{how: {
                            "appID": 101, "userID": "exact", "msgID": msgid, "message": msg}})
                        self.assertEqual(r["data"], {"sendResults": True}, (how, msg, r))
                        raw = await asyncio.wait_for(ws.recv(), 5 * SLOW)
                        m = json.loads(raw)
                        self.assertEqual(without_id(m), expected_push(msgid, msg, "exact"), (how, raw))
                # sendMessageAll too
                r = self.api("/user/sendMessageAll", json_body={
                    "appID": 101, "userID": "someone", "msgID": "exact-all", "message": messages[0]})
                self.assertEqual(r["data"], {"sendResults": True}, r)
                self.assertEqual(without_id(await recv_json(ws)), expected_push("exact-all", messages[0], "someone"))
            finally:
                await close_all(ws)
        run(t())

    def test_parameter_errors(self):
        cases = [
            ("/user/list", {}, "appID"),
            ("/user/list", {"appID": "abc"}, "appID"),
            ("/user/list", {"appID": "-1"}, "appID"),
            ("/user/online", {"userID": "x"}, "appID"),
            ("/user/online", {"appID": 101}, "userID"),
            ("/user/online", {"appID": "1x", "userID": "x"}, "appID"),
            ("/user/sendMessage", {"userID": "x", "message": "m"}, "appID"),
            ("/user/sendMessage", {"appID": "abc", "userID": "x", "message": "m"}, "appID"),
            ("/user/sendMessage", {"appID": 101, "message": "m"}, "userID"),
            ("/user/sendMessage", {"appID": 101, "userID": "x"}, "message"),
            ("/user/sendMessageAll", {"userID": "x", "message": "m"}, "appID"),
            ("/user/sendMessageAll", {"appID": 101, "userID": "x"}, "message"),
        ]
        for path, params, name in cases:
            for how in ("params", "form", "json_body"):
                st, _, body = self.node.http(path, **{how: params} if params else {})
                d = json.loads(body)
                self.assertEqual(d["code"], 1001, (path, how, params, d))
                self.assertIn(name, d["msg"], (path, how, params, d))
        # a failed send with a msgID does not use the msgID up
        # (covered in DedupTest); a malformed JSON body:
        for raw in (b"{not json", b"[1,2]", b"\"str\""):
            st, _, body = self.node.http("/user/online", method="POST", raw_body=raw,
                                         headers={"Content-Type": "application/json"})
            d = json.loads(body)
            self.assertEqual(d["code"], 1001, (raw, d))


# ---------- HTTP behaviour ----------

class HttpTest(ApiTestBase):

    def test_cors(self):
        for path, params in (("/user/list", {"appID": 101}), ("/user/online", {"appID": 101, "userID": "x"}),
                             ("/user/sendMessage", {"appID": 101, "userID": "x", "message": "m"}),
                             ("/user/sendMessageAll", {"appID": 101, "message": "m"}),
                             ("/system/state", {}), ("/home/index", {}), ("/metrics", {}),
                             ("/nope", {}), ("/user/list", {})):
            st, hdrs, _ = self.node.http(path, params=params)
            self.assertEqual(hdrs.get("access-control-allow-origin"), "*", (path, params, hdrs))
        for path in ("/user/sendMessage", "/user/list", "/nope"):
            st, hdrs, body = self.node.http(path, method="OPTIONS", headers={
                "Origin": "http://example.com", "Access-Control-Request-Method": "POST"})
            self.assertEqual(st, 204, (path, body))
            self.assertEqual(hdrs.get("access-control-allow-origin"), "*", hdrs)
            methods = hdrs.get("access-control-allow-methods", "")
            self.assertIn("POST", methods, hdrs)
            self.assertIn("GET", methods, hdrs)
            self.assertIn("access-control-allow-headers", hdrs)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=10 * SLOW)
        try:
            sock = None
            for i in range(6):
                if i % 2:
                    conn.request("POST", "/user/online", body="appID=101&userID=k%d" % i,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
                else:
                    conn.request("GET", "/user/online?appID=101&userID=k%d" % i)
                resp = conn.getresponse()
                body = resp.read()
                self.assertEqual(resp.status, 200)
                self.assertEqual(json.loads(body)["data"], {"userID": "k%d" % i, "online": False})
                self.assertNotEqual((resp.getheader("Connection") or "").lower(), "close")
                self.assertFalse(resp.will_close, "server asked to close after request %d" % i)
                if sock is None:
                    sock = conn.sock
                self.assertIs(conn.sock, sock, "connection was reopened at request %d" % i)
            conn.request("GET", "/nope")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 404)
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            self.assertIn(b"imgate_connections", resp.read())
            self.assertIs(conn.sock, sock)
        finally:
            conn.close()

    def _pipeline(self, reqs):
        s = socket.create_connection(("127.0.0.1", self.node.http_port), timeout=10 * SLOW)
        try:
            s.sendall(b"".join(reqs))
            f = s.makefile("rb")
            return [read_http_response(f) for _ in reqs]
        finally:
            s.close()

    def test_pipelined_requests(self):
        host = "Host: 127.0.0.1\r\n"
        reqs = [("GET /user/online?appID=101&userID=first HTTP/1.1\r\n" + host + "\r\n").encode(),
                ("GET /user/online?appID=101&userID=second HTTP/1.1\r\n" + host + "\r\n").encode()]
        out = self._pipeline(reqs)
        self.assertEqual([json.loads(b)["data"]["userID"] for _, _, b in out], ["first", "second"], out)
        self.assertEqual([st for st, _, _ in out], [200, 200])

    def test_pipelined_with_deferred_answers(self):
        """Sends and isDebug answers are produced later, by other workers:
        the answers must still come back in request order."""
        async def t():
            ws = await login(self.node, "piper", 101)
            try:
                host = "Host: 127.0.0.1\r\n"
                body = "appID=101&userID=piper&msgID=pipe-1&message=piped"
                reqs = [("POST /user/sendMessage HTTP/1.1\r\n" + host +
                         "Content-Type: application/x-www-form-urlencoded\r\n"
                         "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode(),
                        ("GET /user/online?appID=101&userID=piper HTTP/1.1\r\n" + host + "\r\n").encode(),
                        ("GET /system/state?isDebug=true HTTP/1.1\r\n" + host + "\r\n").encode(),
                        ("GET /user/list?appID=101 HTTP/1.1\r\n" + host + "\r\n").encode()]
                out = await asyncio.get_running_loop().run_in_executor(None, self._pipeline, reqs)
                ds = [json.loads(b) for _, _, b in out]
                self.assertEqual(ds[0]["data"], {"sendResults": True}, ds)
                self.assertEqual(ds[1]["data"], {"userID": "piper", "online": True}, ds)
                self.assertEqual(ds[2]["data"]["userKeys"], ["101_piper"], ds)
                self.assertEqual(ds[3]["data"], {"userCount": 1, "userList": ["piper"]}, ds)
                self.assertEqual(without_id(await recv_json(ws)), expected_push("pipe-1", "piped", "piper"))
            finally:
                await close_all(ws)
        run(t())


# ---------- msgID de-duplication ----------

class DedupTest(ApiTestBase):

    def test_duplicate_msgid(self):
        async def t():
            ws = await login(self.node, "dup", 101)
            try:
                r = self.send(101, "dup", "first", "dup-1")
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {"sendResults": True}})
                r = self.send(101, "dup", "second", "dup-1")
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {}})
                m = await recv_json(ws)
                self.assertEqual(without_id(m), expected_push("dup-1", "first", "dup"))
                await self.nothing_more((ws, 101, "dup"), what="no copy of the duplicate send")
                # the same msgID for another user or path is still a duplicate
                r = self.send(101, "dup", "third", "dup-1", "/user/sendMessageAll")
                self.assertEqual(r["data"], {}, r)
                await self.nothing_more((ws, 101, "dup"), what="no copy of the duplicate sendMessageAll")
            finally:
                await close_all(ws)
        run(t())

    def test_retry_after_offline(self):
        async def t():
            ws = None
            try:
                r = self.send(101, "late", "please retry", "retry-1")
                # stored for the next login: the msgID counts as used
                self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
                ws = await login(self.node, "late", 101)
                m = await recv_json(ws)                      # pushed right after the login
                self.assertEqual(without_id(m), expected_push("retry-1", "please retry", "late"))
                await self.nothing_more((ws, 101, "late"), what="exactly one copy of retry-1")
                r = self.send(101, "late", "please retry", "retry-1")
                self.assertEqual(r["data"], {}, r)
                await self.nothing_more((ws, 101, "late"), what="no copy of the duplicate retry")
            finally:
                await close_all(ws)
        run(t())

    def test_empty_msgid_never_duplicate(self):
        async def t():
            ws = await login(self.node, "empty", 101)
            try:
                for i in range(2):
                    r = self.send(101, "empty", "e%d" % i, "")
                    self.assertEqual(r["data"], {"sendResults": True}, r)
                    self.assertEqual(without_id(await recv_json(ws)), expected_push("", "e%d" % i, "empty"))
                for i in range(2):                  # msgID absent altogether
                    r = self.api("/user/sendMessage", params={"appID": 101, "userID": "empty",
                                                              "message": "n%d" % i})
                    self.assertEqual(r["data"], {"sendResults": True}, r)
                    m = await recv_json(ws)
                    self.assertEqual(m["response"]["data"]["msg"], "n%d" % i, m)
                for i in range(2):
                    r = self.send(101, "x", "a%d" % i, "", "/user/sendMessageAll")
                    self.assertEqual(r["data"], {"sendResults": True}, r)
                    self.assertEqual(without_id(await recv_json(ws)), expected_push("", "a%d" % i, "x"))
                await self.nothing_more((ws, 101, "empty"), what="one push per send")
            finally:
                await close_all(ws)
        run(t())

    def test_duplicate_send_all(self):
        async def t():
            a = b = None
            try:
                a = await login(self.node, "dupa", 102)
                b = await login(self.node, "dupb", 102)
                await expect_pushes(a, [("enter", "dupb")])
                r = self.send(102, "src", "room once", "dupall-1", "/user/sendMessageAll")
                self.assertEqual(r["data"], {"sendResults": True}, r)
                r = self.send(102, "src", "room twice", "dupall-1", "/user/sendMessageAll")
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {}})
                for ws in (a, b):
                    self.assertEqual(without_id(await recv_json(ws)), expected_push("dupall-1", "room once", "src"))
                await self.nothing_more((a, 102, "dupa"), (b, 102, "dupb"), what="one copy of dupall-1")
                # and a sendMessage reusing it is a no-op as well
                r = self.send(102, "dupa", "again", "dupall-1")
                self.assertEqual(r["data"], {}, r)
                await self.nothing_more((a, 102, "dupa"), what="no copy of the reused msgID")
            finally:
                await close_all(a, b)
        run(t())


# ---------- a room broadcast across workers ----------

class BroadcastTest(ApiTestBase):
    N = 50

    def test_room_broadcast_50(self):
        async def t():
            socks = []
            try:
                socks = await asyncio.gather(*[login(self.node, "u%02d" % i, 104, ping_interval=None,
                                                     max_queue=None)
                                               for i in range(self.N)])
                s = self.node.state()
                self.assertEqual(s["loggedIn"], self.N, s)
                per = [w["loggedIn"] for w in s["perWorker"]]
                self.assertEqual(len(per), 2, s)
                self.assertTrue(all(n > 0 for n in per), "connections not spread over both workers: %r" % per)
                self.assertEqual(self.user_list(104)["userCount"], self.N)
                r = self.send(104, "system", "to fifty", "b50-1", "/user/sendMessageAll")
                self.assertEqual(r["data"], {"sendResults": True}, r)
                # everything up to a later room-wide marker: the enter pushes of
                # the concurrent logins (all posted before their login replies)
                # and exactly one copy of b50-1
                got = await until_marker(self.node, [(ws, 104, "u%02d" % i) for i, ws in enumerate(socks)],
                                         room=True)
                for i, msgs in enumerate(got):
                    others = [without_id(m) for m in msgs if not is_push(m, "enter")]
                    self.assertEqual(others, [expected_push("b50-1", "to fifty", "system")],
                                     "u%02d: one copy of b50-1 and enter pushes only: %r" % (i, msgs))
            finally:
                await asyncio.gather(*[close_all(ws) for ws in socks])
        run(t())


if __name__ == "__main__":
    main(sys.modules[__name__])
