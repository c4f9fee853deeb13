#!/usr/bin/python3
"""bench/tables.py — the number tables of the docs, generated from the
committed benchmark results (bench/results/*.json, c1m.txt).

Every figure of a benchmark in README.md, docs/benchmarks.md and
bench/README.md sits between

    <!-- generated: NAME -->
    ...
    <!-- end generated -->

and is written here from a file under bench/results/. Nothing measured is
typed by hand: change a result, run `bench/tables.py` (rewrites the blocks),
commit both. `bench/tables.py --check` (the ctest entry docs.tables, in
`make test`) fails when a block differs from what the files give, or when a
block names a table this script does not know.

Figures quoted from elsewhere (the seed articles' own measurements) are in
SEED below, each with where it comes from; they are not results of ours.
"""

import difflib
import json
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
DOCS = ["README.md", "docs/benchmarks.md", "bench/README.md"]
BLOCK = re.compile(r"(<!-- generated: ([a-z0-9-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)

# Quoted, not measured here. C1000K article (seed 001): AWS C3.4xlarge, 16 cores,
# 32 GB, 1.2 M connections, one message to everyone per minute. goWebSocket
# (seed 000): its README's own per-connection figure.
SEED = {
    "netty": {"mem": "15.2 GB ≈ 13 KB/conn (JVM, 12 GB heap)", "send": "13.9 s", "per": "11.6 µs of server time",
              "lat": "mean 633 ms, sd 9.6, p99 670, max 735 (one client process, 60,000 connections)", "err": "0"},
    "undertow": {"mem": "18.2 GB ≈ 16 KB/conn", "send": "15.6 s", "per": "13.0 µs", "lat": "mean 672 ms, sd 5.9, max 781",
                 "err": "0"},
    "spray": {"mem": "22.1 GB ≈ 19 KB/conn", "send": "≈ 8 s", "per": "6.7 µs", "lat": "—", "err": "—"},
    "go_per_conn": "~24 KB",
}


# ---- formatting ----

def n(x):
    """An integer with thousands separators."""
    return "{:,}".format(int(round(x)))


def ms(x):
    """Milliseconds, with precision that suits the size."""
    if x >= 1000:
        return "{:,} ms".format(int(round(x)))
    if x >= 100:
        return "%.1f ms" % x
    return "%.2f ms" % x


def kern(x, fmt="%s B"):
    """A kernel-memory reading: the slab can shrink during a run (other
    work freeing memory), and then the growth says nothing."""
    return fmt % n(x) if x > 0 else "not measured in this run (the kernel's slab shrank meanwhile)"


def ratio(x):
    return "%.2f ×" % x


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f) if name.endswith(".json") else f.read()


def need(name):
    data = load(name)
    if data is None:
        raise SystemExit("tables: bench/results/%s is missing" % name)
    return data


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


# ---- what a result file says ----

def floor_stats(r):
    """(median, best, trials, frame bytes, senders) of the raw-TCP floor.
    Older files have no median key: it is the median of their trials."""
    f = r["floor"]
    trials = f.get("trials_last_delivery_ms") or [f["last_delivery_ms"]]
    med = r.get("broadcast_floor_ms_median", statistics.median(trials))
    best = r.get("broadcast_floor_ms_best", min(trials))
    return med, best, trials, f.get("bytes_per_socket"), f.get("senders")


def bcast_stats(r):
    b = r["broadcast"]
    per = [m["last_delivery_ms"] for m in b.get("per_message", []) if m.get("accepted")]
    best = min(per) if per else b["last_delivery_ms_median"]
    return b["last_delivery_ms_median"], best, b


def frame_bytes(r):
    return r.get("broadcast_frame_bytes")


def floor_note(r):
    """How the floor of this run was sent, in words (like-for-like or not)."""
    _, _, trials, fbytes, senders = floor_stats(r)
    workers = r["config"].get("node_workers")
    frame = frame_bytes(r)
    like = frame is not None and fbytes == frame
    what = "%d-byte sends from %d sending processes, %d trials" % (fbytes, senders, len(trials))
    if like:
        what += " (the push frame's size"
        what += ", one sender per node worker thread)" if workers == senders else ")"
    else:
        what += " (an older run: not the push frame's size)"
    return what


def ratios(r):
    fmed, fbest, _, _, _ = floor_stats(r)
    bmed, bbest, _ = bcast_stats(r)
    return bmed / fmed, bbest / fbest


def lat(l, keys=("p50", "p99", "p999")):
    return " / ".join(ms(l[k]) for k in keys)


# ---- the blocks ----

def readme_headline():
    q = need("quick.json")
    return ("about **%s B of user-space memory per idle logged-in connection** (`bench/run.sh quick`, "
            "10,000 connections), where the Go original says it needs %s per connection "
            "(see [docs/benchmarks.md](docs/benchmarks.md)).\n" % (n(q["server_rss_bytes_per_conn"]), SEED["go_per_conn"]))


