"""Integration tests: several nodes against one Redis, with a real
redis-server and imgate nodes on loopback. A broken node registry:
acc:hash:servers of the wrong type makes every cluster-wide call answer
1004 naming the key (one log line, no msgID used up); registry fields that
are not ip:port are never called, and are logged once per node.

Run: /usr/bin/python3 tests/integration/test_cluster_multinode.py"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (RedisServer, await_until, close_all, cluster_state,  # noqa: E402
                     copies, is_push, login, main, msg_push, presence_key, recv_until, run,
                     start_cluster, stop_all, until_marker, wait_cluster, wait_until)

SERVERS = "acc:hash:servers"
RUN = "%x" % int(time.time() * 1000)        # makes msgIDs unique to this run
_n = [0]


def mid(name):
    return "%s-%s" % (name, RUN)


def fresh_user(prefix):
    """A userID (under 20 bytes) no earlier test of this run used."""
    _n[0] += 1
    return "%s%d%s" % (prefix, _n[0], RUN[-5:])


def nodes_key(app, user):
    return "acc:user:nodes:%d_%s" % (app, user)


def about(m, user):
    """An enter or exit push about user."""
    return is_push(m, "enter", user) or is_push(m, "exit", user)


class ClusterBase(unittest.TestCase):
    """A redis-server and N nodes shared by the tests of the class; each
    test uses its own users and leaves no client."""
    N = 3
    redis = None
    nodes = []

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        try:
            cls.nodes = start_cluster(cls.redis, cls.N)
        except BaseException:
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            stop_all(cls.nodes)
        finally:
            cls.redis.stop()

    def setUp(self):
        for node in self.nodes:
            wait_until(lambda: (lambda s: s["wsConnections"] == 0 and s["users"] == 0)(node.state()),
                       what="no client left on node %s" % node.self_addr)
        wait_cluster(self.nodes)

    @property
    def A(self):
        return self.nodes[0]

    @property
    def B(self):
        return self.nodes[1]

    @property
    def C(self):
        return self.nodes[2]

    def online(self, node, app, user):
        r = node.api("/user/online", params={"appID": app, "userID": user})
        self.assertEqual(r["code"], 200, r)
        return r["data"]["online"]

    def send(self, node, app, user, message, msgid):
        return node.api("/user/sendMessage",
                        params={"appID": app, "userID": user, "msgID": msgid, "message": message})

    def fields(self, app, user):
        """The node fields of the user's nodes hash (set of "ip:port")."""
        return set(self.redis.hgetall(nodes_key(app, user)))

    def record(self, app, user):
        raw = self.redis.get(presence_key(app, user))
        return json.loads(raw) if raw else None

    def record_names(self, app, user, node, logoff=False):
        """Whether the user's presence record names node (and is, or is
        not, logged off)."""
        r = self.record(app, user)
        return bool(r) and r["accPort"] == str(node.rpc_port) and r["isLogoff"] is logoff

    async def presence_marker(self, node, app, watchers, user, what):
        """Proves by order that no enter/exit of `user` announced by `node`
        (after the point the caller reached) reaches the watchers: a marker
        user logs in on `node` in room `app` and leaves; its enter and exit
        go the same way (node's Redis link, then node's own inboxes or gRPC
        to each peer), and each watcher reads up to them."""
        marker = fresh_user("mk")
        mws = await login(node, marker, app)
        try:
            for cmd in ("enter", "exit"):
                if cmd == "exit":
                    await mws.close()
                for ws in watchers:
                    _, before = await recv_until(ws, lambda m: is_push(m, cmd, marker),
                                                 "the %s of presence marker %s" % (cmd, marker), timeout=10)
                    bad = [m for m in before if about(m, user)]
                    self.assertEqual(bad, [], "%s: before the marker's %s" % (what, cmd))
        finally:
            await close_all(mws)

    async def observers(self, app):
        """One observer per node in room `app`; returns their sockets."""
        return [await login(node, fresh_user("ob"), app) for node in self.nodes]

    async def expect_one(self, watchers, cmd, user, what):
        """Each watcher gets cmd of user; nothing else about user before it."""
        for ws in watchers:
            _, before = await recv_until(ws, lambda m: is_push(m, cmd, user), what, timeout=10)
            self.assertEqual([m for m in before if about(m, user)], [], "%s: before it" % what)

    async def delivered_once(self, sender, ws, app, user, message, msgid):
        """A sendMessage through `sender` answers true and reaches ws
        exactly once (a later marker through the same node closes the
        count)."""
        r = self.send(sender, app, user, message, msgid)
        self.assertEqual(r, {"code": 200, "msg": "Success", "data": {"sendResults": True}},
                         "sendMessage of %s via %s" % (user, sender.self_addr))
        m, _ = await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid), "%s via %s" % (msgid, sender.self_addr))
        self.assertEqual(m, msg_push(msgid, message, user))
        before = (await until_marker(sender, [(ws, app, user)]))[0]
        self.assertEqual(copies(before, msgid), [], "a second copy of %s" % msgid)


