"""Integration tests: SIGTERM of a cluster node while Redis is slow.

Redis here is a real redis-server behind a small proxy written in this file
(SlowRedisProxy): the node's commands go to Redis at once, but Redis's
replies come back in order, one every DELAY (1.5) seconds. The node's
cluster.redisTimeout (4 s) is well above that, so its watchdog sees steady
progress and never drops the connection; its registration timer queues 3
commands a second, so the backlog of unanswered commands only grows.

- test_sigterm_with_a_query_pending: a few logins, then a /user/online
  whose Redis query is queued behind a backlog longer than anything the
  shutdown can wait for (deregistration, grace and the link's drain each
  last at most a few seconds; the backlog needs BACKLOG * DELAY s), then
  SIGTERM. The query is still in flight when the Redis link stops, so it
  fails and its answer goes back to its worker. The node must exit 0
  without any sanitizer report (before the fix: heap-use-after-free in
  task_push <- worker_post <- rl_query_finish <- rl_on_drain, the workers
  having been freed before the link stopped). The pending HTTP request is
  closed cleanly without an answer: the connection is closed (FIN, no
  reset) at the end of app.shutdownGrace, before its query can fail.
- test_sigterm_with_queries_queued_and_grpc_calls: the same node with
  several API queries queued (two /user/online, one /user/sendMessageAll),
  while a second node (on the real Redis directly) keeps sending
  SendMsgAll to it over gRPC through its own /user/sendMessageAll (the
  test waits until one of them has been delivered to a client of the slow
  node, so gRPC calls are being served when SIGTERM comes). Same
  assertions; the second node keeps answering its API throughout and
  stops cleanly too.

The order of events is established by observation (the proxy counts the
commands it has seen and the replies it has delivered; pushes are read
from the clients), never by sleeping. Every process is started by the test
and stopped by PID.

Run: /usr/bin/python3 tests/integration/test_shutdown_faults.py"""

import asyncio
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Node, RedisServer, await_until, close_all, cluster_args,  # noqa: E402
                     free_port, is_push, login, main, recv_until, run, stop_all, wait_until)

DELAY = 1.5                  # seconds between two replies of the slow proxy
REDIS_TIMEOUT_MS = 4000      # well above DELAY: the link's watchdog never fires
GRACE_S = 1                  # app.shutdownGrace of the slow node
# Unanswered commands before the query under test is sent: it is answered
# no sooner than BACKLOG * DELAY (30 s) later, while the shutdown waits at
# most 2 * REDIS_TIMEOUT + GRACE (9 s) for Redis.
BACKLOG = 20
RUN = "%x" % int(time.time() * 1000)


# ---- the slow Redis ----

def resp_end(buf, i=0):
    """The end of the RESP value starting at buf[i], or None if incomplete."""
    nl = buf.find(b"\r\n", i)
    if nl < 0:
        return None
    kind, head = buf[i:i + 1], buf[i + 1:nl]
    if kind in (b"+", b"-", b":"):
        return nl + 2
    if kind == b"$":
        n = int(head)
        end = nl + 2 + (n + 2 if n >= 0 else 0)
        return end if len(buf) >= end else None
    if kind == b"*":
        j = nl + 2
        for _ in range(max(int(head), 0)):
            j = resp_end(buf, j)
            if j is None:
                return None
        return j
    raise ValueError("not RESP: %r" % bytes(buf[i:i + 40]))


def resp_command_name(cmd):
    """The command name (upper case) of one RESP array of bulk strings."""
    first = cmd.index(b"\r\n") + 2                # after *N
    start = cmd.index(b"\r\n", first) + 2         # after $len
    return cmd[start:cmd.index(b"\r\n", start)].decode().upper()


