/* test_dedup.c — msgID de-duplication: reserve / in flight / commit /
 * release by ticket, empty msgIDs, expiry after the TTL, the entry and byte
 * bounds, reservations in flight never evicted, stale tickets harmless. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "im/dedup.h"

#define ID(s) (s), strlen(s)
#define BIG ((size_t)1 << 30)

static int setup(void **state)
{
    (void)state;
    return dedup_init(100, 3, BIG);     /* TTL 100 s, at most 3 entries */
}

static int teardown(void **state)
{
    (void)state;
    dedup_free();
    return 0;
}

/* Bytes an empty store holds (the hash table). */
static size_t empty_bytes(void)
{
    assert_int_equal(dedup_init(100, 1000, BIG), 0);
    size_t n = dedup_bytes();
    dedup_free();
    return n;
}

/* Reserves id at `now` (must be new) and commits it. */
static void accept_id(const char *id, uint32_t now)
{
    dedup_ticket t;
    assert_int_equal(dedup_reserve(id, strlen(id), now, &t), DEDUP_NEW);
    dedup_commit(&t, now);
}

static void test_states(void **state)
{
    (void)state;
    dedup_ticket t1, t2, t;
    assert_int_equal(dedup_reserve(ID("m1"), 1000, &t1), DEDUP_NEW);      /* in flight */
    assert_int_equal(dedup_reserve(ID("m1"), 1000, &t), DEDUP_IN_FLIGHT); /* a retry meanwhile */
    dedup_commit(&t1, 1000);
    assert_int_equal(dedup_reserve(ID("m1"), 1001, &t), DEDUP_DUP);       /* accepted */
    assert_int_equal(dedup_reserve(ID("m2"), 1001, &t2), DEDUP_NEW);
    dedup_release(&t2);                                                   /* not accepted */
    assert_int_equal(dedup_reserve(ID("m2"), 1002, &t), DEDUP_NEW);       /* the retry goes out */
    assert_int_equal(dedup_count(), 2);
}

static void test_empty_never_duplicate(void **state)
{
    (void)state;
    dedup_ticket t;
    assert_int_equal(dedup_reserve("", 0, 1000, &t), DEDUP_NEW);
    assert_true(t.gen == 0);
    dedup_commit(&t, 1000);
    assert_int_equal(dedup_reserve("", 0, 1000, &t), DEDUP_NEW);
    assert_int_equal(dedup_count(), 0);
}

/* The TTL counts from acceptance (commit), as "accepted in the last TTL". */
static void test_expiry(void **state)
{
    (void)state;
    dedup_ticket t;
    assert_int_equal(dedup_reserve(ID("old"), 1000, &t), DEDUP_NEW);
    dedup_commit(&t, 1010);
    assert_int_equal(dedup_reserve(ID("old"), 1109, &t), DEDUP_DUP);      /* inside the TTL */
    assert_int_equal(dedup_reserve(ID("old"), 1110, &t), DEDUP_NEW);      /* over: new again */
}

static void test_bounded_by_count(void **state)
{
    (void)state;
    char id[16];
    dedup_ticket t;
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "k%d", i);
        accept_id(id, 1000);
    }
    assert_int_equal(dedup_count(), 3);                                   /* the oldest were forgotten */
    assert_int_equal(dedup_reserve(ID("k9"), 1000, &t), DEDUP_DUP);
    assert_int_equal(dedup_reserve(ID("k0"), 1000, &t), DEDUP_NEW);
}

/* 255-byte msgIDs under a byte bound of the table + 5 entries: never more
 * than 5 entries and never more bytes than the bound; the newest stay. */
static void test_bounded_by_bytes(void **state)
{
    (void)state;
    char id[256];
    dedup_ticket t;
    size_t cost = dedup_entry_bytes(255), cap = empty_bytes() + 5 * cost;
    assert_true(cost >= 255 + 8);
    assert_int_equal(dedup_init(100, 1000000, cap), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "%0255d", i);
        accept_id(id, 1000);
        assert_true(dedup_bytes() <= cap);
    }
    assert_int_equal(dedup_count(), 5);
    assert_int_equal(dedup_bytes(), cap);
    snprintf(id, sizeof(id), "%0255d", 99);
    assert_int_equal(dedup_reserve(id, 255, 1000, &t), DEDUP_DUP);        /* newest kept */
    snprintf(id, sizeof(id), "%0255d", 94);
    assert_int_equal(dedup_reserve(id, 255, 1000, &t), DEDUP_NEW);        /* oldest forgotten */
    assert_true(dedup_bytes() <= cap);
}

