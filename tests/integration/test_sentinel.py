"""Integration tests: Redis Sentinel (SPEC §7.1, last bullet; README, cluster
section): with redis.sentinels and redis.masterName a node finds the master
through the sentinels and follows a failover without a restart.

A real redis-server master, one replica (--replicaof) and three
redis-sentinel processes (down-after-milliseconds 1000, failover-timeout
3000: a failover takes a few seconds), all on 127.0.0.1 with free ports;
two imgate nodes in cluster mode through the sentinels. One of them lists a
dead sentinel first (the next one answers) and sets no redis.addr (cluster
mode is on all the same); the other gives its sentinels as a YAML list and
sets redis.addr to the replica (the sentinels win, and its log says so).

- kill -9 of the master: the sentinels promote the replica, both nodes
  report the new master in /system/state (redisAddr, one failover
  followed), keep serving (a new login, /user/online, cross-node sends in
  both directions) and the registry and presence keys exist on the new
  master;
- a manual failover (SENTINEL FAILOVER: the old master lives on as a
  replica, its connection does not drop): the nodes move to the new master
  all the same;
- a sentinel (a fake one, played by the test) that names a replica: the
  node checks ROLE, refuses it and asks again until it names the master;
  then the master is demoted by hand (REPLICAOF, no sentinel involved, no
  switch announced): the node's next write is answered READONLY, and it
  asks again and moves to the new master, rewriting its keys there;
- start-up checks: redis.sentinels without redis.masterName (and the
  reverse, and a sentinel that is not host:port) stop start-up with exit
  status 2 naming the key.

Every wait polls; every process is started by the test and stopped by PID.
Needs /usr/bin/redis-sentinel (Debian package redis-sentinel, in
scripts/deps.sh's test packages).

Run: /usr/bin/python3 tests/integration/test_sentinel.py"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, REDIS_SERVER, RPC_TIMEOUT_MS, SLOW, Node, RedisError,  # noqa: E402
                     RedisServer, await_until, close_all, free_port, is_push, login, main,
                     presence_key, recv_until, request, resp_encode, resp_read, run, stop_all,
                     wait_until)

REDIS_SENTINEL = os.environ.get("REDIS_SENTINEL") or "/usr/bin/redis-sentinel"
MASTER = "imgate-main"
SERVERS = "acc:hash:servers"
RUN = "%x" % int(time.time() * 1000)
# A failover: down after 1 s, agreement, election, promotion, the switch
# announced; generous for a loaded machine (wait_until scales it by SLOW).
FAILOVER_BOUND = 60


_sends = [0]


def mid(name):
    return "%s-%s" % (name, RUN)


def need_sentinel():
    if not os.access(REDIS_SENTINEL, os.X_OK):
        raise AssertionError("%s is missing: install the Debian package redis-sentinel "
                             "(scripts/deps.sh test)" % REDIS_SENTINEL)


class RedisProc(RedisServer):
    """A redis-server with extra arguments (a replica: --replicaof), or
    redis-sentinel with its own configuration file; same life-cycle as
    RedisServer (free port, own directory, stopped by PID, cmd())."""

    def __init__(self, binary=REDIS_SERVER, extra=(), sentinel_conf=None):
        self.binary, self.extra, self.sentinel_conf = binary, list(extra), sentinel_conf
        super().__init__()

    def argv(self):
        if self.sentinel_conf is None:
            return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"] + self.extra
        path = os.path.join(self.dir, "sentinel.conf")
        if not os.path.exists(path):                 # sentinel rewrites it as it learns
            with open(path, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n%s"
                        % (self.port, self.dir, self.sentinel_conf))
        return [self.binary, path]

    def start(self, timeout=20):
        assert not self.alive(), "already running"
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.argv(), cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.binary, self.proc.returncode,
                                                              self.log()[-3000:]))
            try:
                if self.cmd("PING", timeout=1) == "PONG":
                    return self
            except (OSError, RedisError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("%s did not answer PING on %s:\n%s" % (self.binary, self.addr, self.log()[-3000:]))


def pairs(flat):
    """A flat [k1, v1, k2, v2, ...] reply as a dict."""
    return dict(zip(flat[0::2], flat[1::2]))


def quiet(fn, default=None):
    """fn(), or default when the server does not answer (it may be dead)."""
    try:
        return fn()
    except (OSError, ConnectionError, RedisError):
        return default


def sentinel_args(sentinels):
    """Cluster mode through the sentinels with fast timings (as cluster_args)."""
    return ["--rpc-port", "0",
            "--set", "redis.sentinels=" + ",".join(sentinels),
            "--set", "redis.masterName=" + MASTER,
            "--set", "cluster.registerInterval=1",
            "--set", "cluster.serverTimeout=%d" % (3 * SLOW),
            "--set", "cluster.rpcTimeout=%d" % RPC_TIMEOUT_MS]


def cluster_of(node):
    """The cluster object of /system/state ({} when missing)."""
    return node.state().get("cluster") or {}


def on_master(node, addr, failovers):
    """Whether node's /system/state says: Redis up, sentinel mode, master
    addr, `failovers` failovers followed; else a falsy description."""
    c = cluster_of(node)
    got = {k: c.get(k) for k in ("redis", "redisMode", "redisAddr", "redisFailovers")}
    want = {"redis": "up", "redisMode": "sentinel", "redisAddr": addr, "redisFailovers": failovers}
    return True if got == want else Falsy(got)


class SentinelCase(unittest.TestCase):
    """Per test: a master, a replica, three sentinels watching them, and two
    nodes A and B through the sentinels (the tests break the master)."""

    def setUp(self):
        need_sentinel()
        self.master = RedisServer()
        self.addCleanup(self.master.stop)
        self.replica = RedisProc(extra=["--replicaof", "127.0.0.1", str(self.master.port)])
        self.addCleanup(self.replica.stop)
        wait_until(lambda: "master_link_status:up" in quiet(lambda: self.replica.cmd("INFO", "replication"), ""),
                   timeout=20, what="the replica in sync with the master")
        conf = ("sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 3000\n"
                "sentinel parallel-syncs %s 1\n") % (MASTER, self.master.port, MASTER, MASTER, MASTER)
        self.sentinels = []
        for _ in range(3):
            s = RedisProc(REDIS_SENTINEL, sentinel_conf=conf)
            self.addCleanup(s.stop)
            self.sentinels.append(s)
        wait_until(self.sentinels_ready, timeout=30, what="every sentinel knowing the replica and the 2 others")
        self.nodes = []
        self.addCleanup(self.stop_nodes)             # runs first (LIFO)
        self.start_nodes()

    def sentinels_ready(self):
        for s in self.sentinels:
            m = quiet(lambda: pairs(s.cmd("SENTINEL", "master", MASTER)), {})
            if m.get("num-other-sentinels") != "2" or m.get("num-slaves") != "1":
                return False
            reps = quiet(lambda: s.cmd("SENTINEL", "replicas", MASTER), []) or []
            if not reps or pairs(reps[0]).get("master-link-status") != "ok":
                return False
        return True

    def start_nodes(self):
        dead = "127.0.0.1:%d" % free_port()          # nobody listens: the next one answers
        self.dead_sentinel = dead
        # A: one worker, which runs the Redis link itself; B: two, the link on its own thread
        self.A = Node(*sentinel_args([dead] + [s.addr for s in self.sentinels]), cluster=True, workers=1)
        self.nodes.append(self.A)
        yaml = ("redis:\n  addr: \"%s\"\n  sentinels:\n%s  masterName: \"%s\"\n"
                % (self.replica.addr, "".join("    - \"%s\"\n" % s.addr for s in self.sentinels), MASTER))
        self.B = Node("--rpc-port", "0", "--set", "cluster.registerInterval=1",
                      "--set", "cluster.serverTimeout=%d" % (3 * SLOW),
                      "--set", "cluster.rpcTimeout=%d" % RPC_TIMEOUT_MS, config=yaml, cluster=True)
        self.nodes.append(self.B)

    def stop_nodes(self):
        stop_all(self.nodes)

    # ---- views ----
    def registered(self, redis):
        """Whether both nodes are in acc:hash:servers of `redis` and see each other."""
        reg = quiet(lambda: redis.hgetall(SERVERS), {})
        if not all(n.self_addr in reg for n in self.nodes):
            return Falsy(reg)
        seen = [set(cluster_of(n).get("servers") or []) for n in self.nodes]
        want = set(n.self_addr for n in self.nodes)
        return True if all(want <= s for s in seen) else Falsy(seen)

    def sentinels_name(self, addr):
        """Whether every live sentinel names addr as the master."""
        want = addr.split(":")
        return all(quiet(lambda: s.cmd("SENTINEL", "get-master-addr-by-name", MASTER)) == want
                   for s in self.sentinels)

    def assert_ready(self):
        for n in self.nodes:
            wait_until(lambda: on_master(n, self.master.addr, 0), timeout=20,
                       what="%s on the master %s" % (n.self_addr, self.master.addr))
            wait_until(lambda: cluster_of(n).get("redisSentinelWatch"), timeout=20,
                       what="%s watching a sentinel for switches" % n.self_addr)
            c = cluster_of(n)
            self.assertEqual(c["redisMasterName"], MASTER)
            self.assertIn(c["redisSentinelWatch"], [s.addr for s in self.sentinels], c)
        self.assertEqual(cluster_of(self.A)["redisSentinels"],
                         [self.dead_sentinel] + [s.addr for s in self.sentinels])
        self.assertEqual(cluster_of(self.B)["redisSentinels"], [s.addr for s in self.sentinels])
        wait_until(lambda: self.registered(self.master), timeout=20, what="both nodes registered")
        self.assertIn("redis.addr %s is ignored" % self.replica.addr, self.B.stderr())
        self.assertNotIn("is ignored", self.A.stderr())

    # ---- the API ----
    def api(self, node, path, **params):
        r = node.api(path, params=params)
        self.assertEqual(r.get("code"), 200, (path, params, r))
        return r["data"]

    def online(self, node, app, user):
        return self.api(node, "/user/online", appID=app, userID=user)["online"]

    async def send_to(self, node, ws, app, user, text):
        """/user/sendMessage through node to user (connected on ws): reported
        delivered and pushed."""
        _sends[0] += 1
        msgid = mid("%s-%d" % (user, _sends[0]))
        r = self.api(node, "/user/sendMessage", appID=app, userID=user, msgID=msgid, message=text)
        self.assertEqual(r, {"sendResults": True}, (node.self_addr, user))
        m, _ = await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid), "the push %s to %s" % (msgid, user))
        self.assertEqual((m["response"]["data"]["msg"], m["response"]["data"]["from"]), (text, user))

    def assert_keys_on(self, redis, where):
        """The registry and the presence records of `where` ({user: node}, app
        101) are on `redis`, naming the user's node, online."""
        reg = redis.hgetall(SERVERS)
        for n in self.nodes:
            self.assertIn(n.self_addr, reg)
        for user, node in where.items():
            raw = redis.get(presence_key(101, user))
            self.assertIsNotNone(raw, "no presence record of %s on %s" % (user, redis.addr))
            rec = json.loads(raw)
            self.assertEqual((rec["accPort"], rec["userID"], rec["isLogoff"]), (str(node.rpc_port), user, False), rec)
        self.assertEqual(redis.cmd("ROLE")[0], "master")

    async def serves_after(self, socks, old_users):
        """After a failover: a new login, /user/online and cross-node sends."""
        A, B = self.A, self.B
        (a1, _), (b1, _) = socks
        user3 = "after-" + RUN[-6:]
        a3 = await login(A, user3, 101)
        socks.append((a3, user3))
        for n in self.nodes:
            await await_until(lambda: self.online(n, 101, user3), what="%s online on %s" % (user3, n.self_addr))
            for u in old_users:
                self.assertTrue(self.online(n, 101, u), (n.self_addr, u))
            self.assertTrue(self.online(n, 0, user3))
        await self.send_to(B, a3, 101, user3, "after the failover, B to A")
        await self.send_to(A, b1, 101, old_users[1], "after the failover, A to B")
        await self.send_to(B, a1, 101, old_users[0], "after the failover, B to A again")
        r = await request(a3, "heartbeat", {})
        self.assertEqual(r["response"]["code"], 200, r)
        return user3