def readme_numbers():
    """A few headline figures for the README, beside the memory one."""
    q = need("quick.json")
    bmed, _, b = bcast_stats(q)
    rmed, _ = ratios(q)
    p, c = q["p2p"], q["connect"]
    cross = need("cluster_latency.json")["paths"]["cross"]["delivery_ms"]
    return ("- a room push to %s connections reaches the last one in **%s** (median), %s the time of raw TCP "
            "sends of the same bytes; %s lost\n"
            "- a push to one user (`/user/sendMessage`, %s/s): p50 %s, p99 %s; in a cluster of two nodes, to a "
            "user on the other node (`bench/cluster_latency.py`): p50 %s, p99 %s\n"
            "- connect + login at %s/s (%s/s asked), %s failed; all on one 2-core machine, node and load "
            "generator together\n"
            % (n(b["expected_per_message"]), ms(bmed), ratio(rmed), n(b["lost"]), n(p["target_rate_per_s"]), ms(p["latency_ms"]["p50"]),
               ms(p["latency_ms"]["p99"]), ms(cross["p50"]), ms(cross["p99"]), n(c["rate_per_s"]),
               n(c["target_rate_per_s"]), n(c["failed"])))


def benchmarks_quick():
    q = need("quick.json")
    bmed, _, b = bcast_stats(q)
    fmed, _, _, _, _ = floor_stats(q)
    rmed, rbest = ratios(q)
    p, c = q["p2p"], q["connect"]
    rows = [
        ["user-space memory per idle logged-in connection (node RSS growth ÷ connections, %s connections, "
         "after warm-up)" % n(q["connections"]),
         "**%s B** (the Go original, by its own account: %s)" % (n(q["server_rss_bytes_per_conn"]), SEED["go_per_conn"])],
        ["kernel memory per connection (the server's socket)", kern(q["kernel_bytes_per_conn"], "%s B (not ours to change)")],
        ["room broadcast to %s connections, time to last delivery" % n(b["expected_per_message"]),
         "**%s** (median of %d); raw-TCP floor in the same run %s (median) → **%s** median to median "
         "(best to best %s)" % (ms(bmed), b["messages_accepted"], ms(fmed), ratio(rmed), ratio(rbest))],
        ["delivered", "%s / %s, %s lost, %s duplicated" % (n(b["delivered"]), n(b["expected"]), n(b["lost"]),
                                                          n(b["duplicated"]))],
        ["per-delivery latency of those broadcasts (p50 / p99 / p99.9)", lat(b["latency_ms"])],
        ["push to one user (`/user/sendMessage`, %s/s)" % n(p["target_rate_per_s"]),
         "p50 %s, p99 %s; %s / %s delivered, %s lost" % (ms(p["latency_ms"]["p50"]), ms(p["latency_ms"]["p99"]),
                                                       n(p["delivered"]), n(p["accepted"]), n(p["lost"]))],
        ["connect + login", "%s/s (%s/s asked), %s failed" % (n(c["rate_per_s"]), n(c["target_rate_per_s"]),
                                                             n(c["failed"]))],
    ]
    return table(["what", "result"], rows) + "\nFloor: %s.\n" % floor_note(q)


def benchmarks_cluster_latency():
    d = need("cluster_latency.json")["paths"]
    rows = []
    for key, label in (("same", "same node"), ("cross", "cross node (Redis lookup + gRPC `SendMsg`)")):
        x = d[key]
        rows.append([label, ms(x["delivery_ms"]["p50"]), ms(x["delivery_ms"]["p99"]), ms(x["api_ms"]["p50"]),
                     ms(x["api_ms"]["p99"]), "%s / %s" % (n(x["lost"]), n(x["duplicated"]))])
    return table(["path", "delivery p50", "delivery p99", "API answer p50", "API answer p99", "lost / dup"], rows)


def bench_quick():
    q = need("quick.json")
    bmed, bbest, b = bcast_stats(q)
    fmed, fbest, trials, _, _ = floor_stats(q)
    rmed, rbest = ratios(q)
    c, h, p = q["connect"], q["hold"], q["p2p"]
    l = b["latency_ms"]
    per_recipient = bmed * 1000 / b["expected_per_message"]
    rows = [
        ["connections logged in", "**%s** / %s (%s failed, %s dropped in the whole run)" % (
            n(q["connections"]), n(q["connections_target"]), n(c["failed"]), n(h["drops_whole_run"]))],
        ["server memory per connection (node RSS growth ÷ connections, after warm-up)",
         "**%s B**" % n(q["server_rss_bytes_per_conn"])],
        ["kernel memory per connection (Slab + TCP pages, the server's end)",
         kern(q["kernel_bytes_per_conn"], "**%s B**") + (" (%s B for both ends)" % n(q["kernel_bytes_per_conn_both_ends"])
                                                         if q["kernel_bytes_per_conn"] > 0 else "")],
        ["the tool's memory per connection", "%s B (the struct: %s B)" % (
            n(q["client_rss_bytes_per_conn"]), n(q["client_conn_struct_bytes"]))],
        ["connect rate (asked: %s/s)" % n(c["target_rate_per_s"]), "**%s/s**; handshake p50 %s, p99 %s" % (
            n(c["rate_per_s"]), ms(c["handshake_ms"]["p50"]), ms(c["handshake_ms"]["p99"]))],
        ["hold %d s, heartbeat every %d s" % (round(h["duration_s"]), h["heartbeat_s"]),
         "%s drops; %s / %s heartbeats answered" % (n(h["drops"]), n(h["heartbeats_ok"]), n(h["heartbeats_sent"]))],
        ["broadcast, %d messages × %s" % (b["messages_sent"], n(b["expected_per_message"])),
         "**%s / %s** delivered, **%s lost, %s duplicated**" % (n(b["delivered"]), n(b["expected"]), n(b["lost"]),
                                                                n(b["duplicated"]))],
        ["broadcast frame", "%s bytes on the wire per recipient" % (n(frame_bytes(q)) if frame_bytes(q) else "—")],
        ["broadcast, time to last delivery", "**median %s**, best %s, max %s (%.1f µs per recipient)" % (
            ms(bmed), ms(bbest), ms(b["last_delivery_ms_max"]), per_recipient)],
        ["floor: raw TCP, one send to each of %s sockets" % n(q["floor"]["sockets"]),
         "**median %s**, best %s (trials: %s)" % (ms(fmed), ms(fbest), ", ".join(ms(t) for t in trials))],
        ["broadcast ÷ floor", "**%s** median to median; %s best to best" % (ratio(rmed), ratio(rbest))],
        ["broadcast latency of every delivery", "p50 **%s**, p95 %s, p99 **%s**, p99.9 **%s**, max %s "
         "(mean %s, sd %s)" % (ms(l["p50"]), ms(l["p95"]), ms(l["p99"]), ms(l["p999"]), ms(l["max"]),
                               ms(l["mean"]), ms(l["stddev"]))],
        ["p2p, %s/s for %d s" % (n(p["target_rate_per_s"]), round(p["duration_s"])),
         "%s / %s delivered, %s lost, %s duplicated; p50 %s, p99 %s, p99.9 %s" % (
             n(p["delivered"]), n(p["accepted"]), n(p["lost"]), n(p["duplicated"]), ms(p["latency_ms"]["p50"]),
             ms(p["latency_ms"]["p99"]), ms(p["latency_ms"]["p999"]))],
    ]
    return table(["measure", "value"], rows) + "\nFloor: %s.\n" % floor_note(q)


