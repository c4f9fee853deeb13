/* test_fanout.c — a room's walk (im/fanout.h): each member gets each push
 * that came while it was in the room exactly once and in order; pushes that
 * came since a member's last visit are handed over together (coalescing);
 * a push retires once nobody lacks it; members joining (only newer pushes),
 * leaving (markers move; an open member leaving first gets what it lacks).
 * A random run checks all of it against a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "im/fanout.h"
#include "net/conn.h"

#define MAXM 64
#define MAXP 4096

typedef struct model {
    conn m[MAXM];
    int in[MAXM];               /* in the room */
    long join[MAXM];            /* first push seq it must get */
    long got[MAXM][64];         /* the last few seqs received, for order checks */
    long ngot[MAXM], last[MAXM];
    long retired[MAXP];         /* deliveries counted at retirement; -1: pending */
    long seqs;                  /* pushes added */
    long visits;                /* deliver calls in a row for one member (coalescing) */
    int prev;                   /* member of the previous deliver call */
    long runs;                  /* deliver calls that continued a run */
    fanout f;
} model;

static int deliver(void *ud, conn *c, fanout_item *it)
{
    model *x = ud;
    int i = (int)(c - x->m);
    long seq = (long)(intptr_t)it->job;
    assert_true(i >= 0 && i < MAXM);
    assert_true(x->in[i]);
    assert_int_equal(x->retired[seq], -1);           /* never after it retired */
    assert_int_equal(seq, x->last[i] + 1);          /* in order, none skipped */
    assert_true(seq >= x->join[i]);
    x->last[i] = seq;
    x->got[i][x->ngot[i]++ % 64] = seq;
    if (x->prev == i)
        x->runs++;
    x->prev = i;
    return 1;
}

static void retire(void *ud, fanout_item *it)
{
    model *x = ud;
    long seq = (long)(intptr_t)it->job;
    assert_int_equal(x->retired[seq], -1);
    x->retired[seq] = it->delivered;
    for (int i = 0; i < MAXM; i++)                  /* every member here had it */
        if (x->in[i] && x->join[i] <= seq)
            assert_true(x->last[i] >= seq);
    sbuf_unref(it->push.plain);
}

static model *model_new(void)
{
    model *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    memset(x->retired, 0xff, sizeof(x->retired));
    x->prev = -1;
    return x;
}

static void join(model *x, int i)
{
    x->in[i] = 1;
    x->join[i] = x->seqs;
    x->last[i] = x->seqs - 1;
    fanout_join(&x->f, &x->m[i]);
}

static void leave(model *x, int i, int open)
{
    fanout_leave(&x->f, &x->m[i], open, deliver, x);
    if (open)
        assert_int_equal(x->last[i], x->seqs - 1);    /* nothing missed */
    x->in[i] = 0;
}

static int add(model *x)
{
    long seq = x->seqs;
    sbuf *b = sbuf_new(8);
    assert_non_null(b);
    int r = fanout_add(&x->f, (void *)(intptr_t)seq, b);
    assert_true(r >= 0);
    x->seqs++;
    if (r == 0) {                                    /* empty room */
        x->retired[seq] = 0;
        sbuf_unref(b);
    }
    return r;
}

static size_t walk(model *x, size_t max)
{
    x->prev = -1;
    return fanout_walk(&x->f, max, deliver, retire, x);
}

static void model_free(model *x)
{
    fanout_clear(&x->f, retire, x);
    for (long s = 0; s < x->seqs; s++)
        assert_true(x->retired[s] >= 0);
    free(x);
}

static void test_one_pass(void **state)
{
    (void)state;
    model *x = model_new();
    for (int i = 0; i < 5; i++)
        join(x, i);
    assert_int_equal(add(x), 1);
    assert_int_equal(walk(x, 100), 5);
    assert_false(fanout_busy(&x->f));
    assert_int_equal(x->retired[0], 5);
    assert_int_equal(walk(x, 100), 0);                /* idle: nothing to visit */
    model_free(x);
}

/* A push that comes during a pass reaches the rest of this pass and the
 * visited members at their next visit, together with anything newer. */
static void test_coalesce(void **state)
{
    (void)state;
    model *x = model_new();
    for (int i = 0; i < 4; i++)
        join(x, i);
    add(x);                                          /* A */
    assert_int_equal(walk(x, 2), 2);                 /* 0, 1 get A */
    add(x);                                          /* B */
    add(x);                                          /* C */
    assert_int_equal(walk(x, 2), 2);                 /* 2, 3 get A B C each in a row */
    assert_int_equal(x->runs, 4);
    assert_int_equal(x->retired[0], 4);              /* A: everyone */
    assert_int_equal(x->retired[1], -1);
    assert_int_equal(walk(x, 100), 2);               /* 0, 1 get B C */
    assert_int_equal(x->retired[1], 4);
    assert_int_equal(x->retired[2], 4);
    assert_false(fanout_busy(&x->f));
    model_free(x);
}

static void test_join_leave(void **state)
{
    (void)state;
    model *x = model_new();
    assert_int_equal(add(x), 0);                     /* empty room: nothing pending */
    for (int i = 0; i < 3; i++)
        join(x, i);
    add(x);                                          /* 1: for 0, 1, 2 */
    join(x, 3);                                      /* not for 3 */
    leave(x, 2, 0);                                  /* the marker leaves: now 1 */
    assert_int_equal(walk(x, 2), 2);                 /* 0, 1: push 1 done */
    assert_int_equal(x->retired[1], 2);
    add(x);                                          /* 2: for 3, 0, 1 */
    leave(x, 3, 1);                                  /* open: gets 2 first */
    assert_int_equal(x->last[3], 2);
    leave(x, 0, 0);                                  /* the head leaves */
    leave(x, 1, 0);                                  /* the marker, now head: done */
    assert_true(fanout_busy(&x->f));
    assert_int_equal(walk(x, 100), 0);               /* retired without a visit */
    assert_false(fanout_busy(&x->f));
    assert_int_equal(x->retired[2], 1);
    model_free(x);
}

/* Random joins, leaves (open or closed), pushes and walks of random
 * length, checked by deliver/retire against the model; a final full walk
 * leaves every member with every push since it joined. */
static void test_random(void **state)
{
    (void)state;
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        model *x = model_new();
        for (int step = 0; step < 300 && x->seqs < MAXP - 1; step++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 8) % 100, i = (seed >> 16) % MAXM;
            if (r < 25 && !x->in[i])
                join(x, (int)i);
            else if (r < 35 && x->in[i])
                leave(x, (int)i, (seed >> 4) & 1);
            else if (r < 65 && x->f.n < FANOUT_MAX_PENDING)
                add(x);
            else
                walk(x, (seed >> 20) % 40);
        }
        while (fanout_busy(&x->f))
            walk(x, 7);
        for (int i = 0; i < MAXM; i++)
            if (x->in[i])
                assert_int_equal(x->last[i], x->seqs - 1);
        model_free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_pass),
        cmocka_unit_test(test_coalesce),
        cmocka_unit_test(test_join_leave),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
