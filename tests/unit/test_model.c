/* test_model.c: the read model's store (src/model.c, src/model_nodes.c, src/model_build.c):
 * the node map, apply and read against a brute-force oracle over random batches and
 * retractions, refusal of changes that do not fit (nothing changes), replace, atomic
 * visibility of a batch to concurrent readers, and the builder of a whole model from raw
 * prices (dense and sparse pairs) against apply. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model.h"
#include "model_build.h"

/* The tree: world > {asia > {china > {CNSHA, CNNGB}, KRPUS}, europe > {NLRTM, DEHAM}}.
 * Each port lists itself and every region above it, as rates_nodes does. */
static const char *const tree[][4] = {
    { "CNSHA", "china", "asia", "world" }, { "CNNGB", "china", "asia", "world" },
    { "KRPUS", "asia", "world", NULL },    { "NLRTM", "europe", "world", NULL },
    { "DEHAM", "europe", "world", NULL },
};
#define NPORTS 5
static const char *const names[] = { "CNSHA", "CNNGB", "KRPUS",  "NLRTM", "DEHAM",
                                     "china", "asia",  "europe", "world" };
#define NNAMES 9

static struct model_nodes *tree_nodes(void)
{
    struct model_nodes *n = model_nodes_new();
    assert_non_null(n);
    for (int p = 0; p < NPORTS; p++) {
        const char *code = tree[p][0];
        assert_int_equal(model_nodes_add(n, code, strlen(code), code, strlen(code)), 0);
        for (int k = 1; k < 4 && tree[p][k]; k++) {
            assert_int_equal(model_nodes_add(n, code, strlen(code), tree[p][k], strlen(tree[p][k])),
                             0);
            /* duplicates are ignored */
            assert_int_equal(model_nodes_add(n, code, strlen(code), tree[p][k], strlen(tree[p][k])),
                             0);
        }
    }
    assert_int_equal(model_nodes_finish(n), 0);
    return n;
}

static bool under(int port, const char *node)
{
    for (int k = 0; k < 4 && tree[port][k]; k++)
        if (strcmp(tree[port][k], node) == 0)
            return true;
    return false;
}

static uint32_t port_id(const struct model *m, int port)
{
    int64_t id = model_port_id(m, tree[port][0], strlen(tree[port][0]));
    assert_true(id >= 0);
    return (uint32_t)id;
}

static void test_node_map(void **state)
{
    (void)state;
    struct model_nodes *n = tree_nodes();
    assert_int_equal(model_nodes_count(n), NNAMES);
    for (int p = 0; p < NPORTS; p++) {
        int64_t id = model_nodes_find(n, tree[p][0], strlen(tree[p][0]));
        assert_true(id >= 0);
        size_t count;
        const uint32_t *list = model_nodes_of(n, (uint32_t)id, &count);
        size_t want = 0;
        while (want < 4 && tree[p][want])
            want++;
        assert_int_equal(count, want);
        assert_int_equal(list[0], (uint32_t)id); /* itself first */
    }
    size_t count = 99;
    int64_t asia = model_nodes_find(n, "asia", 4);
    assert_true(asia >= 0);
    (void)model_nodes_of(n, (uint32_t)asia, &count);
    assert_int_equal(count, 0); /* a region is not a port */
    assert_int_equal(model_nodes_find(n, "nowhere", 7), -1);
    assert_int_equal(model_nodes_find(n, "CNSH", 4), -1);
    char big[MODEL_NAME_MAX + 2];
    memset(big, 'x', sizeof big);
    struct model_nodes *n2 = model_nodes_new();
    assert_int_equal(model_nodes_add(n2, big, sizeof big, "a", 1), -1);
    model_nodes_free(n2);
    model_nodes_free(n);
}

/* The oracle: a multiset of prices (port, port, day, price) kept as counts per key. */
#define DAYS 40
#define DAY0 18628 /* 2021-01-01 */
struct oracle {
    int64_t n[NPORTS][NPORTS][DAYS];
    int64_t sum[NPORTS][NPORTS][DAYS];
};

static void oracle_check(struct model *m, const struct oracle *o, uint64_t version)
{
    struct model_row rows[DAYS];
    for (int a = 0; a < NNAMES; a++)
        for (int b = 0; b < NNAMES; b++) {
            int32_t from = DAY0 + (a * 7 + b) % 10, to = DAY0 + DAYS - 1 - (a + b) % 5;
            uint64_t v = 0;
            bool known = false;
            size_t got = model_read(m, names[a], strlen(names[a]), names[b], strlen(names[b]), from,
                                    to, rows, DAYS, &v, &known);
            assert_true(known);
            assert_int_equal(v, version);
            size_t k = 0;
            for (int32_t d = from; d <= to; d++) {
                int64_t n = 0, sum = 0;
                for (int p = 0; p < NPORTS; p++)
                    for (int q = 0; q < NPORTS; q++)
                        if (under(p, names[a]) && under(q, names[b])) {
                            n += o->n[p][q][d - DAY0];
                            sum += o->sum[p][q][d - DAY0];
                        }
                if (n == 0)
                    continue;
                assert_true(k < got);
                assert_int_equal(rows[k].day, d);
                assert_int_equal(rows[k].n, n);
                assert_int_equal(rows[k].sum, sum);
                k++;
            }
            assert_int_equal(k, got);
        }
}

