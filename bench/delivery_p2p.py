#!/usr/bin/python3
"""What delivery logging costs a /user/sendMessage (SPEC 7.1): throughput
and latency with logging off and on, embedded and cluster mode, side by
side in one run.

Four fresh nodes, started here and kept for the whole run:

  embedded off   --set delivery.enabled=false
  embedded on    --set delivery.enabled=true   (each send appended to the
                                                 recipient's inbox in memory)
  cluster off    the same against a private redis-server (harness.cluster_args)
  cluster on     each send one Lua script in Redis (XADD to the inbox stream)

each cluster node with a redis-server of its own (started here on a free
loopback port). Every node gets --set im.presenceEventsMaxRoom=10 (as
bench/run.sh: no enter/exit push storm while the users log in).

One measurement ("run") against one node is bench/p2p_load.c (compiled here
with cc): --users WebSocket clients log in and read every push; --conns
keep-alive HTTP connections send /user/sendMessage to random ones of them,
each the next request as soon as its answer is read (closed loop: the node
sets the pace), for --warmup + --duration seconds; the requests sent after
the warm-up are the measured window. Per run: answered sends/s, API latency
(request written -> answer read) and push latency (request written -> push
read), node and Redis CPU over the window (/proc/PID/stat), and every
accepted send checked: it must arrive exactly once, on its addressee.

The runs are interleaved so that this shared machine's noise hits all four
alike: a warm-up round (not counted), then --rounds rounds of the four
configurations, the order reversed every other round (off, on, off, on /
on, off, on, off). Reported per configuration: the median over the rounds
of each figure, and for each mode the on/off throughput ratio (median over
median, and the median of the rounds' paired ratios). The issue's goal:
logging costs at most 25 % of the throughput (ratio >= 0.75).

  bench/delivery_p2p.py [--rounds 6] [--duration 4] [--warmup 0.5]
                        [--users 100] [--conns 32] [--workers 2] [--out FILE]

Environment: IMGATE_BIN (the node binary, default build/imgate), CC,
IMGATE_BUILT_FROM (recorded as the binary's source; default: git HEAD).
Writes bench/results/delivery_p2p.json. Bounded (each run has a time limit;
the whole default run takes ~2 minutes); loopback only; every process it
starts (nodes, redis-servers, the load) is stopped by PID."""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from benchenv import loadavg, source_version  # noqa: E402

CONFIGS = [("embedded_off", "embedded", False), ("embedded_on", "embedded", True),
           ("cluster_off", "cluster", False), ("cluster_on", "cluster", True)]


def build_loader(directory):
    src = os.path.join(ROOT, "bench", "p2p_load.c")
    out = os.path.join(directory, "p2p_load")
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("delivery_p2p: no C compiler (cc) to build bench/p2p_load.c")
    subprocess.run([cc, "-O2", "-Wall", "-o", out, src], check=True, timeout=120)
    return out


def start(mode, on, workers):
    """(node, redis or None) for one configuration."""
    redis = harness.RedisServer() if mode == "cluster" else None
    args = harness.cluster_args(redis) if redis else []
    try:
        node = harness.Node(*args, "--set", "delivery.enabled=%s" % ("true" if on else "false"),
                            "--set", "im.presenceEventsMaxRoom=10", workers=workers)
    except BaseException:
        if redis:
            redis.stop()
        raise
    return node, redis


def one_run(loader, node, redis, tag, a, duration):
    cmd = [loader, "--http-port", str(node.http_port), "--ws-port", str(node.ws_port),
           "--users", str(a.users), "--conns", str(a.conns), "--duration", str(duration),
           "--warmup", str(a.warmup), "--drain", "5", "--tag", tag, "--pid", str(node.proc.pid)]
    if redis:
        cmd += ["--pid", str(redis.proc.pid)]
    load = loadavg()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=duration + a.warmup + 90)
    if not p.stdout.strip():
        raise SystemExit("delivery_p2p: the load failed (exit %d): %s" % (p.returncode, p.stderr.strip()))
    r = json.loads(p.stdout)
    r["exit_status"] = p.returncode
    r["stderr"] = p.stderr.strip()[-2000:]
    r["loadavg_before"] = load
    w = r["window"]
    cpu = w.pop("cpu_s")
    w["node_cpu_s"] = cpu.get(str(node.proc.pid))
    w["redis_cpu_s"] = cpu.get(str(redis.proc.pid)) if redis else None
    ans = max(w["answered"], 1)
    w["node_cpu_us_per_send"] = round(w["node_cpu_s"] * 1e6 / ans, 2)
    w["redis_cpu_us_per_send"] = round(w["redis_cpu_s"] * 1e6 / ans, 2) if redis else None
    w["client_cpu_us_per_send"] = round(w["client_cpu_s"] * 1e6 / ans, 2)
    # busy CPU of the whole machine in the window that is not this run's
    # (node, Redis, load): the other work on this shared machine
    w["other_cpu_s"] = round(w["machine_cpu_s"] - w["node_cpu_s"] - (w["redis_cpu_s"] or 0)
                             - w["client_cpu_s"], 3)
    return r


