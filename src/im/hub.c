/* hub.c — per-worker user tables and rooms, and cross-worker delivery jobs
 * (see hub.h). The per-recipient path is: hash chain, or the room's walk
 * (im/fanout.h: a slice per loop turn, each member handed every room push
 * it has not had yet), then ws_session_send_push() of the one shared frame
 * — no allocation, no lock, no copy unless the socket cannot take the bytes
 * right away. Recipients that negotiated permessage-deflate share its
 * compressed twin, made once per push by each worker that has such a
 * recipient (ws_push). */
#include "im/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/node.h"
#include "im/dlog.h"
#include "im/fanout.h"
#include "im/presence.h"
#include "net/conn.h"
#include "net/worker.h"
#include "ws/frame.h"
#include "ws/session.h"

struct hub_gate;

/* Members a room walk visits per loop turn (all rooms of the worker): the
 * loop reads, accepts and takes new pushes between slices. */
#define HUB_WALK_SLICE 512

_Static_assert(CONFIG_MAX_APPIDS <= 64, "hub_local.busy is a 64-bit room mask");

struct hub_local {
    struct conn **buckets;          /* user table, chained through conn.unext */
    uint32_t mask;
    uint32_t count;                 /* logged-in connections */
    fanout rooms[CONFIG_MAX_APPIDS]; /* members and pending pushes (im/fanout.h) */
    uint64_t busy;                  /* rooms with pending pushes */
    int walk_next;                  /* the room the next step starts with */
    struct conn *leaving;           /* in hub_detach (a send failing there re-enters it) */
    struct hub_gate **gates;        /* gated connections by address (hub_gate_hold) */
    uint32_t gmask, ngates;         /* ngates == 0: the delivery path never looks */
};

enum hub_kind { HUB_USER, HUB_ROOM, HUB_KICK };
/* What a push's id is: none, a user's inbox entry, a room's history entry. */
enum hub_log { HUB_LOG_NONE, HUB_LOG_INBOX, HUB_LOG_ROOM };

/* Set by cluster/ at start-up (hub_set_cluster); NULL in embedded mode. */
static const hub_cluster_hooks *hub_cluster;

void hub_set_cluster(const hub_cluster_hooks *hooks) { hub_cluster = hooks; }

/* Distinct users of each room on this node (for im.presenceEventsMaxRoom). */
static atomic_long hub_room_users[CONFIG_MAX_APPIDS];

struct hub_job;
typedef struct hub_slot {
    task t;
    struct hub_job *job;
} hub_slot;

/* A job lives until every worker has given up its share and the done step
 * is over (refs). done runs once every worker has run its share (pending):
 * for a room push, once it is queued on every worker's walk. */
typedef struct hub_job {
    atomic_int pending;             /* workers that have not run their share */
    atomic_int refs;                /* the workers' shares + the done step */
    atomic_long delivered;
    struct worker *origin;
    hub_done_fn done;
    void *ud;
    enum hub_kind kind;
    uint32_t appid;
    uint32_t hash;                  /* presence_hash of the user (or except) */
    uint8_t uidlen;
    uint8_t logged;                 /* enum hub_log: a logged inbox message moves the cursor */
    char uid[PRESENCE_MAX_ID];
    dlog_id id;
    sbuf *frame;
    task done_task;
    hub_slot slots[];
} hub_job;

/* ---------- local tables ---------- */

hub_local *hub_local_new(void)
{
    hub_local *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->mask = 255;
    h->buckets = calloc(h->mask + 1, sizeof(*h->buckets));
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    return h;
}

static void hub_gates_free(hub_local *h);
static void hub_local_sweep(hub_local *h, uint64_t now);
static int hub_local_step(hub_local *h);
static void hub_local_flush(hub_local *h);
static void hub_room_retire(void *ud, fanout_item *it);

void hub_local_free(hub_local *h)
{
    if (!h)
        return;
    for (int r = 0; r < CONFIG_MAX_APPIDS; r++)     /* flushed before: nothing is left */
        fanout_clear(&h->rooms[r], hub_room_retire, h);
    hub_gates_free(h);
    free(h->buckets);
    free(h);
}

