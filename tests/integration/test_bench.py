#!/usr/bin/python3
"""imgate-bench (tools/bench) against a real node started here, and against
a fake gateway written here that misbehaves on purpose:

- a broadcast to 400 connections with the floor: exact delivery counts, the
  headline keys consistent with each other (medians, best, ratios, the
  floor's trials, the push frame size the floor sends), rates and memory
  figures within bounds derived from the run's parameters, the HTML report;
- hold and p2p: exact delivery, rates bounded by the target;
- a run that loses messages (the API refuses the broadcast), a run whose
  connections fail set-up, and a run against the fake gateway that delivers
  one broadcast twice 70 messages apart and every p2p message twice and to
  a wrong connection: each exits 1 and says why (stderr and JSON "error");
- usage errors exit 2.

The bench binary is $IMGATE_BENCH, else imgate-bench next to $IMGATE_BIN."""

import http.server
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Node, SANITIZED, SLOW  # noqa: E402

BENCH = os.environ.get("IMGATE_BENCH") or os.path.join(os.path.dirname(harness.BIN),
                                                        "imgate-bench")
HEADLINE = ("connections", "server_rss_bytes_per_conn", "kernel_bytes_per_conn",
            "connect_rate_per_s", "broadcast_last_delivery_ms",
            "broadcast_last_delivery_ms_best", "broadcast_last_delivery_ms_max",
            "broadcast_floor_ms_median", "broadcast_floor_ms_best", "broadcast_floor_ms",
            "broadcast_ratio_median", "broadcast_ratio_best", "broadcast_frame_bytes",
            "floor_frame_bytes", "broadcast_lost", "broadcast_duplicated", "latency_ms")
# Memory a connection may cost before the figure is not believable: the
# node needs ~430 B (more on a fresh node: libcrypto's first pages), the
# sanitizer build keeps freed blocks in quarantine.
RSS_CEILING = 64 * 1024 * (4 if SANITIZED else 1)
KERNEL_CEILING = 64 * 1024


def clean(r):
    """Asserts the bench printed no sanitizer report; returns r."""
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in r.stderr, "sanitizer report:\n" + r.stderr[-8000:]
    return r


def bench(args, timeout=60):
    return clean(subprocess.run([BENCH] + args, capture_output=True, text=True,
                                timeout=timeout * SLOW))


def run_bench_at(ws, api, scenario, *args, tmp, pid=None, timeout=120):
    """Runs imgate-bench against ws/api URLs; returns (CompletedProcess,
    JSON or None, HTML text or None)."""
    jp, hp = os.path.join(tmp, "r.json"), os.path.join(tmp, "r.html")
    for p in (jp, hp):
        if os.path.exists(p):
            os.unlink(p)
    cmd = [BENCH, scenario, "--ws", ws, "--api", api, "--json", jp, "--html", hp,
           "--settle", "0.2", "--timeout", str(10 * SLOW), "--drain", str(10 * SLOW),
           "-q"] + (["--pid", str(pid)] if pid else []) + list(args)
    r = clean(subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * SLOW))
    data = html = None
    if os.path.exists(jp):
        with open(jp) as f:
            data = json.load(f)
    if os.path.exists(hp):
        with open(hp) as f:
            html = f.read()
    return r, data, html


def run_bench(node, scenario, *args, tmp, timeout=120):
    return run_bench_at(node.ws_url(), node.http_url(""), scenario, *args, tmp=tmp,
                        pid=node.proc.pid, timeout=timeout)


def close_to(a, b, rel=1e-3):
    """a == b within the rounding of the JSON writer (6 significant digits)."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)


# ---- a fake gateway that misbehaves on purpose ----

def _server_frame(payload):
    """An unmasked text frame, as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + struct.pack("!H", n) + payload
    return bytes([0x81, 127]) + struct.pack("!Q", n) + payload


def _push(msg_id, message, sender):
    return json.dumps({"seq": msg_id, "cmd": "msg", "response": {
        "code": 200, "codeMsg": "Ok", "data": {"target": "", "type": "text",
                                               "msg": message, "from": sender}}},
        separators=(",", ":")).encode()