def bench_seed_quick():
    q = need("quick.json")
    bmed, _, b = bcast_stats(q)
    fmed, _, _, _, _ = floor_stats(q)
    l = b["latency_ms"]
    ours_mem = ("server %s B + kernel %s B ≈ %.1f KB/conn" % (
        n(q["server_rss_bytes_per_conn"]), n(q["kernel_bytes_per_conn"]),
        (q["server_rss_bytes_per_conn"] + q["kernel_bytes_per_conn"]) / 1000)
        if q["kernel_bytes_per_conn"] > 0 else
        "server %s B (kernel not measured in this run)" % n(q["server_rss_bytes_per_conn"]))
    per = "%.1f µs of the whole machine, clients included (floor %.1f µs)" % (
        bmed * 2000 / b["expected_per_message"], fmed * 2000 / b["expected_per_message"])
    rows = [
        ["connections", "1.2 M", "1.2 M", "1.2 M", n(q["connections"])],
        ["memory with the connections", SEED["netty"]["mem"], SEED["undertow"]["mem"], SEED["spray"]["mem"], ours_mem],
        ["one message to everyone", SEED["netty"]["send"], SEED["undertow"]["send"], SEED["spray"]["send"],
         "%s to the last recipient (median of %d); floor %s" % (ms(bmed), b["messages_accepted"], ms(fmed))],
        ["per recipient", SEED["netty"]["per"], SEED["undertow"]["per"], SEED["spray"]["per"], per],
        ["client-side latency", SEED["netty"]["lat"], SEED["undertow"]["lat"], SEED["spray"]["lat"],
         "mean %s, sd %s, p50 %s, p99 %s, p99.9 %s, max %s" % (ms(l["mean"]), ms(l["stddev"]), ms(l["p50"]),
                                                              ms(l["p99"]), ms(l["p999"]), ms(l["max"]))],
        ["errors / losses", SEED["netty"]["err"], SEED["undertow"]["err"], SEED["spray"]["err"],
         "%s lost, %s duplicated (checked per connection)" % (n(b["lost"]), n(b["duplicated"]))],
    ]
    return table(["", "seed: Netty", "seed: Undertow", "seed: Spray", "imgate, `quick`"], rows)


def c1m_settings():
    txt = need("c1m.txt")
    rows = [m.groups() for m in re.finditer(r"^  ([a-z0-9_.-]+) = (.+)$", txt, re.M)]
    return table(["setting", "value during the run"], [["`%s`" % k, v] for k, v in rows])