class Falsy(dict):
    """A description of what a poll saw (shown when the wait times out)."""

    def __init__(self, seen):
        super().__init__(seen=seen)

    def __bool__(self):
        return False


class FailoverTest(SentinelCase):

    def test_master_killed(self):
        async def t():
            self.assert_ready()
            A, B = self.A, self.B
            u1, u2 = "s1-" + RUN[-6:], "s2-" + RUN[-6:]
            socks = []
            try:
                a1 = await login(A, u1, 101)
                b1 = await login(B, u2, 101)
                socks = [(a1, u1), (b1, u2)]
                await self.send_to(A, b1, 101, u2, "before, A to B")
                await self.send_to(B, a1, 101, u1, "before, B to A")
                # stored for an offline user, replicated before the master dies
                uoff = "s3-" + RUN[-6:]
                stored = [mid("%s-stored-%d" % (uoff, i)) for i in range(3)]
                for i, msgid in enumerate(stored):
                    r = self.api(A, "/user/sendMessage", appID=101, userID=uoff, msgID=msgid,
                                 message="stored %d" % i)
                    self.assertEqual(r, {"sendResults": False, "stored": True})
                self.assertEqual(self.master.cmd("WAIT", "1", "5000"), 1)

                self.master.kill()                               # kill -9
                await await_until(lambda: self.sentinels_name(self.replica.addr), timeout=FAILOVER_BOUND,
                           what="the sentinels promoting the replica %s" % self.replica.addr)
                for n in self.nodes:
                    await await_until(lambda: on_master(n, self.replica.addr, 1), timeout=FAILOVER_BOUND,
                               what="%s following the failover to %s" % (n.self_addr, self.replica.addr))
                    self.assertTrue(n.alive())
                await await_until(lambda: self.registered(self.replica), timeout=20,
                           what="both nodes registered on the new master")

                user3 = await self.serves_after(socks, [u1, u2])
                self.assert_keys_on(self.replica, {u1: A, u2: B, user3: A})
                for n in self.nodes:
                    self.assertIn("followed the failover of '%s'" % MASTER, n.stderr())
                # what was stored before the failover is delivered after it
                off = await login(B, uoff, 101)
                socks.append((off, uoff))
                got = []
                for i in range(3):
                    m, _ = await recv_until(off, lambda m: is_push(m, "msg"), "stored message %d" % i)
                    got.append((m["seq"], m["response"]["data"]["msg"]))
                self.assertEqual(got, [(msgid, "stored %d" % i) for i, msgid in enumerate(stored)])
            finally:
                await close_all(*[ws for ws, _ in socks])
        run(t())


