"""Integration tests: securing the node-to-node port (SPEC §7.3).

A real redis-server and imgate nodes on loopback with fast cluster timings.
TokenClusterTest: two nodes with the same cluster.rpcToken form a cluster
(cross-node /user/sendMessage and room pushes work); a third node with a
wrong token, and one with none, cannot deliver to them (their calls fail
UNAUTHENTICATED, the two count the refused calls in /system/state and
/metrics) and nothing crashes; cluster.rpcBind sets the gRPC listen address
apart from app.bind, and the "rpc listening on" line shows it.
MtlsClusterTest: the same with mutual TLS (cluster.rpcTlsCert/Key/CA, a CA
and node certificates made here with the openssl CLI, IP SAN 127.0.0.1 since
nodes call each other at ip:port); intruders: a node whose certificate comes
from another CA, and a plaintext node. Bad TLS settings stop start-up with
exit status 2 and a message naming the key or the path.

Absence is proven by order (harness.absent_until_marker): a marker sent
through the receiving node's own API must arrive with nothing forged before
it.

Run: /usr/bin/python3 tests/integration/test_cluster_secure.py"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (without_id, BIN, SLOW, Node, RedisServer, absent_until_marker, await_until,  # noqa: E402
                     assert_serves, close_all, cluster_args, cluster_state, is_push, login, main,
                     msg_push, recv_until, run, stop_all, until_marker, wait_cluster,
                     wait_until)

TOKEN = "tok-%s" % os.urandom(12).hex()
RUN = "%x" % int(time.time() * 1000)        # makes msgIDs unique to this run


def mid(name):
    return "%s-%s" % (name, RUN)


# ---- certificates (openssl CLI) ----

def openssl(directory, *args):
    subprocess.run(["openssl"] + list(args), cwd=directory, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60 * SLOW)


def make_ca(directory, name):
    """A self-signed CA: returns the paths (<name>.pem, <name>.key)."""
    openssl(directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-subj", "/CN=" + name, "-days", "1", "-keyout", name + ".key", "-out", name + ".pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")


def make_node_cert(directory, name, ca):
    """A node certificate (server and client use, IP SAN 127.0.0.1) signed
    by the CA `ca` (its name): returns the paths (<name>.pem, <name>.key)."""
    with open(os.path.join(directory, name + ".ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n")
    openssl(directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=" + name, "-keyout", name + ".key", "-out", name + ".csr")
    openssl(directory, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "1", "-out", name + ".pem", "-extfile", name + ".ext")
    return os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")


def tls_args(cert, key, ca):
    return ["--set", "cluster.rpcTlsCert=" + cert, "--set", "cluster.rpcTlsKey=" + key,
            "--set", "cluster.rpcTlsCA=" + ca]


def reachable(host, port):
    """Whether something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=2 * SLOW).close()
        return True
    except OSError:
        return False


def metric(node, name):
    status, _, body = node.http("/metrics")
    assert status == 200, status
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("%s not in /metrics:\n%s" % (name, body.decode()))


