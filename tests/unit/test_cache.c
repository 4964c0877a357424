/* test_cache.c: the response cache (src/cache.c): hits and misses, the byte bound under a
 * flood of keys (CLOCK keeps referenced entries), exact invalidation (a write, a newer
 * version, a lost listener), fills begun before an invalidation store nothing, single flight
 * (waiters get the leader's answer), and the gzip helpers (src/deflate.c). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <zlib.h>

#include "cache.h"
#include "siphash.h"
#include "deflate.h"

static void fill(struct cache *c, const char *key, const char *body, int64_t version)
{
    struct cache_ticket t;
    assert_true(cache_fill_begin(c, key, 0, &t));
    cache_fill_end(c, &t, body, strlen(body), NULL, 0, version);
}

/* The body for key, or NULL on a miss (caller frees). */
static char *get(struct cache *c, const char *key)
{
    char *body = NULL;
    size_t len = 0;
    bool gz = false;
    int64_t v = 0;
    return cache_get(c, key, false, &body, &len, &gz, &v) ? body : NULL;
}

static void test_hit_miss_and_liveness(void **state)
{
    (void)state;
    struct cache *c = cache_new(1 << 20);
    fill(c, "a", "A", 5); /* not live: nothing is stored */
    assert_null(get(c, "a"));
    cache_set_live(c, true, 5);
    assert_int_equal(cache_version(c), 5);
    fill(c, "a", "A", 5);
    char *b = get(c, "a");
    assert_non_null(b);
    assert_string_equal(b, "A");
    free(b);
    assert_null(get(c, "b"));
    struct cache_stats s;
    cache_stats(c, &s);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.entries, 1);
    /* A lost listener drops everything and serves nothing until live again. */
    cache_set_live(c, false, 0);
    assert_null(get(c, "a"));
    assert_int_equal(cache_version(c), 0);
    cache_stats(c, &s);
    assert_int_equal(s.resets, 1);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    /* Back after a failover that lost commits: the lower version is the one to fill at. */
    cache_set_live(c, true, 3);
    assert_int_equal(cache_version(c), 3);
    fill(c, "a", "A3", 3);
    b = get(c, "a");
    assert_non_null(b);
    assert_string_equal(b, "A3");
    free(b);
    cache_free(c);
}

static void test_newer_version_and_write_invalidate(void **state)
{
    (void)state;
    struct cache *c = cache_new(1 << 20);
    cache_set_live(c, true, 1);
    fill(c, "a", "old", 1);
    cache_note_version(c, 2); /* a NOTIFY: the entry at 1 is stale */
    assert_null(get(c, "a"));
    fill(c, "a", "older", 1); /* a lagging replica's answer is not stored */
    assert_null(get(c, "a"));
    fill(c, "a", "new", 2);
    char *b = get(c, "a");
    assert_string_equal(b, "new");
    free(b);
    /* A fill begun before a local write stores nothing, even at the newest version. */
    struct cache_ticket t;
    assert_true(cache_fill_begin(c, "b", 0, &t));
    cache_invalidate(c);
    assert_null(get(c, "a"));
    cache_fill_end(c, &t, "B", 1, NULL, 0, 2);
    assert_null(get(c, "b"));
    /* After the write, only a fill from the primary is stored, then replicas' again. */
    assert_true(cache_needs_primary(c));
    fill(c, "b", "replica", 2);
    assert_null(get(c, "b"));
    assert_true(cache_fill_begin(c, "b", 0, &t));
    cache_fill_primary(&t);
    cache_fill_end(c, &t, "primary", 7, NULL, 0, 3);
    assert_false(cache_needs_primary(c));
    b = get(c, "b");
    assert_string_equal(b, "primary");
    free(b);
    fill(c, "c", "behind", 2); /* below the primary's 3 */
    assert_null(get(c, "c"));
    cache_free(c);
}

static void test_byte_bound_under_a_flood(void **state)
{
    (void)state;
    const size_t max = 64 * 1024;
    struct cache *c = cache_new(max);
    cache_set_live(c, true, 1);
    char body[1000];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    fill(c, "hot", body, 1);
    for (int i = 0; i < 5000; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        fill(c, key, body, 1);
        struct cache_stats s;
        cache_stats(c, &s);
        assert_true(s.bytes <= max);
        if (i % 10 == 0) { /* the hot key is read often: CLOCK keeps it */
            char *b = get(c, "hot");
            assert_non_null(b);
            free(b);
        }
    }
    struct cache_stats s;
    cache_stats(c, &s);
    assert_true(s.evictions > 4000);
    assert_true(s.entries > 10 && s.entries < 70);
    /* An answer larger than the bound is never stored. */
    char *big = malloc(max + 1);
    memset(big, 'y', max);
    big[max] = '\0';
    fill(c, "big", big, 1);
    assert_null(get(c, "big"));
    free(big);
    cache_free(c);
}

/* SipHash-2-4's vectors from the paper (key 00..0f, message 00..len-1). */
static void test_siphash_vectors(void **state)
{
    (void)state;
    uint8_t key[16], msg[16];
    for (int i = 0; i < 16; i++)
        key[i] = msg[i] = (uint8_t)i;
    assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
    assert_true(siphash24(key, msg, 1) == 0x74f839c593dc67fdull);
    assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
    key[0] ^= 1; /* another key, another hash */
    assert_true(siphash24(key, msg, 15) != 0xa129ca6149be45e5ull);
}

/* The table grows with its entries (no fixed 4,096 chains to aim at), every entry stays
 * reachable across the growth, and one invalidation empties it. */
