/* main.c — imgate-bench: parses the command line, checks the limits of the
 * machine, runs the WebSocket scenarios (coord.c; twice with a second pass:
 * --deflate, without then with permessage-deflate; --second-*, the same
 * clients against other nodes; one after the other, or at once with
 * --interleave) and the floor (floor.c), and writes the summary, JSON and
 * HTML reports. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "clock.h"
#include "coord.h"
#include "floor.h"
#include "hsfloor.h"
#include "report.h"

static void main_on_signal(int sig)
{
    (void)sig;
    coord_interrupt();
}

/* A bound on the whole run when --max-time is not given. */
static double main_max_time(const bench_opts *o)
{
    double rate = o->connect_rate > 0 ? o->connect_rate : 5000;
    double t = (double)o->conns / rate + 2 * o->timeout_s + (double)o->conns / 2000.0 + 60;
    if (o->scenarios & SC_HOLD)
        t += o->hold_s + o->settle_s;
    if (o->scenarios & SC_BROADCAST)
        t += o->rounds * o->interval_s + o->drain_s + (double)o->rounds * o->messages;
    if (o->scenarios & SC_P2P)
        t += o->p2p_s + o->drain_s;
    if (o->scenarios & SC_FSTREAM)
        t += 2 * o->room_s + o->drain_s + (double)o->conns / 2000.0 + 60;
    t += 5 * o->settle_s;
    return (o->second ? 2 * t : t) + 120;
}

static int main_check_limits(const bench_opts *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    long share = (o->conns + o->procs - 1) / o->procs;
    if ((o->scenarios & (SC_WS | SC_FLOOR | SC_FSTREAM)) && (rlim_t)share + 64 > rl.rlim_max) {
        fprintf(stderr, "imgate-bench: %ld connections per process exceed the open-file limit "
                "(%llu): use --procs %ld or more\n", share, (unsigned long long)rl.rlim_max,
                (long)((o->conns + (long)rl.rlim_max - 65) / ((long)rl.rlim_max - 64)));
        return -1;
    }
    if ((o->scenarios & (SC_FLOOR | SC_FSTREAM)) && floor_senders_for(o, o->conns) < 0) {
        long cap = floor_sender_cap();
        fprintf(stderr, "imgate-bench: --floor-senders %d: %ld sockets per sender exceed the "
                "open-file limit (%ld each): use --floor-senders %ld or more\n",
                o->floor_senders, (o->conns + o->floor_senders - 1) / o->floor_senders, cap,
                (o->conns + cap - 1) / cap);
        return -1;
    }
    return 0;
}

/* The push frame of this run as SPEC §3 writes it, with the --pad text. */
static size_t main_frame_bytes(const bench_opts *o)
{
    size_t f = coord_bc_frame_bytes(o);
    size_t len = f - (f < 128 ? 2 : f < 65540 ? 4 : 10) + (o->pad ? (size_t)o->pad + 1 : 0);
    return len + (len < 126 ? 2 : len < 65536 ? 4 : 10);
}

/* The floor sends what one push frame of the broadcast weighs on the wire:
 * as received when the broadcast ran, else as SPEC §3 writes it. */
static int main_floor(const bench_opts *o, result *r)
{
    int measured = r->bc_frame_max > 0;
    int payload = measured ? (int)r->bc_frame_max : (int)main_frame_bytes(o);
    int rc = floor_run(o, o->conns, payload, &r->fl);
    r->fl.payload_measured = measured;
    return rc;
}

/* Every reason the run cannot be trusted, on stderr; 0 if none. */
static int main_verdict(result *r, const char *pass)
{
    if (result_verdict(r) == 0)
        return 0;
    for (int i = 0; i < r->nfailures; i++)
        fprintf(stderr, "imgate-bench: FAILED%s: %s\n", pass, r->failures[i]);
    return -1;
}