class FakeGate:
    """Just enough of SPEC §2–3 for imgate-bench (upgrade, login, heartbeat;
    /user/sendMessageAll and /user/sendMessage), with two faults:
    after broadcast number `dup_after` it pushes the first broadcast again
    to everyone, and every p2p message goes to its user twice and once to
    another user."""

    def __init__(self, dup_after):
        self.dup_after = dup_after
        self.lock = threading.Lock()
        self.users = {}                   # userID -> (socket, send lock)
        self.order = []                   # userIDs in login order
        self.broadcasts = []              # push frames sent, in order
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.ws_port = self.lsock.getsockname()[1]
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.http_port = self.http.server_address[1]
        self.threads = [threading.Thread(target=self._accept_loop, daemon=True),
                        threading.Thread(target=self.http.serve_forever, daemon=True)]
        for t in self.threads:
            t.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()
        self.lsock.close()
        with self.lock:
            for s, _ in self.users.values():
                s.close()

    def _accept_loop(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(s,), daemon=True).start()

    def _send(self, uid, data):
        s, lk = self.users[uid]
        with lk:
            try:
                s.sendall(data)
            except OSError:
                pass

    def _conn(self, s):
        f = s.makefile("rb")
        try:
            key = None
            for line in iter(f.readline, b"\r\n"):
                if not line:
                    return
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "sec-websocket-key":
                    key = value.strip()
            s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                       % harness.accept_for(key)).encode())
            self._frames(s, f, threading.Lock())
        except (OSError, ValueError):
            pass

    @staticmethod
    def _read_frame(f):
        head = f.read(2)
        if len(head) < 2:
            return None, None
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", f.read(8))[0]
        key = f.read(4)
        return head[0] & 0x0F, harness.mask_bytes(f.read(n), key)

    def _frames(self, s, f, lk):
        while True:
            op, payload = self._read_frame(f)
            if op is None or op == harness.OP_CLOSE:
                return
            if op != harness.OP_TEXT:
                continue
            m = json.loads(payload)
            reply = {"seq": m.get("seq"), "cmd": m.get("cmd"),
                     "response": {"code": 200, "codeMsg": "Success", "data": None}}
            if m.get("cmd") == "login":
                with self.lock:
                    self.users[m["data"]["userID"]] = (s, lk)
                    self.order.append(m["data"]["userID"])
            with lk:
                s.sendall(_server_frame(json.dumps(reply).encode()))

    def broadcast(self, p):
        frame = _server_frame(_push(p["msgID"], p["message"], p.get("userID", "")))
        with self.lock:
            self.broadcasts.append(frame)
            again = len(self.broadcasts) == self.dup_after
            users = list(self.users)
        for uid in users:
            self._send(uid, frame)
            if again:
                self._send(uid, self.broadcasts[0])

    def p2p(self, p):
        frame = _server_frame(_push(p["msgID"], p["message"], "api"))
        uid = p["userID"]
        with self.lock:
            if uid not in self.users:
                return False
            other = self.order[(self.order.index(uid) + 1) % len(self.order)]
        for u in (uid, uid, other):
            self._send(u, frame)
        return True

    def _handler(self):
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                p = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}
                if self.path.endswith("/user/sendMessageAll"):
                    gate.broadcast(p)
                    data = {"sendResults": True}
                else:
                    data = {"sendResults": gate.p2p(p)}
                body = json.dumps({"code": 200, "msg": "Success", "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        return Handler


class BenchCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="imgate-bench-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assert_failed(self, r, d, *why):
        """The run exited 1 and named every reason in `why` on stderr and in
        the JSON "error"."""
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIsNotNone(d, r.stderr)
        for w in why:
            self.assertIn(w, d["error"])
            self.assertIn(w, r.stderr)
            self.assertTrue(any(w in f for f in d["failures"]), d["failures"])
        self.assertIn("FAILED", r.stderr)

    def test_broadcast_delivers_exactly_once(self):
        n, rounds, trials = 400, 3, 3
        with Node("--set", "im.presenceEventsMaxRoom=10", workers=2) as node:
            r, d, html = run_bench(node, "broadcast", "--with-floor", "-n", str(n),
                                   "--procs", "2", "--rounds", str(rounds), "--interval", "0.2",
                                   "--floor-trials", str(trials), "--node-workers", "2",
                                   "--tag", "t1", tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            harness.assert_serves(node, "after-bench")
        for k in HEADLINE:
            self.assertIn(k, d)
        self.assertIsNone(d["error"])
        self.assertEqual(d["failures"], [])
        self.assertEqual((d["connections"], d["connections_target"]), (n, n))
        self.assertEqual(d["connect"]["failed"], 0)
        self.check_broadcast_counts(d, n, rounds)
        self.check_broadcast_times(d)
        self.check_floor(d, n, trials)
        self.check_rates_and_memory(d)
        self.check_html(html, d)
        self.assertIn("median to median", r.stdout)
        # The floor alone sends the push frame as SPEC §3 writes it: the same
        # size as the frames the node sent (same tag, same message layout).
        r2, alone, _ = run_bench_at("ws://127.0.0.1:1/acc", "http://127.0.0.1:1", "floor",
                                    "-n", "20", "--procs", "1", "--floor-trials", "1",
                                    "--tag", "t1", tmp=self.tmp)
        self.assertEqual(r2.returncode, 0, r2.stdout + r2.stderr)
        self.assertEqual(alone["floor"]["bytes_per_socket_from"], "computed push frame")
        self.assertEqual(alone["floor_frame_bytes"], d["broadcast_frame_bytes"])
        self.assertEqual(alone["floor"]["bytes"], 20 * d["broadcast_frame_bytes"])
        self.assertIsNone(alone["broadcast_ratio_median"])


    def test_broadcast_and_floor_with_rx_ring(self):
        """--rx-ring: the clients and the broadcast floor's receivers read
        through io_uring; the same exact counts (or, on a kernel without the
        ring, the run says so and reads with epoll)."""
        n, rounds, trials = 400, 2, 2
        with Node("--set", "im.presenceEventsMaxRoom=10", workers=2) as node:
            r, d, _ = run_bench(node, "broadcast", "--with-floor", "-n", str(n),
                                "--procs", "2", "--rounds", str(rounds), "--interval", "0.2",
                                "--floor-trials", str(trials), "--node-workers", "2",
                                "--tag", "t9", "--rx-ring", tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            harness.assert_serves(node, "after-bench")
        self.assertEqual(d["failures"], [])
        self.check_broadcast_counts(d, n, rounds)
        self.check_floor(d, n, trials)
        if d["client_rx_ring_procs"] == 0:
            self.assertIn("no io_uring receive ring here", r.stderr)
        else:
            self.assertEqual(d["client_rx_ring_procs"], 2)
            self.assertIn("io_uring receive ring in 2 of 2 processes", r.stdout)
    def check_broadcast_counts(self, d, n, rounds):
        b = d["broadcast"]
        self.assertEqual((b["messages_sent"], b["messages_accepted"], b["http_errors"]),
                         (rounds, rounds, 0))
        self.assertEqual(b["expected_per_message"], n)
        self.assertEqual(b["expected"], n * rounds)
        self.assertEqual(b["delivered"], n * rounds)
        self.assertEqual((b["lost"], b["duplicated"]), (0, 0))
        self.assertEqual((d["broadcast_lost"], d["broadcast_duplicated"]), (0, 0))
        self.assertEqual([m["delivered"] for m in b["per_message"]], [n] * rounds)
        self.assertTrue(all(m["accepted"] and m["http_status"] == 200 for m in b["per_message"]))
        self.assertEqual(d["latency_ms"]["count"], n * rounds)
        self.assertEqual(d["pushes_other"]["unparsable"], 0)

    def check_broadcast_times(self, d):
        lat, b = d["latency_ms"], d["broadcast"]
        for k in ("min", "mean", "stddev", "p50", "p95", "p99", "p999", "max"):
            self.assertIsInstance(lat[k], (int, float), k)
        self.assertTrue(0 <= lat["min"] <= lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"])
        last = [m["last_delivery_ms"] for m in b["per_message"]]
        self.assertTrue(close_to(d["broadcast_last_delivery_ms"], statistics.median(last)))
        self.assertTrue(close_to(d["broadcast_last_delivery_ms_best"], min(last)))
        self.assertTrue(close_to(d["broadcast_last_delivery_ms_max"], max(last)))
        # every delivery's latency runs from the send to its read: at most
        # the time to the last delivery of the slowest message
        self.assertLessEqual(lat["max"], d["broadcast_last_delivery_ms_max"] * 1.001)
        self.assertGreater(d["broadcast_last_delivery_ms_best"], 0)
        self.assertLess(d["broadcast_last_delivery_ms_max"], b["phase_s"] * 1000)
        frame = d["broadcast_frame_bytes"]
        self.assertEqual((b["frame_bytes_min"], b["frame_bytes_max"]), (frame, frame))
        self.assertTrue(120 <= frame <= 300, frame)

    def check_floor(self, d, n, trials):
        fl = d["floor"]
        self.assertTrue(fl["complete"], fl)
        self.assertIsNone(fl["error"])
        self.assertEqual((fl["trials"], fl["complete_trials"]), (trials, trials))
        # one sender per worker thread of the node (--node-workers 2)
        self.assertEqual(d["config"]["node_workers"], 2)
        self.assertEqual((fl["senders"], fl["senders_requested"], fl["receivers"]), (2, 2, 2))
        self.assertEqual((fl["accepted"], fl["connected"]), (n, n))
        self.assertEqual(fl["bytes_per_socket_from"], "broadcast frames received")
        self.assertEqual(d["floor_frame_bytes"], d["broadcast_frame_bytes"])
        self.assertEqual(fl["bytes_per_socket"], d["floor_frame_bytes"])
        self.assertEqual(fl["bytes"], n * d["floor_frame_bytes"])
        ts = fl["trials_last_delivery_ms"]
        self.assertEqual(len(ts), trials)
        self.assertTrue(all(t > 0 for t in ts), ts)
        self.assertTrue(close_to(fl["last_delivery_ms_median"], statistics.median(ts)))
        self.assertTrue(close_to(fl["last_delivery_ms_best"], min(ts)))
        self.assertEqual(d["broadcast_floor_ms_median"], fl["last_delivery_ms_median"])
        self.assertEqual(d["broadcast_floor_ms_best"], fl["last_delivery_ms_best"])
        self.assertEqual(d["broadcast_floor_ms"], d["broadcast_floor_ms_best"])
        self.assertTrue(close_to(d["broadcast_ratio_median"],
                                 d["broadcast_last_delivery_ms"] / d["broadcast_floor_ms_median"]))
        self.assertTrue(close_to(d["broadcast_ratio_best"],
                                 d["broadcast_last_delivery_ms_best"] / d["broadcast_floor_ms_best"]))

    def check_rates_and_memory(self, d):
        c, n = d["config"], d["connections"]
        # paced at --connect-rate; at least all of them within the whole run
        self.assertLessEqual(d["connect_rate_per_s"], 1.5 * c["connect_rate"])
        self.assertGreaterEqual(d["connect_rate_per_s"], n / d["duration_s"])
        self.assertTrue(0 < d["server_rss_bytes_per_conn"] < RSS_CEILING,
                        d["server_rss_bytes_per_conn"])
        self.assertTrue(0 < d["kernel_bytes_per_conn"] < KERNEL_CEILING, d["kernel_bytes_per_conn"])
        self.assertTrue(close_to(d["kernel_bytes_per_conn_both_ends"],
                                 2 * d["kernel_bytes_per_conn"]))
        self.assertTrue(0 <= d["client_rss_bytes_per_conn"] < RSS_CEILING,
                        d["client_rss_bytes_per_conn"])
        self.assertTrue(0 < d["client_conn_struct_bytes"] <= 512, d["client_conn_struct_bytes"])

    def check_html(self, html, d):
        self.assertIn("<svg", html)
        self.assertTrue(html.rstrip().endswith("</html>"))
        for external in ("<script", "<link", " src=", "@import", "url("):
            self.assertNotIn(external, html)
        for row in ("median of trials", "best trial", "median message / median trial",
                    "best message / best trial", "one %d-byte send" % d["floor_frame_bytes"]):
            self.assertIn(row, html)
        ratio = d["broadcast_ratio_median"]           # 6 digits in the JSON
        self.assertTrue(any("%.2f" % (ratio + e) in html for e in (-1e-5, 0, 1e-5)), ratio)

    def test_hold_and_p2p(self):
        rate, dur, n = 40, 1, 50
        with Node() as node:
            r, d, _ = run_bench(node, "connect,hold,p2p", "-n", str(n), "--procs", "2",
                                "--hold-duration", "1.5", "--heartbeat", "0.5",
                                "--p2p-rate", str(rate), "--p2p-duration", str(dur), tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(d["connections"], n)
        self.assertEqual(d["failures"], [])
        h = d["hold"]
        self.assertTrue(h["ran"])
        self.assertEqual((h["drops"], h["drops_whole_run"]), (0, 0))
        # every connection beats every 0.5 s: ~3 times in 1.5 s
        self.assertTrue(n <= h["heartbeats_sent"] <= n * (1.5 / 0.5 + 2), h["heartbeats_sent"])
        self.assertEqual(h["heartbeats_ok"], h["heartbeats_sent"])
        p = d["p2p"]
        self.assertTrue(0.75 * rate * dur <= p["sent"] <= math.ceil(rate * dur), p["sent"])
        self.assertEqual((p["accepted"], p["delivered"]), (p["sent"], p["sent"]))
        self.assertEqual((p["send_results_false"], p["http_errors"]), (0, 0))
        self.assertEqual((p["lost"], p["duplicated"], p["misdelivered"]), (0, 0, 0))
        self.assertLessEqual(p["rate_per_s"], rate * 1.1 + 2 / dur)
        self.assertGreater(p["rate_per_s"], 0)
        self.assertEqual(d["latency_of"], "p2p")
        self.assertEqual(d["latency_ms"]["count"], p["delivered"])
        self.assertIsNone(d["broadcast_lost"])

    def test_lost_broadcast_fails_the_run(self):
        """The API refuses every broadcast (nothing listens there): every
        recipient of every message counts as lost, and the run fails."""
        port = harness.free_port()
        n, rounds = 30, 2
        with Node() as node:
            r, d, _ = run_bench_at(node.ws_url(), "http://127.0.0.1:%d" % port, "broadcast",
                                   "-n", str(n), "--procs", "1", "--rounds", str(rounds),
                                   "--interval", "0", tmp=self.tmp, pid=node.proc.pid)
        self.assert_failed(r, d, "%d broadcast deliveries lost" % (n * rounds),
                           "%d of %d broadcast API calls failed" % (rounds, rounds))
        b = d["broadcast"]
        self.assertEqual((b["messages_sent"], b["messages_accepted"]), (rounds, 0))
        self.assertEqual((b["expected"], b["delivered"], b["lost"]), (n * rounds, 0, n * rounds))
        self.assertEqual(d["broadcast_lost"], n * rounds)

    def test_duplicates_and_misdelivery_fail_the_run(self):
        """A fake gateway delivers broadcast 0 again after broadcast 70 (out
        of any 64-message window), every p2p message twice, and each once
        more to another connection."""
        n, rounds = 4, 70
        with FakeGate(dup_after=rounds) as gate:
            r, d, _ = run_bench_at("ws://127.0.0.1:%d/acc" % gate.ws_port,
                                   "http://127.0.0.1:%d" % gate.http_port, "broadcast,p2p",
                                   "-n", str(n), "--procs", "1", "--rounds", str(rounds),
                                   "--interval", "0", "--p2p-rate", "20", "--p2p-duration", "0.5",
                                   "--drain", "2", tmp=self.tmp)
        b, p = d["broadcast"], d["p2p"]
        self.assertEqual((b["delivered"], b["lost"]), (n * rounds, 0))
        self.assertEqual(b["duplicated"], n)
        sent = p["sent"]
        self.assertGreater(sent, 0)
        self.assertEqual((p["delivered"], p["lost"]), (sent, 0))
        self.assertEqual((p["duplicated"], p["misdelivered"]), (sent, sent))
        self.assert_failed(r, d, "%d broadcast deliveries duplicated" % n,
                           "%d p2p messages duplicated" % sent,
                           "%d p2p messages misdelivered" % sent)

    def test_failed_setup_fails_the_run(self):
        port = harness.free_port()                  # nothing listens there now
        with Node() as node:
            jp = os.path.join(self.tmp, "f.json")
            r = bench(["connect", "-n", "20", "--procs", "1",
                       "--ws", "ws://127.0.0.1:%d/acc" % port,
                       "--api", node.http_url(""), "--json", jp, "--settle", "0", "-q"])
            with open(jp) as f:
                refused = json.load(f)
            self.assert_failed(r, refused, "20 of 20 connections did not log in")
            # the right path: every connection logs in, the run passes
            r, d, _ = run_bench(node, "connect", "-n", "10", "--procs", "1", tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            # a wrong path: the upgrade is answered 404, not 101
            r = bench(["connect", "-n", "10", "--procs", "1", "--ws", node.ws_url("/nope"),
                       "--api", node.http_url(""), "--json", jp, "--settle", "0", "-q"])
            with open(jp) as f:
                wrong_path = json.load(f)
            self.assert_failed(r, wrong_path, "10 of 10 connections did not log in")
        c = refused["connect"]
        self.assertEqual(refused["connections"], 0)
        self.assertEqual(c["failures"]["connect_error"], 20)
        self.assertEqual(c["connect_errors"], {"ECONNREFUSED": 20})
        self.assertEqual(d["connect"]["logged_in"], 10)
        c = wrong_path["connect"]
        self.assertEqual(c["failures"]["handshake_status"], 10)
        self.assertEqual(len(c["handshake_statuses"]), 1, c)
        self.assertNotIn("101", c["handshake_statuses"])

    def test_deflate_side_by_side(self):
        """--deflate runs the scenarios twice, the second time with clients
        that negotiate permessage-deflate (here against a second node that
        has it on): every push of that pass arrives compressed and smaller,
        and the two passes are reported side by side. A second pass against
        a node that does not grant it fails its set-up, by reason."""
        n, rounds = 100, 2
        base = ("--set", "im.presenceEventsMaxRoom=1")       # no enter pushes to compress
        with Node(*base) as off, Node(*base, "--set", "app.perMessageDeflate=true") as on:
            r, d, html = run_bench(off, "broadcast", "--deflate", "-n", str(n), "--procs", "2",
                                   "--rounds", str(rounds), "--interval", "0.2", "--pad", "400",
                                   "--deflate-ws", on.ws_url(), "--deflate-api", on.http_url(""),
                                   "--deflate-pid", str(on.proc.pid), tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # once per push per worker (2), not per recipient (100); the
            # first user's enter push may add one per worker
            compressed = on.state()["deflate"]["messagesCompressed"]
            self.assertTrue(rounds * 2 <= compressed <= rounds * 2 + 2, compressed)
            refused = run_bench(off, "connect", "--deflate", "-n", "10", "--procs", "1",
                                tmp=self.tmp)
        z = d["deflate"]
        self.assertEqual(d["config"]["pad"], 400)
        self.assertEqual((z["off"]["compressed_pushes"], z["on"]["compressed_pushes"]),
                         (0, n * rounds))
        for p in (z["off"], z["on"]):
            self.assertEqual((p["connections"], p["delivered"], p["lost"], p["duplicated"]),
                             (n, n * rounds, 0, 0))
            self.assertEqual(p["failures"], [])
            self.assertGreaterEqual(p["node_cpu_s"], 0)
        self.assertLess(z["on"]["frame_bytes"], z["off"]["frame_bytes"] * 0.8)
        self.assertTrue(close_to(z["on_vs_off"]["frame_bytes"],
                                 z["on"]["frame_bytes"] / z["off"]["frame_bytes"]))
        self.assertLess(z["on"]["broadcast_rx_bytes"], z["off"]["broadcast_rx_bytes"])
        self.assertEqual(d["broadcast"]["frame_bytes_max"], z["off"]["frame_bytes"])
        self.assertIn("permessage-deflate: off and on", html)
        self.assertIn("on/off", r.stdout)
        r, d, _ = refused
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(d["deflate"]["on"]["failed"], 10)
        self.assertIn("FAILED (permessage-deflate pass): 10 of 10 connections did not log in",
                      r.stderr)
        r = bench(["connect", "--deflate-ws", "ws://127.0.0.1:1/acc"], timeout=10)
        self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))

    def test_handshake_server(self):
        """The raw-handshake floor (imgate-bench handshake-server): two
        processes, each prints its port; the connect scenario logs every
        connection in through them (101 with the right accept key, a login
        reply), heartbeats are answered; a close is taken; the server stops
        with its children on SIGTERM."""
        hs = subprocess.Popen([BENCH, "handshake-server", "--procs", "2"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        try:
            ports = [int(hs.stdout.readline().rsplit(":", 1)[1]) for _ in range(2)]
            self.assertEqual(len(set(ports)), 2)
            jp = os.path.join(self.tmp, "hs.json")
            args = ["connect,hold", "-n", "200", "--procs", "2", "--api", "http://127.0.0.1:1",
                    "--hold-duration", "1", "--heartbeat", "0.3", "--json", jp, "--settle", "0", "-q"]
            for p in ports:
                args += ["--ws", "ws://127.0.0.1:%d/acc" % p]
            r = bench(args)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(jp) as f:
                d = json.load(f)
            self.assertEqual(d["connections"], 200)
            self.assertGreater(d["connect_rate_per_s"], 0)
            self.assertGreater(d["hold"]["heartbeats_ok"], 0)
            # at most one heartbeat per connection is still on its way at the end
            self.assertGreaterEqual(d["hold"]["heartbeats_ok"], d["hold"]["heartbeats_sent"] - 200)
            # a reply longer than 125 bytes (a 64-byte seq) uses the 16-bit length
            ws = harness.RawWS(ports[1])
            seq = "q" * 64
            ws.send(harness.text(harness.cmd_json("login", {"appID": 101, "userID": "u"}, seq=seq)))
            m = ws.recv_json()
            self.assertEqual((m["seq"], m["cmd"], m["response"]["code"]), (seq, "login", 200))
            ws.close()
            # a wrong key is not upgraded: the connection is closed
            with socket.create_connection(("127.0.0.1", ports[0]), timeout=5 * SLOW) as s:
                s.sendall(b"GET /acc HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(s.recv(100), b"")
        finally:
            hs.terminate()
            self.assertEqual(hs.wait(timeout=10 * SLOW), 0)

    def test_handshake_server_redis(self):
        """The floor with a login's Redis work (handshake-server --redis): each
        login sends the five commands a cluster node sends for it (GET of the
        cursor, XINFO STREAM of the inbox, HSET and EXPIRE of the node hash,
        SET of the presence record with its TTL), counted by Redis itself,
        and is answered only after its reads; the records are the SPEC's."""
        with harness.RedisServer() as redis:
            hs = subprocess.Popen([BENCH, "handshake-server", "--procs", "2", "--redis", redis.addr],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                ports = [int(hs.stdout.readline().rsplit(":", 1)[1]) for _ in range(2)]
                jp = os.path.join(self.tmp, "hsr.json")
                args = ["connect", "-n", "200", "--procs", "2", "--api", "http://127.0.0.1:1",
                        "--json", jp, "--settle", "0", "-q"]
                for p in ports:
                    args += ["--ws", "ws://127.0.0.1:%d/acc" % p]
                r = bench(args)
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(jp) as f:
                    self.assertEqual(json.load(f)["connections"], 200)
                stats = redis.cmd("INFO", "commandstats")
                stats = stats.decode() if isinstance(stats, bytes) else stats
                calls = dict((m.group(1), int(m.group(2))) for m in
                             re.finditer(r"cmdstat_([a-z|]+):calls=(\d+)", stats))
                for cmd in ("get", "xinfo|stream", "hset", "expire", "set"):
                    self.assertEqual(calls.get(cmd), 200, (cmd, stats))
                keys = redis.cmd("KEYS", "acc:user:online:101_*")
                self.assertEqual(len(keys), 200)
                rec = json.loads(redis.cmd("GET", keys[0]))
                self.assertEqual((rec["appID"], rec["isLogoff"], rec["accIp"]), (101, False, "127.0.0.1"))
                self.assertIn(int(rec["accPort"]), ports)
                self.assertGreater(int(redis.cmd("TTL", keys[0])), 0)
                nodes = redis.cmd("HGETALL", "acc:user:nodes:101_" + rec["userID"])
                self.assertEqual(len(nodes), 2)
                # a login is answered after its reads: not while Redis is stopped
                ws = harness.RawWS(ports[0])
                redis.proc.send_signal(signal.SIGSTOP)
                try:
                    ws.send(harness.text(harness.cmd_json("login", {"appID": 101, "userID": "p"}, seq="lp")))
                    ws.send(harness.text(harness.cmd_json("heartbeat", {}, seq="hb")))
                    self.assertEqual(ws.recv_json()["seq"], "hb")    # the login waits behind Redis
                finally:
                    redis.proc.send_signal(signal.SIGCONT)
                self.assertEqual(ws.recv_json()["seq"], "lp")
                ws.close()
            finally:
                hs.terminate()
                self.assertEqual(hs.wait(timeout=10 * SLOW), 0)

    def test_usage_errors(self):
        for args in (["nosuch"], ["connect", "--ws", "ws://10.0.0.1:80/acc"],
                     ["connect", "--api", "http://example.com:80"], ["connect", "-n", "0"],
                     ["floor", "--floor-senders", "0"]):
            r = bench(args, timeout=10)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
        # one sender cannot hold more sockets than the open-file limit allows:
        # an explicit --floor-senders is honoured exactly or refused
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        cap = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)
        n = cap + 1000
        r = bench(["floor", "-n", str(n), "--procs", "4", "--floor-senders", "1"], timeout=10)
        self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
        self.assertIn("--floor-senders", r.stderr)
        r = bench(["--help"], timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("broadcast", r.stdout)


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
