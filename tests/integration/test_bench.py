#!/usr/bin/python3
"""imgate-bench (tools/bench) against a real node started here: exact
delivery of a broadcast to 200 connections, a well-formed JSON report (the
headline keys) and a self-contained HTML report; p2p and hold on a small
run; failures counted by reason; usage errors.

The bench binary is $IMGATE_BENCH, else imgate-bench next to $IMGATE_BIN."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Node, SLOW  # noqa: E402

BENCH = os.environ.get("IMGATE_BENCH") or os.path.join(os.path.dirname(harness.BIN),
                                                        "imgate-bench")
HEADLINE = ("connections", "server_rss_bytes_per_conn", "kernel_bytes_per_conn",
            "connect_rate_per_s", "broadcast_last_delivery_ms", "broadcast_floor_ms",
            "broadcast_lost", "broadcast_duplicated", "latency_ms")


def clean(r):
    """Asserts the bench printed no sanitizer report; returns r."""
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in r.stderr, "sanitizer report:\n" + r.stderr[-8000:]
    return r


def bench(args, timeout=60):
    return clean(subprocess.run([BENCH] + args, capture_output=True, text=True,
                                timeout=timeout * SLOW))


def run_bench(node, scenario, *args, tmp, timeout=120):
    """Runs imgate-bench against node; returns (CompletedProcess, JSON or
    None, HTML text or None)."""
    jp, hp = os.path.join(tmp, "r.json"), os.path.join(tmp, "r.html")
    cmd = [BENCH, scenario, "--ws", node.ws_url(), "--api", node.http_url(""),
           "--pid", str(node.proc.pid), "--json", jp, "--html", hp, "--settle", "0.2",
           "--timeout", str(10 * SLOW), "--drain", str(10 * SLOW), "-q"] + list(args)
    r = clean(subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * SLOW))
    data = html = None
    if os.path.exists(jp):
        with open(jp) as f:
            data = json.load(f)
    if os.path.exists(hp):
        with open(hp) as f:
            html = f.read()
    return r, data, html


class BenchCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="imgate-bench-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_broadcast_delivers_exactly_once(self):
        with Node("--set", "im.presenceEventsMaxRoom=10") as node:
            r, d, html = run_bench(node, "broadcast", "--with-floor", "-n", "200",
                                   "--procs", "2", "--rounds", "1", "--messages", "1",
                                   "--floor-trials", "1", tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            harness.assert_serves(node, "after-bench")
        for k in HEADLINE:
            self.assertIn(k, d)
        self.assertIsNone(d["error"])
        self.assertEqual(d["connections"], 200)
        b = d["broadcast"]
        self.assertEqual(b["messages_accepted"], 1)
        self.assertEqual(b["expected"], 200)
        self.assertEqual(b["delivered"], b["expected"])
        self.assertEqual(d["broadcast_lost"], 0)
        self.assertEqual(d["broadcast_duplicated"], 0)
        self.assertEqual(b["per_message"][0]["delivered"], 200)
        lat = d["latency_ms"]
        self.assertEqual(lat["count"], 200)
        for k in ("min", "mean", "stddev", "p50", "p95", "p99", "p999", "max"):
            self.assertIsInstance(lat[k], (int, float), k)
        self.assertTrue(0 <= lat["min"] <= lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"])
        self.assertGreater(d["broadcast_last_delivery_ms"], 0)
        self.assertGreater(d["connect_rate_per_s"], 0)
        self.assertIsInstance(d["server_rss_bytes_per_conn"], (int, float))
        self.assertIsInstance(d["kernel_bytes_per_conn"], (int, float))
        self.assertEqual(d["connect"]["failed"], 0)
        fl = d["floor"]
        self.assertTrue(fl["complete"], fl)
        self.assertEqual(fl["bytes"], 200 * 100)
        self.assertGreater(d["broadcast_floor_ms"], 0)
        self.assertIn("<svg", html)
        self.assertTrue(html.rstrip().endswith("</html>"))
        for external in ("<script", "<link", " src=", "@import", "url("):
            self.assertNotIn(external, html)

    def test_hold_and_p2p(self):
        with Node() as node:
            r, d, _ = run_bench(node, "connect,hold,p2p", "-n", "50", "--procs", "2",
                                "--hold-duration", "1.5", "--heartbeat", "0.5",
                                "--p2p-rate", "40", "--p2p-duration", "1", tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(d["connections"], 50)
        h = d["hold"]
        self.assertTrue(h["ran"])
        self.assertEqual(h["drops"], 0)
        self.assertGreater(h["heartbeats_sent"], 0)
        self.assertEqual(h["heartbeats_ok"], h["heartbeats_sent"])
        p = d["p2p"]
        self.assertGreaterEqual(p["sent"], 30)
        self.assertEqual(p["accepted"], p["sent"])
        self.assertEqual(p["delivered"], p["accepted"])
        self.assertEqual((p["lost"], p["duplicated"], p["misdelivered"]), (0, 0, 0))
        self.assertEqual(d["latency_of"], "p2p")
        self.assertIsNone(d["broadcast_lost"])

    def test_failures_are_counted_by_reason(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()                                  # nothing listens there now
        with Node() as node:
            jp = os.path.join(self.tmp, "f.json")
            r = bench(["connect", "-n", "20", "--procs", "1",
                       "--ws", "ws://127.0.0.1:%d/acc" % port,
                       "--api", node.http_url(""), "--json", jp, "--settle", "0", "-q"])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(jp) as f:
                refused = json.load(f)
            # a wrong path: the upgrade is answered 404, not 101
            r, d, _ = run_bench(node, "connect", "-n", "10", "--procs", "1", tmp=self.tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = bench(["connect", "-n", "10", "--procs", "1", "--ws", node.ws_url("/nope"),
                       "--api", node.http_url(""), "--json", jp, "--settle", "0", "-q"])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(jp) as f:
                wrong_path = json.load(f)
        c = refused["connect"]
        self.assertEqual(refused["connections"], 0)
        self.assertEqual(c["failures"]["connect_error"], 20)
        self.assertEqual(c["connect_errors"], {"ECONNREFUSED": 20})
        self.assertEqual(d["connect"]["logged_in"], 10)
        c = wrong_path["connect"]
        self.assertEqual(c["failures"]["handshake_status"], 10)
        self.assertEqual(len(c["handshake_statuses"]), 1, c)
        self.assertNotIn("101", c["handshake_statuses"])

    def test_usage_errors(self):
        for args in (["nosuch"], ["connect", "--ws", "ws://10.0.0.1:80/acc"],
                     ["connect", "--api", "http://example.com:80"], ["connect", "-n", "0"]):
            r = bench(args, timeout=10)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
        r = bench(["--help"], timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("broadcast", r.stdout)


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