void hub_init(void)
{
    static const worker_local_ops ops = { .create = hub_local_new, .destroy = hub_local_free,
                                          .sweep = hub_local_sweep, .step = hub_local_step,
                                          .flush = hub_local_flush };
    workers_set_local(&ops);
}

long hub_local_users(const hub_local *h) { return h->count; }

int hub_room_index(uint32_t appid)
{
    for (int i = 0; i < g_node.cfg.appIDCount; i++)
        if (g_node.cfg.appIDs[i] == appid)
            return i;
    return -1;
}

static void hub_grow(hub_local *h)
{
    uint32_t nmask = h->mask * 2 + 1;
    struct conn **nb = calloc((size_t)nmask + 1, sizeof(*nb));
    if (!nb)
        return;
    for (uint32_t b = 0; b <= h->mask; b++) {
        struct conn *c = h->buckets[b];
        while (c) {
            struct conn *n = c->unext;
            uint32_t i = c->pres->hash & nmask;
            c->unext = nb[i];
            nb[i] = c;
            c = n;
        }
    }
    free(h->buckets);
    h->buckets = nb;
    h->mask = nmask;
}

static void hub_link(hub_local *h, struct conn *c)
{
    uint32_t i = c->pres->hash & h->mask;
    c->unext = h->buckets[i];
    h->buckets[i] = c;
    fanout_join(&h->rooms[c->room], c);          /* sees the room's pushes from now on */
    if (++h->count > h->mask + 1)
        hub_grow(h);
}

static int hub_room_deliver(void *ud, struct conn *c, fanout_item *it);

/* c leaves the tables; an open one first gets the room pushes it lacks. */
static void hub_unlink(hub_local *h, struct conn *c)
{
    struct conn **pp = &h->buckets[c->pres->hash & h->mask];
    while (*pp && *pp != c)
        pp = &(*pp)->unext;
    if (*pp)
        *pp = c->unext;
    fanout_leave(&h->rooms[c->room], c, c->state == CONN_WS_OPEN, hub_room_deliver, h);
    c->unext = NULL;
    h->count--;
}

void hub_local_each(hub_local *h, void (*fn)(struct conn *c, void *ud), void *ud)
{
    for (int r = 0; r < CONFIG_MAX_APPIDS; r++)
        for (struct conn *c = h->rooms[r].head; c; c = c->rnext)
            fn(c, ud);
}

/* ---------- push frames ---------- */

sbuf *hub_push_frame(const char *seq, size_t seqlen, const char *cmd,
                     const char *msg, size_t msglen, const char *from, size_t fromlen)
{
    return hub_push_frame_id(seq, seqlen, cmd, msg, msglen, from, fromlen, NULL);
}

sbuf *hub_push_frame_id(const char *seq, size_t seqlen, const char *cmd, const char *msg,
                        size_t msglen, const char *from, size_t fromlen, const dlog_id *id)
{
    jsonw w;
    jsonw_init(&w, 10);                      /* room for the frame header */
    jsonw_lit(&w, "{\"seq\":");
    jsonw_str(&w, seq, seqlen);
    jsonw_lit(&w, ",\"cmd\":");
    jsonw_cstr(&w, cmd);
    jsonw_lit(&w, ",\"response\":{\"code\":200,\"codeMsg\":\"Ok\",\"data\":{\"target\":\"\",\"type\":\"text\",\"msg\":");
    jsonw_str(&w, msg, msglen);
    jsonw_lit(&w, ",\"from\":");
    jsonw_str(&w, from, fromlen);
    if (id) {                                /* a logged message: its entry id */
        char text[DLOG_ID_MAX];
        jsonw_lit(&w, ",\"id\":");
        jsonw_str(&w, text, dlog_id_format(*id, text));
    }
    jsonw_lit(&w, "}}}");
    size_t len;
    const char *text = jsonw_text(&w, &len);
    sbuf *b = NULL;
    if (text) {
        uint8_t hdr[10];
        size_t hl = ws_frame_header_encode(hdr, WS_OP_TEXT, 1, len);
        b = sbuf_new(hl + len);
        if (b) {
            memcpy(b->data, hdr, hl);
            memcpy(b->data + hl, text, len);
        }
    }
    jsonw_free(&w);
    return b;
}

