"""Integration tests: cluster mode (SPEC §1, §3, §5, §6).

A real redis-server (private, no persistence) and three imgate nodes on
loopback with fast cluster timings (registration every second, a node silent
for 3 s is gone, gRPC deadline 1 s): cross-node /user/sendMessage,
/user/sendMessageAll (every recipient exactly once, sender excluded, users
spread over the three nodes, one of them on two nodes), enter/exit pushes
across nodes, merged /user/list, /user/online (appID 0 too), msgID
de-duplication across nodes, the Redis keys byte for byte, deregistration on
SIGTERM and the cluster fields of /system/state.

Run: /usr/bin/python3 tests/integration/test_cluster.py"""

import asyncio
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, ClusterCase as SharedCluster, Node, RedisServer, absent_until_marker,  # noqa: E402
                     await_until, close_all, cluster_args, cluster_state, copies, is_push, login, main,
                     msg_push, presence_json, presence_key, recv_json, recv_until, request, run,
                     until_marker, wait_cluster, wait_until, without_id)

SERVERS = "acc:hash:servers"
PEER_KEYS = {"peer", "healthy", "calls", "failures", "consecutiveFailures", "skippedForMs", "lastError"}
RUN = "%x" % int(time.time() * 1000)        # makes msgIDs unique to this run


def mid(name):
    return "%s-%s" % (name, RUN)


def presence(m):
    """An enter or exit push. Across nodes they arrive whenever the peer's
    announcement does (no reply orders them), so message checks tolerate
    them and presence checks use presence markers (ClusterCase)."""
    return is_push(m, "enter") or is_push(m, "exit")


def not_presence(m):
    return not presence(m)


_mk = [0]


def marker_user():
    _mk[0] += 1
    return "mk%d-%s" % (_mk[0], RUN[-8:])


class ClusterCase(SharedCluster):
    """One redis-server and three nodes (A, B, C) shared by the tests of the
    class; each test uses its own users and rooms and leaves no client."""
    N = 3
    redis = None
    nodes = []

    def setUp(self):
        for node in self.nodes:
            wait_until(lambda: (lambda s: s["wsConnections"] == 0 and s["users"] == 0)(node.state()),
                       what="no client left on node %s" % node.self_addr)
        wait_cluster(self.nodes)

    # ---- helpers ----
    @property
    def A(self):
        return self.nodes[0]

    @property
    def B(self):
        return self.nodes[1]

    @property
    def C(self):
        return self.nodes[2]

    def send(self, node, app, user, message, msgid, path="/user/sendMessage"):
        """An API send that must answer HTTP 200; returns the JSON."""
        return node.api(path, params={"appID": app, "userID": user, "msgID": msgid, "message": message})

    def send_all(self, node, app, sender, message, msgid):
        return self.send(node, app, sender, message, msgid, "/user/sendMessageAll")

    def user_list(self, node, app):
        r = node.api("/user/list", params={"appID": app})
        self.assertEqual(r["code"], 200, r)
        return r["data"]

    def online(self, node, app, user):
        r = node.api("/user/online", params={"appID": app, "userID": user})
        self.assertEqual(r["code"], 200, r)
        self.assertEqual(r["data"]["userID"], user, r)
        return r["data"]["online"]

    def lists_equal(self, app, users):
        """Whether every node lists exactly `users` (each once) for the room.
        Falsy answer: what the nodes list (for the failure message)."""
        want = {"userCount": len(users), "userList": sorted(users)}
        seen = {}
        for node in self.nodes:
            d = self.user_list(node, app)
            seen[node.self_addr] = {"userCount": d["userCount"], "userList": sorted(d["userList"])}
        if all(v == want for v in seen.values()):
            return True
        return Listing(seen)

    async def next_push(self, ws, what):
        """The next message on ws (5 s, scaled): fails naming `what`."""
        try:
            return await recv_json(ws, 5)
        except asyncio.TimeoutError:
            raise AssertionError("no message within 5 s: expected %s" % what) from None

    async def recv_push(self, ws, msgid, what):
        """Reads ws up to the push msgid; only enter/exit pushes may come
        before it. Returns the push."""
        m, before = await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid), what)
        self.assertEqual([x for x in before if not presence(x)], [],
                         "before %s: only enter/exit pushes may come" % what)
        return m

    async def presence_marker(self, node, app, watchers, tolerated=None, what="nothing"):
        """Proves by order that no further enter/exit push announced by
        `node` (or local to it) reaches the watchers (ws list): a marker
        user logs in on `node` in room `app` and leaves again; its enter and
        its exit travel the same way (node's Redis-link thread, then gRPC to
        each peer, or node's own inboxes), and each watcher reads up to them.
        Nothing else may come before them, except messages for which
        tolerated(ws, m) is true. Watchers must be every socket logged in to
        the room (all of them get the marker's pushes)."""
        user = marker_user()
        mws = await login(node, user, app)
        try:
            for n in self.nodes:
                await await_until(lambda: self.online(n, app, user), what="marker %s online on every node" % user)
            for cmd in ("enter", "exit"):
                if cmd == "exit":
                    await mws.close()
                for ws in watchers:
                    _, before = await recv_until(ws, lambda m: is_push(m, cmd, user),
                                                 "the %s of presence marker %s" % (cmd, user))
                    for m in before:
                        ok = tolerated is not None and tolerated(ws, m)
                        self.assertTrue(ok, "expected %s before the marker's %s, got %r" % (what, cmd, before))
        finally:
            await close_all(mws)


