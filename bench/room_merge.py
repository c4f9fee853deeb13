#!/usr/bin/env python3
"""bench/room_merge.py — one bench/results/room.json from bench/room.sh's
imgate-bench runs (one per rate R, each `room --with-floor`).

    room_merge.py --out room.json [--nodes K --node-workers W --load "a b c"
                  --built-from COMMIT] RUN.json...

Each run becomes an entry of "runs" with the keys the benchmark page reads
(connections, pushes_per_s, deliveries_per_s, floor_deliveries_per_s, lost,
duplicated, latency_ms {p50,p99,p999}, cpu_us_per_delivery) and a few more;
the run with the largest R is repeated as the top-level keys.
"""
import argparse
import json
import sys


def lat(h):
    return {k: h.get(k) for k in ("p50", "p99", "p999", "max")}


def entry(path):
    with open(path) as f:
        d = json.load(f)
    r, fs = d["room"], d["floor_stream"]
    return {
        "connections": r["connections"],
        "pushes_per_s": r["pushes_per_s"],
        "pushes_per_s_sent": r["pushes_per_s_sent"],
        "duration_s": r["duration_s"],
        "pushes": r["pushes"],
        "expected": r["expected"],
        "delivered": r["delivered"],
        "deliveries_per_s": r["deliveries_per_s"],
        "floor_deliveries_per_s": r["floor_deliveries_per_s"],
        "lost": r["lost"],
        "duplicated": r["duplicated"],
        "latency_ms": lat(r["latency_ms"]),
        "cpu_us_per_delivery": r["cpu_us_per_delivery"],
        "client_cpu_us_per_delivery": r["client_cpu_us_per_delivery"],
        "frame_bytes": r["frame_bytes"],
        "client_rx_ring_procs": d.get("client_rx_ring_procs", 0),
        "floor": {
            "sockets": fs["sockets"],
            "senders": fs["senders"],
            "messages_per_socket": fs["messages_per_socket"],
            "expected": fs["expected"],
            "delivered": fs["delivered"],
            "lost": fs["lost"],
            "duplicated": fs["duplicated"],
            "latency_ms": lat(fs["latency_ms"]),
            "cpu_us_per_delivery": fs["sender_cpu_us_per_delivery"],
            "client_cpu_us_per_delivery": fs["receiver_cpu_us_per_delivery"],
        },
        "failures": d.get("failures", []),
        "machine": d.get("machine"),
    }


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--node-workers", type=int)
    ap.add_argument("--load")
    ap.add_argument("--built-from", help="the commit the measured nodes were built from")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args(argv)
    runs = []
    for p in a.runs:
        try:
            runs.append(entry(p))
        except (OSError, ValueError, KeyError) as e:
            print(f"room_merge: {p}: {e}", file=sys.stderr)
            return 1
    runs.sort(key=lambda e: e["pushes_per_s"])
    out = {"scenario": "room", "mode": "cluster"}
    out.update({k: v for k, v in runs[-1].items() if k not in ("machine", "failures")})
    out["nodes"] = a.nodes
    out["node_workers"] = a.node_workers
    out["load_average_start"] = a.load
    out["built_from"] = a.built_from
    out["machine"] = runs[-1]["machine"]
    out["runs"] = [{k: v for k, v in e.items() if k != "machine"} for e in runs]
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
