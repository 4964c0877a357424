/* bench_model.c: the read model's figures (make bench-model): reads rates-gen's SQL output on
 * stdin (regions, ports, prices), loads the model as start-up would (route-day sums, then one
 * apply), and prints its keys, bytes per key, load time, the cost of one read (a port month
 * and a region month), and the apply time of a 50,000- and a 1,000,000-price batch.
 *   build/rates-gen --prices 10000000 | build/bench_model */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"
#include "model.h"

#define NAME_CAP 64
#define MAX_NAMES 65536

struct name {
    char s[NAME_CAP];
    char parent[NAME_CAP];
    int is_port;
};
static struct name names[MAX_NAMES];
static int nnames;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int find_name(const char *s)
{
    for (int i = 0; i < nnames; i++)
        if (strcmp(names[i].s, s) == 0)
            return i;
    return -1;
}

/* Splits a COPY text line into at most n tab-separated fields, in place. */
static int split(char *line, char **f, int n)
{
    int k = 0;
    f[k++] = line;
    for (char *p = line; *p && k < n; p++)
        if (*p == '\t') {
            *p = '\0';
            f[k++] = p + 1;
        }
    line[strcspn(line, "\n")] = '\0';
    for (int i = 0; i < k; i++)
        f[i][strcspn(f[i], "\n")] = '\0';
    return k;
}

struct price {
    uint32_t orig, dest;
    int32_t day;
    int64_t price;
};