class RegistryFaultTest(ClusterBase):
    """acc:hash:servers that cannot be read, or holds fields that are not
    ip:port. Two nodes of their own (the registry is broken on purpose)."""
    N = 2

    def registry_lines(self, node, *words):
        return [line for line in node.stderr().splitlines() if all(w in line for w in words)]

    def test_registry_of_the_wrong_type_answers_1004(self):
        async def t():
            app, user = 101, fresh_user("rw")
            ws = None
            try:
                ws = await login(self.B, user, app)
                await await_until(lambda: self.online(self.A, app, user), what="online via A")
                self.assertEqual(self.redis.cmd("SET", SERVERS, "not a hash"), "OK")
                msgid = mid("rw-send")
                for node in self.nodes:
                    for _ in range(3):
                        r = node.api("/user/list", params={"appID": app})
                        self.assertEqual(r["code"], 1004, r)
                        self.assertIn(SERVERS, r["msg"], r)
                        self.assertIn("WRONGTYPE", r["msg"], r)
                    r = node.api("/user/online", params={"appID": app, "userID": user})
                    self.assertEqual(r["code"], 1004, r)
                    r = node.api("/user/sendMessageAll",
                                 params={"appID": app, "userID": "sys", "msgID": mid("rw-all"), "message": "x"})
                    self.assertEqual(r["code"], 1004, r)
                    r = self.send(node, app, user, "held back", msgid)
                    self.assertEqual(r["code"], 1004, r)
                    self.assertIn(SERVERS, r["msg"], r)
                for node in self.nodes:
                    lines = self.registry_lines(node, SERVERS, "WRONGTYPE")
                    self.assertEqual(len(lines), 1, "one log line naming the key and the error: %r" % lines)
                # repaired: the nodes register again, the API answers, and
                # the msgID of the refused send was not used up
                self.redis.cmd("DEL", SERVERS)
                await await_until(lambda: set(self.redis.hgetall(SERVERS)) == {n.self_addr for n in self.nodes},
                                  what="both nodes registered again")
                for node in self.nodes:
                    r = node.api("/user/list", params={"appID": app})
                    self.assertEqual(r["code"], 200, r)
                    self.assertIn(user, r["data"]["userList"], r)
                await self.delivered_once(self.A, ws, app, user, "after the repair", msgid)
                for node in self.nodes:
                    self.assertEqual(len(self.registry_lines(node, SERVERS, "WRONGTYPE")), 1)
            finally:
                if self.redis.cmd("TYPE", SERVERS) != "hash":
                    self.redis.cmd("DEL", SERVERS)
                await close_all(ws)
        run(t())

    def test_registry_fields_that_are_not_ip_port_are_skipped(self):
        async def t():
            app, user = 102, fresh_user("rf")
            bad = ["garbage", "1.2.3.4:notaport", "1.2.3.4:0", "1.2.3.4:65536", ":9001", "1.2.3.4:"]
            future = str(int(time.time()) + 3600)
            ws = None
            try:
                for f in bad:
                    self.redis.cmd("HSET", SERVERS, f, future)
                ws = await login(self.B, user, app)
                for node in self.nodes:
                    for i in range(3):               # every call reads the registry afresh
                        r = node.api("/user/list", params={"appID": app})
                        self.assertEqual(r["code"], 200, r)
                        self.assertEqual(r["data"]["userList"], [user], r)
                        r = node.api("/user/sendMessageAll", params={"appID": app, "userID": "sys",
                                                                     "msgID": mid("rf-%d-%d" % (node.http_port, i)),
                                                                     "message": "m"})
                        self.assertEqual(r["data"], {"sendResults": True}, r)
                    c = cluster_state(node)
                    self.assertEqual(sorted(c["servers"]), sorted(n.self_addr for n in self.nodes), c)
                    peers = [p["peer"] for p in c["peers"]]
                    for f in bad:
                        self.assertNotIn(f, peers, "a field that is not ip:port became a gRPC target")
                    for f in bad:
                        lines = self.registry_lines(node, "'%s'" % f, SERVERS)
                        self.assertEqual(len(lines), 1, "field %r logged once by %s: %r" % (f, node.self_addr, lines))
                await self.delivered_once(self.A, ws, app, user, "through the good nodes", mid("rf-send"))
            finally:
                self.redis.cmd("HDEL", SERVERS, *bad)
                await close_all(ws)
        run(t())


if __name__ == "__main__":
    main(sys.modules[__name__])