def med(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def summarize(runs):
    """Medians over the rounds, and totals, of one configuration's runs."""
    ws = [r["window"] for r in runs]
    return {
        "rounds": len(runs),
        "sends_per_s_median": med([w["rate_per_s"] for w in ws]),
        "sends_per_s_each": [w["rate_per_s"] for w in ws],
        "sends_per_s_min": min(w["rate_per_s"] for w in ws),
        "sends_per_s_max": max(w["rate_per_s"] for w in ws),
        "api_ms_p50_median": med([w["api_ms"].get("p50") for w in ws]),
        "api_ms_p99_median": med([w["api_ms"].get("p99") for w in ws]),
        "push_ms_p50_median": med([w["push_ms"].get("p50") for w in ws]),
        "push_ms_p99_median": med([w["push_ms"].get("p99") for w in ws]),
        "node_cpu_us_per_send_median": med([w["node_cpu_us_per_send"] for w in ws]),
        "redis_cpu_us_per_send_median": med([w["redis_cpu_us_per_send"] for w in ws]),
        "client_cpu_us_per_send_median": med([w["client_cpu_us_per_send"] for w in ws]),
        "all_cpu_us_per_send_median": med([w["node_cpu_us_per_send"] + (w["redis_cpu_us_per_send"] or 0)
                                           + w["client_cpu_us_per_send"] for w in ws]),
        "node_cores_busy_median": med([w["node_cpu_s"] / r["duration_s"] for w, r in zip(ws, runs)]),
        "redis_cores_busy_median": med([w["redis_cpu_s"] / r["duration_s"] if w["redis_cpu_s"] is not None
                                        else None for w, r in zip(ws, runs)]),
        "client_cores_busy_median": med([w["client_cpu_s"] / r["duration_s"] for w, r in zip(ws, runs)]),
        "machine_cores_busy_median": med([w["machine_cpu_s"] / r["duration_s"] for w, r in zip(ws, runs)]),
        "other_cores_busy_median": med([w["other_cpu_s"] / r["duration_s"] for w, r in zip(ws, runs)]),
        "sent": sum(r["sent"] for r in runs),
        "accepted": sum(r["accepted"] for r in runs),
        "delivered": sum(r["delivered"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
        "misdelivered": sum(r["misdelivered"] for r in runs),
        "refused": sum(r["refused"] for r in runs),
        "http_errors": sum(r["http_errors"] for r in runs),
        "ws_drops": sum(r["ws_drops"] for r in runs),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds per run before the window")
    ap.add_argument("--users", type=int, default=100, help="WebSocket clients logged in per run")
    ap.add_argument("--conns", type=int, default=32, help="concurrent keep-alive HTTP connections")
    ap.add_argument("--workers", type=int, default=2, help="worker threads per node")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "delivery_p2p.json"))
    a = ap.parse_args()
    if not 1 <= a.rounds <= 20 or not 0 < a.duration <= 30:
        ap.error("--rounds 1..20, --duration 0..30")

    tmp = tempfile.mkdtemp(prefix="imgate-p2p-")
    loader = build_loader(tmp)
    t_start = time.time()
    load_start = loadavg()
    source = source_version()
    started = {}
    runs = {name: [] for name, _, _ in CONFIGS}
    warm = {}
    failures = []
    try:
        for name, mode, on in CONFIGS:
            started[name] = start(mode, on, a.workers)
        order = [name for name, _, _ in CONFIGS]
        for name in order:                      # warm-up round: not counted
            node, redis = started[name]
            r = one_run(loader, node, redis, "w%s" % name[0] + name[-2:], a, 1.0)
            warm[name] = {"sends_per_s": r["window"]["rate_per_s"], "sent": r["sent"], "lost": r["lost"],
                          "duplicated": r["duplicated"]}
            if r["exit_status"] != 0:
                failures.append("%s warm-up: exit %d %s" % (name, r["exit_status"], r["stderr"]))
        for k in range(a.rounds):
            for name in (order if k % 2 == 0 else order[::-1]):
                node, redis = started[name]
                tag = "r%d%s%s" % (k, name[0], name[-2:])
                r = one_run(loader, node, redis, tag, a, a.duration)
                r["round"] = k
                runs[name].append(r)
                w = r["window"]
                print("round %d %-13s %8.0f sends/s  api p50 %6.3f p99 %6.3f ms  push p50 %6.3f p99 %6.3f ms  "
                      "node %5.1f us/send%s  machine %.2f cores (other %.2f)  lost %d dup %d  load %s" % (
                          k, name, w["rate_per_s"], w["api_ms"]["p50"], w["api_ms"]["p99"],
                          w["push_ms"]["p50"], w["push_ms"]["p99"], w["node_cpu_us_per_send"],
                          "  redis %4.1f us/send" % w["redis_cpu_us_per_send"] if redis else "",
                          w["machine_cpu_s"] / r["duration_s"], w["other_cpu_s"] / r["duration_s"], r["lost"], r["duplicated"], r["loadavg_before"][0]), flush=True)
                if r["exit_status"] != 0:
                    failures.append("%s round %d: exit %d %s" % (name, k, r["exit_status"], r["stderr"]))
        redis_info = {name: started[name][1].cmd("INFO", "memory") + started[name][1].cmd("INFO", "commandstats")
                      for name, mode, _ in CONFIGS if mode == "cluster"}
    finally:
        for name in started:
            node, redis = started[name]
            try:
                node.stop()
            except AssertionError as e:
                failures.append("%s: the node did not stop cleanly: %s" % (name, str(e)[:500]))
            if redis:
                redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {name: summarize(runs[name]) for name, _, _ in CONFIGS}
    for name, text in redis_info.items():
        # what Redis did over the whole run (warm-up included), per send
        sends = summary[name]["sent"] + warm[name]["sent"]
        cmds = {}
        for line in text.splitlines():
            if line.startswith("used_memory:"):
                summary[name]["redis_used_memory_bytes_at_end"] = int(line.split(":")[1])
            elif line.startswith("cmdstat_"):
                k, v = line[len("cmdstat_"):].split(":", 1)
                f = dict(x.split("=", 1) for x in v.split(","))
                cmds[k] = {"calls": int(f["calls"]), "usec": int(f["usec"]),
                           "usec_per_call": float(f["usec_per_call"]),
                           "calls_per_send": round(int(f["calls"]) / max(sends, 1), 3),
                           "usec_per_send": round(int(f["usec"]) / max(sends, 1), 2)}
        summary[name]["redis_commands"] = dict(sorted(cmds.items(), key=lambda kv: -kv[1]["usec"]))
    on_vs_off = {}
    for mode in ("embedded", "cluster"):
        off, on = summary[mode + "_off"], summary[mode + "_on"]
        paired = [b["window"]["rate_per_s"] / x["window"]["rate_per_s"]
                  for x, b in zip(runs[mode + "_off"], runs[mode + "_on"])]
        ratio = on["sends_per_s_median"] / off["sends_per_s_median"]
        on_vs_off[mode] = {
            "throughput_ratio": round(ratio, 4),
            "throughput_ratio_paired_median": round(statistics.median(paired), 4),
            "throughput_ratio_paired_each": [round(x, 4) for x in paired],
            "logging_cost_pct": round(100 * (1 - ratio), 1),
            "within_goal_25pct": ratio >= 0.75,
            "node_cpu_per_send_ratio": round(on["node_cpu_us_per_send_median"] / off["node_cpu_us_per_send_median"], 4),
            "api_p50_ratio": round(on["api_ms_p50_median"] / off["api_ms_p50_median"], 4),
            "api_p99_ratio": round(on["api_ms_p99_median"] / off["api_ms_p99_median"], 4),
        }
    for name in summary:
        s = summary[name]
        if s["lost"] or s["duplicated"] or s["misdelivered"] or s["refused"] or s["http_errors"] or s["ws_drops"]:
            failures.append("%s: lost %d, duplicated %d, misdelivered %d, refused %d, HTTP errors %d, drops %d" % (
                name, s["lost"], s["duplicated"], s["misdelivered"], s["refused"], s["http_errors"], s["ws_drops"]))
    out = {
        "tool": "bench/delivery_p2p.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "duration_s": round(time.time() - t_start, 1),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "machine": platform.machine(),
                    "loadavg_start": load_start, "loadavg_end": loadavg()},
        "config": {"rounds": a.rounds, "duration_s": a.duration, "warmup_s": a.warmup, "users": a.users,
                   "conns": a.conns, "workers_per_node": a.workers, "binary": harness.BIN,
                   "source": source,
                   "order": "warm-up round, then %s; reversed every other round" % ", ".join(order),
                   "node_flags": {"embedded": "--set delivery.enabled=false|true --set im.presenceEventsMaxRoom=10",
                                  "cluster": "the same + harness.cluster_args: --rpc-port 0 --redis 127.0.0.1:PORT "
                                             "(one redis-server per node)"}},
        "summary": summary,
        "on_vs_off": on_vs_off,
        "warmup": warm,
        "failures": failures,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

    print("\n%-13s %10s %14s %14s %16s %16s" % ("", "sends/s", "api p50/p99", "push p50/p99", "node us/send",
                                               "redis us/send"))
    for name, _, _ in CONFIGS:
        s = summary[name]
        print("%-13s %10.0f %6.3f/%6.3f %6.3f/%6.3f %16.1f %16s" % (
            name, s["sends_per_s_median"], s["api_ms_p50_median"], s["api_ms_p99_median"],
            s["push_ms_p50_median"], s["push_ms_p99_median"], s["node_cpu_us_per_send_median"],
            "%.1f" % s["redis_cpu_us_per_send_median"] if s["redis_cpu_us_per_send_median"] is not None else "-"))
    for mode in ("embedded", "cluster"):
        x = on_vs_off[mode]
        print("%s: on/off throughput %.3f (paired median %.3f): logging costs %.1f %% (goal <= 25 %%)" % (
            mode, x["throughput_ratio"], x["throughput_ratio_paired_median"], x["logging_cost_pct"]))
    for f in failures:
        print("FAILED:", f)
    print("results:", a.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
