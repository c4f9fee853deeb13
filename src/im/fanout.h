/* fanout.h — one room's members on one worker, and the room pushes that
 * worker has not yet delivered to every one of them.
 *
 * The members form a list in the order they were last visited; a new
 * member joins at the tail. A push joins the pending list (a FIFO) with a
 * marker: the member at the tail when it came, i.e. the last member that
 * lacks it (everyone from the head to its marker lacks it, nobody after).
 * One walk step takes the head member, moves it to the tail and hands it
 * every pending push, oldest first; a push whose marker was that member has
 * then reached everyone and is retired. Hence:
 *  - while the worker keeps up, a push goes round the room in one pass and
 *    each recipient gets one write per push, as before;
 *  - when pushes come faster than a pass, a member gets everything that came
 *    since its last visit at once (net/conn.c's end-of-turn batch makes that
 *    one write): coalescing without a timer, and no push waits more than one
 *    pass;
 *  - nothing per member but the list links (struct conn rprev/rnext).
 * Markers never run backwards (a later push's marker is at or after an
 * earlier one's), so pushes retire in order. A member leaving moves the
 * markers it held to the member before it (none: the push is done).
 *
 * A member joining sees only pushes that come after it joined (im/resume.c
 * relies on it: a push dispatched before a login's replay read is in the
 * replay, not in the live stream). All of it runs on the owning worker. */
#ifndef IMGATE_FANOUT_H
#define IMGATE_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "core/sbuf.h"
#include "ws/session.h"

struct conn;

/* Pending pushes per room per worker, at most: beyond it the worker
 * finishes a pass before it takes the next push (back-pressure on the
 * sender instead of memory without bound). */
#define FANOUT_MAX_PENDING 1024

typedef struct fanout_item {
    void *job;                  /* the owner's push (im/hub.c: its hub_job) */
    ws_push push;               /* the shared frame and this worker's compressed twin */
    struct conn *marker;        /* the last member lacking it; NULL: nobody left */
    long delivered;             /* members it was handed to */
} fanout_item;

typedef struct fanout {
    struct conn *head, *tail;   /* members, least recently visited first */
    fanout_item *items;         /* pending pushes: a ring, oldest at `first` */
    uint32_t first, n, cap;
} fanout;

/* Hands it to c; returns 1 if it counts as delivered. May close c. */
typedef int (*fanout_deliver_fn)(void *ud, struct conn *c, fanout_item *it);
/* it has reached every member (or the room emptied): give it up. */
typedef void (*fanout_retire_fn)(void *ud, fanout_item *it);

/* c joins at the tail (it lacks nothing pending). */
void fanout_join(fanout *f, struct conn *c);
/* c leaves. deliver_first: hand it first what it lacks (a connection that
 * stays open but leaves the room: it must not miss what came before). */
void fanout_leave(fanout *f, struct conn *c, int deliver_first, fanout_deliver_fn deliver,
                  void *ud);

/* A new push for every current member (frame: referenced by the item).
 * Returns 1 if pending, 0 if the room is empty (nothing to do), -1 if out
 * of memory. The caller keeps f->n below FANOUT_MAX_PENDING (fanout_walk). */
int fanout_add(fanout *f, void *job, sbuf *frame);

/* Visits at most max members (see above), then retires what is done.
 * Returns the members visited. */
size_t fanout_walk(fanout *f, size_t max, fanout_deliver_fn deliver, fanout_retire_fn retire,
                   void *ud);

/* Gives up every pending push (retire) and the ring; members stay. */
void fanout_clear(fanout *f, fanout_retire_fn retire, void *ud);

static inline int fanout_busy(const fanout *f) { return f->n != 0; }

#endif
