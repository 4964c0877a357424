/* avg_check.c: drives avg_exact() from outside: prints, compares with PostgreSQL, times.
 *   avg_check            "sum n" lines on stdin -> "sum n bits text" (bits: the double's
 *                        64 bits in hex, text: avg_text())
 *   avg_check --compare  "sum n hexbits [text]" lines (PostgreSQL's float8send in hex and
 *                        its numeric text) -> one summary line "pairs P mismatches M
 *                        naive_differs D texts T" (naive: (double)sum / n; T: rows that
 *                        had a text); the first mismatches on stderr; exit 1 when M > 0 or
 *                        a line is malformed
 *   avg_check --bench [N] CPU ns per call over N (default 20,000,000) pseudo-random pairs,
 *                        and through avg_text() + strtod for scale
 * Used by tests/integration/rates/test_avg_exact.py and `make bench-avg`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avg.h"

#define CHECK_LINE_MAX 256
#define CHECK_SHOW_MAX 20

static uint64_t check_bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* Parses "sum n" at the start of line; *rest points after them. 0, or -1 when malformed. */
static int check_parse_pair(const char *line, int64_t *sum, int64_t *n, char **rest)
{
    char *end;
    *sum = strtoll(line, &end, 10);
    if (end == line)
        return -1;
    const char *p = end;
    *n = strtoll(p, &end, 10);
    if (end == p)
        return -1;
    *rest = end;
    return 0;
}

static int check_print(void)
{
    char line[CHECK_LINE_MAX];
    while (fgets(line, sizeof line, stdin)) {
        int64_t sum, n;
        char *rest;
        double avg;
        char text[AVG_TEXT_MAX];
        if (check_parse_pair(line, &sum, &n, &rest) != 0 || avg_exact(sum, n, &avg) != 0) {
            fprintf(stderr, "avg_check: bad line: %s", line);
            return 1;
        }
        (void)avg_text(sum, n, text, sizeof text);
        printf("%" PRId64 " %" PRId64 " %016" PRIx64 " %s\n", sum, n, check_bits(avg), text);
    }
    return 0;
}

static int check_compare(void)
{
    char line[CHECK_LINE_MAX];
    uint64_t pairs = 0, mismatches = 0, naive = 0, texts = 0;
    while (fgets(line, sizeof line, stdin)) {
        int64_t sum, n;
        char *rest, *end;
        double avg;
        if (check_parse_pair(line, &sum, &n, &rest) != 0 || avg_exact(sum, n, &avg) != 0) {
            fprintf(stderr, "avg_check: bad line: %s", line);
            return 1;
        }
        uint64_t want = strtoull(rest, &end, 16);
        if (end == rest) {
            fprintf(stderr, "avg_check: no bits: %s", line);
            return 1;
        }
        char want_text[AVG_TEXT_MAX] = "", text[AVG_TEXT_MAX];
        if (sscanf(end, "%63s", want_text) == 1)
            texts++;
        (void)avg_text(sum, n, text, sizeof text);
        pairs++;
        uint64_t got = check_bits(avg);
        if (got != want || (want_text[0] && strcmp(text, want_text) != 0)) {
            if (mismatches++ < CHECK_SHOW_MAX)
                fprintf(stderr,
                        "mismatch: sum %" PRId64 " n %" PRId64 ": postgres %016" PRIx64
                        " %s, avg_exact %016" PRIx64 " %s\n",
                        sum, n, want, want_text, got, text);
        }
        if (check_bits((double)sum / (double)n) != want)
            naive++;
    }
    printf("pairs %" PRIu64 " mismatches %" PRIu64 " naive_differs %" PRIu64 " texts %" PRIu64 "\n",
           pairs, mismatches, naive, texts);
    return mismatches > 0;
}

/* xorshift64*: reproducible pairs without libc's rand(). */
static uint64_t check_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* CPU time of this thread: on a machine shared with other test runs, wall time measures
 * the neighbours (load 20 on 2 cores gave 6x the quiet figure). */
static double check_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Two shapes: the service's (sums to 3 M, counts to 3,000) and wide ones (sums to 2^50,
 * counts to 2^31). The pairs are made first so the loop times avg_exact() alone. */
static int check_bench(long calls)
{
    enum { PAIRS = 4096 };
    static int64_t sums[2][PAIRS], ns[2][PAIRS];
    uint64_t seed = UINT64_C(0x9E3779B97F4A7C15);
    for (int i = 0; i < PAIRS; i++) {
        sums[0][i] = (int64_t)(check_next(&seed) % 3000001);
        ns[0][i] = 1 + (int64_t)(check_next(&seed) % 3000);
        sums[1][i] = (int64_t)(check_next(&seed) % (UINT64_C(1) << 50));
        ns[1][i] = 1 + (int64_t)(check_next(&seed) % (UINT64_C(1) << 31));
    }
    const char *names[2] = { "sums to 3 M, counts to 3,000", "sums to 2^50, counts to 2^31" };
    for (int shape = 0; shape < 2; shape++) {
        double acc = 0, t0 = check_now();
        for (long i = 0; i < calls; i++) {
            double avg = 0;
            if (avg_exact(sums[shape][i % PAIRS], ns[shape][i % PAIRS], &avg) != 0)
                return 1;
            acc += avg;
        }
        double took = check_now() - t0;
        /* For scale: the same through the decimal text and strtod, as float8in does. */
        long text_calls = calls / 10 > 0 ? calls / 10 : 1;
        double t1 = check_now();
        for (long i = 0; i < text_calls; i++) {
            char text[AVG_TEXT_MAX];
            (void)avg_text(sums[shape][i % PAIRS], ns[shape][i % PAIRS], text, sizeof text);
            acc += strtod(text, NULL);
        }
        double took_text = check_now() - t1;
        printf("avg_exact: %.1f ns per call, CPU time (%ld calls, %s); "
               "avg_text + strtod: %.1f ns (checksum %g)\n",
               took * 1e9 / (double)calls, calls, names[shape],
               took_text * 1e9 / (double)text_calls, acc);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--compare") == 0)
        return check_compare();
    if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
        return check_bench(argc >= 3 ? atol(argv[2]) : 20000000L);
    if (argc == 1)
        return check_print();
    fprintf(stderr, "usage: avg_check [--compare | --bench [N]] < pairs\n");
    return 2;
}