def c1m_results():
    r = need("c1m.json")
    txt = need("c1m.txt")
    bmed, _, b = bcast_stats(r)
    fmed, fbest, trials, _, _ = floor_stats(r)
    rmed, rbest = ratios(r)
    c, h, l = r["connect"], r["hold"], b["latency_ms"]
    redis = re.search(r"redis used_memory: .*?, (\d+) B per connection", txt)
    per_msg = " · ".join(ms(m["last_delivery_ms"]) for m in b["per_message"]) if b.get("per_message") else "—"
    rows = [
        ["connections logged in", n(r["connections_target"]), "**%s** / %s — %s failed, %s dropped in the whole run" % (
            n(r["connections"]), n(r["connections_target"]), n(c["failed"]), n(h["drops_whole_run"]))],
        ["node memory per idle logged-in connection (all nodes' RSS growth ÷ connections)", "≤ 512 B",
         "**%s B**" % n(r["server_rss_bytes_per_conn"])],
        ["kernel memory per connection (Slab + TCP pages), server end", "—", "**%s B** (%s B for both ends)" % (
            n(r["kernel_bytes_per_conn"]), n(r["kernel_bytes_per_conn_both_ends"]))],
        ["Redis memory per connection (`used_memory`)", "—", "%s B" % redis.group(1) if redis else "—"],
        ["everything on the host (MemTotal − MemAvailable growth ÷ connections)", "—",
         "%s B" % n(r["host_bytes_per_conn"])],
        ["connect + login rate, whole machine", "≥ 20,000/s", "**%s/s**; handshake p50 %s, p99 %s" % (
            n(c["rate_per_s"]), ms(c["handshake_ms"]["p50"]), ms(c["handshake_ms"]["p99"]))],
    ] + c1m_login_floors(r) + [
        ["hold %d s" % round(h["duration_s"]), "0 drops", "**%s drops**; %s heartbeats sent, %s answered" % (
            n(h["drops"]), n(h["heartbeats_sent"]), n(h["heartbeats_ok"]))],
        ["broadcast, %d messages × %s" % (b["messages_sent"], n(b["expected_per_message"])), "0 lost, 0 dup",
         "**%s / %s** delivered, **%s lost, %s duplicated**" % (n(b["delivered"]), n(b["expected"]), n(b["lost"]),
                                                                n(b["duplicated"]))],
        ["broadcast, time to last delivery", "≤ 1.25 × floor", "**median %s** (each: %s)" % (ms(bmed), per_msg)],
        ["floor (%s)" % floor_note(r), "—", "**median %s**, best %s (trials: %s)" % (
            ms(fmed), ms(fbest), " · ".join(ms(t) for t in trials))],
        ["broadcast ÷ floor", "≤ 1.25 ×", "**%s** median to median; %s best to best" % (ratio(rmed), ratio(rbest))],
        ["latency of every delivery (%s)" % n(l["count"]), "—", "p50 %s, p99 %s, p99.9 %s, max %s" % (
            ms(l["p50"]), ms(l["p99"]), ms(l["p999"]), ms(l["max"]))],
        ["whole run", "≤ 20 min", "%s s in `imgate-bench`" % n(r["duration_s"])],
    ]
    return table(["measure", "target", "result"], rows)


def c1m_login_floors(r):
    """Rows for the two connect floors of the same run, where they were run:
    the raw handshake (`c1m-hsfloor.json`) and the handshake with a login's
    Redis work (`c1m-hsredis.json`); imgate's time over each."""
    rows = []
    ours = r["connect"]["rate_per_s"]
    for name, what, target in (
            ("c1m-hsfloor.json", "raw-handshake floor, same processes (upgrade + login reply only)", "≤ 1.3 ×"),
            ("c1m-hsredis.json", "handshake floor with a login's Redis work (the node's five commands)", "—")):
        f = load(name)
        if f is None or not ours:
            continue
        rate = f["connect"]["rate_per_s"]
        rows.append([what, target, "%s/s; imgate takes **%s** its time" % (n(rate), ratio(rate / ours))])
    return rows


def c1m_sizes():
    named = [(name, load(name)) for name in ("c1m-n20000.json", "c1m-n100000.json", "c1m.json")]
    runs = [r for _, r in named if r is not None]
    head = [""] + ["N = %s (`%s`)" % (n(r["connections_target"]), name) for name, r in named if r is not None]
    rows = [
        ["logged in / failed / dropped"] + ["%s / %s / %s" % (n(r["connections"]), n(r["connect"]["failed"]),
                                                              n(r["hold"]["drops_whole_run"])) for r in runs],
        ["node memory per connection"] + ["%s B" % n(r["server_rss_bytes_per_conn"]) for r in runs],
        ["kernel per connection (server end)"] + ["%s B" % n(r["kernel_bytes_per_conn"]) for r in runs],
        ["connect rate"] + ["%s/s" % n(r["connect"]["rate_per_s"]) for r in runs],
        ["broadcast last delivery (median)"] + [ms(bcast_stats(r)[0]) for r in runs],
        ["floor (median)"] + [ms(floor_stats(r)[0]) for r in runs],
        ["ratio, median to median"] + ["**%s**" % ratio(ratios(r)[0]) for r in runs],
        ["broadcast latency p50 / p99 / p99.9"] + [lat(r["broadcast"]["latency_ms"]) for r in runs],
        ["lost / duplicated"] + ["%s / %s" % (n(r["broadcast"]["lost"]), n(r["broadcast"]["duplicated"]))
                                 for r in runs],
    ]
    return table(head, rows)


def c1m_profile():
    txt = need("c1m.txt")
    part = txt.split("top symbols (self):", 1)
    if len(part) < 2:
        return "No profile in bench/results/c1m.txt (the run was made without `PERF=1`).\n"
    syms = re.findall(r"^\s+([\d.]+)%\s+\[[k.]\]\s+(\S+)$", part[1], re.M)[:12]
    objs = re.findall(r"^\s+([\d.]+)%\s+(\S+)\s+(\S+)\s*$", part[1].split("by command and object:", 1)[-1], re.M)[:8]
    return (table(["self", "symbol"], [["%s %%" % p, "`%s`" % s] for p, s in syms]) + "\n" +
            table(["share", "process", "object"], [["%s %%" % p, c, "`%s`" % o] for p, c, o in objs]))


