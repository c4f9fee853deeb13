"""Test harness: starts a real imgate node on free loopback ports and talks
to it with real clients (Debian's python3-websockets, urllib).

Every node is started by the test itself, in a fresh temporary directory (so
no config/app.yaml is picked up unless the test writes one), and stopped by
PID. stop() asserts a clean exit (status 0) and, under the sanitizer build,
that the node printed no ASan/UBSan report.

Also here, shared by the test files: polling (wait_until, wait_idle), a base
class that runs one node per TestCase class (NodeCase), the liveness check
(assert_serves), order-based message checks that never wait for a quiet
window (expect_pushes, recv_until, until_marker, absent_until_marker,
absent_until_pong), a hand-made RFC 6455 client with frame and handshake builders
(RawWS, frame, upgrade_request, parse_http, ...) and the runner that prints
"N passed, N failed, N skipped" and fails on any skip (main).

Cluster mode (test_cluster*.py): a private redis-server with a tiny RESP
client (RedisServer: stop/kill/restart on the same port), nginx in the
foreground (Nginx), the rpc port of a node (Node.rpc_port, self_addr), N
nodes against one Redis with fast timings (cluster_args, start_cluster,
wait_cluster, stop_all), the presence record as the original writes it
(presence_json) and async polling helpers (await_until, copies,
msg_push)."""

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("IMGATE_BIN") or os.path.join(ROOT, "build", "imgate")
SANITIZED = os.environ.get("IMGATE_SANITIZE", "").upper() in ("ON", "1", "TRUE")
# Sanitized binaries are slower: scale waits, never assert on timing.
SLOW = 3 if SANITIZED else 1
# Bounds of a node's start (ports printed) and stop (process exited), in
# seconds before scaling by SLOW: generous, they only catch a hang, on a
# machine shared with other builds and tests. A wrapper such as valgrind
# multiplies the start bound by WRAPPER_SLOW.
NODE_START_TIMEOUT = 30
NODE_STOP_TIMEOUT = 30
WRAPPER_SLOW = 8


