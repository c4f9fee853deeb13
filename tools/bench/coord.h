/* coord.h — the parent process of a WebSocket run: forks the workers,
 * drives the phases (connect, hold, broadcast, p2p) in order, calls the API,
 * samples memory, shows progress, and merges what the workers report. */
#ifndef BENCH_COORD_H
#define BENCH_COORD_H

#include "result.h"

/* Runs the WebSocket scenarios of o into r (r->o, r->t0 set by the
 * caller). Returns 0, or -1 with r->error set (r holds what was measured). */
int coord_run(const bench_opts *o, result *r);

/* --interleave: two passes at once (o1/r1 and o2/r2, each with its own
 * workers, nodes and API): each sets up in turn (its memory measured while
 * the other's connections, if any, idle on), they hold together, and their
 * broadcast rounds alternate half an interval apart, who goes first
 * swapping every round, so that the machine's noise hits both alike. */
int coord_run_interleaved(const bench_opts *o1, result *r1, const bench_opts *o2, result *r2);

/* Samples memory into r->steps under `name` (no workers involved). */
void coord_step_now(result *r, const char *name, long conns);

/* The wire size of this run's broadcast push frame as SPEC §3 writes it
 * (the floor's payload when no broadcast was received to measure it). */
size_t coord_bc_frame_bytes(const bench_opts *o);

/* Asks a running coord_run to wind down (from a signal handler). */
void coord_interrupt(void);
int coord_interrupted(void);

#endif