static void test_apply_matches_oracle(void **state)
{
    (void)state;
    struct model *m = model_new(tree_nodes(), 1);
    assert_non_null(m);
    static struct oracle o;
    memset(&o, 0, sizeof o);
    srand(7);
    struct model_delta d[400];
    for (uint64_t step = 2; step < 60; step++) {
        size_t count = (size_t)(rand() % 400);
        for (size_t i = 0; i < count; i++) {
            int p = rand() % NPORTS, q = rand() % NPORTS, day = rand() % DAYS;
            int64_t price = 1 + rand() % 5000;
            int64_t n = 1;
            /* One in three removes a price that is there (a retraction), when one is. */
            if (rand() % 3 == 0 && o.n[p][q][day] > 0) {
                n = -1;
                price = o.n[p][q][day] == 1 ? o.sum[p][q][day] : o.sum[p][q][day] / o.n[p][q][day];
            }
            o.n[p][q][day] += n;
            o.sum[p][q][day] += n * price;
            d[i] = (struct model_delta){ .orig = port_id(m, p),
                                         .dest = port_id(m, q),
                                         .day = DAY0 + day,
                                         .n = n,
                                         .sum = n * price };
        }
        assert_int_equal(model_apply(m, d, count, step), MODEL_OK);
        oracle_check(m, &o, step);
    }
    struct model_stats st;
    model_stats(m, &st);
    assert_int_equal(st.version, 59);
    assert_true(st.keys > 0 && st.pairs > 0 && st.bytes > st.keys * sizeof(struct model_row));
    model_free(m);
}

static void test_refused_changes_change_nothing(void **state)
{
    (void)state;
    struct model *m = model_new(tree_nodes(), 1);
    uint32_t sha = port_id(m, 0), rtm = port_id(m, 3);
    struct model_delta add = { .orig = sha, .dest = rtm, .day = DAY0, .n = 2, .sum = 300 };
    assert_int_equal(model_apply(m, &add, 1, 2), MODEL_OK);
    /* Removing three prices where there are two. */
    struct model_delta bad[2] = {
        { .orig = sha, .dest = rtm, .day = DAY0 + 1, .n = 1, .sum = 10 },
        { .orig = sha, .dest = rtm, .day = DAY0, .n = -3, .sum = -300 },
    };
    assert_int_equal(model_apply(m, bad, 2, 3), MODEL_NEGATIVE);
    /* A count that reaches 0 with a sum left. */
    struct model_delta odd = { .orig = sha, .dest = rtm, .day = DAY0, .n = -2, .sum = -299 };
    assert_int_equal(model_apply(m, &odd, 1, 3), MODEL_NEGATIVE);
    /* A region's id where a port must be. */
    int64_t asia = model_port_id(m, "asia", 4);
    struct model_delta region = {
        .orig = (uint32_t)asia, .dest = rtm, .day = DAY0, .n = 1, .sum = 1
    };
    assert_int_equal(model_apply(m, &region, 1, 3), MODEL_UNKNOWN_PORT);
    struct model_row rows[4];
    uint64_t v;
    bool known;
    size_t got = model_read(m, "world", 5, "world", 5, DAY0, DAY0 + 3, rows, 4, &v, &known);
    assert_int_equal(got, 1);
    assert_int_equal(v, 2);
    assert_int_equal(rows[0].n, 2);
    assert_int_equal(rows[0].sum, 300);
    /* Unknown names: not known, no rows. */
    got = model_read(m, "nowhere", 7, "world", 5, DAY0, DAY0 + 3, rows, 4, &v, &known);
    assert_false(known);
    assert_int_equal(got, 0);
    /* Everything retracted: the keys go. */
    struct model_delta all = { .orig = sha, .dest = rtm, .day = DAY0, .n = -2, .sum = -300 };
    assert_int_equal(model_apply(m, &all, 1, 4), MODEL_OK);
    struct model_stats st;
    model_stats(m, &st);
    assert_int_equal(st.keys, 0);
    got = model_read(m, "china", 5, "europe", 6, DAY0, DAY0 + 3, rows, 4, &v, &known);
    assert_true(known);
    assert_int_equal(got, 0);
    model_free(m);
}