def make_cert(directory):
    """A fresh self-signed certificate for 127.0.0.1 and localhost (1 day):
    returns the paths (cert.pem, key.pem) in `directory`."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-days", "1",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


class Node:
    """One imgate process. Use as a context manager or call stop()."""

    def __init__(self, *args, workers=2, env=None, config=None, cwd=None, wrapper=None, tls=False,
                 cluster=None):
        """wrapper: a command prefix such as ["valgrind", ...]; waits for the
        node's ports then allow for its slowness (start_wait).
        tls: both ports speak TLS with a fresh self-signed certificate for
        127.0.0.1/localhost (self.cert_path); the URLs become https:// and
        wss:// and self.ssl_context trusts that certificate.
        cluster: also wait for the 'rpc listening on' line (self.rpc_port);
        None = whenever "--redis" is among args (see cluster_args)."""
        self.dir = cwd or tempfile.mkdtemp(prefix="imgate-test-")
        self.workers = workers
        self.tls = tls
        self.cert_path = self.key_path = self.ssl_context = None
        cmd = list(wrapper or []) + [BIN, "--http-port", "0", "--ws-port", "0", "--bind", "127.0.0.1",
                                     "--workers", str(workers)]
        if tls:
            cmd += self._make_cert()
        if config is not None:
            path = os.path.join(self.dir, "app.yaml")
            with open(path, "w") as f:
                f.write(config)
            cmd += ["-c", path]
        cmd += list(args)
        full_env = dict(os.environ)
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        full_env.update(env or {})
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self._out = open(self.stdout_path, "w")
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=full_env,
                                     stdout=self._out, stderr=self._err)
        self.http_port = self.ws_port = self.rpc_port = None
        want_rpc = ("--redis" in args) if cluster is None else cluster
        start_bound = NODE_START_TIMEOUT * SLOW * (WRAPPER_SLOW if wrapper else 1)
        deadline = time.time() + start_bound
        while time.time() < deadline:
            with open(self.stdout_path) as f:
                for line in f:
                    if line.startswith("http listening on "):
                        self.http_port = int(line.rsplit(":", 1)[1])
                    elif line.startswith("ws listening on "):
                        self.ws_port = int(line.rsplit(":", 1)[1])
                    elif line.startswith("rpc listening on "):
                        self.rpc_port = int(line.rsplit(":", 1)[1])
            if self.http_port and self.ws_port and (self.rpc_port or not want_rpc):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("imgate exited with %s:\n%s" % (self.proc.returncode, self.stderr()))
            time.sleep(0.05)
        else:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("imgate did not print its ports within %ss:\n%s" % (start_bound, self.stderr()))

    def _make_cert(self):
        """A self-signed certificate in the node's directory; returns the
        flags that turn TLS on."""
        self.cert_path, self.key_path = make_cert(self.dir)
        self.ssl_context = ssl.create_default_context(cafile=self.cert_path)
        return ["--set", "app.tlsCert=" + self.cert_path, "--set", "app.tlsKey=" + self.key_path]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)

    # ---- output ----
    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    @property
    def self_addr(self):
        """The node's name in the cluster registry: "127.0.0.1:<rpcPort>"."""
        assert self.rpc_port, "not a cluster node (no rpc port)"
        return "127.0.0.1:%d" % self.rpc_port

    def stdout(self):
        with open(self.stdout_path) as f:
            return f.read()

    # ---- HTTP ----
    def http_url(self, path):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.http_port, path)

    def ws_url(self, path="/acc"):
        return "%s://127.0.0.1:%d%s" % ("wss" if self.tls else "ws", self.ws_port, path)

    def http(self, path, params=None, method="GET", form=None, json_body=None, headers=None,
             raw_body=None, timeout=10):
        """Returns (status, headers dict (lower-case names), body bytes)."""
        url = self.http_url(path)
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        data = None
        hdrs = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
            method = "POST" if method == "GET" else method
        elif json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
            method = "POST" if method == "GET" else method
        elif raw_body is not None:
            data = raw_body
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW, context=self.ssl_context) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def api(self, path, **kw):
        """An API call that must answer HTTP 200 with JSON; returns the JSON."""
        status, _, body = self.http(path, **kw)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def state(self):
        return self.api("/system/state")["data"]

    def raw(self, data, port=None, read_timeout=2.0, wait_close=True):
        """Sends raw bytes to a port (default: ws) and returns all bytes read
        until the server closes or read_timeout passes."""
        s = socket.create_connection(("127.0.0.1", port or self.ws_port), timeout=5 * SLOW)
        try:
            if data:
                s.sendall(data)
            s.settimeout(read_timeout * SLOW)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
                if not wait_close and out:
                    break
            return out
        finally:
            s.close()

    # ---- life-cycle ----
    def alive(self):
        return self.proc.poll() is None

    def stop(self, check=True, sig=signal.SIGTERM, timeout=NODE_STOP_TIMEOUT):
        """Signals the node (SIGTERM) and waits up to timeout*SLOW seconds for
        it to exit (then kills it and fails)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("imgate did not stop within %ss:\n%s"
                                     % (timeout * SLOW, self.stderr()[-4000:]))
        self._out.close()
        self._err.close()
        if check:
            err = self.stderr()
            assert self.proc.returncode == 0, "exit status %s:\n%s" % (self.proc.returncode, err[-4000:])
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert marker not in err, "sanitizer report:\n" + err[-8000:]
        return self.proc.returncode


# ---- polling and node state ----

def wait_until(pred, timeout=5.0, what="condition"):
    """Polls pred() until it is truthy and returns its value; fails after
    timeout*SLOW seconds."""
    deadline = time.time() + timeout * SLOW
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def wait_idle(node):
    """Waits until the node has no WebSocket connection and no user left over
    from an earlier test, so pushes of one test cannot leak into the next."""
    wait_until(lambda: (lambda s: s["wsConnections"] == 0 and s["users"] == 0)(node.state()),
               what="no WebSocket connection and no user on the node")


def online(node, app, user):
    """/user/online for (app, user): whether the user is online (app 0: any)."""
    return node.api("/user/online", params={"appID": app, "userID": user})["data"]["online"]


# ---- one node per TestCase class ----

class NodeCase(unittest.TestCase):
    """A TestCase class whose tests share one node: Node(*ARGS, **NODE_KW) is
    started before the first test of the class and stopped (and checked) after
    the last one."""
    ARGS = ()
    NODE_KW = None
    node = None

    @classmethod
    def setUpClass(cls):
        cls.node = Node(*cls.ARGS, **(cls.NODE_KW or {}))

    @classmethod
    def tearDownClass(cls):
        if cls.node:
            cls.node.stop()


class ClusterCase(unittest.TestCase):
    """A TestCase class whose tests share one redis-server and N cluster
    nodes (start_cluster(redis, N, *ARGS)), started before the first test
    and stopped (and checked) after the last one. A test that kills a node
    on purpose removes it from cls.nodes."""
    N = 2
    ARGS = ()
    nodes = []

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        try:
            cls.nodes = start_cluster(cls.redis, cls.N, *cls.ARGS)
        except BaseException:
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            stop_all(cls.nodes)
        finally:
            cls.redis.stop()


# ---- WebSocket helpers (python3-websockets) ----

def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120 * SLOW))


async def connect(node, path="/acc", **kw):
    import websockets
    kw.setdefault("open_timeout", 10 * SLOW)
    kw.setdefault("close_timeout", 5 * SLOW)
    if node.tls:
        kw.setdefault("ssl", node.ssl_context)
    return await websockets.connect(node.ws_url(path), **kw)


async def recv_json(ws, timeout=5):
    msg = await asyncio.wait_for(ws.recv(), timeout * SLOW)
    return json.loads(msg)


async def request(ws, cmd, data=None, seq=None):
    """Sends one command and returns the reply with the same seq (pushes that
    arrive first are skipped)."""
    seq = seq or "s%d" % int(time.time() * 1e6)
    await ws.send(json.dumps({"seq": seq, "cmd": cmd, "data": data if data is not None else {}}))
    while True:
        m = await recv_json(ws)
        if m.get("seq") == seq and m.get("cmd") == cmd:
            return m


async def login(node, user, app=101, **kw):
    ws = await connect(node, **kw)
    r = await request(ws, "login", {"serviceToken": "", "appID": app, "userID": user})
    assert r["response"]["code"] == 200, r
    return ws


async def close_all(*socks):
    """Closes every socket given (None is skipped); errors are ignored."""
    for ws in socks:
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 5 * SLOW)
            except Exception:
                pass


# ---- order instead of quiet windows ----
#
# Nothing here waits for "no message within N seconds": a late message would
# pass such a check. Absence is proven by order instead. The node queues a
# push to the recipient's worker inbox before the API call that made it
# answers, enter/exit pushes are posted before the login/logout reply (or the
# close frame) goes out (standalone mode; in cluster mode an exit is announced
# once Redis has answered the leave, which may be after the close frame and
# after a later login: cluster tests let an earlier user's presence push
# through), and each worker's inbox is FIFO: a marker push sent
# through the API after that point reaches the socket behind any push of the
# earlier step. So "read until the marker, nothing unwanted before it" proves
# the unwanted push was never sent. For a push that would come from the
# socket's own worker (its own replies), a `ping` command on the same socket
# is the marker.

RUN_ID = "%x%x" % (os.getpid(), int(time.time() * 1000))   # unique msgIDs per run
_markers = [0]
MARKER_PREFIX = "marker-"


def marker_id():
    """A msgID used by no other send (of this run or an earlier one)."""
    _markers[0] += 1
    return "%s%s-%d" % (MARKER_PREFIX, RUN_ID, _markers[0])


def is_push(m, cmd=None, frm=None, seq=None):
    """Whether m is a server push (cmd msg/enter/exit), optionally of the
    given cmd, sender and seq."""
    if not isinstance(m, dict) or m.get("cmd") not in ("msg", "enter", "exit"):
        return False
    if cmd is not None and m["cmd"] != cmd:
        return False
    data = (m.get("response") or {}).get("data") or {}
    if frm is not None and (not isinstance(data, dict) or data.get("from") != frm):
        return False
    return seq is None or m.get("seq") == seq


def is_marker(m):
    return is_push(m, "msg") and str(m.get("seq", "")).startswith(MARKER_PREFIX)


async def recv_until(ws, pred, what, timeout=5):
    """Reads ws until a message satisfies pred: returns (that message, the
    messages before it). Marker pushes of earlier checks (a user's other
    tab got them too) are left out of the list. Fails naming `what` when
    nothing matching arrives within timeout*SLOW seconds."""
    before = []
    deadline = time.time() + timeout * SLOW
    while True:
        left = deadline - time.time()
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            m = json.loads(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            raise AssertionError("timed out waiting for %s; received before: %r" % (what, before)) from None
        if pred(m):
            return m, before
        if not is_marker(m):
            before.append(m)


async def until_marker(node, targets, room=False, timeout=5, stored_ok=False):
    """For each target (ws, appID, userID): sends a marker push with a
    distinct msgID through node's API (/user/sendMessage, one per distinct
    user; with room=True one /user/sendMessageAll per distinct appID, from a
    sender in no room) and reads ws until its marker arrives. Returns the
    messages each ws received before its marker, in target order. The
    marker send must report delivery (the user must be online; stored_ok:
    or report it stored, for a connection whose login replay could not be
    read, which is served but never counts as pushed)."""
    ids = {}
    for _, app, user in targets:
        key = app if room else (app, user)
        if key in ids:
            continue
        ids[key] = msgid = marker_id()
        if room:
            params = {"appID": app, "userID": "marker-sender", "msgID": msgid, "message": "marker"}
            path = "/user/sendMessageAll"
        else:
            params = {"appID": app, "userID": user, "msgID": msgid, "message": "marker"}
            path = "/user/sendMessage"
        r = await asyncio.get_running_loop().run_in_executor(None, lambda: node.api(path, params=params))
        ok = [{"sendResults": True}] + ([{"sendResults": False, "stored": True}] if stored_ok else [])
        assert r.get("code") == 200 and r.get("data") in ok, \
            "marker %s %r not delivered: %r" % (path, params, r)

    async def one(ws, app, user):
        msgid = ids[app if room else (app, user)]
        _, before = await recv_until(ws, lambda m: is_push(m, "msg", seq=msgid),
                                     "marker %s to %d/%s" % (msgid, app, user), timeout)
        return before
    return list(await asyncio.gather(*[one(*t) for t in targets]))


async def absent_until_marker(node, targets, unwanted=None, room=False, what="nothing"):
    """Proves by order that no unwanted message reached any target (ws,
    appID, userID): sends markers (until_marker) and asserts nothing before
    them satisfies `unwanted` (default: every message is unwanted). Returns
    the tolerated messages per target."""
    got = await until_marker(node, targets, room=room)
    for (ws, app, user), before in zip(targets, got):
        bad = [m for m in before if unwanted is None or unwanted(m)]
        assert not bad, "%d/%s: expected %s before the marker, got %r" % (app, user, what, bad)
    return got


async def absent_until_pong(ws, unwanted=None, what="nothing"):
    """Proves by order that nothing unwanted came from ws's own worker: sends
    a `ping` command (a distinct seq) and reads until its reply; nothing
    before it may satisfy `unwanted` (default: every message)."""
    seq = marker_id()
    await ws.send(json.dumps({"seq": seq, "cmd": "ping", "data": {}}))
    m, before = await recv_until(ws, lambda m: m.get("seq") == seq and m.get("cmd") == "ping",
                                 "the reply to ping %s" % seq)
    assert m["response"]["data"] == "pong", m
    bad = [x for x in before if unwanted is None or unwanted(x)]
    assert not bad, "expected %s before the ping reply, got %r" % (what, bad)
    return before


async def expect_pushes(ws, expected, timeout=5):
    """Reads exactly len(expected) messages from ws and asserts they are the
    pushes `expected` lists as (cmd, from) pairs, in any order (e.g. the
    enter pushes of the users who logged in after ws's user)."""
    want = sorted(expected)
    got = []
    for _ in want:
        try:
            got.append(await recv_json(ws, timeout))
        except asyncio.TimeoutError:
            raise AssertionError("expected pushes %r, received only %r" % (want, got)) from None
    pairs = sorted((m.get("cmd"), ((m.get("response") or {}).get("data") or {}).get("from"))
                   if is_push(m) else ("not a push", repr(m)) for m in got)
    assert pairs == want, "expected pushes %r, received %r" % (want, got)
    return got


# ---- liveness check ----

def assert_serves(node, user):
    """Liveness check: the process is alive, a fresh client logs in as `user`
    and gets a pong for a ping, and the process is still alive."""
    async def go():
        ws = await login(node, user)
        try:
            r = await request(ws, "ping")
            assert r["response"]["code"] == 200 and r["response"]["data"] == "pong", r
        finally:
            await ws.close()
    assert node.alive(), "node died:\n" + node.stderr()[-3000:]
    run(go())
    assert node.alive(), "node died:\n" + node.stderr()[-3000:]


# ---- raw WebSocket: frames (RFC 6455) ----

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
IO_TIMEOUT = 5 * SLOW               # bound of every blocking socket read


def mask_bytes(payload, key):
    """payload XOR the 4-byte masking key, repeated."""
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, length=None):
    """One client frame. `length` overrides the announced payload length
    (the payload bytes are still the ones given)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | (opcode & 0xF)
    n = len(payload) if length is None else length
    mbit = 0x80 if masked else 0
    if n < 126:
        hdr = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        hdr = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not masked:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def text(s, **kw):
    """A text frame of s (str or bytes); keywords as for frame()."""
    return frame(OP_TEXT, s.encode() if isinstance(s, str) else s, **kw)


def cmd_json(cmd, data=None, seq="r1"):
    """A protocol command envelope as UTF-8 JSON bytes."""
    return json.dumps({"seq": seq, "cmd": cmd, "data": data if data is not None else {}},
                      ensure_ascii=False).encode()


# ---- raw WebSocket: the opening handshake ----

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def upgrade_request(path="/acc", key=None, method="GET", proto="HTTP/1.1", **headers):
    """A client opening handshake. Keyword headers (underscores become
    dashes) override the defaults; a value of None omits the header."""
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    hdrs = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
    for k, v in headers.items():
        hdrs[k.replace("_", "-")] = v
    lines = ["%s %s %s" % (method, path, proto)]
    lines += ["%s: %s" % (k, v) for k, v in hdrs.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def accept_for(key):
    """The Sec-WebSocket-Accept value the server must answer for `key`."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def parse_http(data):
    """(status, headers with lower-case names, body) of the first response."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no complete HTTP response head in %r" % data[:300]
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert parts[0].startswith("HTTP/1."), "bad status line %r" % lines[0]
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(parts[1]), hdrs, body


# ---- raw WebSocket: the client ----

class RawWS:
    """A hand-made WebSocket client: performs the handshake (and asserts a
    correct 101 answer), sends crafted frames and parses what the server sends
    (which must be unmasked)."""

    def __init__(self, port, path="/acc", rcvbuf=None, request=None, key=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        self.send(request if request is not None else upgrade_request(path, key=self.key))
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("EOF during handshake: %r" % self.buf)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, hdrs, _ = parse_http(head + b"\r\n\r\n")
        assert status == 101, "handshake answered %d: %r" % (status, head)
        assert hdrs.get("upgrade", "").lower() == "websocket", hdrs
        assert "upgrade" in hdrs.get("connection", "").lower(), hdrs
        assert hdrs.get("sec-websocket-accept") == accept_for(self.key), hdrs
        assert "sec-websocket-extensions" not in hdrs, hdrs

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return False
        self.buf += chunk
        return True

    def _need(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return False
        return True

    def recv_frame(self):
        """(fin, opcode, payload), or None at EOF. Raises socket.timeout."""
        if not self._need(2):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frame is masked"
        assert not b0 & 0x70, "server frame has RSV bits: %#x" % b0
        n, off = b1 & 0x7F, 2
        if n == 126:
            if not self._need(4):
                return None
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            if not self._need(10):
                return None
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        if not self._need(off + n):
            return None
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_json(self, skip_pushes=True):
        """The next text message as JSON (answers pings; skips pushes)."""
        while True:
            f = self.recv_frame()
            assert f is not None, "EOF while waiting for a text message"
            fin, op, payload = f
            if op == OP_PING:
                self.send(frame(OP_PONG, payload))
                continue
            if op == OP_PONG:
                continue
            assert op != OP_CLOSE, "server closed: %r" % (payload,)
            assert op == OP_TEXT and fin, "unexpected frame op=%d fin=%s" % (op, fin)
            m = json.loads(payload)
            if skip_pushes and m.get("cmd") in ("enter", "exit", "msg"):
                continue
            return m

    def read_close(self):
        """Reads frames until a close frame: returns (code, reason, frames
        before it); code is None if the connection ended without one."""
        before = []
        while True:
            f = self.recv_frame()
            if f is None:
                return None, None, before
            fin, op, payload = f
            if op == OP_CLOSE:
                assert fin, "fragmented close frame from the server"
                assert len(payload) != 1, "1-byte close payload from the server"
                if not payload:
                    return 1005, b"", before
                reason = payload[2:]
                reason.decode("utf-8")            # must be valid UTF-8
                return struct.unpack("!H", payload[:2])[0], reason, before
            before.append(f)

    def eof(self):
        """Whether the server ends the TCP connection (nothing but EOF follows)."""
        self.sock.settimeout(IO_TIMEOUT)
        try:
            rest = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        assert rest == b"", "bytes after the close frame: %r" % rest[:100]
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- cluster mode: Redis, nginx, several nodes ----

REDIS_SERVER = os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"
NGINX = os.environ.get("NGINX") or "/usr/sbin/nginx"


def free_port():
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, timeout=0.5):
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


def resp_encode(*args):
    """A command in RESP (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def resp_read(f):
    """One RESP reply read from a binary file object: str for simple and bulk
    strings (UTF-8), int, None for a nil, list for an array; an error reply
    raises RedisError."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis connection closed (read %r)" % line)
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("Redis connection closed in a bulk string")
        return data[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise ConnectionError("unexpected RESP reply %r" % line)


class RedisServer:
    """A private redis-server on 127.0.0.1 (free port, no persistence, its own
    temp directory), started by the test and stopped by PID. restart() comes
    back on the same port, empty. cmd() is a tiny RESP client (one short
    connection per command, so it is safe from several threads)."""

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="imgate-redis-")
        self.port = port or free_port()
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None
        self._log = None
        self.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=20):
        """Starts redis-server (if not running) and waits until it answers PING."""
        assert not self.alive(), "redis-server is already running"
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s:\n%s" % (self.proc.returncode, self.log()[-3000:]))
            try:
                if self.cmd("PING", timeout=1) == "PONG":
                    return self
            except (OSError, RedisError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("redis-server did not answer PING on %s:\n%s" % (self.addr, self.log()[-3000:]))

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the server by PID (SIGTERM: it saves nothing, --save '');
        waits for it; SIGKILL if it lingers. Safe when not running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def kill(self):
        """kill -9."""
        self.stop(sig=signal.SIGKILL)

    def restart(self):
        """Stops (if running) and starts again on the same port: empty."""
        self.stop()
        return self.start()

    # ---- the client ----
    def cmd(self, *args, timeout=5):
        """One command; returns the decoded reply (see resp_read)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(resp_encode(*args))
            with s.makefile("rb") as f:
                return resp_read(f)
        finally:
            s.close()

    def get(self, key):
        return self.cmd("GET", key)

    def ttl(self, key):
        return self.cmd("TTL", key)

    def hgetall(self, key):
        flat = self.cmd("HGETALL", key) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def calls(self, *names):
        """How many times the commands (lower case, e.g. "evalsha") have
        run since the server started (INFO commandstats), summed."""
        text = self.cmd("INFO", "commandstats")
        text = text.decode() if isinstance(text, bytes) else text
        total = 0
        for line in text.splitlines():
            if line.split(":")[0] in ["cmdstat_" + n for n in names]:
                total += int(line.split("calls=")[1].split(",")[0])
        return total


class Nginx:
    """nginx in the foreground (master process started by the test, stopped by
    PID) with a configuration written to its own temp directory. The caller
    gives the whole configuration text; it must not set `daemon`, `pid` or a
    main-level `error_log` (given here with -g) and must keep every temp path
    and log inside `directory` (see temp_paths()). `nginx -t` runs first and
    must pass."""

    def __init__(self, conf_text, listen_port, directory=None, timeout=20):
        self.dir = directory or tempfile.mkdtemp(prefix="imgate-nginx-")
        # As root nginx's workers run as another user (nobody unless `user`
        # says otherwise): they must be able to reach the temp directory.
        os.chmod(self.dir, 0o755)
        self.port = listen_port
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.pid_path = os.path.join(self.dir, "nginx.pid")
        with open(self.conf_path, "w") as f:
            f.write(conf_text)
        self.globals = "daemon off; pid %s; error_log %s info;" % (self.pid_path, self.error_log)
        base = [NGINX, "-p", self.dir + "/", "-c", self.conf_path, "-g", self.globals]
        t = subprocess.run(base + ["-t"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30, cwd=self.dir)
        self.test_output = t.stdout.decode(errors="replace")
        if t.returncode != 0:
            raise AssertionError("nginx -t failed:\n%s\n--- config ---\n%s" % (self.test_output, conf_text))
        self._out = open(os.path.join(self.dir, "stdout.txt"), "w")
        self.proc = subprocess.Popen(base, cwd=self.dir, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %s:\n%s" % (self.proc.returncode, self.log()[-3000:]))
            if port_open(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx does not listen on %d:\n%s" % (self.port, self.log()[-3000:]))

    @staticmethod
    def temp_paths(directory):
        """nginx directives (http level) that keep every temp file in directory."""
        return "".join("    %s_temp_path %s;\n" % (k, os.path.join(directory, k + "_temp"))
                       for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        """The error log (plus whatever went to stdout/stderr)."""
        out = ""
        for p in (self.error_log, os.path.join(self.dir, "stdout.txt")):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f.read()
        return out

    def serious(self):
        """The [emerg], [alert] and [crit] lines of the error log."""
        return [line for line in self.log().splitlines()
                if "[emerg]" in line or "[alert]" in line or "[crit]" in line]

    def _children(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def stop(self, timeout=20):
        """Fast shutdown (SIGTERM to the master); if it lingers, SIGKILL to
        the master and to its worker processes (by PID)."""
        if self.proc.poll() is None:
            workers = self._children()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                workers = self._children() or workers
                self.proc.kill()
                self.proc.wait()
                for pid in workers:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        if not self._out.closed:
            self._out.close()


# Fast cluster timings for tests: registration every second, a node silent
# for 3 s is gone, gRPC deadline 1 s (scaled under the sanitizers).
RPC_TIMEOUT_MS = 1000 * SLOW
# "Did not hang" bound of one API call while a peer is dead or mute: the gRPC
# deadline plus a generous margin (never a tighter timing assertion).
HANG_BOUND = 5.0 * SLOW


def cluster_args(redis, register_interval=1, server_timeout=3, rpc_timeout=None):
    """Flags that put a node in cluster mode against `redis` with fast timings."""
    return ["--rpc-port", "0", "--redis", redis.addr,
            "--set", "cluster.registerInterval=%d" % register_interval,
            "--set", "cluster.serverTimeout=%d" % (server_timeout * SLOW),
            "--set", "cluster.rpcTimeout=%d" % (rpc_timeout or RPC_TIMEOUT_MS)]


def start_cluster(redis, n, *extra, wait=True, **kw):
    """Starts n cluster nodes against `redis` (cluster_args + extra flags;
    keywords go to Node) and, with wait, waits until every node sees all of
    them in its registry. On a failure the nodes already started are killed.
    Unless workers= is given, the first node and every second one after it
    run one worker, whose thread then runs the Redis link too, and the
    others two, which leave it a thread of its own: every cluster test
    covers both ways of running the link."""
    nodes = []
    try:
        for i in range(n):
            each = dict(kw) if "workers" in kw else dict(kw, workers=1 if i % 2 == 0 else 2)
            nodes.append(Node(*cluster_args(redis), *extra, **each))
        if wait:
            wait_cluster(nodes)
    except BaseException:
        for node in nodes:
            node.stop(check=False, sig=signal.SIGKILL)
        raise
    return nodes


def stop_all(nodes, check=True):
    """Stops every node (each by its PID); then raises the first failure."""
    first = None
    for node in nodes:
        try:
            node.stop(check=check)
        except BaseException as e:                    # noqa: B902 - re-raised below
            first = first or e
    if first:
        raise first


def cluster_state(node):
    """The "cluster" object of the node's /system/state (asserts cluster mode)."""
    s = node.state()
    assert s.get("mode") == "cluster", "node not in cluster mode: %r" % (s.get("mode"),)
    assert isinstance(s.get("cluster"), dict), "no cluster object in /system/state: %r" % (s,)
    return s["cluster"]


def wait_cluster(nodes, timeout=10):
    """Waits until every node lists every other one among its live servers."""
    want = set(n.self_addr for n in nodes)
    for node in nodes:
        seen = []

        def sees_all():
            seen[:] = cluster_state(node).get("servers") or []
            return want <= set(seen)
        try:
            wait_until(sees_all, timeout)
        except AssertionError:
            raise AssertionError("node %s does not see all of %s among its servers (it sees %r)"
                                 % (node.self_addr, sorted(want), seen)) from None


def presence_key(app, user):
    return "acc:user:online:%d_%s" % (app, user)


def presence_json(rpc_port, app, user, client_addr, login_time, heartbeat_time,
                  logout_time=0, logoff=False):
    """The presence record exactly as the original writes it (SPEC §5): field
    order as shown, no spaces."""
    return ('{"accIp":"127.0.0.1","accPort":"%d","appID":%d,"userID":%s,"clientIp":"%s",'
            '"clientPort":"","loginTime":%d,"heartbeatTime":%d,"logOutTime":%d,'
            '"qua":"","deviceInfo":"","isLogoff":%s}') % (
                rpc_port, app, json.dumps(user), client_addr, login_time, heartbeat_time,
                logout_time, "true" if logoff else "false")


def without_id(m):
    """A push with its delivery-log entry id removed (SPEC 7.1: a logged
    message's data carries "id": "<ms>-<seq>"); asserts the id is well
    formed when there is one. For comparing with a push as the original
    sends it."""
    data = m.get("response", {}).get("data") if isinstance(m, dict) else None
    if isinstance(data, dict) and "id" in data:
        ms, _, seq = data["id"].partition("-")
        assert ms.isdigit() and seq.isdigit(), "malformed entry id: %r" % (data["id"],)
        m = dict(m, response=dict(m["response"], data={k: v for k, v in data.items() if k != "id"}))
    return m


def msg_push(msgid, message, frm, cmd="msg"):
    """A server push as the original sends it (SPEC §2)."""
    return {"seq": msgid, "cmd": cmd,
            "response": {"code": 200, "codeMsg": "Ok",
                         "data": {"target": "", "type": "text", "msg": message, "from": frm}}}


async def await_until(pred, timeout=5.0, what="condition"):
    """wait_until for coroutines: polls pred() (a plain function) without
    blocking the event loop, so the test's WebSocket clients keep answering
    pings meanwhile. Fails after timeout*SLOW seconds."""
    deadline = time.time() + timeout * SLOW
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def copies(messages, msgid):
    """The messages (e.g. of until_marker) that are pushes with seq msgid."""
    return [m for m in messages if m.get("seq") == msgid and m.get("cmd") == "msg"]


# ---- runner ----

class _CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(module):
    """Runs every test of `module` verbosely, prints "N passed, N failed,
    N skipped" and exits with status 0 only if every test ran and passed: a
    skipped test counts as a failure (a test that did not run proves
    nothing), and so does an expected failure or an unexpected success."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_CountingResult)
    result = runner.run(suite)
    failed = (len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
              + len(result.expectedFailures))
    skipped = len(result.skipped)
    print("%d passed, %d failed, %d skipped" % (result.passed, failed, skipped))
    for test, why in result.skipped:
        print("SKIPPED (counts as a failure): %s: %s" % (test.id(), why))
    # 77 is ctest's SKIP_RETURN_CODE here (tests/tests.cmake): ctest shows the
    # file as skipped and scripts/ctest-strict.sh fails the run for it.
    if failed or not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if skipped else 0)
