"""Integration tests: deploy/nginx.conf in front of a two-node cluster.

The configuration shipped in deploy/nginx.conf is checked statically
(WebSocket upgrade map, HTTP/1.1, Connection set exactly once per location,
read timeout above the heartbeat, forwarded-for headers, keepalive to the
API), then run for real: /usr/sbin/nginx in the foreground with that file,
its listen port and upstream servers rewritten to the test's free ports and
every path moved into a temp directory, in front of two imgate nodes (one
redis-server). WebSocket clients connected through nginx land on both nodes
and reach each other through nginx's API; /user/list and /user/online work
through it; nginx's error log stays free of [emerg]/[alert]/[crit].

Run: /usr/bin/python3 tests/integration/test_cluster_nginx.py"""

import http.client
import json
import os
import re
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (without_id, NGINX, ROOT, SLOW, Nginx, RedisServer, await_until, close_all,  # noqa: E402
                     free_port, is_push, main, msg_push, request, run, start_cluster, stop_all,
                     until_marker)

CONF = os.path.join(ROOT, "deploy", "nginx.conf")


# ---------- the configuration file ----------

def strip_comments(text):
    return re.sub(r"#[^\n]*", "", text)


def block_body(text, start):
    """The text between the '{' at or after `start` and its matching '}'."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    raise AssertionError("unbalanced braces after offset %d" % start)


def locations(text):
    """{location path: body} of the (comment-free) configuration."""
    return {m.group(1): block_body(text, m.end() - 1)
            for m in re.finditer(r"\blocation\s+(?:=\s*)?(\S+)\s*\{", text)}


def directives(body, name):
    """The arguments of every `name ...;` directive in a block body."""
    return [m.group(1).strip() for m in re.finditer(r"(?:^|[;{}\s])%s\s+([^;]*);" % re.escape(name), body)]


def seconds(value):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert m, "not an nginx time: %r" % value
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def render_conf(text, listen_port, ws_ports, http_ports, tmpdir):
    """deploy/nginx.conf for this test: listen on 127.0.0.1:listen_port, the
    upstreams pointed at the test's nodes, one small worker, logs and temp
    files in tmpdir, `user root;` only when running as root (else no user
    directive). Each rewrite must match, so a change of the file's layout
    fails here, by name."""
    def sub(pattern, repl, s, flags=re.M):
        new, n = re.subn(pattern, repl, s, flags=flags)
        assert n, "deploy/nginx.conf: nothing matches %r (did its layout change?)" % pattern
        return new

    s = text
    s = sub(r"^user\s+[^;]*;", "user root;" if os.geteuid() == 0 else "", s)
    s = sub(r"^worker_processes\s+[^;]*;", "worker_processes 1;", s)
    s = sub(r"^worker_rlimit_nofile\s+[^;]*;", "worker_rlimit_nofile 4096;", s)
    s = sub(r"^(\s*)worker_connections\s+[^;]*;", r"\g<1>worker_connections 1024;", s)
    s = sub(r"^(\s*)listen\s+[^;]*;", r"\g<1>listen 127.0.0.1:%d;" % listen_port, s)
    s = sub(r"^(\s*)access_log\s+\S+", r"\g<1>access_log %s" % os.path.join(tmpdir, "access.log"), s)
    s = sub(r"^(\s*)error_log\s+[^;]*;", "", s) if re.search(r"^\s*error_log\s", s, re.M) else s
    s = sub(r"^http\s*\{", "http {\n" + Nginx.temp_paths(tmpdir), s)
    for name, ports in (("imgate_ws", ws_ports), ("imgate_http", http_ports)):
        m = re.search(r"\bupstream\s+%s\s*\{" % name, s)
        assert m, "deploy/nginx.conf: no upstream %s" % name
        body = block_body(s, m.end() - 1)
        servers = re.findall(r"^\s*server\s+\S+([^;\n]*);", body, re.M)
        assert servers, "upstream %s has no server line" % name
        params = servers[0]                                # e.g. " max_fails=2 fail_timeout=10s"
        first = re.search(r"^[ \t]*server\s", body, re.M).start()
        lines = "".join("        server 127.0.0.1:%d%s;\n" % (p, params) for p in ports)
        new_body = body[:first] + lines + re.sub(r"^[ \t]*server\s+[^;]*;[^\n]*\n", "", body[first:], flags=re.M)
        start = m.end()
        s = s[:start] + new_body + s[start + len(body):]
    for forbidden in ("/var/", "/run/", "/etc/"):
        assert forbidden not in strip_comments(s), "a system path is left in the test config:\n" + s
    return s


class ConfFileTest(unittest.TestCase):
    """deploy/nginx.conf as an operator gets it."""

    @classmethod
    def setUpClass(cls):
        with open(CONF) as f:
            cls.raw = f.read()
        cls.text = strip_comments(cls.raw)
        cls.locs = locations(cls.text)

    def test_upgrade_map(self):
        m = re.search(r"\bmap\s+\$http_upgrade\s+\$connection_upgrade\s*\{", self.text)
        self.assertIsNotNone(m, "no `map $http_upgrade $connection_upgrade` block")
        body = block_body(self.text, m.end() - 1)
        self.assertRegex(body, r"\bdefault\s+upgrade\s*;")
        self.assertRegex(body, r"''\s+close\s*;")

    def test_locations(self):
        self.assertIn("/acc", self.locs, "no location for the WebSocket path /acc")
        self.assertIn("/", self.locs, "no location for the HTTP API")
        for path, body in self.locs.items():
            conn = [d for d in directives(body, "proxy_set_header") if d.split()[0].lower() == "connection"]
            self.assertEqual(len(conn), 1, "location %s must set Connection exactly once, sets it %d times: %r"
                             % (path, len(conn), conn))
            self.assertEqual(directives(body, "proxy_http_version"), ["1.1"], path)
            hdrs = {d.split()[0].lower(): d.split(None, 1)[1] for d in directives(body, "proxy_set_header")}
            self.assertEqual(hdrs.get("x-forwarded-for"), "$proxy_add_x_forwarded_for", path)
            self.assertEqual(hdrs.get("x-real-ip"), "$remote_addr", path)
            self.assertEqual(hdrs.get("host"), "$host", path)
        ws = self.locs["/acc"]
        hdrs = {d.split()[0].lower(): d.split(None, 1)[1] for d in directives(ws, "proxy_set_header")}
        self.assertEqual(hdrs.get("upgrade"), "$http_upgrade")
        self.assertEqual(hdrs.get("connection"), "$connection_upgrade")
        self.assertEqual(directives(ws, "proxy_pass"), ["http://imgate_ws"])
        rt = directives(ws, "proxy_read_timeout")
        self.assertEqual(len(rt), 1, "/acc needs a proxy_read_timeout (nginx's default 60 s kills idle sockets)")
        self.assertGreater(seconds(rt[0]), 360, "proxy_read_timeout must exceed app.connectionTimeout (360 s)")
        api = self.locs["/"]
        hdrs = {d.split()[0].lower(): d.split(None, 1)[1] for d in directives(api, "proxy_set_header")}
        self.assertEqual(hdrs.get("connection"), '""', "the API location needs Connection \"\" for keepalive")
        self.assertEqual(directives(api, "proxy_pass"), ["http://imgate_http"])

    def test_upstreams(self):
        for name in ("imgate_ws", "imgate_http"):
            m = re.search(r"\bupstream\s+%s\s*\{" % name, self.text)
            self.assertIsNotNone(m, "no upstream %s" % name)
            body = block_body(self.text, m.end() - 1)
            servers = re.findall(r"^\s*server\s+(\S+)", body, re.M)
            self.assertEqual(len(servers), 3, "the example has three nodes: %r" % servers)
            self.assertEqual(len(set(servers)), 3, servers)
        m = re.search(r"\bupstream\s+imgate_http\s*\{", self.text)
        self.assertTrue(directives(block_body(self.text, m.end() - 1), "keepalive"),
                        "keepalive connections to the API upstream")

    def test_nginx_t(self):
        """The shipped file passes `nginx -t` (with only the paths and ports of
        this machine rewritten)."""
        self.assertTrue(os.path.exists(NGINX), "no nginx at %s (make deps / make test install it)" % NGINX)
        import subprocess
        import tempfile
        tmp = tempfile.mkdtemp(prefix="imgate-nginx-t-")
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(render_conf(self.raw, free_port(), [free_port()], [free_port()], tmp))
        r = subprocess.run([NGINX, "-t", "-p", tmp + "/", "-c", conf, "-g",
                            "pid %s/nginx.pid; error_log %s/error.log;" % (tmp, tmp)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("test is successful", out)
        self.assertNotIn("[warn]", out)


# ---------- nginx in front of two nodes ----------

class ProxyTest(unittest.TestCase):
    N_CLIENTS = 8
    redis = nginx = None
    nodes = []

    @classmethod
    def setUpClass(cls):
        assert os.path.exists(NGINX), "no nginx at %s (make deps / make test install it)" % NGINX
        cls.redis = RedisServer()
        try:
            cls.nodes = start_cluster(cls.redis, 2)
            import tempfile
            tmp = tempfile.mkdtemp(prefix="imgate-nginx-")
            with open(CONF) as f:
                raw = f.read()
            cls.port = free_port()
            conf = render_conf(raw, cls.port, [n.ws_port for n in cls.nodes], [n.http_port for n in cls.nodes], tmp)
            cls.nginx = Nginx(conf, cls.port, directory=tmp)
        except BaseException:
            for n in cls.nodes:
                n.stop(check=False)
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.nginx:
                cls.nginx.stop()
            stop_all(cls.nodes)
        finally:
            cls.redis.stop()

    # ---- through nginx ----
    def proxy_api(self, path, **params):
        url = "http://127.0.0.1:%d%s?%s" % (self.port, path, urllib.parse.urlencode(params))
        try:
            with urllib.request.urlopen(url, timeout=10 * SLOW) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        self.assertEqual(status, 200, (path, status, body[:300]))
        return json.loads(body)

    async def proxy_login(self, user, app=101):
        import websockets
        ws = await websockets.connect("ws://127.0.0.1:%d/acc" % self.port,
                                      open_timeout=10 * SLOW, close_timeout=5 * SLOW)
        r = await request(ws, "login", {"serviceToken": "", "appID": app, "userID": user})
        self.assertEqual(r["response"]["code"], 200, r)
        return ws

    def user_keys(self, node):
        return node.api("/system/state", params={"isDebug": "true"})["data"]["userKeys"]

    def test_clients_on_both_nodes_reach_each_other(self):
        async def t():
            socks = []
            users = ["ng%d" % i for i in range(self.N_CLIENTS)]
            try:
                for u in users:
                    socks.append(await self.proxy_login(u))
                counts = [n.state()["loggedIn"] for n in self.nodes]
                self.assertEqual(sum(counts), self.N_CLIENTS, counts)
                self.assertTrue(all(c >= 1 for c in counts),
                                "every node must get clients through nginx: %r" % counts)
                where = {}
                for i, n in enumerate(self.nodes):
                    for k in self.user_keys(n):
                        where[k.split("_", 1)[1]] = i
                self.assertEqual(sorted(where), sorted(users), where)

                # the API through nginx: list and online see both nodes
                seen = []

                def all_listed():
                    seen[:] = [self.proxy_api("/user/list", appID=101)["data"]]
                    return sorted(seen[0]["userList"]) == sorted(users)
                try:
                    await await_until(all_listed)
                except AssertionError:
                    raise AssertionError("not all %d users listed through nginx: %r (where: %r)"
                                         % (len(users), seen, where)) from None
                for _ in range(4):                          # whichever node answers
                    d = self.proxy_api("/user/list", appID=101)["data"]
                    self.assertEqual(d["userCount"], len(users), d)
                    self.assertEqual(sorted(d["userList"]), sorted(users), d)
                for u in users:
                    r = self.proxy_api("/user/online", appID=101, userID=u)
                    self.assertEqual(r["data"], {"userID": u, "online": True}, r)
                    r = self.proxy_api("/user/online", appID=0, userID=u)
                    self.assertTrue(r["data"]["online"], r)
                r = self.proxy_api("/user/online", appID=101, userID="nobody")
                self.assertEqual(r["data"], {"userID": "nobody", "online": False}, r)
                targets = [(ws, 101, u) for u, ws in zip(users, socks)]

                async def collect(room=False):
                    """Per socket, its message pushes up to a later marker push
                    (sent through a node once the push's call has answered,
                    so behind any copy of it); enter/exit pushes of the
                    logins on the other node arrive whenever their
                    announcement does and are left out."""
                    got = await until_marker(self.nodes[0], targets, room=room)
                    return [[m for m in msgs if not is_push(m, "enter") and not is_push(m, "exit")]
                            for msgs in got]

                # sendMessage through nginx to every user, on either node
                run_id = "%x" % int(time.time() * 1000)
                for u, ws in zip(users, socks):
                    msgid = "ng-%s-%s" % (u, run_id)
                    r = self.proxy_api("/user/sendMessage", appID=101, userID=u, msgID=msgid,
                                       message="hi " + u)
                    self.assertEqual(r, {"code": 200, "msg": "Success", "data": {"sendResults": True}},
                                     (u, "on node", where[u]))
                got = await collect()
                for u, msgs in zip(users, got):
                    self.assertEqual([without_id(x) for x in msgs], [msg_push("ng-%s-%s" % (u, run_id), "hi " + u, u)], (u, msgs))

                # sendMessageAll through nginx, from a user of the room: all but her, once
                msgid = "ng-all-" + run_id
                r = self.proxy_api("/user/sendMessageAll", appID=101, userID=users[0], msgID=msgid,
                                   message="to everyone")
                self.assertEqual(r["data"], {"sendResults": True}, r)
                got = await collect(room=True)
                for u, msgs in zip(users, got):
                    want = [] if u == users[0] else [msg_push(msgid, "to everyone", users[0])]
                    self.assertEqual([without_id(x) for x in msgs], want, (u, msgs))
                # the same msgID again through nginx (likely the other node): no-op
                r = self.proxy_api("/user/sendMessageAll", appID=101, userID=users[0], msgID=msgid,
                                   message="again")
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {}})
                got = await collect(room=True)
                self.assertEqual(got, [[]] * len(users), "a duplicate sendMessageAll was delivered")
            finally:
                await close_all(*socks)
        run(t())

    def test_api_keepalive_and_balancing(self):
        """One client connection to nginx, many requests: all answered, by
        both nodes (nginx keeps its own connections to them alive)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * SLOW)
        selves = set()
        try:
            for i in range(12):
                conn.request("GET", "/system/state")
                resp = conn.getresponse()
                body = resp.read()
                self.assertEqual(resp.status, 200, body[:300])
                d = json.loads(body)["data"]
                self.assertEqual(d["mode"], "cluster", d)
                selves.add(d["cluster"]["self"])
                self.assertFalse(resp.will_close, "nginx closed the client connection after request %d" % i)
        finally:
            conn.close()
        self.assertEqual(selves, set(n.self_addr for n in self.nodes),
                         "the API upstream must spread requests over both nodes")

    def test_plain_get_on_ws_path(self):
        """A request to /acc without an upgrade reaches a node (Connection:
        close from the map) and gets the node's refusal, not a proxy error."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * SLOW)
        try:
            conn.request("GET", "/acc")
            resp = conn.getresponse()
            resp.read()
            self.assertIn(resp.status, (400, 426), "a plain GET /acc answered %d" % resp.status)
        finally:
            conn.close()

    def test_z_error_log_clean(self):
        """Runs last (alphabetical): nothing serious in nginx's error log."""
        self.assertEqual(self.nginx.serious(), [], self.nginx.log()[-4000:])
        self.assertTrue(self.nginx.proc.poll() is None, "nginx died:\n" + self.nginx.log()[-4000:])


if __name__ == "__main__":
    main(sys.modules[__name__])