/* ---------- jobs ---------- */

static int hub_is_user(const struct conn *c, const hub_job *j)
{
    const pres_entry *p = c->pres;
    return p->hash == j->hash && p->appid == j->appid && p->idlen == j->uidlen &&
           memcmp(p->id, j->uid, j->uidlen) == 0;
}

static int hub_gate_check(hub_local *h, struct conn *c, const hub_job *j);

enum { HUB_GATE_PASS, HUB_GATE_DROPPED, HUB_GATE_HELD, HUB_GATE_UNCOUNTED };

/* One recipient: 1 if the push was sent to c (or dropped as one its
 * replay had). A push held at c's gate is not sent yet: 0, so the sender
 * does not move the cursor past it (the gate does, once it is sent). A
 * logged inbox push through an uncounted gate is sent and counts 0 too:
 * the replay of that login could not be read, so the cursor must stay
 * where it is (other pushes count as usual: they move no cursor). */
static int hub_deliver(hub_local *h, struct conn *c, const hub_job *j, ws_push *p)
{
    int g = h->ngates ? hub_gate_check(h, c, j) : HUB_GATE_PASS;
    if (g == HUB_GATE_UNCOUNTED) {
        (void)ws_session_send_push(c, p);    /* a failure closes c */
        return 0;
    }
    if (g != HUB_GATE_PASS)
        return g == HUB_GATE_DROPPED;
    return ws_session_send_push(c, p) == WS_SEND_OK;
}

static long hub_run_user(hub_local *h, hub_job *j, ws_push *p)
{
    long n = 0;
    struct conn *c = h->buckets[j->hash & h->mask];
    while (c) {
        struct conn *next = c->unext;        /* a failed send may unlink c */
        if (hub_is_user(c, j))
            n += hub_deliver(h, c, j, p);
        c = next;
    }
    return n;
}

static void hub_job_free(hub_job *j)
{
    sbuf_unref(j->frame);
    free(j);
}

static void hub_job_release(hub_job *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1)
        hub_job_free(j);
}

static void hub_job_done_task(struct worker *w, task *t)
{
    (void)w;
    hub_job *j = (hub_job *)((char *)t - offsetof(hub_job, done_task));
    j->done(j->ud, atomic_load(&j->delivered));
    hub_job_release(j);
}

/* One worker has run its share; the last one reports to the origin. */
static void hub_job_finish(struct worker *w, hub_job *j)
{
    if (atomic_fetch_sub_explicit(&j->pending, 1, memory_order_acq_rel) != 1)
        return;
    if (!j->done)
        hub_job_release(j);
    else if (w == j->origin || !j->origin)
        hub_job_done_task(w, &j->done_task);
    else
        worker_post(j->origin, &j->done_task);
}

/* ---------- room walks (im/fanout.h) ---------- */

static int hub_room_deliver(void *ud, struct conn *c, fanout_item *it)
{
    const hub_job *j = it->job;
    if (!c->pres || (j->uidlen && hub_is_user(c, j)))   /* gone meanwhile; the sender */
        return 0;
    return hub_deliver(ud, c, j, &it->push);
}

/* A push has reached every member here: the worker's share is over. */
static void hub_room_retire(void *ud, fanout_item *it)
{
    (void)ud;
    hub_job *j = it->job;
    struct worker *w = worker_self();
    if (w)
        atomic_fetch_sub_explicit(&w->stats.room_pending, 1, memory_order_relaxed);
    if (it->delivered) {                     /* counted once per push, not per recipient */
        atomic_fetch_add_explicit(&j->delivered, it->delivered, memory_order_relaxed);
        if (w)
            atomic_fetch_add_explicit(&w->stats.frames_out, it->delivered, memory_order_relaxed);
    }
    hub_job_release(j);
}

static size_t hub_room_walk(hub_local *h, int r, size_t max)
{
    size_t v = fanout_walk(&h->rooms[r], max, hub_room_deliver, hub_room_retire, h);
    if (!fanout_busy(&h->rooms[r]))
        h->busy &= ~(1ull << r);
    return v;
}

