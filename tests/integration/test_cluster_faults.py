"""Integration tests: cluster mode under faults (SPEC §5, §6).

- kill -9 of one node of three: no API call on the survivors hangs (each
  answers within the gRPC deadline plus a margin), the dead node drops out of
  the registry view after cluster.serverTimeout, calls stop going to it, and
  users on the survivors keep receiving room messages exactly once;
- redis-server stopped and started again (empty, same port): the nodes keep
  serving their own users (login, heartbeat), cluster-wide API calls answer
  code 1004 naming Redis, and once Redis is back the nodes register again and
  rewrite the presence of every user they hold (also those who logged in
  while Redis was down);
- a peer that accepts TCP connections and never answers, registered in Redis
  by the test: API calls still answer in bounded time with every real user
  served, and /system/state shows that peer unhealthy.

Timing assertions are only "did not hang" bounds (HANG_BOUND: 5 s, x3 under
the sanitizers). Every process is started by the test and stopped by PID.

Run: /usr/bin/python3 tests/integration/test_cluster_faults.py"""

import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (without_id, HANG_BOUND, SLOW, RedisServer, await_until, close_all, cluster_state,  # noqa: E402
                     copies, is_push, login, main, msg_push, presence_json, presence_key, request,
                     run, start_cluster, stop_all, until_marker, wait_until)

SERVERS = "acc:hash:servers"
RUN = "%x" % int(time.time() * 1000)


def mid(name):
    return "%s-%s" % (name, RUN)


class FaultCase(unittest.TestCase):
    """A fresh redis-server and N nodes per test (the tests break them)."""
    N = 2

    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.nodes = start_cluster(self.redis, self.N)
        self.killed = []                         # nodes the test killed on purpose
        self.addCleanup(self._stop_nodes)        # runs before redis.stop (LIFO)

    def _stop_nodes(self):
        for n in self.killed:                    # no exit status to check
            n.stop(check=False)
        stop_all([n for n in self.nodes if n not in self.killed])

    def timed(self, node, path, **params):
        """An API call that must answer HTTP 200 within HANG_BOUND: the JSON."""
        t0 = time.monotonic()
        status, _, body = node.http(path, params=params)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, HANG_BOUND, "%s on %s took %.2f s (hung on a dead peer?)"
                        % (path, node.self_addr, elapsed))
        self.assertEqual(status, 200, (path, body))
        return json.loads(body)

    def user_list(self, node, app):
        r = self.timed(node, "/user/list", appID=app)
        self.assertEqual(r["code"], 200, r)
        return {"userCount": r["data"]["userCount"], "userList": sorted(r["data"]["userList"])}

    def lists_equal(self, nodes, app, users):
        """Whether each of nodes lists exactly `users`; else a falsy dict of
        what they list (shown when a wait times out)."""
        want = {"userCount": len(users), "userList": sorted(users)}
        seen = {n.self_addr: self.user_list(n, app) for n in nodes}
        return True if all(v == want for v in seen.values()) else Listing(seen)

    def online(self, node, app, user):
        r = self.timed(node, "/user/online", appID=app, userID=user)
        self.assertEqual(r["code"], 200, r)
        return r["data"]["online"]

    def send_all(self, node, app, sender, message, msgid):
        return self.timed(node, "/user/sendMessageAll", appID=app, userID=sender, msgID=msgid, message=message)

    def send(self, node, app, user, message, msgid):
        return self.timed(node, "/user/sendMessage", appID=app, userID=user, msgID=msgid, message=message)

    async def assert_each_once(self, node, targets, msgid, message, sender, stored_ok=False, room=False):
        """Every target (ws, appID, userID) receives the push msgid exactly
        once and no other message push: everything up to a later marker
        push through `node` (sent after the push's call answered, so behind
        any copy of it; room=True for a room push: a room marker, since order
        holds within a log, docs/protocol.md) is that one copy plus
        enter/exit pushes, which arrive from other nodes whenever their
        announcement does."""
        got = await until_marker(node, targets, stored_ok=stored_ok, room=room)
        for (ws, app, user), msgs in zip(targets, got):
            c = copies(msgs, msgid)
            self.assertEqual(len(c), 1, "%s: %d copies of %s: %r" % (user, len(c), msgid, msgs))
            self.assertEqual(without_id(c[0]), msg_push(msgid, message, sender))
            others = [m for m in msgs if m.get("seq") != msgid and not is_push(m, "enter")
                      and not is_push(m, "exit")]
            self.assertEqual(others, [], "%s: messages besides %s: %r" % (user, msgid, msgs))


