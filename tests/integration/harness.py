"""Test harness: starts a real imgate node on free loopback ports and talks
to it with real clients (Debian's python3-websockets, urllib).

Every node is started by the test itself, in a fresh temporary directory (so
no config/app.yaml is picked up unless the test writes one), and stopped by
PID. stop() asserts a clean exit (status 0) and, under the sanitizer build,
that the node printed no ASan/UBSan report."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("IMGATE_BIN") or os.path.join(ROOT, "build", "imgate")
SANITIZED = os.environ.get("IMGATE_SANITIZE", "").upper() in ("ON", "1", "TRUE")
# Sanitized binaries are slower: scale waits, never assert on timing.
SLOW = 3 if SANITIZED else 1


class Node:
    """One imgate process. Use as a context manager or call stop()."""

    def __init__(self, *args, workers=2, env=None, config=None, cwd=None):
        self.dir = cwd or tempfile.mkdtemp(prefix="imgate-test-")
        cmd = [BIN, "--http-port", "0", "--ws-port", "0", "--bind", "127.0.0.1",
               "--workers", str(workers)]
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
        deadline = time.time() + 15 * SLOW
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
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def ws_url(self, path="/acc"):
        return "ws://127.0.0.1:%d%s" % (self.ws_port, path)

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
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
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


# ---- WebSocket helpers (python3-websockets) ----

def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120 * SLOW))


async def connect(node, path="/acc", **kw):
    import websockets
    kw.setdefault("open_timeout", 10 * SLOW)
    kw.setdefault("close_timeout", 5 * SLOW)
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