def c1m_seed():
    r = need("c1m.json")
    bmed, _, b = bcast_stats(r)
    fmed, _, _, _, _ = floor_stats(r)
    l = b["latency_ms"]
    rows = [
        ["connections", "1.2 M", "1.2 M", "1.2 M", "%s logged in" % n(r["connections"])],
        ["memory per connection", SEED["netty"]["mem"], SEED["undertow"]["mem"], SEED["spray"]["mem"],
         "%s B node + %s B kernel; %s B for the whole host, clients included" % (
             n(r["server_rss_bytes_per_conn"]), n(r["kernel_bytes_per_conn"]), n(r["host_bytes_per_conn"]))],
        ["one message to everyone", SEED["netty"]["send"], SEED["undertow"]["send"], SEED["spray"]["send"],
         "%s to the last of %s (median of %d; floor %s)" % (ms(bmed), n(b["expected_per_message"]),
                                                           b["messages_accepted"], ms(fmed))],
        ["per recipient", SEED["netty"]["per"], SEED["undertow"]["per"], SEED["spray"]["per"],
         "%.1f µs of the whole machine, clients, Redis and all nodes included (floor %.1f µs)" % (
             bmed * 2000 / b["expected_per_message"], fmed * 2000 / b["expected_per_message"])],
        ["client-side latency", SEED["netty"]["lat"], SEED["undertow"]["lat"], SEED["spray"]["lat"],
         "every delivery: mean %s, p50 %s, p99 %s, p99.9 %s, max %s" % (
             ms(l["mean"]), ms(l["p50"]), ms(l["p99"]), ms(l["p999"]), ms(l["max"]))],
        ["errors / losses", SEED["netty"]["err"], SEED["undertow"]["err"], SEED["spray"]["err"],
         "%s failed, %s dropped, %s lost, %s duplicated" % (n(r["connect"]["failed"]), n(r["hold"]["drops_whole_run"]),
                                                           n(b["lost"]), n(b["duplicated"]))],
    ]
    return table(["", "seed: Netty", "seed: Undertow", "seed: Spray", "imgate, `c1m`"], rows)


def pass_helpers(off, on):
    """For a table of two passes of one run: both(f) (a cell each), rel(key)
    (on ÷ off), and the rows every such table ends with."""
    def both(f):
        return [f(off), f(on)]

    def rel(key):
        return ratio(on[key] / off[key]) if off.get(key) else ""

    tail = [
        ["node CPU in the broadcast phase (user + system)"]
        + both(lambda p: "%.2f s (%.2f µs per delivery)" % (p["node_cpu_s"], p["node_cpu_us_per_delivery"]))
        + [rel("node_cpu_s")],
        ["latency of every delivery, p50 / p99"]
        + both(lambda p: "%s / %s" % (ms(p["latency_ms"]["p50"]), ms(p["latency_ms"]["p99"]))) + [""],
        ["delivered / lost / duplicated"]
        + both(lambda p: "%s / %s / %s" % (n(p["delivered"]), n(p["lost"]), n(p["duplicated"]))) + [""],
    ]
    return both, rel, tail


def last_delivery(p):
    return "%s (best %s, max %s)" % (ms(p["last_delivery_ms_median"]), ms(p["last_delivery_ms_best"]),
                                    ms(p["last_delivery_ms_max"]))


def bench_deflate():
    """--deflate: the same broadcast without and with permessage-deflate."""
    r = need("deflate.json")
    d, c = r["deflate"], r["config"]
    off, on = d["off"], d["on"]
    both, rel, tail = pass_helpers(off, on)
    rows = [
        ["connections logged in (each pass on a fresh node)"] + both(lambda p: n(p["connections"])) + [""],
        ["memory per idle logged-in connection (node RSS growth ÷ connections)"]
        + both(lambda p: "**%s B**" % n(p["server_rss_bytes_per_conn"])) + [rel("server_rss_bytes_per_conn")],
        ["push frame on the wire"] + both(lambda p: "**%s B**" % n(p["frame_bytes"])) + [rel("frame_bytes")],
        ["pushes that arrived compressed"] + both(lambda p: n(p["compressed_pushes"])) + [""],
        ["bytes the clients read in the broadcast phase (pushes, heartbeat replies)"]
        + both(lambda p: "%.1f MB (%.0f B per delivery)" % (p["broadcast_rx_bytes"] / 1e6,
                                                            p["broadcast_rx_bytes_per_delivery"]))
        + [rel("broadcast_rx_bytes")],
        ["time to last delivery, median of %d" % c["rounds"]] + both(last_delivery)
        + [rel("last_delivery_ms_median")],
    ] + tail
    note = ("%s connections per pass; %d broadcasts %g s apart, each message padded with %d bytes of "
            "prose (%s-byte frame plain); %d node worker threads; nodes and clients share the "
            "machine's %d cores.\n" % (n(c["conns"]), c["rounds"], c["interval_s"], c["pad"],
                                       n(off["frame_bytes"]), c["node_workers"], r["machine"]["cpus"]))
    return table(["", "permessage-deflate off", "on", "on ÷ off"], rows) + "\n" + note