class Listing(dict):
    def __bool__(self):
        return False


class KillNodeTest(FaultCase):
    N = 3

    def test_kill_one_node(self):
        async def t():
            A, B, C = self.nodes
            socks = []
            try:
                a = await login(A, "ka", 101)
                b = await login(B, "kb", 101)
                c = await login(C, "kc", 101)
                c2 = await login(C, "kc2", 101)
                socks = [a, b, c, c2]
                await await_until(lambda: self.lists_equal(self.nodes, 101, ["ka", "kb", "kc", "kc2"]),
                                  what="room 101 merged on every node")
                survivors = [(a, 101, "ka"), (b, 101, "kb")]

                self.killed.append(C)
                C.proc.kill()                                        # kill -9
                C.proc.wait(timeout=10 * SLOW)
                # right away: nothing hangs on the survivors
                for i, node in enumerate((A, B)):
                    msgid = mid("kill-now-%d" % i)
                    r = self.send_all(node, 101, "system", "still here %d" % i, msgid)
                    self.assertEqual(r["code"], 200, r)
                    await self.assert_each_once(node, survivors, msgid, "still here %d" % i, "system", room=True)
                    self.user_list(node, 101)
                    self.online(node, 101, "kc")
                    self.online(node, 0, "kc")
                    self.send(node, 101, "kc", "to the dead", mid("kill-kc-%d" % i))
                    r = self.send(node, 101, "kb", "to kb", mid("kill-kb-%d" % i))
                    self.assertEqual(r["data"], {"sendResults": True}, r)
                    await self.assert_each_once(node, [(b, 101, "kb")], mid("kill-kb-%d" % i), "to kb", "kb")

                # after serverTimeout the dead node is gone from the survivors' view
                await await_until(lambda: all(C.self_addr not in cluster_state(n)["servers"] for n in (A, B)),
                                  timeout=15, what="C gone from A's and B's servers")
                for n in (A, B):
                    servers = cluster_state(n)["servers"]
                    self.assertIn(A.self_addr, servers)
                    self.assertIn(B.self_addr, servers)
                await await_until(lambda: self.lists_equal((A, B), 101, ["ka", "kb"]),
                                  what="room 101 = the survivors' users")
                for n in (A, B):
                    self.assertFalse(self.online(n, 101, "kc"), "kc's node is gone: offline")
                    self.assertFalse(self.online(n, 0, "kc2"), "kc2's node is gone: offline")
                    r = self.send(n, 101, "kc", "gone", mid("kill-gone-%s" % n.rpc_port))
                    self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)

                # calls stop going to C
                def calls_to_c(node):
                    for p in cluster_state(node)["peers"]:
                        if p["peer"] == C.self_addr:
                            return p["calls"]
                    return 0
                before = [calls_to_c(A), calls_to_c(B)]
                for i in range(3):
                    for n in (A, B):
                        msgid = mid("kill-after-%d-%d" % (i, n.rpc_port))
                        r = self.send_all(n, 101, "system", "after", msgid)
                        self.assertEqual(r["code"], 200, r)
                        await self.assert_each_once(n, survivors, msgid, "after", "system", room=True)
                        self.user_list(n, 101)
                self.assertEqual([calls_to_c(A), calls_to_c(B)], before,
                                 "calls still go to a node that left the registry")
            finally:
                await close_all(*socks)
        run(t())