class ManualFailoverTest(SentinelCase):

    def test_switch_with_the_old_master_alive(self):
        async def t():
            self.assert_ready()
            A, B = self.A, self.B
            u1, u2 = "m1-" + RUN[-6:], "m2-" + RUN[-6:]
            socks = []
            try:
                a1 = await login(A, u1, 101)
                b1 = await login(B, u2, 101)
                socks = [(a1, u1), (b1, u2)]
                await self.send_to(A, b1, 101, u2, "before the switch")

                self.assertEqual(self.sentinels[1].cmd("SENTINEL", "failover", MASTER), "OK")
                await await_until(lambda: self.sentinels_name(self.replica.addr), timeout=FAILOVER_BOUND,
                           what="the sentinels switching to %s" % self.replica.addr)
                for n in self.nodes:
                    await await_until(lambda: on_master(n, self.replica.addr, 1), timeout=FAILOVER_BOUND,
                               what="%s following the switch to %s" % (n.self_addr, self.replica.addr))
                await await_until(lambda: quiet(lambda: self.master.cmd("ROLE")[0]) == "slave", timeout=FAILOVER_BOUND,
                           what="the old master turned replica")
                self.assertTrue(self.master.alive())
                await await_until(lambda: self.registered(self.replica), timeout=20,
                           what="both nodes registered on the new master")
                user3 = await self.serves_after(socks, [u1, u2])
                self.assert_keys_on(self.replica, {u1: A, u2: B, user3: A})
            finally:
                await close_all(*[ws for ws, _ in socks])
        run(t())