/* A full store forgets accepted msgIDs, never a reservation in flight; when
 * only reservations in flight are left, a new one is refused (DEDUP_FULL). */
static void test_in_flight_never_evicted(void **state)
{
    (void)state;
    dedup_ticket a, b, c, t;
    assert_int_equal(dedup_reserve(ID("a"), 1000, &a), DEDUP_NEW);        /* oldest, in flight */
    accept_id("x", 1000);
    assert_int_equal(dedup_reserve(ID("b"), 1000, &b), DEDUP_NEW);
    assert_int_equal(dedup_reserve(ID("c"), 1000, &c), DEDUP_NEW);        /* evicts x, not a */
    assert_int_equal(dedup_reserve(ID("a"), 1000, &t), DEDUP_IN_FLIGHT);
    assert_int_equal(dedup_reserve(ID("x"), 1000, &t), DEDUP_FULL);       /* a, b, c in flight */
    assert_int_equal(dedup_count(), 3);
    dedup_commit(&a, 1000);
    dedup_release(&b);
    assert_int_equal(dedup_reserve(ID("a"), 1000, &t), DEDUP_DUP);        /* a's outcome kept */
    dedup_release(&c);
}

/* The same under the byte bound, and in flight past the TTL. */
static void test_in_flight_survives_byte_bound_and_ttl(void **state)
{
    (void)state;
    char id[256];
    dedup_ticket first, t;
    size_t cap = empty_bytes() + 3 * dedup_entry_bytes(255);
    assert_int_equal(dedup_init(10, 1000000, cap), 0);
    snprintf(id, sizeof(id), "%0255d", 0);
    assert_int_equal(dedup_reserve(id, 255, 1000, &first), DEDUP_NEW);
    for (int i = 1; i < 50; i++) {
        char other[256];
        snprintf(other, sizeof(other), "%0255d", i);
        accept_id(other, 1000 + (uint32_t)i);                             /* TTL 10 s passes */
        assert_int_equal(dedup_reserve(id, 255, 1000 + (uint32_t)i, &t), DEDUP_IN_FLIGHT);
    }
    assert_true(dedup_bytes() <= cap);
    dedup_commit(&first, 1050);
    assert_int_equal(dedup_reserve(id, 255, 1059, &t), DEDUP_DUP);
}

/* An old send's ticket never touches a newer reservation of its msgID. */
static void test_stale_ticket_keeps_newer_reservation(void **state)
{
    (void)state;
    dedup_ticket old, newer, t;
    assert_int_equal(dedup_reserve(ID("m"), 1000, &old), DEDUP_NEW);
    dedup_release(&old);                                                  /* not delivered */
    assert_int_equal(dedup_reserve(ID("m"), 1000, &newer), DEDUP_NEW);    /* the retry */
    dedup_release(&old);                                                  /* stale: no effect */
    assert_int_equal(dedup_reserve(ID("m"), 1000, &t), DEDUP_IN_FLIGHT);
    dedup_commit(&old, 1000);                                             /* stale: no effect */
    assert_int_equal(dedup_reserve(ID("m"), 1000, &t), DEDUP_IN_FLIGHT);
    dedup_commit(&newer, 1000);
    dedup_release(&newer);                                                /* after commit: none */
    assert_int_equal(dedup_reserve(ID("m"), 1000, &t), DEDUP_DUP);
    assert_int_equal(dedup_count(), 1);
}

/* An expired msgID that is reserved again: the first send's late release
 * (its ticket) does not delete the new reservation. */
static void test_stale_ticket_after_expiry(void **state)
{
    (void)state;
    dedup_ticket old, newer, t;
    assert_int_equal(dedup_reserve(ID("m"), 1000, &old), DEDUP_NEW);
    dedup_commit(&old, 1000);
    assert_int_equal(dedup_reserve(ID("m"), 1100, &newer), DEDUP_NEW);    /* expired: new */
    dedup_release(&old);
    assert_int_equal(dedup_reserve(ID("m"), 1100, &t), DEDUP_IN_FLIGHT);
    dedup_release(&newer);
    assert_int_equal(dedup_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_never_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_by_count, setup, teardown),
        cmocka_unit_test_teardown(test_bounded_by_bytes, teardown),
        cmocka_unit_test_setup_teardown(test_in_flight_never_evicted, setup, teardown),
        cmocka_unit_test_teardown(test_in_flight_survives_byte_bound_and_ttl, teardown),
        cmocka_unit_test_setup_teardown(test_stale_ticket_keeps_newer_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_ticket_after_expiry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