def bench_history():
    """--second-* --interleave: the same broadcast from a node with delivery
    logging off and one with it on, against one raw-TCP floor."""
    r = need("history.json")
    d, c = r["passes"], r["config"]
    off, on, vs = d["first"], d["second"], d["second_vs_first"]
    both, rel, tail = pass_helpers(off, on)
    rows = [
        ["connections logged in (each node fresh)"] + both(lambda p: n(p["connections"])) + [""],
        ["memory per idle logged-in connection (node RSS growth ÷ connections; target ≤ 512 B)"]
        + both(lambda p: "**%s B**" % n(p["server_rss_bytes_per_conn"])) + [rel("server_rss_bytes_per_conn")],
        ["push frame on the wire"] + both(lambda p: "%s B" % n(p["frame_bytes"])) + [rel("frame_bytes")],
        ["time to last delivery, median of %d" % c["rounds"]] + both(last_delivery)
        + [rel("last_delivery_ms_median")],
        ["raw-TCP floor, median of %d trials (one floor for both: %s-byte sends)"
         % (len(r["floor"]["trials_last_delivery_ms"]), n(d["floor_frame_bytes"]))]
        + [ms(d["floor_ms_median"])] * 2 + [""],
        ["broadcast ÷ floor, median to median (target: moves ≤ 5 %)"]
        + both(lambda p: "**%.3f ×**" % p["broadcast_ratio_median"])
        + ["**%+.1f %%**" % (100 * vs["broadcast_ratio_median_change"])],
        ["broadcast ÷ floor, best to best"] + both(lambda p: "%.3f ×" % p["broadcast_ratio_best"])
        + ["%+.1f %%" % (100 * (vs["broadcast_ratio_best"] - 1))],
    ] + tail
    how = ("at once: %d broadcasts per node %g s apart, the two nodes' rounds alternating %g s apart "
           "(who goes first swaps every round)" % (c["rounds"], c["interval_s"], c["interval_s"] / 2)
           if d["interleaved"] else
           "one pass after the other: %d broadcasts per node %g s apart" % (c["rounds"], c["interval_s"]))
    note = ("%s connections per node, %s; the floor after both, %d sending processes; %d node worker "
            "threads each; nodes and clients share the machine's %d cores.\n"
            % (n(c["conns"]), how, r["floor"]["senders"], c["node_workers"], r["machine"]["cpus"]))
    return table(["", "delivery off", "delivery on", "on vs off"], rows) + "\n" + note


def bench_uws():
    """bench/run.sh uws: imgate --workers 1 beside uWebSockets.js on its one
    thread, broadcasts interleaved (uws.json), and with 2 workers when
    committed (uws-w2.json)."""
    rows = []
    for name in ("uws.json", "uws-w2.json"):
        r = load(name)
        if not r:
            continue
        d, c = r["passes"], r["config"]
        a, b, vs = d["first"], d["second"], d["second_vs_first"]
        rows.append([
            "imgate --workers %d" % c["node_workers"],
            "**%s**" % last_delivery(a), last_delivery(b),
            "**%.3f ×**" % (a["last_delivery_ms_median"] / b["last_delivery_ms_median"]),
            "%.3f ×" % (a["last_delivery_ms_best"] / b["last_delivery_ms_best"]),
            "%s / %s" % (us(a["node_cpu_us_per_delivery"]), us(b["node_cpu_us_per_delivery"])),
            "%s / %s" % (n(a["server_rss_bytes_per_conn"]), n(b["server_rss_bytes_per_conn"])),
            "%s / %s" % (n(a["lost"] + a["duplicated"]), n(b["lost"] + b["duplicated"])),
        ])
    r = need("uws.json")
    c = r["config"]
    note = ("%s connections per server, both holding theirs at once; %d broadcasts per server %g s apart, "
            "the two servers' rounds alternating %g s apart (one broadcast at a time); the same %s-byte frame "
            "(imgate with delivery logging off); uWebSockets.js is npm `uwebsockets` 3.0.6 run by Node.js as "
            "an unprivileged user, its `app.publish` to one topic per room; servers and clients share the "
            "machine's %d cores.\n"
            % (n(c["conns"]), c["rounds"], c["interval_s"], c["interval_s"] / 2,
               n(r["passes"]["first"]["frame_bytes"]), r["machine"]["cpus"]))
    return table(["", "imgate: time to last delivery, median (best, max)", "uWebSockets.js: the same",
                  "imgate ÷ uWS, median (target ≤ 0.85)", "÷, best", "CPU per delivery: imgate / uWS",
                  "bytes per idle connection: imgate / uWS", "lost + duplicated: imgate / uWS"],
                 rows) + "\n" + note


def us(x):
    return "%.1f µs" % x


def built_from(c):
    """The measured binary's source, as the delivery benchmarks record it."""
    src = c.get("source") or {}
    if src.get("built_from"):
        return "; the node built from commit %s" % src["built_from"]
    if src.get("head"):
        return "; the node built from commit %s%s" % (src["head"], " with src/ modified" if src.get("src_modified")
                                                      else "")
    return ""