class RedisRestartTest(FaultCase):

    def test_redis_down_and_back(self):
        async def t():
            A, B = self.nodes
            socks = []
            try:
                r1 = await login(A, "r1", 101)
                r2 = await login(B, "r2", 101)
                socks = [r1, r2]
                await await_until(lambda: self.lists_equal(self.nodes, 101, ["r1", "r2"]),
                                  what="room 101 on both nodes")
                self.redis.kill()
                await await_until(lambda: all(cluster_state(n)["redis"] == "down" for n in self.nodes),
                                  timeout=10, what='"redis":"down" in both nodes\' state')

                # local service goes on
                for ws in (r1, r2):
                    r = await request(ws, "heartbeat", {})
                    self.assertEqual(r["response"]["code"], 200, ("heartbeat while Redis is down", r))
                    r = await request(ws, "ping", {})
                    self.assertEqual(r["response"]["data"], "pong", r)
                r3 = await login(A, "r3", 101)            # asserts code 200
                socks.append(r3)
                r4 = await login(B, "r4", 102)
                socks.append(r4)
                self.assertEqual(A.state()["loggedIn"], 2)
                self.assertEqual(B.state()["loggedIn"], 2)

                # cluster-wide calls: 1004 naming Redis, in bounded time
                calls = [("/user/sendMessage", dict(appID=101, userID="r1", msgID=mid("down-1"), message="x")),
                         ("/user/sendMessageAll", dict(appID=101, userID="system", msgID=mid("down-2"),
                                                       message="x")),
                         ("/user/list", dict(appID=101)),
                         ("/user/online", dict(appID=101, userID="r1")),
                         ("/user/online", dict(appID=0, userID="r2"))]
                for node in self.nodes:
                    for path, params in calls:
                        r = self.timed(node, path, **params)
                        self.assertEqual(r.get("code"), 1004, (path, r))
                        self.assertIn("Redis", r.get("msg", ""), (path, r))
                        self.assertEqual(r.get("data"), {}, (path, r))
                for node in self.nodes:
                    self.assertEqual(cluster_state(node)["redis"], "down")
                    self.assertTrue(node.alive())

                # Redis comes back, empty, on the same port
                self.redis.start()
                await await_until(lambda: all(n.self_addr in self.redis.hgetall(SERVERS) for n in self.nodes),
                                  timeout=15, what="both nodes registered again in the new Redis")
                ttl = self.redis.ttl(SERVERS)
                self.assertTrue(0 < ttl <= 7200, "TTL of %s: %r" % (SERVERS, ttl))
                where = {(101, "r1"): A, (101, "r2"): B, (101, "r3"): A, (102, "r4"): B}

                def records():
                    out = {}
                    for (app, user) in where:
                        raw = self.redis.get(presence_key(app, user))
                        if raw is None:
                            return None
                        out[(app, user)] = raw
                    return out
                recs = await await_until(records, timeout=15,
                                         what="presence of r1..r4 rewritten in the new Redis")
                socks_of = {"r1": r1, "r2": r2, "r3": r3, "r4": r4}
                for (app, user), raw in recs.items():
                    rec = json.loads(raw)
                    node = where[(app, user)]
                    client = "127.0.0.1:%d" % socks_of[user].local_address[1]
                    self.assertEqual(raw, presence_json(node.rpc_port, app, user, client, rec["loginTime"],
                                                        rec["heartbeatTime"]),
                                     "rewritten presence of %s, byte for byte" % user)
                    ttl = self.redis.ttl(presence_key(app, user))
                    self.assertTrue(0 < ttl <= 86400, (user, ttl))
                await await_until(lambda: all(cluster_state(n)["redis"] == "up" for n in self.nodes),
                                  timeout=10, what='"redis":"up" again')

                # the API works again, across nodes
                await await_until(lambda: self.lists_equal(self.nodes, 101, ["r1", "r2", "r3"]),
                                  timeout=10, what="room 101 merged again")
                for node in self.nodes:
                    self.assertTrue(self.online(node, 101, "r3"))
                    self.assertTrue(self.online(node, 0, "r4"))
                msgid = mid("back-1")
                r = self.send(B, 101, "r3", "welcome back", msgid)
                # r3 logged in while Redis was down: no replay could be read,
                # so its pushes are delivered but count as stored (the cursor
                # stays, its next login replays them: docs/protocol.md)
                self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
                await self.assert_each_once(B, [(r3, 101, "r3")], msgid, "welcome back", "r3", stored_ok=True)
                msgid = mid("back-all")
                r = self.send_all(A, 101, "system", "all back", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                await self.assert_each_once(A, [(r1, 101, "r1"), (r2, 101, "r2"), (r3, 101, "r3")],
                                            msgid, "all back", "system", room=True)
            finally:
                await close_all(*socks)
        run(t())


class MutePeer:
    """A TCP listener that accepts connections and never answers (a gRPC peer
    that hangs), registered in acc:hash:servers by the test and refreshed
    every second, as a live node would."""

    def __init__(self, redis):
        self.redis = redis
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.held = []
        self.accepted = 0
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._register, daemon=True)]
        for th in self.threads:
            th.start()

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.held.append(s)                      # held open, never read, never answered
            self.accepted += 1

    def _register(self):
        while not self.stop_ev.is_set():
            try:
                self.redis.cmd("HSET", SERVERS, self.addr, str(int(time.time())), timeout=2)
            except Exception:
                pass
            self.stop_ev.wait(1.0)

    def close(self):
        self.stop_ev.set()
        for th in self.threads:
            th.join(timeout=5)
        self.lsock.close()
        for s in self.held:
            s.close()