class FakeSentinel:
    """A stand-in sentinel on a free port (threads, stopped by close()): it
    answers SENTINEL get-master-addr-by-name with `answer` ("host:port"),
    confirms SUBSCRIBE and never announces a switch; `asks` counts the
    questions."""

    def __init__(self, answer):
        self.answer = answer
        self.asks = 0
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _reply(self, cmd):
        name = (cmd[0] if cmd else "").upper()
        if name == "SENTINEL" and len(cmd) == 3 and cmd[1].lower() == "get-master-addr-by-name":
            self.asks += 1
            return resp_encode(*self.answer.rsplit(":", 1)) if cmd[2] == MASTER else b"$-1\r\n"
        if name == "SUBSCRIBE" and len(cmd) == 2:
            return b"*3\r\n$9\r\nsubscribe\r\n" + b"$%d\r\n%s\r\n:1\r\n" % (len(cmd[1]), cmd[1].encode())
        if name == "PING":
            return b"+PONG\r\n"
        return b"-ERR unknown command\r\n"

    def _serve(self, c):
        try:
            with c.makefile("rb") as f:
                while not self.stop_ev.is_set():
                    c.sendall(self._reply(resp_read(f)))
        except (OSError, ConnectionError, RedisError, ValueError):
            pass

    def close(self):
        self.stop_ev.set()
        self.lsock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.thread.join(timeout=5)