class Listing(dict):
    """A falsy dict: what each node listed, shown when a wait times out."""

    def __bool__(self):
        return False


class RegistryTest(ClusterCase):

    def test_registry_hash(self):
        reg = wait_until(lambda: (lambda r: r if all(n.self_addr in r for n in self.nodes) else None)(
            self.redis.hgetall(SERVERS)), what="all three nodes in %s" % SERVERS)
        now = time.time()
        for node in self.nodes:
            v = reg[node.self_addr]
            self.assertRegex(v, r"^[0-9]+$", "registration value must be unix seconds: %r" % v)
            self.assertLess(abs(int(v) - now), 10 * SLOW, "registration time %s is not now (%d)" % (v, now))
        for field in reg:
            self.assertRegex(field, r"^127\.0\.0\.1:[0-9]+$", "registry field %r" % field)
        ttl = self.redis.ttl(SERVERS)
        self.assertTrue(0 < ttl <= 7200, "TTL of %s must be in (0, 7200], is %r" % (SERVERS, ttl))
        # refreshed every registerInterval (1 s here)
        first = {n.self_addr: int(reg[n.self_addr]) for n in self.nodes}
        wait_until(lambda: all(int(self.redis.hgetall(SERVERS).get(a, "0")) > t for a, t in first.items()),
                   timeout=10, what="every node to refresh its registration")
        # the hash deleted behind the nodes' back: they register again
        self.assertEqual(self.redis.cmd("DEL", SERVERS), 1)
        wait_until(lambda: all(n.self_addr in self.redis.hgetall(SERVERS) for n in self.nodes),
                   timeout=10, what="every node to register again after DEL %s" % SERVERS)
        ttl = self.redis.ttl(SERVERS)
        self.assertTrue(0 < ttl <= 7200, "TTL of the re-created %s: %r" % (SERVERS, ttl))
        wait_cluster(self.nodes)

    def test_state_cluster_fields(self):
        want = set(n.self_addr for n in self.nodes)
        for node in self.nodes:
            s = node.state()
            self.assertEqual(s.get("mode"), "cluster", s)
            c = s.get("cluster")
            self.assertIsInstance(c, dict, s)
            self.assertEqual(c.get("self"), node.self_addr, c)
            self.assertEqual(c.get("redis"), "up", c)
            # one worker runs the link itself; with more it has its own thread
            self.assertEqual(c.get("redisLink"), "worker" if node.workers == 1 else "thread", c)
            self.assertIsInstance(c.get("servers"), list, c)
            self.assertTrue(want <= set(c["servers"]), "servers %r must include %r" % (c["servers"], want))
            self.assertEqual(len(c["servers"]), len(set(c["servers"])), "duplicates in servers: %r" % c)
            for srv in c["servers"]:
                self.assertRegex(srv, r"^[0-9.]+:[0-9]+$", c)
            self.assertIsInstance(c.get("peers"), list, c)
        # a cluster-wide call from A makes A call B and C
        self.user_list(self.A, 101)
        self.send_all(self.A, 101, "system", "nobody listens", mid("state-all"))
        peers = {p.get("peer"): p for p in cluster_state(self.A)["peers"]}
        for other in (self.B, self.C):
            self.assertIn(other.self_addr, peers, "A's peers after a fan-out: %r" % peers)
            p = peers[other.self_addr]
            self.assertEqual(set(p), PEER_KEYS, p)
            self.assertIs(p["healthy"], True, p)
            self.assertGreaterEqual(p["calls"], 1, p)
            self.assertEqual((p["failures"], p["consecutiveFailures"]), (0, 0), p)
            self.assertIsInstance(p["lastError"], str, p)
        for p in peers.values():
            self.assertEqual(set(p), PEER_KEYS, p)
            for k in ("calls", "failures", "consecutiveFailures"):
                self.assertIsInstance(p[k], int, p)
                self.assertGreaterEqual(p[k], 0, p)

    def test_deregister_on_sigterm(self):
        async def t():
            D = Node(*cluster_args(self.redis))
            ws = None
            try:
                wait_cluster(self.nodes + [D])
                self.assertIn(D.self_addr, self.redis.hgetall(SERVERS))
                ws = await login(D, "dereg1", 101)
                await await_until(lambda: self.online(self.A, 101, "dereg1"),
                                  what="A to see dereg1 (on D) online")
                rc = D.stop()                     # SIGTERM; asserts exit status 0
                self.assertEqual(rc, 0)
                self.assertNotIn(D.self_addr, self.redis.hgetall(SERVERS),
                                 "D's registry field must be gone once D has exited (HDEL on shutdown)")
                await await_until(lambda: all(D.self_addr not in cluster_state(n)["servers"] for n in self.nodes),
                                  timeout=10, what="D gone from every node's servers")
                self.assertFalse(self.online(self.A, 101, "dereg1"), "dereg1's node is gone: not online")
                self.assertFalse(self.online(self.B, 0, "dereg1"))
                rec = await await_until(lambda: (lambda r: r if r and json.loads(r)["isLogoff"] else None)(
                    self.redis.get(presence_key(101, "dereg1"))), timeout=10,
                    what="dereg1's presence record rewritten as logged off when D shut down")
                self.assertGreater(json.loads(rec)["logOutTime"], 0, rec)
                self.assertTrue(self.lists_equal(101, []), "no user left in room 101")
            finally:
                await close_all(ws)
                D.stop(check=False)
        run(t())


