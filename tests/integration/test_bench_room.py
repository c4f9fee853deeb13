#!/usr/bin/python3
"""imgate-bench room and floor-stream (bench/run.sh room at a tiny size):

- room --with-floor: 200 connections over two cluster nodes (a real
  redis-server), 10 pushes/s for 2 s through node 0's /user/sendMessageAll:
  every push reaches every connection exactly once on both nodes, the
  floor-stream beside it delivers every message of every socket once, the
  derived figures agree with the counts, exit 0;
- a room whose pushes the API refuses (nothing listens there): every
  recipient of every push counts as lost, exit 1 with the reason;
- usage errors exit 2;
- bench/room_merge.py turns the runs into room.json's keys.

The bench binary is $IMGATE_BENCH, else imgate-bench next to $IMGATE_BIN."""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ClusterCase, Node, SLOW  # noqa: E402

BENCH = os.environ.get("IMGATE_BENCH") or os.path.join(os.path.dirname(harness.BIN),
                                                        "imgate-bench")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOM_KEYS = ("connections", "pushes_per_s", "deliveries_per_s", "floor_deliveries_per_s",
             "lost", "duplicated", "latency_ms", "cpu_us_per_delivery")


def run_room(ws, api, *args, tmp, pids=(), timeout=120):
    """Runs imgate-bench room; returns (CompletedProcess, JSON or None)."""
    jp = os.path.join(tmp, "room.json")
    if os.path.exists(jp):
        os.unlink(jp)
    cmd = [BENCH, "room", "--api", api, "--json", jp, "--settle", "0.2",
           "--timeout", str(10 * SLOW), "--drain", str(10 * SLOW), "-q"]
    for w in ws:
        cmd += ["--ws", w]
    for p in pids:
        cmd += ["--pid", str(p)]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout * SLOW)
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in r.stderr, "sanitizer report:\n" + r.stderr[-8000:]
    data = None
    if os.path.exists(jp):
        with open(jp) as f:
            data = json.load(f)
    return r, data