static void test_table_grows_and_clears(void **state)
{
    (void)state;
    struct cache *c = cache_new((size_t)64 * 1024 * 1024);
    cache_set_live(c, true, 1);
    struct cache_stats s;
    cache_stats(c, &s);
    uint64_t first = s.buckets;
    for (int i = 0; i < 20000; i++) {
        char key[32];
        snprintf(key, sizeof key, "r|%d", i);
        fill(c, key, "v", 1);
    }
    cache_stats(c, &s);
    assert_int_equal(s.entries, 20000);
    assert_true(s.buckets >= 16384 && s.buckets > first);
    for (int i = 0; i < 20000; i += 997) {
        char key[32];
        snprintf(key, sizeof key, "r|%d", i);
        char *b = get(c, key);
        assert_non_null(b);
        free(b);
    }
    cache_invalidate(c);
    cache_stats(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    assert_null(get(c, "r|5"));
    cache_free(c);
}

/* A large one-off answer (over 1/64 of the cache and 64 KiB) is not stored on its first fill;
 * the same key filled again is; small answers are stored at once. A flood of distinct huge
 * answers then leaves the small hot entries in place. */
static void test_large_answers_are_admitted_on_their_second_fill(void **state)
{
    (void)state;
    const size_t max = 16 * 1024 * 1024;
    struct cache *c = cache_new(max);
    cache_set_live(c, true, 1);
    fill(c, "hot", "small", 1);
    char *big = malloc(2 * 1024 * 1024 + 1);
    memset(big, 'z', 2 * 1024 * 1024);
    big[2 * 1024 * 1024] = '\0';
    for (int i = 0; i < 40; i++) { /* 80 MB of one-off answers into a 16 MB cache */
        char key[32];
        snprintf(key, sizeof key, "huge%d", i);
        fill(c, key, big, 1);
        assert_null(get(c, key));
    }
    char *b = get(c, "hot");
    assert_non_null(b);
    free(b);
    struct cache_stats s;
    cache_stats(c, &s);
    assert_int_equal(s.admission_skips, 40);
    assert_int_equal(s.evictions, 0);
    /* Asked twice in a row: the second fill is stored (it pays to keep). */
    fill(c, "again", big, 1);
    assert_null(get(c, "again"));
    fill(c, "again", big, 1);
    b = get(c, "again");
    assert_non_null(b);
    free(b);
    free(big);
    cache_free(c);
}

struct flight_arg {
    struct cache *c;
    int led;
    char *got;
};

static void *flight_waiter(void *p)
{
    struct flight_arg *a = p;
    struct cache_ticket t;
    if (cache_fill_begin(a->c, "k", 5000, &t)) {
        a->led = 1;
        cache_fill_end(a->c, &t, "mine", 4, NULL, 0, 1);
    }
    a->got = get(a->c, "k");
    return NULL;
}

static void test_single_flight(void **state)
{
    (void)state;
    struct cache *c = cache_new(1 << 20);
    cache_set_live(c, true, 1);
    struct cache_ticket lead;
    assert_true(cache_fill_begin(c, "k", 5000, &lead));
    enum { N = 8 };
    pthread_t th[N];
    struct flight_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct flight_arg){ .c = c };
        pthread_create(&th[i], NULL, flight_waiter, &args[i]);
    }
    /* Let them queue behind the leader (bounded: 2 s). */
    for (int i = 0; i < 200; i++) {
        struct cache_stats s;
        cache_stats(c, &s);
        if (s.waits == N)
            break;
        nanosleep(&(struct timespec){ .tv_nsec = 10000000L }, NULL);
    }
    cache_fill_end(c, &lead, "leader", 6, NULL, 0, 1);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].led, 0);
        assert_non_null(args[i].got);
        assert_string_equal(args[i].got, "leader");
        free(args[i].got);
    }
    struct cache_stats s;
    cache_stats(c, &s);
    assert_int_equal(s.waits, N);
    assert_int_equal(s.fills, 1);
    cache_free(c);
}

static void test_gzip_helpers(void **state)
{
    (void)state;
    char in[4000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = "{\"rates\": [null, 1.5]}"[i % 22];
    size_t n = 0;
    char *gz = deflate_gzip(in, sizeof in, &n);
    assert_non_null(gz);
    assert_true(n < sizeof in / 4);
    assert_int_equal((unsigned char)gz[0], 0x1f);
    assert_int_equal((unsigned char)gz[1], 0x8b);
    char out[5000];
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 31), Z_OK);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = sizeof out;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, sizeof in);
    assert_memory_equal(out, in, sizeof in);
    inflateEnd(&z);
    free(gz);
    assert_null(deflate_gzip("ab", 2, &n)); /* no smaller: not worth it */
    assert_true(deflate_accepts_gzip("gzip"));
    assert_true(deflate_accepts_gzip("br;q=1.0, gzip;q=0.5"));
    assert_true(deflate_accepts_gzip("deflate, *"));
    assert_false(deflate_accepts_gzip("gzip;q=0"));
    assert_false(deflate_accepts_gzip("identity"));
    assert_false(deflate_accepts_gzip("gzipx"));
    assert_false(deflate_accepts_gzip(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_and_liveness),
        cmocka_unit_test(test_newer_version_and_write_invalidate),
        cmocka_unit_test(test_byte_bound_under_a_flood),
        cmocka_unit_test(test_single_flight),
        cmocka_unit_test(test_gzip_helpers),
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_table_grows_and_clears),
        cmocka_unit_test(test_large_answers_are_admitted_on_their_second_fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