class RedisByNameTest(unittest.TestCase):
    """redis.addr may name Redis by a host name: it is looked up off the
    loop (a one-worker node's loop is its worker's), so a name that does
    not resolve leaves the node serving its own users, retrying, and able
    to stop."""

    def test_name_looked_up_and_bad_name_retried(self):
        redis = RedisServer()
        self.addCleanup(redis.stop)
        good = Node("--rpc-port", "0", "--redis", "localhost:%d" % redis.port, workers=1)
        self.addCleanup(good.stop)
        bad = Node("--rpc-port", "0", "--redis", "no-such-redis.invalid:6379", workers=1, cluster=True)
        self.addCleanup(bad.stop)
        wait_until(lambda: good.self_addr in redis.hgetall(SERVERS), what="the node on localhost registered")
        c = cluster_state(good)
        self.assertEqual((c["redis"], c["redisAddr"], c["redisLink"]),
                         ("up", "localhost:%d" % redis.port, "worker"), c)
        wait_until(lambda: bad.stderr().count("cannot look up the Redis host no-such-redis.invalid:6379") >= 2,
                   timeout=60, what="the unresolvable name tried twice")
        self.assertEqual(cluster_state(bad)["redis"], "down")

        async def t():
            ws = await login(bad, "byname1", 101)     # its own users are served meanwhile
            try:
                r = await request(ws, "heartbeat", {})
                self.assertEqual(r["response"]["code"], 200, r)
            finally:
                await close_all(ws)
        run(t())
        self.assertEqual(bad.stop(), 0)
        self.assertEqual(good.stop(), 0)