/* The second pass's result, set beside r in the reports. */
static void main_second_result(const result *r, result *r2, const bench_opts *o2)
{
    r2->o = o2;
    r2->t0 = clock_ns();
    r2->cpus = r->cpus;
    r2->mem_total = r->mem_total;
    r2->page_size = r->page_size;
    memcpy(r2->kernel, r->kernel, sizeof(r->kernel));
}

/* The WebSocket scenarios: once, or with a second pass (--deflate,
 * --second-*) after the first or, with --interleave, at the same time. */
static int main_passes(const bench_opts *o, result *r, result *r2)
{
    static bench_opts o2;
    if (!o->second)
        return coord_run(o, r);
    if (opts_second_pass(o, &o2) != 0)
        return -1;
    if (o->interleave) {
        main_second_result(r, r2, &o2);
        r2->t0 = r->t0;                   /* one time axis for both */
        r->second = r2;
        int rc = coord_run_interleaved(o, r, &o2, r2);
        r2->total_s = (double)(clock_ns() - r2->t0) / 1e9;
        return rc;
    }
    int rc = coord_run(o, r);
    if (coord_interrupted())
        return rc;
    main_second_result(r, r2, &o2);
    r->second = r2;
    rc |= coord_run(&o2, r2);
    r2->total_s = (double)(clock_ns() - r2->t0) / 1e9;
    return rc;
}

static void main_machine(result *r)
{
    struct utsname u;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    r->cpus = cpus > 0 ? (int)cpus : 0;
    r->mem_total = mem_total();
    long ps = sysconf(_SC_PAGESIZE);
    r->page_size = ps > 0 ? (uint64_t)ps : 4096;
    if (uname(&u) == 0)
        snprintf(r->kernel, sizeof(r->kernel), "%s %s", u.release, u.machine);
}

static int main_reports(const result *r)
{
    int rc = 0;
    report_summary(r, stdout);
    if (r->o->json_path && report_json(r, r->o->json_path) != 0) {
        fprintf(stderr, "imgate-bench: cannot write %s\n", r->o->json_path);
        rc = -1;
    }
    if (r->o->html_path && report_html(r, r->o->html_path) != 0) {
        fprintf(stderr, "imgate-bench: cannot write %s\n", r->o->html_path);
        rc = -1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    static bench_opts o;
    static result r, r2;
    if (argc > 1 && strcmp(argv[1], "handshake-server") == 0)
        return hsfloor_main(argc - 1, argv + 1);          /* the raw-handshake floor */
    int pr = opts_parse(argc, argv, &o);
    if (pr != 0)
        return pr < 0 ? 2 : 0;
    if (o.max_time_s <= 0)
        o.max_time_s = main_max_time(&o);
    if (main_check_limits(&o) != 0)
        return 2;
    signal(SIGINT, main_on_signal);
    signal(SIGTERM, main_on_signal);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)(o.max_time_s + 120));      /* the last resort: never hang */
    r.o = &o;
    r.t0 = clock_ns();
    main_machine(&r);
    int rc = 0;
    if (o.scenarios & SC_WS)
        rc = main_passes(&o, &r, &r2);
    if ((o.scenarios & SC_FLOOR) && !coord_interrupted())
        rc |= main_floor(&o, &r);
    if ((o.scenarios & SC_FSTREAM) && !coord_interrupted()) {
        int measured = r.bc_frame_max > 0;
        rc |= floor_stream_run(&o, o.conns, measured ? (int)r.bc_frame_max
                                                     : (int)main_frame_bytes(&o), &r.fs);
    }
    r.total_s = (double)(clock_ns() - r.t0) / 1e9;
    rc |= main_verdict(&r, "");
    if (r.second) {
        char pass[80] = " (permessage-deflate pass)";
        if (!o.deflate)
            snprintf(pass, sizeof(pass), " (second pass: %s)", o.second_label);
        rc |= main_verdict(&r2, pass);
    }
    rc |= main_reports(&r);
    result_free(&r);
    result_free(&r2);
    return rc ? 1 : 0;
}