class MutePeerTest(FaultCase):

    def test_peer_that_never_answers(self):
        async def t():
            A, B = self.nodes
            mute = MutePeer(self.redis)
            self.addCleanup(mute.close)
            socks = []
            try:
                await await_until(lambda: all(mute.addr in cluster_state(n)["servers"] for n in self.nodes),
                                  timeout=10, what="the mute peer among both nodes' servers")
                f1 = await login(A, "f1", 102)
                f2 = await login(B, "f2", 102)
                socks = [f1, f2]
                await await_until(lambda: all(self.online(n, 102, u) for n in self.nodes for u in ("f1", "f2")),
                                  what="f1 and f2 online on both nodes")
                for i in range(3):
                    for node in self.nodes:
                        msgid = mid("mute-%d-%d" % (i, node.rpc_port))
                        r = self.send_all(node, 102, "system", "through", msgid)
                        self.assertEqual(r["code"], 200, r)
                        await self.assert_each_once(node, [(f1, 102, "f1"), (f2, 102, "f2")], msgid,
                                                    "through", "system", room=True)
                        self.assertEqual(self.user_list(node, 102), {"userCount": 2, "userList": ["f1", "f2"]},
                                         "every real user listed despite the mute peer")
                        self.assertTrue(self.online(node, 102, "f2"))
                        r = self.send(node, 102, "f1", "p2p", msgid + "-p")
                        self.assertEqual(r["data"], {"sendResults": True}, r)
                        await self.assert_each_once(node, [(f1, 102, "f1")], msgid + "-p", "p2p", "f1")
                self.assertGreater(mute.accepted, 0, "the nodes never even tried the mute peer")

                # the nodes' view of it
                def mute_entry(node):
                    for p in cluster_state(node)["peers"]:
                        if p["peer"] == mute.addr:
                            return p
                    return None
                for node in self.nodes:
                    p = mute_entry(node)
                    self.assertIsNotNone(p, "the mute peer missing from %s's peers: %r"
                                         % (node.self_addr, cluster_state(node)["peers"]))
                    self.assertIs(p["healthy"], False, p)
                    self.assertGreaterEqual(p["failures"], 1, p)
                    self.assertGreaterEqual(p["consecutiveFailures"], 1, p)
                    self.assertIsInstance(p["lastError"], str, p)
                    self.assertNotEqual(p["lastError"], "", p)
                    other = [q for q in cluster_state(node)["peers"] if q["peer"] != mute.addr]
                    for q in other:
                        self.assertIs(q["healthy"], True, q)

                # a user whose presence record points at the mute peer
                now = int(time.time())
                self.redis.cmd("SET", presence_key(101, "ghost"),
                               presence_json(mute.port, 101, "ghost", "127.0.0.1:1", now, now), "EX", "86400")
                for node in self.nodes:
                    self.assertTrue(self.online(node, 101, "ghost"),
                                    "online = record online and its node live in the registry")
                    r = self.send(node, 101, "ghost", "into the void", mid("ghost-%d" % node.rpc_port))
                    self.assertNotEqual(r.get("data"), {"sendResults": True},
                                        "a send the mute peer never confirmed cannot be reported delivered")
            finally:
                await close_all(*socks)
        run(t())