static int price_cmp(const void *a, const void *b)
{
    const struct price *x = a, *y = b;
    if (x->orig != y->orig)
        return x->orig < y->orig ? -1 : 1;
    if (x->dest != y->dest)
        return x->dest < y->dest ? -1 : 1;
    return (x->day > y->day) - (x->day < y->day);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(void)
{
    static char line[4096];
    int section = 0; /* 1 regions, 2 ports, 3 prices */
    size_t nprices = 0, cap = 1 << 20;
    struct price *prices = malloc(cap * sizeof *prices);
    struct model_nodes *nodes = model_nodes_new();
    int *port_of = NULL; /* names index -> model id, filled when prices start */
    double t0 = now_s();
    while (fgets(line, sizeof line, stdin)) {
        /* rates-gen's COPY blocks: "COPY public.<table> (...) FROM stdin;" */
        const char *copy = strncmp(line, "COPY public.", 12) == 0 ? line + 12 : "";
        if (strncmp(copy, "regions ", 8) == 0) {
            section = 1;
            continue;
        }
        if (strncmp(copy, "ports ", 6) == 0) {
            section = 2;
            continue;
        }
        if (strncmp(copy, "prices ", 7) == 0) {
            section = 3;
            /* The node map: every port under itself and every region above it. */
            port_of = malloc(sizeof(int) * (size_t)nnames);
            for (int i = 0; i < nnames; i++) {
                if (!names[i].is_port)
                    continue;
                const char *code = names[i].s;
                if (model_nodes_add(nodes, code, strlen(code), code, strlen(code)) != 0)
                    return 1;
                int up = find_name(names[i].parent);
                for (int depth = 0; up >= 0 && depth < 65; depth++) {
                    if (model_nodes_add(nodes, code, strlen(code), names[up].s,
                                        strlen(names[up].s)) != 0)
                        return 1;
                    up = find_name(names[up].parent);
                }
            }
            if (model_nodes_finish(nodes) != 0)
                return 1;
            for (int i = 0; i < nnames; i++)
                port_of[i] = names[i].is_port
                                 ? (int)model_nodes_find(nodes, names[i].s, strlen(names[i].s))
                                 : -1;
            continue;
        }
        if (line[0] == '\\' && line[1] == '.') {
            section = 0;
            continue;
        }
        char *f[4];
        if (section == 1 || section == 2) {
            if (split(line, f, 3) != 3 || nnames == MAX_NAMES)
                continue;
            snprintf(names[nnames].s, NAME_CAP, "%s", f[0]);
            snprintf(names[nnames].parent, NAME_CAP, "%s", strcmp(f[2], "\\N") ? f[2] : "");
            names[nnames].is_port = section == 2;
            nnames++;
        } else if (section == 3) {
            if (split(line, f, 4) != 4)
                continue;
            /* Port codes repeat: a tiny cache of the last lookups keeps this linear. */
            static char last_o[NAME_CAP], last_d[NAME_CAP];
            static int io = -1, id = -1;
            if (strcmp(f[0], last_o) != 0) {
                io = find_name(f[0]);
                snprintf(last_o, sizeof last_o, "%s", f[0]);
            }
            if (strcmp(f[1], last_d) != 0) {
                id = find_name(f[1]);
                snprintf(last_d, sizeof last_d, "%s", f[1]);
            }
            int32_t day;
            if (io < 0 || id < 0 || date_parse_strict(f[2], strlen(f[2]), &day) != 0)
                continue;
            if (nprices == cap) {
                cap *= 2;
                prices = realloc(prices, cap * sizeof *prices);
            }
            prices[nprices++] =
                (struct price){ (uint32_t)port_of[io], (uint32_t)port_of[id], day, atoll(f[3]) };
        }
    }
    double t_parse = now_s() - t0;
    if (nprices == 0) {
        fprintf(stderr, "bench_model: no prices on stdin (pipe rates-gen into it)\n");
        return 2;
    }
    /* Route-day sums, as the fold table gives them to a loading instance. */
    t0 = now_s();
    qsort(prices, nprices, sizeof *prices, price_cmp);
    struct model_delta *d = malloc(nprices * sizeof *d);
    size_t nd = 0;
    for (size_t i = 0; i < nprices; i++) {
        if (nd && d[nd - 1].orig == prices[i].orig && d[nd - 1].dest == prices[i].dest &&
            d[nd - 1].day == prices[i].day) {
            d[nd - 1].n++;
            d[nd - 1].sum += prices[i].price;
        } else {
            d[nd++] = (struct model_delta){ prices[i].orig, prices[i].dest, prices[i].day, 1,
                                            prices[i].price };
        }
    }
    double t_group = now_s() - t0;
    struct model *m = model_new(nodes, 1);
    t0 = now_s();
    if (model_apply(m, d, nd, 1) != MODEL_OK)
        return 1;
    double t_load = now_s() - t0;
    struct model_stats st;
    model_stats(m, &st);
    printf("prices %zu, route-days %zu, names %d\n", nprices, nd, nnames);
    printf("model: %zu keys (%.2f per price), %zu pairs, %.1f MB, %.1f bytes per key\n", st.keys,
           (double)st.keys / (double)nprices, st.pairs, (double)st.bytes / 1e6,
           (double)st.bytes / (double)st.keys);
    printf("load: parse %.2f s (not the model's), route-day sums %.2f s, apply %.2f s\n", t_parse,
           t_group, t_load);

    /* Reads: a month of the busiest route's ports, and of the two top regions. */
    const struct price *busy = &prices[nprices / 2];
    const char *po = "", *pd = "", *ro = "", *rd = "";
    for (int i = 0; i < nnames; i++) {
        if (names[i].is_port && port_of[i] == (int)busy->orig)
            po = names[i].s;
        if (names[i].is_port && port_of[i] == (int)busy->dest)
            pd = names[i].s;
    }
    for (int i = 0, k = 0; i < nnames && k < 2; i++)
        if (!names[i].is_port && names[i].parent[0] == '\0') {
            if (k++)
                rd = names[i].s;
            else
                ro = names[i].s;
        }
    struct model_row rows[31];
    const int reads = 1000000;
    const char *pairs[2][2] = { { po, pd }, { ro, rd } };
    for (int q = 0; q < 2; q++) {
        uint64_t v;
        bool known;
        size_t got = 0;
        t0 = now_s();
        for (int i = 0; i < reads; i++)
            got += model_read(m, pairs[q][0], strlen(pairs[q][0]), pairs[q][1], strlen(pairs[q][1]),
                              busy->day - 15, busy->day + 15, rows, 31, &v, &known);
        double t = now_s() - t0;
        printf("read %s month %s -> %s: %.0f ns per read (%.1f rows)\n", q ? "region" : "port",
               pairs[q][0], pairs[q][1], t / reads * 1e9, (double)got / reads);
    }
    /* Batches: new prices on existing routes and days (a random sample of the loaded ones). */
    size_t sizes[2] = { 50000, 1000000 };
    for (int s = 0; s < 2; s++) {
        size_t n = sizes[s];
        struct model_delta *b = malloc(n * sizeof *b);
        for (size_t i = 0; i < n; i++) {
            const struct price *p = &prices[next_rand() % nprices];
            b[i] = (struct model_delta){ p->orig, p->dest, p->day, 1,
                                         500 + (int64_t)(next_rand() % 5000) };
        }
        t0 = now_s();
        if (model_apply(m, b, n, 2 + (uint64_t)s) != MODEL_OK)
            return 1;
        double t = now_s() - t0;
        printf("apply %zu prices: %.3f s (%.0f ns per price)\n", n, t, t / (double)n * 1e9);
        free(b);
    }
    model_stats(m, &st);
    printf("after: %zu keys, %.1f MB\n", st.keys, (double)st.bytes / 1e6);
    model_free(m);
    free(d);
    free(prices);
    free(port_of);
    return 0;
}