class PresenceTest(ClusterCase):

    async def heartbeat(self, ws, key, after):
        """Sends a heartbeat; (record, heartbeatTime) once the record in
        Redis says a heartbeatTime later than `after`."""
        r = await request(ws, "heartbeat", {})
        self.assertEqual(r["response"]["code"], 200, r)
        raw = await await_until(
            lambda: (lambda v: v if v and json.loads(v)["heartbeatTime"] > after else None)(
                self.redis.get(key)), what="heartbeatTime to move after a heartbeat")
        return raw, json.loads(raw)["heartbeatTime"]

    def test_presence_record_bytes(self):
        async def t():
            ws = tab2 = None
            key = presence_key(102, "pres1")
            try:
                t0 = int(time.time())
                ws = await login(self.B, "pres1", 102)
                client = "127.0.0.1:%d" % ws.local_address[1]
                raw = await await_until(lambda: self.redis.get(key), what="presence record %s" % key)
                t1 = int(time.time())
                rec = json.loads(raw)
                login_t = rec.get("loginTime")
                self.assertIsInstance(login_t, int, raw)
                self.assertTrue(t0 - 1 <= login_t <= t1 + 1, "loginTime %r not in [%d, %d]" % (login_t, t0, t1))
                self.assertEqual(raw, presence_json(self.B.rpc_port, 102, "pres1", client, login_t, login_t),
                                 "presence record at login, byte for byte")
                ttl = self.redis.ttl(key)
                self.assertTrue(0 < ttl <= 86400, "TTL of %s: %r" % (key, ttl))

                # a heartbeat (a second later) rewrites heartbeatTime
                # (the node's time() reads the coarse clock, a few ms behind
                # Python's: wait until well into the next second)
                await await_until(lambda: time.time() >= login_t + 1.1, what="the clock to pass loginTime")
                raw, hb = await self.heartbeat(ws, key, login_t)
                self.assertLessEqual(hb, int(time.time()) + 1, raw)
                self.assertEqual(raw, presence_json(self.B.rpc_port, 102, "pres1", client, login_t, hb),
                                 "presence record after a heartbeat, byte for byte")
                ttl = self.redis.ttl(key)
                self.assertTrue(0 < ttl <= 86400, "TTL of %s after a heartbeat: %r" % (key, ttl))

                # a second tab on the same node comes and goes: still online
                tab2 = await login(self.B, "pres1", 102)
                await tab2.close()                # any presence write of it is queued by now
                await await_until(lambda: self.B.state()["loggedIn"] == 1, what="one connection left on B")
                # B writes presence records in order: once a later login's
                # record is in Redis, a wrong logoff write would be too
                marker = await login(self.B, "pres1-marker", 102)
                try:
                    await await_until(lambda: self.redis.get(presence_key(102, "pres1-marker")),
                                      what="the marker user's presence record")
                finally:
                    await close_all(marker)
                self.assertIs(json.loads(self.redis.get(key))["isLogoff"], False,
                              "one of two connections closed: the record must stay online")
                self.assertTrue(self.online(self.A, 102, "pres1"))

                # the last connection goes: isLogoff and logOutTime
                t2 = int(time.time())
                await ws.close()
                raw = await await_until(lambda: (lambda v: v if v and json.loads(v)["isLogoff"] else None)(
                    self.redis.get(key)), what="presence record rewritten with isLogoff:true")
                t3 = int(time.time())
                rec = json.loads(raw)
                out = rec["logOutTime"]
                self.assertTrue(t2 - 1 <= out <= t3 + 1, "logOutTime %r not in [%d, %d]" % (out, t2, t3))
                self.assertGreaterEqual(rec["heartbeatTime"], hb, raw)
                self.assertEqual(raw, presence_json(self.B.rpc_port, 102, "pres1", client, login_t,
                                                    rec["heartbeatTime"], out, True),
                                 "presence record after the last disconnect, byte for byte")
                ttl = self.redis.ttl(key)
                self.assertTrue(0 < ttl <= 86400, "TTL of %s after logout: %r" % (key, ttl))
                self.assertFalse(self.online(self.A, 102, "pres1"))
            finally:
                await close_all(ws, tab2)
        run(t())

    def test_heartbeat_renews_the_nodes_hash_once_an_hour(self):
        """A heartbeat rewrites the presence record every time, but renews the
        TTL of the user's nodes hash (a day) only with the user's first
        heartbeat of each hour since the login: the login's join set it."""
        async def t():
            ws = None
            key, nkey = presence_key(102, "hbttl1"), "acc:user:nodes:102_hbttl1"
            try:
                ws = await login(self.B, "hbttl1", 102)
                raw = await await_until(lambda: self.redis.get(key), what="the presence record")
                login_t = json.loads(raw)["loginTime"]
                # the hash's TTL runs down from the join's 86400
                await await_until(lambda: 0 < self.redis.ttl(nkey) <= 86397, timeout=10,
                                  what="the nodes hash's TTL to run down by 3 s")
                # the node sends the EXPIRE (if any) before the record's SET
                _, hb = await self.heartbeat(ws, key, login_t)
                ttl = self.redis.ttl(nkey)
                self.assertLess(hb - login_t, 3600, "a heartbeat within the login's first hour")
                self.assertTrue(0 < ttl <= 86397, "renewed by a heartbeat in the login's hour: %r" % ttl)
            finally:
                await close_all(ws)
        run(t())

    def test_logout_command_rewrites_record(self):
        async def t():
            ws = None
            key = presence_key(101, "pres2")
            try:
                ws = await login(self.C, "pres2", 101)
                raw = await await_until(lambda: self.redis.get(key), what="presence record %s" % key)
                self.assertIn('"accPort":"%d"' % self.C.rpc_port, raw)
                self.assertTrue(raw.endswith('"isLogoff":false}'), raw)
                r = await request(ws, "logout", {})
                self.assertEqual(r["response"]["code"], 200, r)
                raw = await await_until(lambda: (lambda v: v if v and v.endswith('"isLogoff":true}') else None)(
                    self.redis.get(key)), what="logout to rewrite the record with isLogoff:true")
                self.assertGreater(json.loads(raw)["logOutTime"], 0, raw)
                for node in self.nodes:
                    self.assertFalse(self.online(node, 101, "pres2"), node.self_addr)
                # logged in again on the same socket: online again, logOutTime back to 0
                r = await request(ws, "login", {"serviceToken": "", "appID": 101, "userID": "pres2"})
                self.assertEqual(r["response"]["code"], 200, r)
                raw = await await_until(lambda: (lambda v: v if v and v.endswith('"isLogoff":false}') else None)(
                    self.redis.get(key)), what="a new login to rewrite the record as online")
                self.assertEqual(json.loads(raw)["logOutTime"], 0, raw)
                self.assertTrue(self.online(self.A, 101, "pres2"))
            finally:
                await close_all(ws)
        run(t())

    def test_online(self):
        async def t():
            a = b = None
            try:
                for node in self.nodes:
                    self.assertFalse(self.online(node, 102, "olive"))
                    self.assertFalse(self.online(node, 0, "olive"))
                a = await login(self.B, "olive", 102)
                for node in self.nodes:
                    await await_until(lambda: self.online(node, 102, "olive"),
                                      what="%s: olive (on B, 102) online" % node.self_addr)
                    self.assertTrue(self.online(node, 0, "olive"), "appID 0 = any platform")
                    self.assertFalse(self.online(node, 101, "olive"), "olive is not on platform 101")
                    self.assertFalse(self.online(node, 0, "oliv"))
                    self.assertFalse(self.online(node, 0, "olivee"))
                b = await login(self.C, "olive", 103)             # a second platform, another node
                for node in self.nodes:
                    await await_until(lambda: self.online(node, 103, "olive"),
                                      what="%s: olive (on C, 103) online" % node.self_addr)
                r = await request(a, "logout", {})
                self.assertEqual(r["response"]["code"], 200, r)
                for node in self.nodes:
                    await await_until(lambda: not self.online(node, 102, "olive"),
                                      what="%s: olive offline on 102 after logout" % node.self_addr)
                    self.assertTrue(self.online(node, 103, "olive"))
                    self.assertTrue(self.online(node, 0, "olive"), "still online on 103")
                await b.close()
                for node in self.nodes:
                    await await_until(lambda: not self.online(node, 0, "olive"),
                                      what="%s: olive offline everywhere" % node.self_addr)
            finally:
                await close_all(a, b)
        run(t())