class RoomClusterTest(ClusterCase):
    N = 2
    ARGS = ("--set", "im.presenceEventsMaxRoom=1")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench-room-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_room_and_floor_stream_exact(self):
        d = self.room_exact()
        self.assertEqual(d["client_rx_ring_procs"], 0)

    def test_room_and_floor_stream_exact_rx_ring(self):
        """--rx-ring: the clients (once logged in) and the floor-stream's
        receivers read through io_uring; every count as exact. Where the
        kernel has no receive ring the run says so and reads with epoll."""
        d = self.room_exact("--rx-ring")
        if d["client_rx_ring_procs"] == 0:
            self.assertIn("no io_uring receive ring here", self.stderr)
        else:
            self.assertEqual(d["client_rx_ring_procs"], 2)
            self.assertNotIn("no io_uring receive ring here", self.stderr)

    def room_exact(self, *extra):
        n, rate, dur = 200, 10, 2
        pushes = rate * dur
        r, d = run_room([node.ws_url() for node in self.nodes], self.nodes[0].http_url(""),
                        "--with-floor", "-n", str(n), "--procs", "2", "--room-rate", str(rate),
                        "--room-duration", str(dur), "--node-workers", "2", *extra, tmp=self.tmp,
                        pids=[node.proc.pid for node in self.nodes])
        self.stderr = r.stderr
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIsNotNone(d)
        self.assertEqual(d["failures"], [])
        self.assertIn("room", d["scenarios"])
        self.assertIn("floor-stream", d["scenarios"])
        self.assertNotIn("floor", d["scenarios"])
        room, fs = d["room"], d["floor_stream"]
        for k in ROOM_KEYS:
            self.assertIn(k, room)
        self.assertTrue(room["ran"])
        self.assertEqual(room["connections"], n)
        # bounded in time: all R x T pushes unless the API answered slower
        # than the rate (a loaded or sanitizer build); what went out counts
        sent = room["pushes"]
        self.assertLessEqual(sent, pushes)
        self.assertGreaterEqual(sent, pushes // 2 if SLOW > 1 else pushes - 2)
        self.assertEqual(room["pushes_accepted"], sent)
        self.assertEqual((room["expected"], room["delivered"]), (n * sent, n * sent))
        self.assertEqual((room["lost"], room["duplicated"]), (0, 0))
        self.assertEqual(room["latency_ms"]["count"], n * sent)
        lat = room["latency_ms"]
        self.assertLessEqual(lat["p50"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        # paced: pushes went out at about the rate, the deliveries follow it
        self.assertLessEqual(room["pushes_per_s_sent"], rate * 1.2)
        self.assertLessEqual(room["deliveries_per_s"], n * rate * 1.2)
        self.assertGreater(room["deliveries_per_s"], 0)
        # half the connections are on the node the API did not serve
        b = d["broadcast"]
        self.assertEqual(b["expected_per_message"], n)
        self.assertTrue(all(m["delivered"] == n for m in b["per_message"]))
        self.assertEqual(len(b["per_message"]), sent)
        self.assertGreaterEqual(room["cpu_us_per_delivery"], 0)
        self.assertAlmostEqual(room["cpu_us_per_delivery"],
                               room["node_cpu_s"] * 1e6 / room["delivered"], delta=1e-3)
        # the floor-stream: the same rate and count, as raw sends
        self.assertTrue(fs["complete"], fs)
        self.assertEqual((fs["sockets"], fs["accepted"], fs["connected"]), (n, n, n))
        self.assertEqual(fs["senders"], 2)
        self.assertEqual(fs["messages_per_socket"], pushes)
        self.assertEqual(fs["bytes_per_message"], room["frame_bytes"])
        self.assertEqual(fs["expected"] % (n // 2), 0)       # whole ticks to every socket
        self.assertLessEqual(fs["expected"], n * pushes)
        self.assertGreater(fs["expected"], 0)
        self.assertEqual(fs["delivered"], fs["expected"])
        self.assertEqual((fs["lost"], fs["duplicated"]), (0, 0))
        self.assertEqual(fs["latency_ms"]["count"], fs["delivered"])
        self.assertEqual(room["floor_deliveries_per_s"], fs["deliveries_per_s"])
        self.assertLessEqual(fs["deliveries_per_s"], n * rate * 1.2)
        # room_merge.py: the keys of bench/results/room.json
        out = os.path.join(self.tmp, "merged.json")
        m = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "room_merge.py"),
                            "--out", out, "--nodes", "2", "--node-workers", "1",
                            "--load", "0.1 0.2 0.3", os.path.join(self.tmp, "room.json")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(m.returncode, 0, m.stderr)
        with open(out) as f:
            merged = json.load(f)
        for k in ROOM_KEYS:
            self.assertIn(k, merged)
        self.assertEqual(merged["connections"], n)
        self.assertEqual(len(merged["runs"]), 1)
        self.assertEqual(set(merged["latency_ms"]), {"p50", "p99", "p999", "max"})
        self.assertEqual(merged["client_rx_ring_procs"], d["client_rx_ring_procs"])
        return d


class RoomFailuresTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench-room-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_refused_pushes_fail_the_run(self):
        """Nothing listens at the API: every push is lost to every
        connection, and the run exits 1 saying so."""
        port = harness.free_port()
        n, rate, dur = 30, 5, 1
        with Node() as node:
            r, d = run_room([node.ws_url()], "http://127.0.0.1:%d" % port, "-n", str(n),
                            "--procs", "1", "--room-rate", str(rate), "--room-duration",
                            str(dur), tmp=self.tmp, pids=[node.proc.pid])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        pushes = math.ceil(rate * dur)
        self.assertIn("%d broadcast deliveries lost" % (n * pushes), r.stderr)
        room = d["room"]
        self.assertEqual((room["pushes"], room["pushes_accepted"]), (pushes, 0))
        self.assertEqual((room["expected"], room["delivered"], room["lost"]),
                         (n * pushes, 0, n * pushes))

    def test_usage_errors(self):
        for args in (["room", "--room-rate", "0"], ["room", "--room-duration", "0"],
                     ["room,broadcast"], ["room,p2p"],
                     ["room", "--room-rate", "10000", "--room-duration", "3600"]):
            r = subprocess.run([BENCH] + args, capture_output=True, text=True,
                               timeout=10 * SLOW)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
        r = subprocess.run([BENCH, "--help"], capture_output=True, text=True, timeout=10)
        self.assertIn("floor-stream", r.stdout)


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