/* One slice of every busy room's walk, rooms in turn. 1 while work is left. */
static int hub_local_step(hub_local *h)
{
    size_t budget = HUB_WALK_SLICE;
    for (int k = 0; h->busy && budget && k < CONFIG_MAX_APPIDS; k++) {
        int r = (h->walk_next + k) % CONFIG_MAX_APPIDS;
        if (!(h->busy & (1ull << r)))
            continue;
        size_t v = hub_room_walk(h, r, budget);
        budget -= v < budget ? v : budget;
        h->walk_next = (r + 1) % CONFIG_MAX_APPIDS;
    }
    return h->busy != 0;
}

static void hub_local_flush(hub_local *h)
{
    for (int r = 0; r < CONFIG_MAX_APPIDS; r++)
        while (h->busy & (1ull << r))
            (void)hub_room_walk(h, r, (size_t)-1);
}

/* A room push joins this worker's walk of its room (done for the sender
 * once queued everywhere; the share ends when the walk has been round). */
static void hub_room_queue(struct worker *w, hub_job *j)
{
    hub_local *h = w->hub;
    int r = hub_room_index(j->appid);
    fanout *f = r >= 0 ? &h->rooms[r] : NULL;
    while (f && f->n >= FANOUT_MAX_PENDING)     /* the sender waits for a pass */
        (void)hub_room_walk(h, r, HUB_WALK_SLICE);
    int q = f ? fanout_add(f, j, j->frame) : 0;
    if (q < 0) {                                 /* no memory: the old way, in one go */
        while (h->busy & (1ull << r))
            (void)hub_room_walk(h, r, (size_t)-1);
        fanout_item it = { .job = j, .push = { .plain = j->frame } };
        for (struct conn *c = f->head, *next; c; c = next) {
            next = c->rnext;                     /* a failed send may unlink c */
            it.delivered += hub_room_deliver(h, c, &it);
        }
        ws_push_release(&it.push);
        atomic_fetch_add_explicit(&w->stats.room_pending, 1, memory_order_relaxed);
        hub_room_retire(h, &it);
    } else if (q == 0) {
        hub_job_release(j);                      /* nobody here */
    } else {
        h->busy |= 1ull << r;
        atomic_fetch_add_explicit(&w->stats.room_pending, 1, memory_order_relaxed);
        worker_defer(w);
    }
    hub_job_finish(w, j);
}

/* A kick's share: every connection of the user here (any room when
 * appid is 0) closed with HUB_KICK_CODE and the reason (j->frame). */
static long hub_run_kick(hub_local *h, hub_job *j)
{
    long n = 0;
    int all = j->appid == 0;
    for (int r = 0; r < (all ? g_node.cfg.appIDCount : 1); r++) {
        hub_job one = *j;                    /* the user's hash in this room */
        if (all) {
            one.appid = g_node.cfg.appIDs[r];
            one.hash = presence_hash(one.appid, j->uid, j->uidlen);
        }
        struct conn *c = h->buckets[one.hash & h->mask];
        while (c) {
            struct conn *next = c->unext;    /* the close unlinks c */
            if (hub_is_user(c, &one) && c->state == CONN_WS_OPEN) {
                ws_session_close(c, HUB_KICK_CODE, (const char *)j->frame->data);
                n++;
            }
            c = next;
        }
    }
    return n;
}

static void hub_slot_run(struct worker *w, task *t)
{
    hub_job *j = ((hub_slot *)t)->job;
    if (j->kind == HUB_ROOM) {
        hub_room_queue(w, j);
        return;
    }
    if (j->kind == HUB_KICK) {
        atomic_fetch_add_explicit(&j->delivered, hub_run_kick(w->hub, j), memory_order_relaxed);
        hub_job_finish(w, j);
        hub_job_release(j);
        return;
    }
    ws_push p = { .plain = j->frame };       /* this worker's share of the push */
    long n = hub_run_user(w->hub, j, &p);
    ws_push_release(&p);
    if (n) {                                 /* counted once per job, not per recipient */
        atomic_fetch_add_explicit(&j->delivered, n, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->stats.frames_out, n, memory_order_relaxed);
        if (j->logged == HUB_LOG_INBOX && !g_node.cfg.ackRequired && !hub_cluster) {
            dlog_key k = { j->appid, j->uid, j->uidlen };    /* pushed: the cursor moves */
            dlog_cursor_set(&k, j->id);
        }
    }
    hub_job_finish(w, j);
    hub_job_release(j);
}

