"""Test harness: starts a real imgate node on free loopback ports and talks
to it with real clients (Debian's python3-websockets, urllib).

Every node is started by the test itself, in a fresh temporary directory (so
no config/app.yaml is picked up unless the test writes one), and stopped by
PID. stop() asserts a clean exit (status 0) and, under the sanitizer build,
that the node printed no ASan/UBSan report.

Also here, shared by the test files: polling (wait_until, wait_idle), a base
class that runs one node per TestCase class (NodeCase), the liveness check
(assert_serves), a hand-made RFC 6455 client with frame and handshake builders
(RawWS, frame, upgrade_request, parse_http, ...) and the runner that prints
"N passed, N failed" (main)."""

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

    def __init__(self, *args, workers=2, env=None, config=None, cwd=None, wrapper=None, tls=False):
        """wrapper: a command prefix such as ["valgrind", ...]; waits for the
        node's ports then allow for its slowness (start_wait).
        tls: both ports speak TLS with a fresh self-signed certificate for
        127.0.0.1/localhost (self.cert_path); the URLs become https:// and
        wss:// and self.ssl_context trusts that certificate."""
        self.dir = cwd or tempfile.mkdtemp(prefix="imgate-test-")
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
        self.http_port = self.ws_port = None
        deadline = time.time() + 15 * SLOW * (8 if wrapper else 1)
        while time.time() < deadline:
            with open(self.stdout_path) as f:
                for line in f:
                    if line.startswith("http listening on "):
                        self.http_port = int(line.rsplit(":", 1)[1])
                    elif line.startswith("ws listening on "):
                        self.ws_port = int(line.rsplit(":", 1)[1])
            if self.http_port and self.ws_port:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("imgate exited with %s:\n%s" % (self.proc.returncode, self.stderr()))
            time.sleep(0.05)
        else:
            self.proc.kill()
            raise RuntimeError("imgate did not print its ports:\n" + self.stderr())

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
        s = socket.create_connection(("127.0.0.1", port or self.ws_port), timeout=5)
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

    def stop(self, check=True, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("imgate did not stop within %ss:\n%s" % (timeout, self.stderr()[-4000:]))
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


async def no_message(ws, wait=0.5):
    """Asserts nothing arrives within `wait` seconds."""
    try:
        m = await asyncio.wait_for(ws.recv(), wait * SLOW)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected message: %r" % (m,))


async def close_all(*socks):
    """Closes every socket given (None is skipped); errors are ignored."""
    for ws in socks:
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 5 * SLOW)
            except Exception:
                pass


async def drain(*socks, wait=0.2):
    """Discards whatever is pending on each socket (e.g. enter pushes of the
    set-up): reads until `wait` seconds pass without a message."""
    for ws in socks:
        while True:
            try:
                await asyncio.wait_for(ws.recv(), wait * SLOW)
            except asyncio.TimeoutError:
                break


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


# ---- runner ----

class _CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(module):
    """Runs every test of `module` verbosely, prints "N passed, N failed" and
    exits with status 0 only if nothing failed."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_CountingResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print("%d passed, %d failed" % (result.passed, failed))
    sys.exit(0 if failed == 0 and result.wasSuccessful() else 1)