static void test_replace(void **state)
{
    (void)state;
    struct model *m = model_new(tree_nodes(), 1);
    struct model *aside = model_new(tree_nodes(), 9);
    struct model_delta add = {
        .orig = port_id(aside, 1), .dest = port_id(aside, 4), .day = DAY0, .n = 3, .sum = 7
    };
    assert_int_equal(model_apply(aside, &add, 1, 10), MODEL_OK);
    model_replace(m, aside);
    struct model_row rows[2];
    uint64_t v;
    bool known;
    assert_int_equal(model_read(m, "asia", 4, "DEHAM", 5, DAY0, DAY0, rows, 2, &v, &known), 1);
    assert_int_equal(v, 10);
    assert_int_equal(rows[0].n, 3);
    model_free(m);
}

/* Every batch adds one price on day 0 and one on day 1 of CNSHA -> NLRTM: a reader that ever
 * sees the two days' counts differ has seen half a batch. */
struct race {
    struct model *m;
    atomic_int stop;
    atomic_long reads, torn;
};

static void *race_reader(void *arg)
{
    struct race *r = arg;
    struct model_row rows[2];
    while (!atomic_load(&r->stop)) {
        uint64_t v;
        bool known;
        size_t got = model_read(r->m, "asia", 4, "world", 5, DAY0, DAY0 + 1, rows, 2, &v, &known);
        uint32_t a = got > 0 ? rows[0].n : 0, b = got > 1 ? rows[1].n : 0;
        if (a != b || a != v)
            atomic_fetch_add(&r->torn, 1);
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

static void test_batches_are_seen_whole(void **state)
{
    (void)state;
    struct race r = { .m = model_new(tree_nodes(), 0) };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_reader, &r), 0);
    uint32_t sha = port_id(r.m, 0), rtm = port_id(r.m, 3);
    for (uint64_t v = 1; v <= 3000; v++) {
        /* Filler on other pairs, so each publish has more than one series to swap. */
        struct model_delta d[4] = {
            { .orig = sha, .dest = rtm, .day = DAY0, .n = 1, .sum = 5 },
            { .orig = port_id(r.m, 2), .dest = port_id(r.m, 4), .day = DAY0 + 5, .n = 1, .sum = 1 },
            { .orig = sha, .dest = rtm, .day = DAY0 + 1, .n = 1, .sum = 6 },
            { .orig = port_id(r.m, 1), .dest = port_id(r.m, 1), .day = DAY0 + 9, .n = 1, .sum = 1 },
        };
        assert_int_equal(model_apply(r.m, d, 4, v), MODEL_OK);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r.torn), 0);
    assert_true(atomic_load(&r.reads) > 0);
    model_free(r.m);
}

/* Every pair's whole series of a and b are the same. */
static void models_equal(struct model *a, struct model *b, int32_t from, int32_t to)
{
    size_t cap = (size_t)(to - from) + 1;
    struct model_row *ra = calloc(cap, sizeof *ra), *rb = calloc(cap, sizeof *rb);
    assert_non_null(ra);
    assert_non_null(rb);
    for (int x = 0; x < NNAMES; x++)
        for (int y = 0; y < NNAMES; y++) {
            uint64_t va, vb;
            bool ka, kb;
            size_t na = model_read(a, names[x], strlen(names[x]), names[y], strlen(names[y]), from,
                                   to, ra, cap, &va, &ka);
            size_t nb = model_read(b, names[x], strlen(names[x]), names[y], strlen(names[y]), from,
                                   to, rb, cap, &vb, &kb);
            assert_int_equal(na, nb);
            assert_int_equal(va, vb);
            assert_memory_equal(ra, rb, na * sizeof *ra);
        }
    struct model_stats sa, sb;
    model_stats(a, &sa);
    model_stats(b, &sb);
    assert_int_equal(sa.keys, sb.keys);
    assert_int_equal(sa.pairs, sb.pairs);
    free(ra);
    free(rb);
}

/* Raw prices in random order, dense (a year) and sparse (days up to 80 years apart, so that
 * windows turn into lists and lists fill and combine), give the model apply gives. */