def bench_delivery_p2p():
    """bench/delivery_p2p.py: /user/sendMessage with delivery logging off and
    on, embedded and cluster, four fresh nodes, interleaved rounds."""
    r = need("delivery_p2p.json")
    s, v, c, m = r["summary"], r["on_vs_off"], r["config"], r["machine"]
    names = ["embedded_off", "embedded_on", "cluster_off", "cluster_on"]

    def row(label, f):
        return [label] + [f(s[k]) for k in names]

    def lohi(x):
        return "**%s** (%s–%s)" % (n(x["sends_per_s_median"]), n(x["sends_per_s_min"]), n(x["sends_per_s_max"]))

    def redis_cmds(x):
        cmds = x.get("redis_commands")
        if not cmds:
            return "—"
        top = [(k, d) for k, d in cmds.items() if d["calls_per_send"] >= 0.5][:3]
        return ", ".join("%s %.1f × %.1f µs" % (k.upper(), d["calls_per_send"], d["usec_per_call"]) for k, d in top)

    rows = [
        row("answered sends/s, median of %d rounds (slowest–fastest)" % c["rounds"], lohi),
        ["on ÷ off throughput, median to median (goal: ≥ 0.75)", "", "**%.2f ×** (paired rounds: %.2f ×)" % (
            v["embedded"]["throughput_ratio"], v["embedded"]["throughput_ratio_paired_median"]), "",
         "**%.2f ×** (paired rounds: %.2f ×)" % (v["cluster"]["throughput_ratio"],
                                                 v["cluster"]["throughput_ratio_paired_median"])],
        row("API answer latency p50 / p99 (medians over the rounds)",
            lambda x: "%s / %s" % (ms(x["api_ms_p50_median"]), ms(x["api_ms_p99_median"]))),
        row("push latency p50 / p99 (request written → push read)",
            lambda x: "%s / %s" % (ms(x["push_ms_p50_median"]), ms(x["push_ms_p99_median"]))),
        row("node CPU per send (user + system)", lambda x: us(x["node_cpu_us_per_send_median"])),
        row("Redis CPU per send", lambda x: us(x["redis_cpu_us_per_send_median"])
            if x["redis_cpu_us_per_send_median"] is not None else "—"),
        row("Redis commands per send × time per call (`INFO commandstats`)", redis_cmds),
        row("load generator CPU per send", lambda x: us(x["client_cpu_us_per_send_median"])),
        row("all three per send (node + Redis + load)", lambda x: "**%s**" % us(x["all_cpu_us_per_send_median"])),
        row("cores busy: node / Redis / load / whole machine",
            lambda x: "%.2f / %s / %.2f / %.2f" % (
                x["node_cores_busy_median"],
                "%.2f" % x["redis_cores_busy_median"] if x["redis_cores_busy_median"] is not None else "—",
                x["client_cores_busy_median"], x["machine_cores_busy_median"])),
        row("accepted / delivered / lost / duplicated (all rounds)",
            lambda x: "%s / %s / %s / %s" % (n(x["accepted"]), n(x["delivered"]), n(x["lost"]),
                                             n(x["duplicated"]))),
    ]
    note = ("%d users logged in per run, %d keep-alive HTTP connections in a closed loop, %g s measured after "
            "%g s of warm-up per run; a warm-up round, then %d rounds of the four nodes, the order reversed "
            "every other round; %d worker threads per node, one redis-server per cluster node; node, Redis "
            "and load share the machine's %d cores (load average %.2f at the start)%s.\n"
            % (c["users"], c["conns"], c["duration_s"], c["warmup_s"], c["rounds"], c["workers_per_node"],
               m["cpus"], m["loadavg_start"][0], built_from(c)))
    return table(["", "embedded, logging off", "embedded, on", "cluster, off", "cluster, on"], rows) + "\n" + note


def bench_delivery_login():
    """bench/delivery_login.py: a login with N stored messages, both modes."""
    r = need("delivery_login.json")
    emb, clu = r["runs"], r.get("cluster_runs") or []
    counts = [x["messages"] for x in emb]
    byn = {x["messages"]: x for x in clu}

    def cells(rows, f):
        return [f(x) if x is not None else "—" for x in rows]

    crow = [byn.get(k) for k in counts]
    rows = [
        ["embedded: login → last stored message read"] + cells(emb, lambda x: "**%s**" % ms(x["login_to_last_push_ms"])),
        ["embedded: resume from the start (`lastID` 0-0), median of %d" % r["config"]["repeats"]
         if "config" in r else "embedded: resume"] + cells(emb, lambda x: ms(x["resume_to_last_push_ms_median"])
                                                           if x.get("resume_to_last_push_ms_median") is not None
                                                           else "—"),
        ["embedded: node memory per stored message (RSS growth ÷ N)"]
        + cells(emb, lambda x: "**%s B**" % n(x["node_rss_bytes_per_message"])),
        ["embedded: the log's own bytes per message (`deliveryBytes` ÷ entries)"]
        + cells(emb, lambda x: "%s B" % n(x["log_bytes_per_message"])),
        ["cluster: login → last stored message read"] + cells(crow, lambda x: "**%s**" % ms(x["login_to_last_push_ms"])),
        ["cluster: resume from the start, median of %d" % r["config"]["repeats"] if "config" in r else "cluster: resume"]
        + cells(crow, lambda x: ms(x["resume_to_last_push_ms_median"])),
        ["cluster: Redis memory per stored message (`used_memory` growth ÷ N)"]
        + cells(crow, lambda x: "%s B" % n(x["redis_used_memory_bytes_per_message"])),
        ["cluster: the inbox stream per message (`MEMORY USAGE` ÷ N)"]
        + cells(crow, lambda x: "%s B" % n(x["stream_bytes_per_message"])),
        ["cluster: node memory per stored message (RSS growth ÷ N)"]
        + cells(crow, lambda x: "%s B" % n(x["node_rss_bytes_per_message"])),
    ]
    size = emb[0]["message_bytes"] if emb else 0
    note = ("Messages of %d bytes, stored through one keep-alive HTTP connection to an offline user; a fresh "
            "node (and in cluster mode a fresh redis-server) per N and mode; node, Redis and client share the "
            "machine's %d cores%s%s.\n" % (size, r["machine"]["cpus"],
                                            " (load average %.2f at the start)" % r["machine"]["loadavg_start"][0]
                                            if "loadavg_start" in r["machine"] else "",
                                            built_from(r.get("config", {}))))
    return table([""] + ["N = %s" % n(k) for k in counts], rows) + "\n" + note


