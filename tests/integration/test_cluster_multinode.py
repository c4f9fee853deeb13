"""Integration tests: one user on several nodes (SPEC §7.2) and a broken
node registry (acc:hash:servers of the wrong type, fields that are not
ip:port), with a real redis-server and three imgate nodes on loopback.

One user on two nodes: observers on every node see exactly one `enter` (the
user's first connection in the cluster) and no `exit` while a tab stays open
on another node; the presence record is not marked logged off (it is handed
over to the node that still holds the user), /user/online stays true and
/user/sendMessage reaches the tab on the other node; the last tab gone gives
exactly one `exit`, a logged-off record and online false. A send reaches
every node in acc:user:nodes:<appID>_<userID>. Fields of nodes that are not
live are ignored and removed; a node restarted on the same address after
kill -9 removes the fields its earlier run left.

Absence of a push is proven by order, never by a quiet window: a presence
marker (a marker user logging in and out on the node that would announce)
travels the same way as the unwanted enter/exit would, after it.

Run: /usr/bin/python3 tests/integration/test_cluster_multinode.py"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (without_id, ClusterCase, Node, await_until, close_all, cluster_args,  # noqa: E402
                     cluster_state, copies, free_port, is_push, login, main, msg_push,
                     presence_key, recv_until, run, until_marker,
                     wait_cluster, wait_until)

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


class ClusterBase(ClusterCase):
    """A redis-server and N nodes shared by the tests of the class; each
    test uses its own users and leaves no client."""
    N = 3
    redis = None
    nodes = []

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
        self.assertEqual(without_id(m), msg_push(msgid, message, user))
        before = (await until_marker(sender, [(ws, app, user)]))[0]
        self.assertEqual(copies(before, msgid), [], "a second copy of %s" % msgid)


class OneUserTwoNodesTest(ClusterBase):

    def test_tab_on_b_outlives_tab_on_a(self):
        """B first, then A (A's login writes the record last), A closes:
        one enter, no exit, record handed to B, online, sendMessage reaches
        B; B closes: one exit, logged off, offline."""
        async def t():
            app, user = 101, fresh_user("mu")
            obs = tab_b = tab_a = None
            try:
                obs = await self.observers(app)
                tab_b = await login(self.B, user, app)
                await self.expect_one(obs, "enter", user, "enter of %s (first tab, on B)" % user)
                await await_until(lambda: self.record_names(app, user, self.B), what="the record naming B")

                # A's login writes the record (last writer): once it is in
                # Redis, A has handled the login
                tab_a = await login(self.A, user, app)
                await await_until(lambda: self.record_names(app, user, self.A), what="the record naming A")
                await self.presence_marker(self.A, app, obs, user, "no second enter (second tab, on A)")
                h = self.redis.hgetall(nodes_key(app, user))
                self.assertEqual(h, {self.A.self_addr: "1", self.B.self_addr: "1"}, "field -> connections")
                ttl = self.redis.ttl(nodes_key(app, user))
                self.assertTrue(0 < ttl <= 86400, "TTL of %s: %r" % (nodes_key(app, user), ttl))

                # the record changes once A has handled the close
                await tab_a.close()
                await await_until(lambda: not self.record_names(app, user, self.A),
                                  what="A to rewrite the record after its tab closed")
                await self.presence_marker(self.A, app, obs, user, "no exit while a tab is open on B")
                self.assertEqual(self.fields(app, user), {self.B.self_addr}, "A's field gone, B's left")
                rec = self.record(app, user)
                self.assertIs(rec["isLogoff"], False, "record while B holds the user: %r" % rec)
                self.assertEqual((rec["accIp"], rec["accPort"]), ("127.0.0.1", str(self.B.rpc_port)),
                                 "the record names B, which holds the user: %r" % rec)
                self.assertEqual(rec["logOutTime"], 0, rec)
                for node in self.nodes:
                    self.assertTrue(self.online(node, app, user), "online via %s" % node.self_addr)
                    self.assertTrue(self.online(node, 0, user), "online (any appID) via %s" % node.self_addr)
                for i, sender in enumerate(self.nodes):
                    await self.delivered_once(sender, tab_b, app, user, "still on B %d" % i, mid("mn-b-%d" % i))

                await tab_b.close()
                await self.expect_one(obs, "exit", user, "exit of %s (last tab closed, on B)" % user)
                await self.presence_marker(self.B, app, obs, user, "exactly one exit")
                rec = await await_until(lambda: (lambda r: r if r and r["isLogoff"] else None)(self.record(app, user)),
                                        what="the record marked logged off")
                self.assertEqual(rec["accPort"], str(self.B.rpc_port), rec)
                self.assertGreater(rec["logOutTime"], 0, rec)
                self.assertEqual(self.redis.cmd("EXISTS", nodes_key(app, user)), 0,
                                 "no field left in %s" % nodes_key(app, user))
                for node in self.nodes:
                    self.assertFalse(self.online(node, app, user), "offline via %s" % node.self_addr)
                    self.assertFalse(self.online(node, 0, user))
            finally:
                await close_all(tab_a, tab_b, *(obs or []))
        run(t())

    def test_tab_on_a_outlives_tab_on_b(self):
        """A first, then B; B closes (B wrote the record last): one enter,
        no exit, the record names A, online; A closes: one exit."""
        async def t():
            app, user = 102, fresh_user("mv")
            obs = tab_a = tab_b = None
            try:
                obs = await self.observers(app)
                tab_a = await login(self.A, user, app)
                await self.expect_one(obs, "enter", user, "enter of %s (first tab, on A)" % user)
                tab_b = await login(self.B, user, app)
                await await_until(lambda: self.record_names(app, user, self.B), what="the record naming B")
                await self.presence_marker(self.B, app, obs, user, "no second enter (second tab, on B)")
                self.assertEqual(self.fields(app, user), {self.A.self_addr, self.B.self_addr})
                await tab_b.close()
                await await_until(lambda: not self.record_names(app, user, self.B),
                                  what="B to rewrite the record after its tab closed")
                await self.presence_marker(self.B, app, obs, user, "no exit while a tab is open on A")
                self.assertEqual(self.fields(app, user), {self.A.self_addr}, "B's field gone")
                rec = self.record(app, user)
                self.assertIs(rec["isLogoff"], False, rec)
                self.assertEqual(rec["accPort"], str(self.A.rpc_port), rec)
                for node in self.nodes:
                    self.assertTrue(self.online(node, app, user), node.self_addr)
                await self.delivered_once(self.C, tab_a, app, user, "on A", mid("mv-c"))
                await tab_a.close()
                await self.expect_one(obs, "exit", user, "exit of %s (last tab, on A)" % user)
                await self.presence_marker(self.A, app, obs, user, "exactly one exit")
                for node in self.nodes:
                    self.assertFalse(self.online(node, app, user), node.self_addr)
            finally:
                await close_all(tab_a, tab_b, *(obs or []))
        run(t())

    def test_send_reaches_every_node_of_the_user(self):
        """Tabs on A and B (the record names only B): a send through any
        node reaches both tabs, once each; a third tab on B is counted."""
        async def t():
            app, user = 103, fresh_user("ms")
            ta = tb = tb2 = None
            try:
                ta = await login(self.A, user, app)
                await await_until(lambda: self.record_names(app, user, self.A), what="the record naming A")
                tb = await login(self.B, user, app)
                await await_until(lambda: self.record_names(app, user, self.B), what="the record naming B")
                for i, sender in enumerate(self.nodes):
                    msgid, text = mid("ms-%d" % i), "to both tabs via %d" % i
                    r = self.send(sender, app, user, text, msgid)
                    self.assertEqual(r["data"], {"sendResults": True}, (sender.self_addr, r))
                    for ws in (ta, tb):
                        m, _ = await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid),
                                                "%s via node %d at both tabs" % (msgid, i))
                        self.assertEqual(without_id(m), msg_push(msgid, text, user))
                    got = await until_marker(sender, [(ta, app, user), (tb, app, user)])
                    self.assertEqual([copies(g, msgid) for g in got], [[], []], "one copy per tab")
                self.assertEqual(self.redis.hgetall(nodes_key(app, user)),
                                 {self.A.self_addr: "1", self.B.self_addr: "1"})
                tb2 = await login(self.B, user, app)
                await await_until(lambda: self.redis.hgetall(nodes_key(app, user)).get(self.B.self_addr) == "2",
                                  what="B's field counting two connections")
                await tb2.close()
                await await_until(lambda: self.redis.hgetall(nodes_key(app, user)).get(self.B.self_addr) == "1",
                                  what="B's field back to one connection")
            finally:
                await close_all(ta, tb, tb2)
        run(t())

    def test_field_of_a_dead_node_is_ignored_and_removed(self):
        """A field naming a node that is not live: not online, not called,
        the first real login still announces enter and removes the field."""
        async def t():
            app, user = 104, fresh_user("md")
            dead = "127.0.0.1:%d" % free_port()
            obs = ws = None
            try:
                self.redis.cmd("HSET", nodes_key(app, user), dead, "3")
                for node in self.nodes:
                    self.assertFalse(self.online(node, app, user), "a dead node's field is not online")
                    self.assertFalse(self.online(node, 0, user))
                obs = await self.observers(app)
                ws = await login(self.A, user, app)
                await self.expect_one(obs, "enter", user, "enter of %s despite the dead node's field" % user)
                await await_until(lambda: self.fields(app, user) == {self.A.self_addr},
                                  what="the dead node's field removed, A's written")
                await self.delivered_once(self.C, ws, app, user, "not via the dead node", mid("md-c"))
                peers = [p["peer"] for p in cluster_state(self.C)["peers"]]
                self.assertNotIn(dead, peers, "C must never call a node that is not live")
                await ws.close()
                await self.expect_one(obs, "exit", user, "exit of %s" % user)
            finally:
                await close_all(ws, *(obs or []))
        run(t())

    def test_first_connection_runs_no_script(self):
        """The join is one MULTI/EXEC transaction: a first connection writes
        its field and the record, is announced, and no Lua script runs."""
        async def t():
            app, user = 104, fresh_user("ns")
            obs = ws = None
            try:
                obs = await self.observers(app)
                scripts, execs = self.redis.calls("eval", "evalsha"), self.redis.calls("exec")
                ws = await login(self.A, user, app)
                await self.expect_one(obs, "enter", user, "enter of %s" % user)
                self.assertEqual(self.fields(app, user), {self.A.self_addr})
                self.assertTrue(self.record_names(app, user, self.A), self.record(app, user))
                self.assertEqual(self.redis.calls("eval", "evalsha"), scripts,
                                 "a script ran for a first connection")
                self.assertEqual(self.redis.calls("exec"), execs + 1, "the join's transaction")
                await ws.close()
                await self.expect_one(obs, "exit", user, "exit of %s" % user)
            finally:
                await close_all(ws, *(obs or []))
        run(t())

    def test_field_of_a_node_registered_since_the_last_read_stays(self):
        """A node that registered after this node last read the registry is
        not in its list yet: the login's clean-up asks the registry, which
        removes the dead node's field and keeps the new node's."""
        async def t():
            app, user = 104, fresh_user("nr")
            dead, new = "127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % free_port()
            ws = None
            try:
                self.redis.cmd("HSET", nodes_key(app, user), dead, "3", new, "2")
                # live for the registry for the whole test, however slow
                self.redis.cmd("HSET", SERVERS, new, str(int(time.time()) + 60))
                ws = await login(self.A, user, app)
                await await_until(lambda: dead not in self.fields(app, user),
                                  what="the dead node's field removed")
                self.assertEqual(self.fields(app, user), {self.A.self_addr, new},
                                 "the field of a live node stays")
            finally:
                self.redis.cmd("HDEL", SERVERS, new)
                await close_all(ws)
                for node in self.nodes:       # no phantom peer for the next test
                    await await_until(lambda: new not in node.state()["cluster"]["servers"],
                                      what="%s out of %s's list" % (new, node.self_addr))
        run(t())

    def test_killed_node_restarted_removes_its_fields(self):
        """kill -9 of a node holding a user, restarted on the same address:
        its old field goes, the record is logged off, the user is offline."""
        async def t():
            app, user = 101, fresh_user("mk")
            rpc = free_port()
            args = cluster_args(self.redis)
            args[args.index("--rpc-port") + 1] = str(rpc)
            D = Node(*args)
            D2 = ws = None
            try:
                wait_cluster(self.nodes + [D])
                ws = await login(D, user, app)
                await await_until(lambda: self.record_names(app, user, D), what="the record naming D")
                for node in self.nodes:
                    await await_until(lambda: self.online(node, app, user), what="online via %s" % node.self_addr)
                D.stop(check=False, sig=signal.SIGKILL)
                await close_all(ws)
                ws = None
                D2 = Node(*args)
                self.assertEqual(D2.self_addr, D.self_addr)
                wait_cluster(self.nodes + [D2])
                await await_until(lambda: not self.online(self.A, app, user), timeout=10,
                                  what="%s offline once D is back without it" % user)
                self.assertEqual(self.redis.cmd("EXISTS", nodes_key(app, user)), 0,
                                 "the restarted node removed its earlier run's field")
                rec = self.record(app, user)
                self.assertIs(rec["isLogoff"], True, "the record of a user nobody holds: %r" % rec)
                self.assertGreater(rec["logOutTime"], 0, rec)
                for node in self.nodes + [D2]:
                    self.assertFalse(self.online(node, app, user), "offline via %s" % node.self_addr)
                self.assertIn("stale field of user %d_%s" % (app, user), D2.stderr())
            finally:
                await close_all(ws)
                D.stop(check=False, sig=signal.SIGKILL)
                if D2:
                    D2.stop()
        run(t())


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


class QuietJoinTest(ClusterBase):
    """A first connection that announces nothing (its room holds more users
    on the node than im.presenceEventsMaxRoom) writes its field, the TTL and
    the record back to back, without a transaction: the same state as a
    join that announces, which the leave script then hands over and logs
    off as usual."""
    N = 2
    ARGS = ("--set", "im.presenceEventsMaxRoom=1")

    def test_quiet_join_writes_without_a_transaction(self):
        async def t():
            app, user = 103, fresh_user("qj")
            first = wa = wb = None
            try:
                first = await login(self.A, fresh_user("q1"), app)   # the room's one announced user on A
                execs = self.redis.calls("exec")
                wa = await login(self.A, user, app)
                # the login's answer follows the join's writes on A's Redis link
                self.assertEqual(self.redis.calls("exec"), execs, "a transaction for a join that announces nothing")
                self.assertEqual(self.fields(app, user), {self.A.self_addr})
                self.assertTrue(self.record_names(app, user, self.A), self.record(app, user))
                for key in (nodes_key(app, user), presence_key(app, user)):
                    ttl = int(self.redis.cmd("TTL", key))
                    self.assertTrue(0 < ttl <= 86400, "TTL of %s: %d" % (key, ttl))
                self.assertTrue(self.online(self.B, app, user))
                await self.delivered_once(self.B, wa, app, user, "to a quiet join", mid("qj-send"))
                wb = await login(self.B, user, app)                  # B's first user of the room: a transaction
                self.assertEqual(self.fields(app, user), {self.A.self_addr, self.B.self_addr})
                await wa.close()
                wait_until(lambda: self.record_names(app, user, self.B),
                           what="the record handed over to B after the tab on A closed")
                self.assertTrue(self.online(self.A, app, user))
                await wb.close()
                wait_until(lambda: self.record_names(app, user, self.B, logoff=True),
                           what="the record logged off after the last tab")
                self.assertFalse(self.online(self.A, app, user))
                self.assertEqual(self.fields(app, user), set())
            finally:
                await close_all(first, wa, wb)
        run(t())


if __name__ == "__main__":
    main(sys.modules[__name__])