static void test_build_matches_apply(void **state)
{
    (void)state;
    struct model *applied = model_new(tree_nodes(), 0);
    struct model_build *b = model_build_new(tree_nodes());
    assert_non_null(applied);
    assert_non_null(b);
    srand(11);
    enum { PRICES = 60000 };
    static struct model_delta d[PRICES];
    for (size_t i = 0; i < PRICES; i++) {
        int p = rand() % NPORTS, q = rand() % NPORTS;
        /* CNSHA -> NLRTM is sparse: a price on any of 30,000 days around DAY0; the rest dense,
         * a price on any of 365 days. */
        int32_t day = p == 0 && q == 3 ? DAY0 - 15000 + rand() % 30000 : DAY0 + rand() % 365;
        int64_t price = rand() % 100000;
        d[i] = (struct model_delta){ .orig = port_id(applied, p),
                                     .dest = port_id(applied, q),
                                     .day = day,
                                     .n = 1,
                                     .sum = price };
        assert_int_equal(model_build_add(b, d[i].orig, d[i].dest, day, price), MODEL_OK);
    }
    assert_true(model_build_bytes(b) > 0);
    assert_int_equal(model_apply(applied, d, PRICES, 42), MODEL_OK);
    struct model *built = NULL;
    assert_int_equal(model_build_finish(b, 42, &built), MODEL_OK);
    assert_non_null(built);
    models_equal(built, applied, DAY0 - 15000, DAY0 + 15000);
    model_free(built);
    model_free(applied);
}

/* The builder's bytes for dense data stay near the model's own (windows with their room). */
static void test_build_bytes_dense(void **state)
{
    (void)state;
    struct model_build *b = model_build_new(tree_nodes());
    assert_non_null(b);
    int64_t sha = model_build_port(b, "CNSHA", 5), ham = model_build_port(b, "DEHAM", 5);
    assert_true(sha >= 0 && ham >= 0);
    srand(5);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)ham, DAY0 + rand() % 365, 1),
                         MODEL_OK);
    /* CNSHA's 4 nodes x DEHAM's 3: 12 pairs of 365 days at 16 bytes = 70,080 bytes. */
    assert_true(model_build_bytes(b) < 2 * 12 * 365 * sizeof(struct model_row) + 64 * 1024);
    struct model *m = NULL;
    assert_int_equal(model_build_finish(b, 1, &m), MODEL_OK);
    struct model_stats st;
    model_stats(m, &st);
    assert_int_equal(st.keys, 12 * 365);
    model_free(m);
}

static void test_build_refusals(void **state)
{
    (void)state;
    struct model_build *b = model_build_new(tree_nodes());
    assert_non_null(b);
    int64_t sha = model_build_port(b, "CNSHA", 5), asia = model_build_port(b, "asia", 4);
    assert_true(sha >= 0 && asia >= 0);
    assert_int_equal(model_build_port(b, "XXXXX", 5), -1);
    /* A region or an unknown id is not a port. */
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)asia, DAY0, 1),
                     MODEL_UNKNOWN_PORT);
    assert_int_equal(model_build_add(b, UINT32_MAX, (uint32_t)sha, DAY0, 1), MODEL_UNKNOWN_PORT);
    model_build_free(b);
    /* A day's sum past int64 in a dense window (found when the queue is flushed: at the add
     * that fills it, or at finish), and in a sparse list when it combines. */
    b = model_build_new(tree_nodes());
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0, INT64_MAX / 2 + 1),
                     MODEL_OK);
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0, INT64_MAX / 2 + 1),
                     MODEL_OK);
    enum model_status st = MODEL_OK;
    for (int i = 0; i < 1000 && st == MODEL_OK; i++)
        st = model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0 + 1, 1);
    assert_int_equal(st, MODEL_NEGATIVE);
    model_build_free(b);
    struct model *m = NULL;
    b = model_build_new(tree_nodes());
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0, INT64_MAX / 2 + 1),
                     MODEL_OK);
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0, INT64_MAX / 2 + 1),
                     MODEL_OK);
    assert_int_equal(model_build_finish(b, 1, &m), MODEL_NEGATIVE);
    assert_null(m);
    b = model_build_new(tree_nodes());
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0, 1), MODEL_OK);
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0 + 100000, 1), MODEL_OK);
    assert_int_equal(model_build_add(b, (uint32_t)sha, (uint32_t)sha, DAY0, INT64_MAX), MODEL_OK);
    assert_int_equal(model_build_finish(b, 1, &m), MODEL_NEGATIVE);
    assert_null(m);
    /* Nothing at all: an empty model at its version. */
    b = model_build_new(tree_nodes());
    assert_int_equal(model_build_finish(b, 9, &m), MODEL_OK);
    struct model_stats stats;
    model_stats(m, &stats);
    assert_int_equal(stats.version, 9);
    assert_int_equal(stats.keys, 0);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_map),
        cmocka_unit_test(test_apply_matches_oracle),
        cmocka_unit_test(test_refused_changes_change_nothing),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_batches_are_seen_whole),
        cmocka_unit_test(test_build_matches_apply),
        cmocka_unit_test(test_build_bytes_dense),
        cmocka_unit_test(test_build_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