static int hub_dispatch(enum hub_kind kind, uint32_t appid, const char *uid, size_t len,
                        sbuf *frame, const dlog_id *id, hub_done_fn done, void *ud)
{
    int n = workers_count();
    if (len >= PRESENCE_MAX_ID)
        len = PRESENCE_MAX_ID - 1;
    hub_job *j = calloc(1, sizeof(*j) + (size_t)n * sizeof(hub_slot));
    if (!j)
        return -1;
    atomic_init(&j->pending, n);
    atomic_init(&j->refs, n + 1);
    j->origin = worker_self();
    j->done = done;
    j->ud = ud;
    j->kind = kind;
    j->appid = appid;
    j->uidlen = (uint8_t)len;
    memcpy(j->uid, uid, len);
    j->hash = presence_hash(appid, uid, len);
    j->frame = sbuf_ref(frame);
    if (id) {
        j->logged = kind == HUB_USER ? HUB_LOG_INBOX : HUB_LOG_ROOM;
        j->id = *id;
    }
    j->done_task.run = hub_job_done_task;
    /* Every share, the origin's too, goes through the workers' inboxes, in
     * the order the sends were made: a login that hands its replay to its
     * worker under the same log lock (im/resume.c) is ordered with them,
     * and room walks never nest (an announcement may be triggered from
     * inside one). */
    for (int i = 0; i < n; i++) {
        j->slots[i].job = j;
        j->slots[i].t.run = hub_slot_run;
        worker_post(worker_at(i), &j->slots[i].t);
    }
    return 0;
}

int hub_send_user(uint32_t appid, const char *uid, size_t len, sbuf *frame,
                  hub_done_fn done, void *ud)
{
    return hub_dispatch(HUB_USER, appid, uid, len, frame, NULL, done, ud);
}

int hub_send_user_logged(uint32_t appid, const char *uid, size_t len, sbuf *frame,
                         const dlog_id *id, hub_done_fn done, void *ud)
{
    return hub_dispatch(HUB_USER, appid, uid, len, frame, id, done, ud);
}

int hub_send_room(uint32_t appid, const char *except, size_t len, sbuf *frame,
                  hub_done_fn done, void *ud)
{
    return hub_dispatch(HUB_ROOM, appid, except, len, frame, NULL, done, ud);
}

int hub_send_room_logged(uint32_t appid, const char *except, size_t len, sbuf *frame,
                         const dlog_id *id, hub_done_fn done, void *ud)
{
    return hub_dispatch(HUB_ROOM, appid, except, len, frame, id, done, ud);
}

int hub_kick_user(uint32_t appid, const char *uid, size_t len, const char *reason,
                  hub_done_fn done, void *ud)
{
    sbuf *r = sbuf_copy(reason, strlen(reason) + 1);     /* NUL-terminated */
    int rc = r ? hub_dispatch(HUB_KICK, appid, uid, len, r, NULL, done, ud) : -1;
    if (r)
        sbuf_unref(r);
    return rc;
}

long hub_room_users_count(int r)
{
    return r >= 0 && r < CONFIG_MAX_APPIDS ? atomic_load_explicit(&hub_room_users[r], memory_order_relaxed)
                                           : 0;
}

/* ---------- gates (see hub.h) ---------- */

/* A push held while its connection's replay is read. */
typedef struct hub_held {
    struct hub_held *next;
    sbuf *frame;
    uint8_t log;                    /* enum hub_log */
    dlog_id id;
} hub_held;