class SlowRedisProxy:
    """127.0.0.1:<port> in front of a RedisServer, on its own thread and
    asyncio loop. Client -> Redis bytes are forwarded at once; Redis ->
    client replies are cut into whole RESP replies and delivered in order,
    one every `delay` seconds. Counts the commands seen (by name), the
    replies delivered and the connections accepted."""

    def __init__(self, redis, delay=DELAY):
        self.redis = redis
        self.delay = delay
        self.port = free_port()
        self.lock = threading.Lock()
        self.seen = []               # command names, in order
        self.delivered = 0
        self.connections = 0         # accepted from the node (1: it never reconnected)
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.tasks = set()
        self.writers = set()
        started = threading.Event()
        self.thread = threading.Thread(target=self._main, args=(started,), daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the slow Redis proxy did not start")

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    # ---- what the test reads ----
    def count(self, name):
        with self.lock:
            return sum(1 for n in self.seen if n == name)

    def position(self, name, n):
        """The index (in order of arrival) of the n-th command `name`, or
        None. Replies are delivered in order: the command at index p has
        been answered iff answered() > p."""
        with self.lock:
            found = [i for i, c in enumerate(self.seen) if c == name]
        return found[n - 1] if len(found) >= n else None

    def answered(self):
        with self.lock:
            return self.delivered

    def backlog(self):
        """Commands seen minus replies delivered."""
        with self.lock:
            return len(self.seen) - self.delivered

    # ---- the proxy ----
    def _main(self, started):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port))
        started.set()
        self.loop.run_forever()

    def _spawn(self, coro):
        t = self.loop.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    async def _client(self, creader, cwriter):
        with self.lock:
            self.connections += 1
        rreader, rwriter = await asyncio.open_connection("127.0.0.1", self.redis.port)
        self.writers.update((cwriter, rwriter))
        replies = asyncio.Queue()
        up = self._spawn(self._upstream(creader, rwriter))
        down = self._spawn(self._downstream(rreader, replies))
        out = self._spawn(self._deliver(replies, cwriter))
        await asyncio.wait([up, down, out], return_when=asyncio.FIRST_COMPLETED)
        for t in (up, down, out):
            t.cancel()
        for w in (cwriter, rwriter):
            w.close()
            self.writers.discard(w)

    async def _upstream(self, creader, rwriter):
        buf = bytearray()
        while True:
            data = await creader.read(65536)
            if not data:
                return
            rwriter.write(data)
            buf += data
            names = []
            while buf:
                end = resp_end(buf)
                if end is None:
                    break
                names.append(resp_command_name(bytes(buf[:end])))
                del buf[:end]
            with self.lock:
                self.seen.extend(names)

    async def _downstream(self, rreader, replies):
        buf = bytearray()
        while True:
            data = await rreader.read(65536)
            if not data:
                return
            buf += data
            while buf:
                end = resp_end(buf)
                if end is None:
                    break
                replies.put_nowait(bytes(buf[:end]))
                del buf[:end]

    async def _deliver(self, replies, cwriter):
        last = 0.0
        while True:
            reply = await replies.get()
            wait = last + self.delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            cwriter.write(reply)
            await cwriter.drain()
            last = time.monotonic()
            with self.lock:
                self.delivered += 1

    def stop(self):
        async def shut():
            self.server.close()
            for w in list(self.writers):
                w.close()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# ---- raw HTTP requests left pending ----

class PendingRequest:
    """One HTTP/1.1 GET sent on a raw socket; outcome() reads whatever the
    node does with it: ("answer", status, body), ("closed", b"") for a FIN
    without a byte, or ("reset", bytes so far)."""

    def __init__(self, node, path):
        self.sock = socket.create_connection(("127.0.0.1", node.http_port), timeout=5)
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())

    def outcome(self, timeout=30):
        self.sock.settimeout(timeout * SLOW)
        data = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            return ("reset", data)
        finally:
            self.sock.close()
        if not data:
            return ("closed", b"")
        head, _, body = data.partition(b"\r\n\r\n")
        return ("answer", int(head.split()[1]), body)


def slow_node_args(proxy):
    # delivery logging off: with it, a login first reads its replay from
    # Redis, and this Redis answers one reply per DELAY on purpose (the
    # tests build a backlog of queries, logins must not wait behind it)
    return cluster_args(proxy) + ["--set", "cluster.redisTimeout=%d" % REDIS_TIMEOUT_MS,
                                  "--set", "app.shutdownGrace=%d" % GRACE_S,
                                  "--set", "delivery.enabled=false"]