class MessagingTest(ClusterCase):

    def test_send_message_cross_node(self):
        async def t():
            socks = {}
            try:
                for user, node in (("x1", self.A), ("x2", self.B), ("x3", self.C)):
                    socks[user] = await login(node, user, 101)
                for user in socks:
                    await await_until(lambda: all(self.online(n, 101, user) for n in self.nodes),
                                      what="%s online on every node" % user)
                targets = [(ws, 101, user) for user, ws in socks.items()]
                for i, sender in enumerate(self.nodes):
                    for user, ws in socks.items():
                        msgid = mid("p2p-%d-%s" % (i, user))
                        r = self.send(sender, 101, user, "to %s via %d" % (user, i), msgid)
                        self.assertEqual(r, {"code": 200, "msg": "Success", "data": {"sendResults": True}},
                                         (sender.self_addr, user))
                        m = await self.recv_push(ws, msgid, "%s from node %d" % (msgid, i))
                        self.assertEqual(without_id(m), msg_push(msgid, "to %s via %d" % (user, i), user),
                                         "push via node %d" % i)
                    # one copy each: nothing but enter/exit before a later marker
                    await absent_until_marker(sender, targets, unwanted=not_presence,
                                              what="no second copy of a push via node %d" % i)
                # offline user, user of another room: false (and stored for
                # the next login, SPEC 7.1), from every node
                stored = {"sendResults": False, "stored": True}
                for i, sender in enumerate(self.nodes):
                    r = self.send(sender, 101, "nobody", "x", mid("p2p-off-%d" % i))
                    self.assertEqual(r, {"code": 200, "msg": "Success", "data": stored}, i)
                    r = self.send(sender, 102, "x2", "x", mid("p2p-room-%d" % i))
                    self.assertEqual(r["data"], stored, (i, r))
                    await absent_until_marker(sender, targets, unwanted=not_presence,
                                              what="no push from a send to nobody or to another room")
                # two tabs of one user on one node: both get it, once
                tab = await login(self.C, "x3", 101)
                socks["x3-tab"] = tab
                msgid = mid("p2p-tabs")
                r = self.send(self.A, 101, "x3", "both tabs", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                got = await until_marker(self.A, [(socks["x3"], 101, "x3"), (tab, 101, "x3"),
                                                  (socks["x1"], 101, "x1"), (socks["x2"], 101, "x2")])
                self.assertEqual([len(copies(g, msgid)) for g in got], [1, 1, 0, 0], got)
                self.assertEqual(without_id(copies(got[0], msgid)[0]), msg_push(msgid, "both tabs", "x3"))
                for g in got:
                    self.assertEqual([m for m in g if not presence(m) and m.get("seq") != msgid], [], got)
            finally:
                await close_all(*socks.values())
        run(t())

    def test_send_message_all(self):
        async def t():
            socks = []
            try:
                # room 102: a on A, b on B, c on C, d on A and on C, e twice on B;
                # room 101 has one user per node and must hear nothing
                plan = [("a", self.A), ("b", self.B), ("c", self.C), ("d", self.A), ("d", self.C),
                        ("e", self.B), ("e", self.B)]
                room = []
                for user, node in plan:
                    room.append((user, await login(node, user, 102)))
                other = [await login(node, "o%d" % i, 101) for i, node in enumerate(self.nodes)]
                socks = [ws for _, ws in room] + other
                await await_until(lambda: self.lists_equal(102, ["a", "b", "c", "d", "e"]),
                                  what="room 102 listed on every node")
                await await_until(lambda: self.lists_equal(101, ["o0", "o1", "o2"]),
                                  what="room 101 listed on every node")
                targets = [(ws, 102, user) for user, ws in room] + \
                          [(ws, 101, "o%d" % i) for i, ws in enumerate(other)]

                async def collect(node):
                    """Everything up to a later sendMessageAll marker through
                    the same node, per socket."""
                    return await until_marker(node, targets, room=True)

                def check(got, msgid, message, sender, excluded):
                    for (user, _), msgs in zip(room, got[:len(room)]):
                        c = copies(msgs, msgid)
                        want = 0 if user == excluded else 1
                        self.assertEqual(len(c), want, "%s got %d copies of %s: %r" % (user, len(c), msgid, msgs))
                        for m in c:
                            self.assertEqual(without_id(m), msg_push(msgid, message, sender))
                    for msgs in got[len(room):]:
                        self.assertEqual(copies(msgs, msgid), [], "room 101 got a room-102 message")
                    for msgs in got:
                        self.assertEqual([m for m in msgs if not presence(m) and m.get("seq") != msgid], [],
                                         "only %s and enter/exit pushes: %r" % (msgid, msgs))

                # from each node, sender a (in the room, excluded)
                for i, node in enumerate(self.nodes):
                    msgid = mid("all-a-%d" % i)
                    r = self.send_all(node, 102, "a", "hello room %d" % i, msgid)
                    self.assertEqual(r, {"code": 200, "msg": "Success", "data": {"sendResults": True}}, i)
                    check(await collect(node), msgid, "hello room %d" % i, "a", "a")
                # sender d, who is on two nodes: neither of d's connections
                msgid = mid("all-d")
                r = self.send_all(self.B, 102, "d", "from d", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                check(await collect(self.B), msgid, "from d", "d", "d")
                # a sender outside the room: everyone
                msgid = mid("all-sys")
                r = self.send_all(self.C, 102, "system", "all of you", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                check(await collect(self.C), msgid, "all of you", "system", None)
            finally:
                await close_all(*socks)
        run(t())

    def test_enter_exit_across_nodes(self):
        async def t():
            p = q = r = None
            # pe's own enter goes from A to B and C over gRPC, in no order
            # with anything this test does there (B and C have nobody in the
            # room yet, so nothing shows it arrived): it may reach qe or re
            # after their logins. At most once at each, and only there.
            pe_late = set()

            def late_pe_enter(ws, m):
                if ws in (q, r) and is_push(m, "enter", "pe") and id(ws) not in pe_late:
                    pe_late.add(id(ws))
                    self.assert_presence_push(m, "enter", "pe")
                    return True
                return False

            async def push(ws, what):
                m = await self.next_push(ws, what)
                return await self.next_push(ws, what) if late_pe_enter(ws, m) else m
            try:
                p = await login(self.A, "pe", 103)
                await await_until(lambda: self.online(self.A, 103, "pe"), what="pe online")
                await absent_until_marker(self.A, [(p, 103, "pe")], what="no own enter at pe")
                q = await login(self.B, "qe", 103)
                m = await push(p, "enter of qe (on B) at pe (on A)")
                self.assert_presence_push(m, "enter", "qe")
                r = await login(self.C, "re", 103)
                for ws, who in ((p, "pe on A"), (q, "qe on B")):
                    m = await push(ws, "enter of re (on C) at %s" % who)
                    self.assert_presence_push(m, "enter", "re")
                # one enter each, nothing else: presence markers from B (qe's
                # enter came from there) and C (re's). No own enter at re;
                # qe's enter may still be on its way to C when re logs in
                # there (a benign race): at most that one.
                qe_at_r = []

                def qe_enter_once(ws, m):
                    if ws is r and is_push(m, "enter", "qe") and not qe_at_r:
                        qe_at_r.append(m)
                        self.assert_presence_push(m, "enter", "qe")
                        return True
                    return late_pe_enter(ws, m)
                for origin in (self.B, self.C):
                    await self.presence_marker(origin, 103, [p, q, r], tolerated=qe_enter_once,
                                               what="one enter each at pe and qe, at most qe's at re")
                await q.close()
                for ws, who in ((p, "pe on A"), (r, "re on C")):
                    m = await push(ws, "exit of qe (B, closed) at %s" % who)
                    self.assert_presence_push(m, "exit", "qe")
                await self.presence_marker(self.B, 103, [p, r], tolerated=late_pe_enter,
                                           what="one exit of qe")
                r2 = await request(r, "logout", {})
                self.assertEqual(r2["response"]["code"], 200, r2)
                m = await push(p, "exit of re (C, logout) at pe on A")
                self.assert_presence_push(m, "exit", "re")
                await self.presence_marker(self.C, 103, [p], what="one exit of re")
            finally:
                await close_all(p, q, r)
        run(t())

    def assert_presence_push(self, m, cmd, frm):
        self.assertIsInstance(m.get("seq"), str, m)
        self.assertEqual(set(m), {"seq", "cmd", "response"}, m)
        self.assertEqual(m["cmd"], cmd, m)
        self.assertEqual(m["response"], {"code": 200, "codeMsg": "Ok",
                                         "data": {"target": "", "type": "text", "msg": "", "from": frm}}, m)

    def test_user_list_merged(self):
        async def t():
            socks = {}
            try:
                for node in self.nodes:
                    self.assertEqual(self.user_list(node, 104), {"userCount": 0, "userList": []})
                plan = [("la", self.A), ("lb", self.B), ("lc", self.C), ("ld", self.A), ("ld2", self.C),
                        ("le", self.B), ("le2", self.B)]
                for key, node in plan:
                    socks[key] = await login(node, key.rstrip("2"), 104)
                socks["other"] = await login(self.B, "lother", 103)
                await await_until(lambda: self.lists_equal(104, ["la", "lb", "lc", "ld", "le"]),
                                  what="room 104 merged on every node, each user once")
                for node in self.nodes:
                    d = self.user_list(node, 104)
                    self.assertEqual(d["userCount"], len(d["userList"]), d)
                    self.assertEqual(len(set(d["userList"])), len(d["userList"]), "duplicates: %r" % d)
                    self.assertEqual(self.user_list(node, 103), {"userCount": 1, "userList": ["lother"]})
                    self.assertEqual(self.user_list(node, 102), {"userCount": 0, "userList": []})
                # ld leaves A but stays on C; le closes one of two tabs; la goes
                for key in ("ld", "le2", "la"):
                    await socks.pop(key).close()
                await await_until(lambda: self.lists_equal(104, ["lb", "lc", "ld", "le"]),
                                  what="room 104 after la left (ld still on C, le on one tab)")
                for key in ("ld2", "le", "lb", "lc"):
                    await socks.pop(key).close()
                await await_until(lambda: self.lists_equal(104, []), what="room 104 empty on every node")
            finally:
                await close_all(*socks.values())
        run(t())

    def test_dedup_across_nodes(self):
        async def t():
            ws = bystander = None
            try:
                ws = await login(self.C, "dd1", 101)
                bystander = await login(self.A, "dd2", 101)
                await await_until(lambda: self.lists_equal(101, ["dd1", "dd2"]), what="dd1 and dd2 listed")
                targets = [(ws, 101, "dd1"), (bystander, 101, "dd2")]
                msgid = mid("dup")
                key = "acc:submit:again:seq:" + msgid
                r = self.send(self.A, 101, "dd1", "once", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                self.assertEqual(without_id(await self.recv_push(ws, msgid, msgid)), msg_push(msgid, "once", "dd1"))
                self.assertEqual(self.redis.get(key), "1", "%s after an accepted send" % key)
                ttl = self.redis.ttl(key)
                self.assertTrue(0 < ttl <= 43200, "TTL of %s: %r" % (key, ttl))
                # the same msgID on B, on C and on A again: no-op, empty data
                for node in (self.B, self.C, self.A):
                    r = self.send(node, 101, "dd1", "twice", msgid)
                    self.assertEqual(r, {"code": 200, "msg": "Success", "data": {}},
                                     "the same msgID again on %s after A answered: a duplicate" % node.self_addr)
                r = self.send_all(self.B, 101, "system", "twice to all", msgid)
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {}}, "sendMessageAll, same msgID")
                for node in (self.A, self.B, self.C):
                    await absent_until_marker(node, targets, unwanted=not_presence,
                                              what="no copy of a duplicate (marker via %s)" % node.self_addr)
                # sendMessageAll on A then on C with one msgID: delivered once
                msgid = mid("dup-all")
                r = self.send_all(self.A, 101, "system", "all once", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                r = self.send_all(self.C, 101, "system", "all twice", msgid)
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {}},
                                 "the same msgID on C right after A answered: a duplicate (not in progress)")
                got = await until_marker(self.C, targets, room=True)     # order holds per log
                self.assertEqual([len(copies(g, msgid)) for g in got], [1, 1], got)
                for g in got:
                    self.assertEqual([m for m in g if not presence(m) and m.get("seq") != msgid], [], got)
                self.assertEqual(self.redis.get("acc:submit:again:seq:" + msgid), "1")
                # offline: sendResults false, stored in the inbox, so the
                # msgID counts as used (SPEC 7.1): a retry on another node is a
                # no-op, and the login gets the message once
                msgid = mid("dup-off")
                key = "acc:submit:again:seq:" + msgid
                r = self.send(self.A, 101, "dd3", "later", msgid)
                self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
                r = self.send(self.B, 101, "dd3", "later", msgid)
                self.assertEqual(r, {"code": 200, "msg": "Success", "data": {}},
                                 "a retry, on another node, of a send that was stored")
                self.assertEqual(self.redis.get(key), "1")
                late = await login(self.B, "dd3", 101)
                try:
                    await await_until(lambda: self.online(self.C, 101, "dd3"), what="dd3 online")
                    got = (await until_marker(self.C, [(late, 101, "dd3")]))[0]
                    self.assertEqual([without_id(m) for m in got if not presence(m)],
                                     [msg_push(msgid, "later", "dd3")], got)
                finally:
                    await close_all(late)
                # an empty msgID is never a duplicate
                for node in (self.A, self.B):
                    r = self.send(node, 101, "dd1", "no id", "")
                    self.assertEqual(r["data"], {"sendResults": True}, (node.self_addr, r))
                got = (await until_marker(self.B, [(ws, 101, "dd1")]))[0]
                self.assertEqual([without_id(m) for m in got if not presence(m)],
                                 [msg_push("", "no id", "dd1")] * 2, got)
            finally:
                await close_all(ws, bystander)
        run(t())


if __name__ == "__main__":
    main(sys.modules[__name__])