typedef struct hub_gate {
    struct hub_gate *next;          /* bucket chain */
    struct conn *c;
    int holding;                    /* the replay is being read */
    int uncounted;                  /* no replay could be read: pushes pass, counted as not delivered */
    uint64_t until;                 /* open: drop replayed ids until then (uv_now) */
    int has_inbox, has_room;
    dlog_id inbox_max, room_max;
    hub_held *held, **held_tail;
    uint32_t nheld;
} hub_gate;

static uint32_t hub_gate_slot(const hub_local *h, const struct conn *c)
{
    uintptr_t v = (uintptr_t)c >> 4;
    return (uint32_t)(v ^ (v >> 13)) & h->gmask;
}

static void hub_gate_free(hub_gate *g)
{
    while (g->held) {
        hub_held *x = g->held;
        g->held = x->next;
        sbuf_unref(x->frame);
        free(x);
    }
    free(g);
}

static void hub_gates_free(hub_local *h)
{
    for (uint32_t b = 0; h->gates && b <= h->gmask; b++)
        while (h->gates[b]) {
            hub_gate *g = h->gates[b];
            h->gates[b] = g->next;
            hub_gate_free(g);
        }
    free(h->gates);
    h->gates = NULL;
    h->ngates = 0;
}

/* Unlinks and frees *pp's gate. */
static void hub_gate_drop(hub_local *h, hub_gate **pp)
{
    hub_gate *g = *pp;
    *pp = g->next;
    hub_gate_free(g);
    h->ngates--;
}

/* The gate of c (NULL if none); an open gate past its time is dropped. */
static hub_gate **hub_gate_find(hub_local *h, const struct conn *c, uint64_t now)
{
    if (!h->gates)
        return NULL;
    for (hub_gate **pp = &h->gates[hub_gate_slot(h, c)]; *pp;) {
        hub_gate *g = *pp;
        if (!g->holding && !g->uncounted && g->until <= now) {
            hub_gate_drop(h, pp);
            continue;
        }
        if (g->c == c)
            return pp;
        pp = &g->next;
    }
    return NULL;
}

/* The worker's sweep: open gates past their time go (a quiet connection's
 * gate is never looked up again), and the table with the last of them. */
static void hub_local_sweep(hub_local *h, uint64_t now)
{
    for (uint32_t b = 0; h->gates && b <= h->gmask; b++)
        for (hub_gate **pp = &h->gates[b]; *pp;) {
            if (!(*pp)->holding && !(*pp)->uncounted && (*pp)->until <= now)
                hub_gate_drop(h, pp);
            else
                pp = &(*pp)->next;
        }
    if (h->gates && h->ngates == 0) {
        free(h->gates);
        h->gates = NULL;
        h->gmask = 0;
    }
}

static void hub_gates_grow(hub_local *h)
{
    uint32_t nmask = h->gates ? h->gmask * 2 + 1 : 63;
    hub_gate **nb = calloc((size_t)nmask + 1, sizeof(*nb));
    if (!nb)
        return;                              /* longer chains, still correct */
    uint32_t omask = h->gmask;
    hub_gate **old = h->gates;
    h->gates = nb;
    h->gmask = nmask;
    for (uint32_t b = 0; old && b <= omask; b++)
        while (old[b]) {
            hub_gate *g = old[b];
            old[b] = g->next;
            uint32_t i = hub_gate_slot(h, g->c);
            g->next = nb[i];
            nb[i] = g;
        }
    free(old);
}

/* Was this logged push in the replay of g's connection? */
static int hub_gate_replayed(const hub_gate *g, uint8_t log, dlog_id id)
{
    if (log == HUB_LOG_INBOX)
        return g->has_inbox && dlog_id_cmp(id, g->inbox_max) <= 0;
    if (log == HUB_LOG_ROOM)
        return g->has_room && dlog_id_cmp(id, g->room_max) <= 0;
    return 0;
}

/* What becomes of the push of j to c: HUB_GATE_PASS (send it), _DROPPED
 * (the replay had it), _HELD (kept, or c closed for holding too many). */