class RoleCheckTest(unittest.TestCase):

    def test_replica_refused_and_readonly_followed(self):
        master = RedisServer()
        self.addCleanup(master.stop)
        replica = RedisProc(extra=["--replicaof", "127.0.0.1", str(master.port)])
        self.addCleanup(replica.stop)
        wait_until(lambda: "master_link_status:up" in quiet(lambda: replica.cmd("INFO", "replication"), ""),
                   timeout=20, what="the replica in sync with the master")
        fake = FakeSentinel(replica.addr)                # a stale answer: the replica
        self.addCleanup(fake.close)
        node = Node(*sentinel_args([fake.addr]), cluster=True, workers=1)
        self.addCleanup(node.stop)
        wait_until(lambda: cluster_of(node)["redisLink"] == "worker", timeout=20,
                   what="the worker running the link (it takes it once the workers run)")

        # the replica is refused (ROLE), and the sentinel asked again
        wait_until(lambda: "is not the master (ROLE: slave)" in node.stderr(), timeout=20,
                   what="the node refusing the replica")
        wait_until(lambda: fake.asks >= 3, timeout=20, what="the node asking again (asked %d times)" % fake.asks)
        c = cluster_of(node)
        self.assertEqual((c["redis"], c["redisMode"], c["redisFailovers"]), ("down", "sentinel", 0), c)
        self.assertIsNone(quiet(lambda: replica.cmd("HGET", SERVERS, node.self_addr)))

        # the sentinel now names the master: the node connects and registers
        fake.answer = master.addr
        wait_until(lambda: on_master(node, master.addr, 0), timeout=20,
                   what="the node on the master")
        self.assertEqual(cluster_of(node)["redisSentinelWatch"], fake.addr)
        wait_until(lambda: node.self_addr in master.hgetall(SERVERS), timeout=20, what="registered")

        async def t():
            ws = await login(node, "ro-" + RUN[-6:], 101)
            try:
                await await_until(lambda: master.get(presence_key(101, "ro-" + RUN[-6:])), what="presence")
                # demoted by hand, no switch announced: the next write gets READONLY
                self.assertEqual(replica.cmd("REPLICAOF", "NO", "ONE"), "OK")
                self.assertEqual(master.cmd("REPLICAOF", "127.0.0.1", str(replica.port)), "OK")
                fake.answer = replica.addr
                await await_until(lambda: on_master(node, replica.addr, 1), timeout=30,
                                  what="the node on the new master")
                self.assertIn("is no longer the master (READONLY", node.stderr())
                await await_until(lambda: node.self_addr in replica.hgetall(SERVERS), what="registered again")
                rec = await await_until(lambda: replica.get(presence_key(101, "ro-" + RUN[-6:])),
                                        what="presence rewritten on the new master")
                self.assertEqual(json.loads(rec)["accPort"], str(node.rpc_port))
                r = await request(ws, "heartbeat", {})
                self.assertEqual(r["response"]["code"], 200, r)
                self.assertTrue(node.api("/user/online", params={"appID": 101, "userID": "ro-" + RUN[-6:]})
                                ["data"]["online"])
            finally:
                await close_all(ws)
        run(t())


