/* fanout.c — a room's member list in visiting order and its pending pushes
 * with their markers (see fanout.h for the invariants). */
#include "im/fanout.h"

#include <stdlib.h>

#include "net/conn.h"

static fanout_item *fanout_at(const fanout *f, uint32_t i)
{
    return &f->items[(f->first + i) & (f->cap - 1)];
}

/* ---------- the member list ---------- */

static void fanout_unlink(fanout *f, struct conn *c)
{
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        f->head = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    else
        f->tail = c->rprev;
    c->rprev = c->rnext = NULL;
}

void fanout_join(fanout *f, struct conn *c)
{
    c->rnext = NULL;
    c->rprev = f->tail;
    if (f->tail)
        f->tail->rnext = c;
    else
        f->head = c;
    f->tail = c;
}

/* The first pending push c lacks (f->n: none). c lacks push i iff its
 * marker is c or after c; markers never run backwards, so what c lacks is
 * a suffix of the FIFO, starting at the first push whose marker lies at or
 * after c. Walks from c to the tail: for the rare leave of an open member. */
static uint32_t fanout_first_lacking(const fanout *f, const struct conn *c)
{
    for (const struct conn *m = c; m; m = m->rnext)
        for (uint32_t i = 0; i < f->n; i++)
            if (fanout_at(f, i)->marker == m)
                return i;
    return f->n;
}

void fanout_leave(fanout *f, struct conn *c, int deliver_first, fanout_deliver_fn deliver,
                  void *ud)
{
    if (deliver_first && f->n) {
        uint32_t n = f->n;                       /* no push is added meanwhile */
        for (uint32_t i = fanout_first_lacking(f, c); i < n; i++) {
            fanout_item *it = fanout_at(f, i);
            it->delivered += deliver(ud, c, it);
        }
    }
    for (uint32_t i = 0; i < f->n; i++) {       /* its markers: to the member before it */
        fanout_item *it = fanout_at(f, i);
        if (it->marker == c)
            it->marker = c->rprev;               /* NULL: done, retired by the next walk */
    }
    fanout_unlink(f, c);
}

/* ---------- pending pushes ---------- */

static int fanout_grow(fanout *f)
{
    uint32_t ncap = f->cap ? f->cap * 2 : 8;
    fanout_item *ni = malloc(sizeof(*ni) * ncap);
    if (!ni)
        return -1;
    for (uint32_t i = 0; i < f->n; i++)
        ni[i] = *fanout_at(f, i);
    free(f->items);
    f->items = ni;
    f->cap = ncap;
    f->first = 0;
    return 0;
}

int fanout_add(fanout *f, void *job, sbuf *frame)
{
    if (!f->tail)
        return 0;
    if (f->n == f->cap && fanout_grow(f) != 0)
        return -1;
    fanout_item *it = fanout_at(f, f->n);
    *it = (fanout_item){ .job = job, .push = { .plain = frame }, .marker = f->tail };
    f->n++;
    return 1;
}

/* Retires the pushes at the front that nobody lacks any more. */
static void fanout_retire_done(fanout *f, fanout_retire_fn retire, void *ud)
{
    while (f->n && fanout_at(f, 0)->marker == NULL) {
        fanout_item *it = fanout_at(f, 0);
        f->first = (f->first + 1) & (f->cap - 1);
        f->n--;
        ws_push_release(&it->push);
        retire(ud, it);
    }
}

/* Each step: the head member gets every pending push and goes to the
 * tail; the pushes it was the marker of are then done. */
size_t fanout_walk(fanout *f, size_t max, fanout_deliver_fn deliver, fanout_retire_fn retire,
                   void *ud)
{
    size_t visited = 0;
    fanout_retire_done(f, retire, ud);
    while (f->n && f->head && visited < max) {
        struct conn *c = f->head;
        uint32_t n = f->n;                       /* deliveries add no push */
        for (uint32_t i = 0; i < n && fanout_at(f, i)->marker == c; i++)
            fanout_at(f, i)->marker = NULL;      /* a prefix: markers never run backwards */
        if (c != f->tail) {
            fanout_unlink(f, c);
            fanout_join(f, c);
        }
        for (uint32_t i = 0; i < n; i++) {      /* may close c: it then leaves the tail */
            fanout_item *it = fanout_at(f, i);
            it->delivered += deliver(ud, c, it);
        }
        visited++;
        fanout_retire_done(f, retire, ud);
    }
    return visited;
}

void fanout_clear(fanout *f, fanout_retire_fn retire, void *ud)
{
    for (uint32_t i = 0; i < f->n; i++)
        fanout_at(f, i)->marker = NULL;
    fanout_retire_done(f, retire, ud);
    free(f->items);
    f->items = NULL;
    f->first = f->n = f->cap = 0;
}