class RedisStallTest(FaultCase):
    """A Redis that stops reading (SIGSTOP) while the node's link has more
    to write than the socket takes (room sends of 300 kB, each appended to
    the room's history): the link waits for the socket to drain (POLLOUT)
    instead of dropping anything, and /system/state shows the commands
    pending and the bytes not yet written."""
    N = 1

    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.nodes = start_cluster(self.redis, self.N, "--set", "cluster.redisTimeout=60000")
        self.killed = []
        self.addCleanup(self._stop_nodes)

    def test_writes_wait_for_a_stopped_redis(self):
        import concurrent.futures
        (A,) = self.nodes
        count, size = 60, 300000                 # 18 MB of commands: more than the sockets hold
        self.redis.proc.send_signal(signal.SIGSTOP)
        resumed = [False]

        def cont():
            if not resumed[0]:
                resumed[0] = True
                self.redis.proc.send_signal(signal.SIGCONT)
        self.addCleanup(cont)

        def post(i):
            msg = ("%03d" % i) * (size // 3)
            return A.http("/user/sendMessageAll", method="POST", timeout=60 * SLOW,
                          form={"appID": 103, "userID": "stall1", "msgID": mid("stall-%d" % i),
                                "message": msg})
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            futs = [pool.submit(post, i) for i in range(count)]
            # every send reached the link, and part of them is still in the
            # node (the socket took what it could): the POLLOUT path
            wait_until(lambda: cluster_state(A)["redisPending"] >= count and
                       cluster_state(A)["redisUnsentBytes"] > 0, timeout=30 * SLOW,
                       what="%d commands pending, some bytes unsent" % count)
            self.assertFalse(any(f.done() for f in futs), "answered while Redis was stopped")
            _, _, body = A.http("/metrics")
            gauges = {l.split()[0]: int(l.split()[1]) for l in body.decode().splitlines()
                      if l.startswith("imgate_redis_")}
            self.assertGreaterEqual(gauges["imgate_redis_pending_commands"], count, gauges)
            self.assertGreater(gauges["imgate_redis_unsent_bytes"], 0, gauges)
            cont()
            results = [f.result() for f in futs]
        for status, _, body in results:
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["code"], 200, body)
        self.assertEqual(self.redis.cmd("XLEN", "acc:room:history:103"), count)
        entries = self.redis.cmd("XRANGE", "acc:room:history:103", "-", "+")
        msgs = sorted(dict(zip(e[1][::2], e[1][1::2]))["msg"] for e in entries)
        self.assertEqual(msgs, [("%03d" % i) * (size // 3) for i in range(count)])
        wait_until(lambda: (cluster_state(A)["redisPending"], cluster_state(A)["redisUnsentBytes"]) == (0, 0),
                   what="nothing pending once Redis answered")


if __name__ == "__main__":
    main(sys.modules[__name__])