class ByNameTest(unittest.TestCase):
    """Host names: a master the sentinels name by host name is looked up off
    the loop (here a worker's); sentinels configured by host name, which
    hiredis would look up on the loop, keep the link off the worker."""

    def test_names(self):
        master = RedisServer()
        self.addCleanup(master.stop)
        named = "localhost:%d" % master.port
        fake = FakeSentinel(named)
        self.addCleanup(fake.close)
        on_worker = Node(*sentinel_args([fake.addr]), cluster=True, workers=1)
        self.addCleanup(on_worker.stop)
        by_name = Node(*sentinel_args(["localhost:" + fake.addr.rsplit(":", 1)[1]]), cluster=True, workers=1)
        self.addCleanup(by_name.stop)
        for node, link in ((on_worker, "worker"), (by_name, "thread")):
            wait_until(lambda: on_master(node, named, 0), timeout=20, what="the node on the master, by name")
            self.assertEqual(cluster_of(node)["redisLink"], link)
            wait_until(lambda: node.self_addr in master.hgetall(SERVERS), timeout=20, what="registered")
        self.assertIn("runs on a thread of its own (a sentinel is named by a host name", by_name.stderr())
        self.assertEqual(on_worker.stop(), 0)
        self.assertEqual(by_name.stop(), 0)


class StartupCheckTest(unittest.TestCase):
    """redis.sentinels and redis.masterName come together, each sentinel is
    host:port: else exit status 2 naming the key, before anything listens."""

    def start(self, *args):
        d = tempfile.mkdtemp(prefix="imgate-test-")
        cmd = [BIN, "--http-port", "0", "--ws-port", "0", "--bind", "127.0.0.1", "--workers", "1"] + list(args)
        p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=15 * SLOW)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            out, err = p.communicate()
            self.fail("the node started instead of refusing %r:\n%s" % (args, err.decode(errors="replace")[-2000:]))
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def refused(self, key, *args):
        code, out, err = self.start(*args)
        self.assertEqual(code, 2, "exit status for %r:\n%s" % (args, err))
        self.assertIn("configuration error", err)
        self.assertIn("key '%s'" % key, err)
        self.assertNotIn("listening on", out)

    def test_sentinels_without_master_name(self):
        self.refused("redis.masterName", "--set", "redis.sentinels=127.0.0.1:26379")
        self.refused("redis.masterName", "--set", "redis.sentinels=127.0.0.1:26379,127.0.0.1:26380",
                     "--redis", "127.0.0.1:6379")

    def test_master_name_without_sentinels(self):
        self.refused("redis.sentinels", "--set", "redis.masterName=" + MASTER)

    def test_sentinel_not_host_port(self):
        for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:26379,:26380", "127.0.0.1:x", "127.0.0.1:70000"):
            self.refused("redis.sentinels", "--set", "redis.sentinels=" + bad, "--set", "redis.masterName=" + MASTER)


if __name__ == "__main__":
    main(sys.modules[__name__])