class SecureCluster:
    """A mixin of unittest.TestCase classes: one redis-server and two nodes (A, B) secured alike, shared by the
    tests of the class. Subclasses say how (node_args), what /system/state
    shows (MODE), which intruders to try (intruders) and whether the nodes
    count what they refuse (COUNTS_REFUSED: token refusals are calls; a
    failed TLS handshake never becomes one)."""
    MODE = None
    COUNTS_REFUSED = False
    INTRUDER_ERROR = None        # what an intruder's calls fail with (its peers' lastError)
    redis = None
    nodes = []
    dir = None

    @classmethod
    def node_args(cls, i):
        raise NotImplementedError

    @classmethod
    def intruders(cls):
        """[(what, extra args)] of nodes that must not deliver to A and B."""
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="imgate-secure-")
        cls.redis = RedisServer()
        cls.nodes = []
        try:
            for i in range(2):
                cls.nodes.append(Node(*cluster_args(cls.redis), *cls.node_args(i)))
            wait_cluster(cls.nodes)
        except BaseException:
            stop_all(cls.nodes, check=False)
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            stop_all(cls.nodes)
        finally:
            cls.redis.stop()
            shutil.rmtree(cls.dir, ignore_errors=True)

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

    def send(self, node, app, user, message, msgid, path="/user/sendMessage"):
        return node.api(path, params={"appID": app, "userID": user, "msgID": msgid, "message": message})

    def online(self, node, app, user):
        return node.api("/user/online", params={"appID": app, "userID": user})["data"]["online"]

    async def login_everywhere(self, plan, app=101):
        """Logs in (user, node) pairs and waits until A and B see them all."""
        socks = {}
        for user, node in plan:
            socks[user] = await login(node, user, app)
        for user in socks:
            for n in self.nodes:
                await await_until(lambda: self.online(n, app, user), what="%s online on %s" % (user, n.self_addr))
        return socks

    # ---- the tests ----

    def test_state_shows_the_mode_never_the_token(self):
        for node in self.nodes:
            c = cluster_state(node)
            self.assertEqual(c.get("rpcAuth"), self.MODE, c)
            self.assertIsInstance(c.get("rpcRefusedCalls"), int, c)
            self.assertNotIn(TOKEN, json.dumps(node.state()))
            self.assertIsInstance(metric(node, "imgate_rpc_refused_calls_total"), int)
            self.assertIn("rpc listening on 127.0.0.1:%d" % node.rpc_port, node.stdout())

    def test_cross_node_send_and_room_push(self):
        async def t():
            socks = {}
            try:
                socks = await self.login_everywhere([("sx", self.A), ("sy", self.B)])
                for sender, user in ((self.A, "sy"), (self.B, "sx")):
                    msgid = mid("p2p-%s" % user)
                    r = self.send(sender, 101, user, "hi " + user, msgid)
                    self.assertEqual(r, {"code": 200, "msg": "Success", "data": {"sendResults": True}}, r)
                    m, before = await recv_until(socks[user], lambda m: is_push(m, "msg", seq=msgid), msgid)
                    self.assertEqual(without_id(m), msg_push(msgid, "hi " + user, user))
                    self.assertEqual([b for b in before if not is_push(b, "enter")], [], before)
                targets = [(socks["sx"], 101, "sx"), (socks["sy"], 101, "sy")]
                for i, sender in enumerate(self.nodes):
                    msgid = mid("room-%d" % i)
                    r = self.send(sender, 101, "system", "to the room", msgid, "/user/sendMessageAll")
                    self.assertEqual(r["data"], {"sendResults": True}, r)
                    got = await until_marker(sender, targets, room=True)
                    for msgs in got:
                        self.assertEqual([without_id(m) for m in msgs if m.get("seq") == msgid],
                                         [msg_push(msgid, "to the room", "system")], got)
                for node, other in ((self.A, self.B), (self.B, self.A)):
                    peers = {p["peer"]: p for p in cluster_state(node)["peers"]}
                    p = peers.get(other.self_addr)
                    self.assertIsNotNone(p, peers)
                    self.assertIs(p["healthy"], True, p)
                    self.assertEqual(p["consecutiveFailures"], 0, p)
            finally:
                await close_all(*socks.values())
        run(t())

    def test_intruders_cannot_deliver(self):
        for what, args in self.intruders():
            with self.subTest(intruder=what):
                self.intruder_cannot_deliver(what, args)

    def intruder_cannot_deliver(self, what, args):
        async def t(C):
            socks = {}
            zs = None
            try:
                wait_cluster(self.nodes + [C])
                refused0 = [cluster_state(n)["rpcRefusedCalls"] for n in self.nodes]
                socks = await self.login_everywhere([("ix", self.A), ("iy", self.B)])
                zs = await login(C, "iz", 101)       # C announces iz's enter to A and B
                forged = [mid("forged-one-" + what), mid("forged-all-" + what)]
                r = self.send(C, 101, "ix", "forged", forged[0])
                # not delivered (the intruder still writes to Redis, so the
                # message may be stored: Redis access is trust, SPEC 7.3)
                self.assertFalse(r["data"]["sendResults"], "%s: %r" % (what, r))
                r = self.send(C, 101, "mallory", "forged room", forged[1], "/user/sendMessageAll")
                self.assertEqual(r["code"], 200, r)
                # C's calls to A and B failed, as C's peer list says.
                for n in self.nodes:
                    await await_until(lambda: (lambda p: p and p["failures"] > 0 and
                                               self.INTRUDER_ERROR in p["lastError"])(
                        {p["peer"]: p for p in cluster_state(C)["peers"]}.get(n.self_addr)),
                        what="%s: C's calls to %s failing with %s" % (what, n.self_addr, self.INTRUDER_ERROR))
                if self.COUNTS_REFUSED:
                    for n, before in zip(self.nodes, refused0):
                        await await_until(lambda: cluster_state(n)["rpcRefusedCalls"] >= before + 2,
                                          what="%s: %s counting C's refused calls" % (what, n.self_addr))

                def unwanted(m):
                    return m.get("seq") in forged or is_push(m, frm="iz") or is_push(m, frm="mallory")
                await absent_until_marker(self.A, [(socks["ix"], 101, "ix")], unwanted=unwanted,
                                          what="nothing from %s" % what)
                await absent_until_marker(self.B, [(socks["iy"], 101, "iy")], unwanted=unwanted,
                                          what="nothing from %s" % what)
                # A and B still serve each other.
                msgid = mid("after-" + what)
                r = self.send(self.A, 101, "iy", "still here", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                await recv_until(socks["iy"], lambda m: is_push(m, "msg", seq=msgid), msgid)
            finally:
                await close_all(zs, *socks.values())

        C = Node(*cluster_args(self.redis), *args)
        try:
            run(t(C))
            for n in self.nodes + [C]:
                self.assertTrue(n.alive(), "%s died:\n%s" % (n.self_addr, n.stderr()[-3000:]))
            assert_serves(self.A, "alive-a")
            assert_serves(C, "alive-c")
        finally:
            C.stop()                                  # exit status 0, no sanitizer report
        if self.COUNTS_REFUSED:
            for n in self.nodes:
                self.assertEqual(metric(n, "imgate_rpc_refused_calls_total"),
                                 cluster_state(n)["rpcRefusedCalls"])


class TokenClusterTest(SecureCluster, unittest.TestCase):
    MODE = "token"
    COUNTS_REFUSED = True
    INTRUDER_ERROR = "UNAUTHENTICATED"

    @classmethod
    def node_args(cls, i):
        return ["--set", "cluster.rpcToken=" + TOKEN, "--set", "cluster.rpcBind=127.0.0.1"]

    @classmethod
    def intruders(cls):
        return [("a wrong token", ["--set", "cluster.rpcToken=wrong-" + TOKEN]),
                ("no token", [])]

    def test_rpc_bind_apart_from_app_bind(self):
        """--bind 0.0.0.0 with cluster.rpcBind 127.0.0.1: the gRPC port is
        on 127.0.0.1 only (127.0.0.2 is refused, while the HTTP port takes
        it), the line shows it, and the node registers and serves as
        127.0.0.1:port."""
        async def t(D):
            ws = None
            try:
                wait_cluster(self.nodes + [D])
                ws = await login(D, "bd", 101)
                await await_until(lambda: self.online(self.A, 101, "bd"), what="bd (on D) online on A")
                msgid = mid("bind")
                r = self.send(self.A, 101, "bd", "via rpcBind", msgid)
                self.assertEqual(r["data"], {"sendResults": True}, r)
                await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid), msgid)
            finally:
                await close_all(ws)

        D = Node(*cluster_args(self.redis), "--bind", "0.0.0.0", *self.node_args(2))
        try:
            out = D.stdout()
            self.assertIn("rpc listening on 127.0.0.1:%d\n" % D.rpc_port, out)
            self.assertIn("http listening on 0.0.0.0:%d\n" % D.http_port, out)
            self.assertTrue(reachable("127.0.0.2", D.http_port), "app.bind 0.0.0.0 takes 127.0.0.2")
            self.assertFalse(reachable("127.0.0.2", D.rpc_port), "the gRPC port is on 127.0.0.1 only")
            self.assertEqual(cluster_state(D)["self"], "127.0.0.1:%d" % D.rpc_port)
            run(t(D))
        finally:
            D.stop()