static int hub_gate_check(hub_local *h, struct conn *c, const hub_job *j)
{
    hub_gate **pp = hub_gate_find(h, c, uv_now(&conn_worker(c)->loop));
    if (!pp)
        return HUB_GATE_PASS;
    hub_gate *g = *pp;
    if (g->uncounted)              /* only an inbox push moves a cursor */
        return j->logged == HUB_LOG_INBOX ? HUB_GATE_UNCOUNTED : HUB_GATE_PASS;
    if (!g->holding)
        return hub_gate_replayed(g, j->logged, j->id) ? HUB_GATE_DROPPED : HUB_GATE_PASS;
    hub_held *x = g->nheld < HUB_GATE_MAX_HELD ? malloc(sizeof(*x)) : NULL;
    if (!x) {                                /* its client resumes from its last id */
        ws_session_close(c, 1008, "too many messages while logging in");
        return HUB_GATE_HELD;
    }
    x->next = NULL;
    x->frame = sbuf_ref(j->frame);
    x->log = j->logged;
    x->id = j->id;
    *g->held_tail = x;
    g->held_tail = &x->next;
    g->nheld++;
    return HUB_GATE_HELD;
}

int hub_gate_hold(struct conn *c)
{
    hub_local *h = conn_worker(c)->hub;
    if (hub_gate_find(h, c, uv_now(&conn_worker(c)->loop)))
        return -1;                           /* one login at a time */
    if (h->ngates >= (h->gates ? h->gmask + 1 : 0))
        hub_gates_grow(h);
    hub_gate *g = h->gates ? mem_zalloc(sizeof(*g)) : NULL;
    if (!g)
        return -1;
    g->c = c;
    g->holding = 1;
    g->held_tail = &g->held;
    uint32_t i = hub_gate_slot(h, c);
    g->next = h->gates[i];
    h->gates[i] = g;
    h->ngates++;
    return 0;
}

int hub_gate_open(struct conn *c, const dlog_id *inbox_max, const dlog_id *room_max,
                  uint32_t keep_ms, int uncounted, dlog_id *sent_inbox)
{
    hub_local *h = conn_worker(c)->hub;
    uint64_t now = uv_now(&conn_worker(c)->loop);
    hub_gate **pp = hub_gate_find(h, c, now);
    int sent = 0;
    if (!pp)
        return 0;
    hub_gate *g = *pp;
    g->holding = 0;
    g->uncounted = uncounted;
    g->until = now + keep_ms;
    if (inbox_max) {
        g->has_inbox = 1;
        g->inbox_max = *inbox_max;
    }
    if (room_max) {
        g->has_room = 1;
        g->room_max = *room_max;
    }
    hub_held *list = g->held;                /* sent in the order they came */
    hub_gate seen = *g;                      /* a failed send may end c, and its gate */
    g->held = NULL;
    g->held_tail = &g->held;
    g->nheld = 0;
    if (!g->has_inbox && !g->has_room && !uncounted)
        hub_gate_drop(h, pp);                /* nothing to filter later */
    while (list) {
        hub_held *x = list;
        list = x->next;
        if (!hub_gate_replayed(&seen, x->log, x->id) && c->state == CONN_WS_OPEN) {
            ws_push p = { .plain = x->frame };
            int ok = ws_session_send_push(c, &p) == WS_SEND_OK;   /* a failure closes c */
            ws_push_release(&p);
            if (ok && !uncounted && x->log == HUB_LOG_INBOX &&
                (!sent || dlog_id_cmp(x->id, *sent_inbox) > 0)) {
                *sent_inbox = x->id;
                sent = 1;
            }
        }
        sbuf_unref(x->frame);
        free(x);
    }
    return sent;
}

int hub_gate_uncounted(struct conn *c)
{
    hub_local *h = conn_worker(c)->hub;
    hub_gate **pp = h->ngates ? hub_gate_find(h, c, uv_now(&conn_worker(c)->loop)) : NULL;
    return pp && (*pp)->uncounted;
}

/* ---------- attach / detach ---------- */

/* Whether enter/exit are announced in room r: not in a big room, so a big
 * push-only audience does not cost N² frames (im.presenceEventsMaxRoom). */
static int hub_announces(int r)
{
    long max = g_node.cfg.presenceEventsMaxRoom;
    return max <= 0 || atomic_load_explicit(&hub_room_users[r], memory_order_relaxed) <= max;
}