class SlowRedisCase(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.proxy = SlowRedisProxy(self.redis)
        self.addCleanup(self.proxy.stop)
        self.pending = []                                # proxy positions of pending queries
        self.slow = Node(*slow_node_args(self.proxy))
        self.addCleanup(self.slow.stop, check=False)     # a no-op once stopped
        # registered: its HSET went through the proxy to Redis at once
        wait_until(lambda: self.slow.self_addr in self.redis.hgetall("acc:hash:servers"),
                   timeout=10, what="the slow node registered in Redis")

    def wait_backlog(self):
        wait_until(lambda: self.proxy.backlog() >= BACKLOG, timeout=30,
                   what="%d commands waiting for their reply" % BACKLOG)

    def pend(self, path, command, n=1):
        """Sends an API request whose Redis query starts with `command` and
        waits until the proxy has seen that query (the n-th such command):
        the request is pending, its query queued behind the backlog."""
        req = PendingRequest(self.slow, path)
        wait_until(lambda: self.proxy.position(command, n) is not None, timeout=10,
                   what="the %s of %s reaching Redis" % (command, path))
        self.pending.append(self.proxy.position(command, n))
        return req

    def assert_clean_close(self, req, what):
        got = req.outcome()
        self.assertEqual(got, ("closed", b""),
                         "%s: expected a clean close without an answer, got %r" % (what, got))

    def sigterm_and_check(self):
        """SIGTERM; stop() asserts exit status 0 and no sanitizer report.
        Then: no reply to a pending query was ever delivered, so each of
        them was failed by the Redis link's stop (the path under test)."""
        first = min(self.pending)
        # one connection: replies and commands pair up in order (a watchdog
        # reconnect would have failed the queries early, not at the stop)
        self.assertEqual(self.proxy.connections, 1, "the node reconnected to Redis")
        self.assertLess(self.proxy.answered(), first, "a query was answered before SIGTERM")
        self.slow.stop()
        self.assertLessEqual(self.proxy.answered(), first,
                             "a pending query was answered before the node exited")


class ShutdownWhileRedisIsSlow(SlowRedisCase):
    def test_sigterm_with_a_query_pending(self):
        async def t():
            socks = []
            try:
                for i in range(3):
                    socks.append(await login(self.slow, "sq%d-%s" % (i, RUN), 101))
                await asyncio.get_running_loop().run_in_executor(None, self.wait_backlog)
                before = self.proxy.count("MGET")
                req = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: self.pend("/user/online?appID=101&userID=sq0-%s" % RUN, "MGET",
                                            before + 1))
                await asyncio.get_running_loop().run_in_executor(None, self.sigterm_and_check)
                # The answer could not come before the grace ended: the node
                # closed the connection cleanly, without a reply.
                await asyncio.get_running_loop().run_in_executor(
                    None, self.assert_clean_close, req, "/user/online")
            finally:
                await close_all(*socks)
        run(t())


class ShutdownWithGrpcCalls(SlowRedisCase):
    def test_sigterm_with_queries_queued_and_grpc_calls(self):
        fast = Node(*cluster_args(self.redis))
        self.addCleanup(fast.stop, check=False)
        stop_sending = threading.Event()
        sent = {"ok": 0, "bad": []}

        def keep_sending():
            """SendMsgAll to the slow node, through the fast node's API, until
            told to stop; every call must answer 200 (delivery to a node that
            is going away just fails on the fast node's side)."""
            i = 0
            while not stop_sending.is_set():
                i += 1
                try:
                    status, _, body = fast.http("/user/sendMessageAll", params={
                        "appID": 101, "userID": "fast-sender", "msgID": "g%d-%s" % (i, RUN),
                        "message": "from the fast node %d" % i})
                except OSError as e:
                    sent["bad"].append(repr(e))
                    continue
                if status == 200 and json.loads(body)["code"] == 200:
                    sent["ok"] += 1
                else:
                    sent["bad"].append((status, body))

        async def t():
            socks = []
            sender = threading.Thread(target=keep_sending, daemon=True)
            loop = asyncio.get_running_loop()
            try:
                for i in range(3):
                    socks.append(await login(self.slow, "gq%d-%s" % (i, RUN), 101))
                # the fast node sees the slow one (registered through the proxy)
                await await_until(lambda: self.slow.self_addr in (
                    fast.state()["cluster"].get("servers") or []), timeout=10,
                    what="the fast node seeing the slow one")
                await loop.run_in_executor(None, self.wait_backlog)
                mget, evals = self.proxy.count("MGET"), self.proxy.count("EVAL")
                reqs = [
                    await loop.run_in_executor(None, lambda: self.pend(
                        "/user/online?appID=101&userID=gq0-%s" % RUN, "MGET", mget + 1)),
                    await loop.run_in_executor(None, lambda: self.pend(
                        "/user/online?appID=0&userID=nobody-%s" % RUN, "MGET", mget + 2)),
                    await loop.run_in_executor(None, lambda: self.pend(
                        "/user/sendMessageAll?appID=101&userID=gq1-%s&msgID=slow-%s&message=x"
                        % (RUN, RUN), "EVAL", evals + 1)),
                ]
                sender.start()
                # gRPC calls are being served: a SendMsgAll from the fast node
                # has reached a client of the slow node
                await recv_until(socks[0], lambda m: is_push(m, "msg", frm="fast-sender"),
                                 "a push sent by the fast node over gRPC", timeout=20)
                await loop.run_in_executor(None, self.sigterm_and_check)
                for req, what in zip(reqs, ("/user/online", "/user/online appID=0",
                                            "/user/sendMessageAll")):
                    await loop.run_in_executor(None, self.assert_clean_close, req, what)
            finally:
                stop_sending.set()
                if sender.is_alive():
                    await loop.run_in_executor(None, sender.join, 30 * SLOW)
                await close_all(*socks)
            self.assertGreater(sent["ok"], 0)
            self.assertEqual(sent["bad"], [], "the fast node's API failed while the slow node stopped")
            stop_all([fast])
        run(t())


if __name__ == "__main__":
    main(sys.modules[__name__])