class MtlsClusterTest(SecureCluster, unittest.TestCase):
    MODE = "mtls"
    INTRUDER_ERROR = "UNAVAILABLE"
    certs = None

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="imgate-pki-")
        cls.pki = d
        cls.ca, _ = make_ca(d, "ca")
        cls.certs = [make_node_cert(d, "node%d" % i, "ca") for i in range(2)]
        make_ca(d, "rogue-ca")
        cls.rogue = make_node_cert(d, "rogue", "rogue-ca")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.pki, ignore_errors=True)

    @classmethod
    def node_args(cls, i):
        cert, key = cls.certs[i]
        return tls_args(cert, key, cls.ca)

    @classmethod
    def intruders(cls):
        rogue_cert, rogue_key = cls.rogue
        return [("a certificate of another CA",
                 tls_args(rogue_cert, rogue_key, os.path.join(cls.pki, "rogue-ca.pem"))),
                ("plaintext", [])]

    def start_fails(self, *args):
        """Runs a node that must stop at start-up: returns its stderr."""
        d = tempfile.mkdtemp(prefix="imgate-test-")
        try:
            p = subprocess.run([BIN, "--http-port", "0", "--ws-port", "0", "--bind", "127.0.0.1",
                                "--workers", "1"] + list(cluster_args(self.redis)) + list(args),
                               cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 2, "exit status %s:\n%s" % (p.returncode, err))
        self.assertNotIn("listening", p.stdout.decode(errors="replace"))
        return err

    def test_bad_tls_settings_stop_start_up(self):
        cert, key = self.certs[0]
        err = self.start_fails("--set", "cluster.rpcTlsCert=" + cert, "--set", "cluster.rpcTlsCA=" + self.ca)
        self.assertIn("cluster.rpcTlsKey", err)
        err = self.start_fails("--set", "cluster.rpcTlsKey=" + key)
        self.assertIn("cluster.rpcTlsCert", err)
        missing = os.path.join(self.pki, "no-such-file.pem")
        err = self.start_fails(*tls_args(cert, key, missing))
        self.assertIn(missing, err)
        self.assertIn("cluster.rpcTlsCA", err)
        err = self.start_fails(*tls_args(cert, self.pki, self.ca))      # a directory
        self.assertIn(self.pki, err)
        other_key = self.certs[1][1]
        err = self.start_fails(*tls_args(cert, other_key, self.ca))
        self.assertIn("does not match", err)
        err = self.start_fails(*tls_args(self.ca.replace("ca.pem", "ca.key"), key, self.ca))
        self.assertIn("cluster.rpcTlsCert", err)


if __name__ == "__main__":
    main(sys.modules[__name__])