void hub_announce(const char *cmd, uint32_t appid, const char *uid, size_t len)
{
    int r = hub_room_index(appid);
    if (r < 0 || !hub_announces(r))
        return;
    char seq[32];
    int sl = snprintf(seq, sizeof(seq), "%ld", (long)time(NULL));
    sbuf *f = hub_push_frame(seq, (size_t)sl, cmd, "", 0, uid, len);
    if (!f)
        return;
    if (hub_send_room(appid, uid, len, f, NULL, NULL) != 0)
        log_warn("hub: cannot announce %s of %.*s", cmd, (int)len, uid);
    sbuf_unref(f);
}

/* What the presence edges need to know about the connection (hub_attach). */
typedef struct hub_edge {
    int room;
    const struct conn *c;
} hub_edge;

/* The client's IPv4 address for the cluster presence record. */
static void hub_note_client(pres_entry *e, const struct conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        e->client_ip4 = in->sin_addr.s_addr;
        e->client_port = ntohs(in->sin_port);
    }
}

/* presence changes, run under the user's stripe lock (see presence.h): the
 * room here and, in cluster mode, Redis and the other nodes hear of them in
 * the order they happen. In cluster mode enter/exit are announced later, by
 * cluster/unodes.c, and only for the user's first connection in the cluster
 * and after its last one (SPEC §7.2). */
static void hub_on_acquire(pres_entry *e, void *ud)
{
    hub_edge *x = ud;
    if (e->conns != 1) {                      /* one more tab of a user already here */
        if (hub_cluster)
            hub_cluster->count(e);
        return;
    }
    atomic_fetch_add_explicit(&hub_room_users[x->room], 1, memory_order_relaxed);
    if (!hub_cluster) {
        hub_announce("enter", e->appid, e->id, e->idlen);
        return;
    }
    hub_note_client(e, x->c);
    hub_cluster->join(e, hub_announces(x->room));
}

static void hub_on_release(pres_entry *e, void *ud)
{
    hub_edge *x = ud;
    if (e->conns != 0) {
        if (hub_cluster)
            hub_cluster->count(e);
        return;
    }
    if (hub_cluster)
        hub_cluster->leave(e, hub_announces(x->room));
    else
        hub_announce("exit", e->appid, e->id, e->idlen);
    atomic_fetch_sub_explicit(&hub_room_users[x->room], 1, memory_order_relaxed);
}

void hub_heartbeat(struct conn *c, uint32_t now)
{
    uint32_t prev = presence_heartbeat(c->pres, now);
    if (hub_cluster)
        hub_cluster->heartbeat(c->pres, prev);
}

int hub_attach(struct conn *c, uint32_t appid, const char *uid, size_t len, int *first)
{
    int r = hub_room_index(appid);
    if (r < 0)
        return -1;
    hub_edge x = { .room = r, .c = c };
    pres_entry *p = presence_acquire(appid, uid, len, first, hub_on_acquire, &x);
    if (!p)
        return -1;
    struct worker *w = conn_worker(c);
    c->pres = p;
    c->room = (uint8_t)r;
    hub_link(w->hub, c);
    atomic_fetch_add_explicit(&w->stats.logged_in, 1, memory_order_relaxed);
    return 0;
}

void hub_detach(struct conn *c)
{
    pres_entry *p = c->pres;
    if (!p)
        return;
    struct worker *w = conn_worker(c);
    if (w->hub->leaving == c)
        return;                                  /* a send in hub_unlink failed: it goes on */
    hub_edge x = { .room = c->room, .c = c };
    w->hub->leaving = c;
    hub_unlink(w->hub, c);
    w->hub->leaving = NULL;
    hub_gate **g = w->hub->ngates ? hub_gate_find(w->hub, c, uv_now(&w->loop)) : NULL;
    if (g)
        hub_gate_drop(w->hub, g);
    c->pres = NULL;
    atomic_fetch_sub_explicit(&w->stats.logged_in, 1, memory_order_relaxed);
    presence_release(p, hub_on_release, &x);     /* p may be gone now */
}