def benchmarks_room():
    """bench/run.sh room (bench/room.sh): fan-out throughput, one room over a
    cluster of nodes, R pushes/s beside the raw-TCP floor-stream; the default
    run (room.json) and, when committed, the same at 2,000 connections
    (room-n2000.json: below what the machine can fan out)."""
    r = need("room.json")
    files = [d for d in (load("room-n2000.json"), r, load("room-n100000.json")) if d]
    rows = []
    for d in files:
        for x in d["runs"]:
            f = x["floor"]
            rows.append([
                n(x["connections"]),
                "%s/s (sent %.1f/s)" % (n(x["pushes_per_s"]), x["pushes_per_s_sent"]),
                "**%s/s**" % n(x["deliveries_per_s"]),
                "%s/s" % n(x["floor_deliveries_per_s"]),
                "%.2f ×" % (x["deliveries_per_s"] / x["floor_deliveries_per_s"]),
                lat(x["latency_ms"]),
                lat(f["latency_ms"]),
                "%s / %s" % (us(x["cpu_us_per_delivery"]), us(x["client_cpu_us_per_delivery"])),
                "%s / %s" % (us(f["cpu_us_per_delivery"]), us(f["client_cpu_us_per_delivery"])),
                "%s / %s of %s; floor %s / %s" % (n(x["lost"]), n(x["duplicated"]), n(x["expected"]),
                                                  n(f["lost"]), n(f["duplicated"])),
            ])

    def each(d):
        reads = "io_uring (`--rx-ring`)" if d["runs"][-1].get("client_rx_ring_procs") else "epoll + `read()`"
        return "%s connections: %d nodes, %d floor-stream senders, %g s per rate, nodes built from %s, " \
               "clients and floor receivers reading with %s, load average %s at the start" % (
                   n(d["connections"]), d["nodes"], d["runs"][-1]["floor"]["senders"], d["duration_s"],
                   d.get("built_from") or "?", reads, d.get("load_average_start") or "?")

    note = ("Every connection in one room (appID 101), round-robin over the cluster's nodes of %d worker thread(s) "
            "each with one redis-server (delivery logging on, its default), every push posted to node 0's "
            "`/user/sendMessageAll` at the rate; the floor-stream: as many raw TCP socket pairs, the same "
            "rate of %d-byte `send()`s per socket from one sending process per node worker thread. Node CPU is the "
            "nodes' (not Redis's); client CPU the load generator's receiving processes. Node, Redis and load "
            "generator share the machine's %d cores (%s).\n"
            % (r["node_workers"], r["frame_bytes"], r["machine"]["cpus"],
               "; ".join(each(d) for d in files)))
    return table(["connections", "pushes/s (R)", "deliveries/s", "floor-stream deliveries/s", "÷ floor",
                  "latency p50 / p99 / p99.9", "floor latency p50 / p99 / p99.9",
                  "CPU per delivery: nodes / clients", "floor CPU per delivery: senders / receivers",
                  "lost / duplicated"], rows) + "\n" + note


RENDER = {
    "benchmarks-room": benchmarks_room,
    "bench-room": benchmarks_room,
    "bench-delivery-p2p": bench_delivery_p2p,
    "bench-uws": bench_uws,
    "bench-delivery-login": bench_delivery_login,
    "bench-deflate": bench_deflate,
    "bench-history": bench_history,
    "readme-headline": readme_headline,
    "readme-numbers": readme_numbers,
    "benchmarks-quick": benchmarks_quick,
    "benchmarks-cluster-latency": benchmarks_cluster_latency,
    "bench-quick": bench_quick,
    "bench-seed-quick": bench_seed_quick,
    "c1m-settings": c1m_settings,
    "c1m-results": c1m_results,
    "c1m-sizes": c1m_sizes,
    "c1m-profile": c1m_profile,
    "c1m-seed": c1m_seed,
}


def regenerate(text, where):
    def one(m):
        name = m.group(2)
        if name not in RENDER:
            raise SystemExit("tables: %s names an unknown table %r" % (where, name))
        return m.group(1) + RENDER[name]() + m.group(4)
    return BLOCK.sub(one, text)


def main(argv):
    check = "--check" in argv
    stale = 0
    for rel in DOCS:
        path = os.path.join(ROOT, rel)
        with open(path) as f:
            old = f.read()
        new = regenerate(old, rel)
        if new == old:
            continue
        if check:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), rel, rel + " (from results)"))
        else:
            with open(path, "w") as f:
                f.write(new)
            print("tables: rewrote %s" % rel)
    if stale:
        print("tables: %d file(s) out of date with bench/results: run bench/tables.py and commit" % stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
