/* gen_main.c: rates-gen, a deterministic generator of synthetic regions, ports and prices
 * shaped like the dump, streamed to stdout as SQL + COPY text in constant memory. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"

/* The dump's shape (db/rates.sql, January 2021): 56,689 prices, 725 routes out of 15 origin x
 * 67 destination ports (72% of the pairs), 31 days, 1-3 prices per route-day (75% have 3),
 * prices 539-5,893 (median ~1,200), 143 ports of which 61 carry no route, 20 regions in two
 * trees (origins 2 levels deep, destinations 3). Larger sizes grow the days (31 * sqrt(scale),
 * at most 3,650) and the ports (so that routes keep ~the dump's density); smaller sizes keep
 * 31 days and the dump's port counts with fewer routes. */
#define GEN_DUMP_PRICES 56689.0
#define GEN_MIN_PRICES 1ULL
#define GEN_MAX_PRICES 1000000000ULL
#define GEN_OUT_CAP (1u << 20)

static const char *const gen_orig_cc[] = { "CN", "KR", "JP", "VN", "TW", "SG", "MY", "TH" };
static const char *const gen_dest_cc[] = { "SE", "NO", "FI", "DK", "DE", "NL",
                                           "BE", "GB", "FR", "PL", "EE", "ES" };
static const unsigned gen_carrier_permille[3] = { 1000, 915, 870 };

struct gen_plan {
    uint64_t prices; /* exactly this many price rows */
    uint64_t seed;
    int32_t start;   /* first day, days since 1970-01-01 */
    uint32_t days;   /* calendar span of a route */
    uint32_t norig;  /* origin ports */
    uint32_t ndest;  /* destination ports that carry routes */
    uint32_t nother; /* destination-side ports without routes */
    uint32_t orig_mids;
    uint32_t dest_mids;
    uint32_t dest_leaves; /* per mid */
    uint64_t pairs;       /* norig * ndest */
    uint64_t stride;      /* coprime with pairs: walks the pairs in a scattered order */
    uint64_t offset;
};

/* One route's deterministic parameters. */
struct gen_route {
    uint64_t key;
    uint32_t orig, dest;
    int32_t first;      /* first day (absolute) */
    uint32_t from, len; /* active span inside [0, days) */
    uint32_t base;
    unsigned mult[3];
    uint32_t phase;
};

/* --- output: one capped buffer, flushed when full ---------------------------------------- */
static char gen_obuf[GEN_OUT_CAP];
static size_t gen_olen;
static bool gen_oerr;

static void gen_flush(void)
{
    if (gen_olen && !gen_oerr && fwrite(gen_obuf, 1, gen_olen, stdout) != gen_olen)
        gen_oerr = true;
    gen_olen = 0;
}

static void gen_put(const char *s, size_t n)
{
    if (gen_olen + n > sizeof gen_obuf)
        gen_flush();
    if (n > sizeof gen_obuf) {
        if (!gen_oerr && fwrite(s, 1, n, stdout) != n)
            gen_oerr = true;
        return;
    }
    memcpy(gen_obuf + gen_olen, s, n);
    gen_olen += n;
}

static void gen_puts(const char *s)
{
    gen_put(s, strlen(s));
}

static void gen_putu(uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    gen_put(tmp + i, sizeof tmp - i);
}

/* --- deterministic hashing (splitmix64 finaliser) ---------------------------------------- */
static uint64_t gen_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t gen_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static uint32_t gen_max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

/* Sizes the dataset from the price count; see the shape comment at the top. */
static void gen_plan_init(struct gen_plan *p, uint64_t prices, uint64_t seed, int32_t start)
{
    memset(p, 0, sizeof *p);
    p->prices = prices;
    p->seed = seed;
    p->start = start;
    double scale = (double)prices / GEN_DUMP_PRICES;
    double days = scale <= 1.0 ? 31.0 : 31.0 * sqrt(scale);
    p->days = days > 3650.0 ? 3650u : (uint32_t)llround(days);
    /* ~2.5 prices per route and calendar day (partial spans, 1-3 prices a day). */
    uint64_t routes = (uint64_t)((double)prices / ((double)p->days * 2.5)) + 1;
    uint64_t pairs = routes * 100 / 72 + 1;
    p->norig = gen_max_u32(15, (uint32_t)ceil(sqrt((double)pairs / 4.47)));
    p->ndest = gen_max_u32(67, (uint32_t)((pairs + p->norig - 1) / p->norig));
    p->nother = (p->norig + p->ndest) * 3 / 4;
    p->orig_mids = gen_max_u32(3, (p->norig + 4) / 5);
    uint32_t dest_total = p->ndest + p->nother;
    p->dest_mids = gen_max_u32(4, (uint32_t)ceil(sqrt((double)dest_total / 8.0)));
    p->dest_leaves = gen_max_u32(2, (dest_total / 8 + p->dest_mids - 1) / p->dest_mids);
    p->pairs = (uint64_t)p->norig * p->ndest;
    p->stride = (uint64_t)((double)p->pairs * 0.6180339887) | 1;
    while (gen_gcd(p->stride, p->pairs) != 1)
        p->stride++;
    p->offset = gen_mix(seed ^ 0x5eedULL) % p->pairs;
}

/* Port code: two country letters and three base-36 characters starting with a digit for the
 * first 12,960 ports of a country, so that synthetic codes never equal a real UN/LOCODE. */
static void gen_port_code(bool orig, uint32_t i, char out[6])
{
    static const char b36[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const char *cc =
        orig ? gen_orig_cc[i % ARRAY_LEN(gen_orig_cc)] : gen_dest_cc[i % ARRAY_LEN(gen_dest_cc)];
    uint32_t n = orig ? i / (uint32_t)ARRAY_LEN(gen_orig_cc) : i / (uint32_t)ARRAY_LEN(gen_dest_cc);
    out[0] = cc[0];
    out[1] = cc[1];
    out[2] = b36[(n / 1296) % 36];
    out[3] = b36[(n / 36) % 36];
    out[4] = b36[n % 36];
    out[5] = '\0';
}

static void gen_route_init(const struct gen_plan *p, uint64_t j, struct gen_route *r)
{
    uint64_t pass = j / p->pairs;
    uint64_t q = ((j % p->pairs) * p->stride + p->offset) % p->pairs;
    r->key = q + pass * p->pairs;
    r->orig = (uint32_t)(q / p->ndest);
    r->dest = (uint32_t)(q % p->ndest);
    r->first = p->start + (int32_t)(pass * p->days);
    uint64_t h = gen_mix(p->seed * 0x100000001b3ULL ^ gen_mix(r->key));
    if (h % 10 < 9 || p->days < 2) {
        r->from = 0;
        r->len = p->days;
    } else {
        r->from = (uint32_t)((h >> 8) % p->days);
        r->len = 1 + (uint32_t)((h >> 24) % (p->days - r->from));
    }
    uint64_t u = (h >> 32) & 0xffff;
    /* Skewed like the dump: median ~1,200, 99th percentile ~2,600, 1% of lanes expensive. */
    r->base = 620 + (uint32_t)((u * u * 2300) >> 32);
    if ((h >> 40) % 100 == 0)
        r->base += 2500 + (uint32_t)((u * 2000) >> 16);
    for (unsigned c = 0; c < 3; c++)
        r->mult[c] = gen_carrier_permille[c] + (unsigned)(gen_mix(h + c) % 61) - 30;
    r->phase = (uint32_t)((h >> 48) % 28);
}

/* Prices on day d of route r (1-3), written into out[]. */
static unsigned gen_day_prices(const struct gen_route *r, uint32_t d, uint32_t out[3])
{
    uint64_t hd = gen_mix(r->key * 0x9e3779b1ULL ^ gen_mix(d + 1));
    unsigned pick = (unsigned)(hd % 100);
    unsigned k = pick < 15 ? 1 : pick < 25 ? 2 : 3;
    int tri = abs((int)((d + r->phase) % 28) - 14) - 7;
    for (unsigned c = 0; c < k; c++) {
        int noise = (int)(gen_mix(hd + c) % 11) - 5;
        uint64_t v =
            (uint64_t)r->base * r->mult[c] / 1000 * (uint64_t)(1000 + 6 * tri + noise) / 1000;
        out[c] = v ? (uint32_t)v : 1;
    }
    return k;
}

/* --- SQL --------------------------------------------------------------------------------- */
static void gen_region(const char *slug, const char *name, const char *parent)
{
    gen_puts(slug);
    gen_puts("\t");
    gen_puts(name);
    gen_puts("\t");
    gen_puts(parent ? parent : "\\N");
    gen_puts("\n");
}

static void gen_regions(const struct gen_plan *p)
{
    char slug[64], name[96], parent[64];
    gen_puts("COPY public.regions (slug, name, parent_slug) FROM stdin;\n");
    gen_region("synth_east", "Synthetic East", NULL);
    gen_region("synth_west", "Synthetic West", NULL);
    for (uint32_t m = 0; m < p->orig_mids; m++) {
        snprintf(slug, sizeof slug, "synth_east_%u", m);
        snprintf(name, sizeof name, "Synthetic East %u", m);
        gen_region(slug, name, "synth_east");
    }
    for (uint32_t m = 0; m < p->dest_mids; m++) {
        snprintf(slug, sizeof slug, "synth_west_%u", m);
        snprintf(name, sizeof name, "Synthetic West %u", m);
        gen_region(slug, name, "synth_west");
    }
    for (uint32_t m = 0; m < p->dest_mids; m++) {
        snprintf(parent, sizeof parent, "synth_west_%u", m);
        for (uint32_t l = 0; l < p->dest_leaves; l++) {
            snprintf(slug, sizeof slug, "synth_west_%u_%u", m, l);
            snprintf(name, sizeof name, "Synthetic West %u Area %u", m, l);
            gen_region(slug, name, parent);
        }
    }
    gen_puts("\\.\n\n");
}

static void gen_ports(const struct gen_plan *p)
{
    char code[6], name[64], parent[64];
    gen_puts("COPY public.ports (code, name, parent_slug) FROM stdin;\n");
    for (uint32_t i = 0; i < p->norig; i++) {
        gen_port_code(true, i, code);
        snprintf(name, sizeof name, "East Port %u", i);
        snprintf(parent, sizeof parent, "synth_east_%u", i % p->orig_mids);
        gen_region(code, name, parent);
    }
    uint32_t leaves = p->dest_mids * p->dest_leaves;
    for (uint32_t i = 0; i < p->ndest + p->nother; i++) {
        gen_port_code(false, i, code);
        snprintf(name, sizeof name, "West Port %u", i);
        /* Like the dump, one port in ten hangs from a middle region, not a leaf. */
        if (i % 10 == 9)
            snprintf(parent, sizeof parent, "synth_west_%u", (i / 10) % p->dest_mids);
        else
            snprintf(parent, sizeof parent, "synth_west_%u_%u", (i % leaves) / p->dest_leaves,
                     (i % leaves) % p->dest_leaves);
        gen_region(code, name, parent);
    }
    gen_puts("\\.\n\n");
}

/* Walks the routes in order until exactly p->prices prices; with list > 0 prints the first
 * `list` routes (orig, dest, first day, last day, prices) instead of the COPY rows. */
static void gen_prices(const struct gen_plan *p, uint64_t list)
{
    uint64_t left = p->prices, listed = 0;
    char orig[6], dest[6], day[11], last[11];
    if (!list)
        gen_puts("COPY public."
                 "prices (orig_code, dest_code, day, price) FROM stdin;\n");
    for (uint64_t j = 0; left > 0 && !gen_oerr; j++) {
        struct gen_route r;
        gen_route_init(p, j, &r);
        gen_port_code(true, r.orig, orig);
        gen_port_code(false, r.dest, dest);
        uint64_t n = 0;
        for (uint32_t d = r.from; d < r.from + r.len && left > 0; d++) {
            uint32_t pr[3];
            unsigned k = gen_day_prices(&r, d, pr);
            if (!list)
                date_format(r.first + (int32_t)d, day);
            for (unsigned c = 0; c < k && left > 0; c++, left--, n++) {
                if (list)
                    continue;
                gen_put(orig, 5);
                gen_put("\t", 1);
                gen_put(dest, 5);
                gen_put("\t", 1);
                gen_put(day, 10);
                gen_put("\t", 1);
                gen_putu(pr[c]);
                gen_put("\n", 1);
            }
        }
        if (list && n > 0) {
            date_format(r.first + (int32_t)r.from, day);
            date_format(r.first + (int32_t)(r.from + r.len - 1), last);
            printf("%s\t%s\t%s\t%s\t%" PRIu64 "\n", orig, dest, day, last, n);
            if (++listed == list)
                return;
        }
    }
    if (!list)
        gen_puts("\\.\n\n");
}

static const char gen_schema_sql[] =
    "CREATE TABLE public.regions (slug text NOT NULL, name text NOT NULL, parent_slug text);\n"
    "CREATE TABLE public.ports (code text NOT NULL, name text NOT NULL, "
    "parent_slug text NOT NULL);\n"
    "CREATE TABLE public.prices (orig_code text NOT NULL, dest_code text NOT NULL, "
    "day date NOT NULL, price integer NOT NULL);\n\n";

/* The dump's keys, added after the data as pg_dump does (one check instead of one per row). */
static const char gen_keys_sql[] =
    "ALTER TABLE ONLY public.ports ADD CONSTRAINT ports_pkey PRIMARY KEY (code);\n"
    "ALTER TABLE ONLY public.regions ADD CONSTRAINT regions_pkey PRIMARY KEY (slug);\n"
    "ALTER TABLE ONLY public.ports ADD CONSTRAINT ports_parent_slug_fkey "
    "FOREIGN KEY (parent_slug) REFERENCES public.regions(slug);\n"
    "ALTER TABLE ONLY public.prices ADD CONSTRAINT prices_dest_code_fkey "
    "FOREIGN KEY (dest_code) REFERENCES public.ports(code);\n"
    "ALTER TABLE ONLY public.prices ADD CONSTRAINT prices_orig_code_fkey "
    "FOREIGN KEY (orig_code) REFERENCES public.ports(code);\n"
    "ALTER TABLE ONLY public.regions ADD CONSTRAINT regions_parent_slug_fkey "
    "FOREIGN KEY (parent_slug) REFERENCES public.regions(slug);\n";

static void gen_sql(const struct gen_plan *p, bool schema)
{
    char head[512], start[11];
    date_format(p->start, start);
    snprintf(head, sizeof head,
             "-- rates-gen: %" PRIu64 " prices, seed %" PRIu64 ", %u days from %s, "
             "%u origin and %u destination ports (+%u without routes)\n"
             "SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n"
             "SET client_min_messages = warning;\nBEGIN;\n",
             p->prices, p->seed, p->days, start, p->norig, p->ndest, p->nother);
    gen_puts(head);
    if (schema)
        gen_puts(gen_schema_sql);
    gen_regions(p);
    gen_ports(p);
    gen_prices(p, 0);
    if (schema)
        gen_puts(gen_keys_sql);
    gen_puts("COMMIT;\nANALYZE public.regions;\nANALYZE public.ports;\nANALYZE public.prices;\n");
    gen_flush();
}

static void gen_usage(FILE *f)
{
    fputs("usage: rates-gen [--prices N] [--seed S] [--start YYYY-MM-DD] [--schema]\n"
          "                 [--routes K | --plan]\n"
          "Writes synthetic regions, ports and prices shaped like the dump to stdout, as SQL\n"
          "with COPY blocks for psql (same seed and size: same bytes).\n"
          "  -n, --prices N   exactly N price rows (default 56689, the dump's; 1 to 1e9)\n"
          "  -s, --seed S     seed (default 1)\n"
          "  -d, --start D    first day (default 2021-01-01)\n"
          "      --schema     for an empty database: create the tables, load, then add the\n"
          "                   dump's keys (as pg_dump does); default: data only, into the\n"
          "                   migrated schema\n"
          "      --routes K   print the first K routes (orig, dest, first day, last day, prices)\n"
          "      --plan       print the sizes chosen for N prices\n"
          "  -h, --help       this help\n"
          "  -V, --version    version and commit\n"
          "Options take their value as --opt=value or --opt value.\n"
          "Exit status: 0 success, 1 write error, 2 usage error (docs/exit-codes.md).\n",
          f);
}

static int gen_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

enum { GEN_OPT_SCHEMA = 256, GEN_OPT_PLAN, GEN_OPT_ROUTES };

static const struct option gen_options[] = {
    { "prices", required_argument, NULL, 'n' },
    { "seed", required_argument, NULL, 's' },
    { "start", required_argument, NULL, 'd' },
    { "schema", no_argument, NULL, GEN_OPT_SCHEMA },
    { "plan", no_argument, NULL, GEN_OPT_PLAN },
    { "routes", required_argument, NULL, GEN_OPT_ROUTES },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
    uint64_t prices = (uint64_t)GEN_DUMP_PRICES, seed = 1, list = 0;
    int32_t start = date_from_civil(2021, 1, 1);
    bool schema = false, plan_only = false;
    int c;
    while ((c = getopt_long(argc, argv, "n:s:d:hV", gen_options, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'h':
            gen_usage(stdout);
            return 0;
        case 'V':
            printf("rates-gen %s (%s)\n", RATES_VERSION, RATES_COMMIT);
            return 0;
        case GEN_OPT_SCHEMA:
            schema = true;
            break;
        case GEN_OPT_PLAN:
            plan_only = true;
            break;
        case 'n':
            rc = gen_parse_u64(optarg, GEN_MIN_PRICES, GEN_MAX_PRICES, &prices);
            break;
        case 's':
            rc = gen_parse_u64(optarg, 0, UINT64_MAX, &seed);
            break;
        case GEN_OPT_ROUTES:
            rc = gen_parse_u64(optarg, 1, 100000000, &list);
            break;
        case 'd':
            rc = date_parse_strict(optarg, strlen(optarg), &start);
            break;
        default: /* getopt_long has printed why */
            fputs("rates-gen: bad argument. Try 'rates-gen --help'.\n", stderr);
            return 2;
        }
        if (rc != 0) {
            const char *name = "?";
            for (const struct option *o = gen_options; o->name; o++)
                if (o->val == c)
                    name = o->name;
            fprintf(stderr, "rates-gen: bad argument: --%s %s\n", name, optarg);
            fputs("Try 'rates-gen --help'.\n", stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rates-gen: unexpected argument: %s\n", argv[optind]);
        fputs("Try 'rates-gen --help'.\n", stderr);
        return 2;
    }
    struct gen_plan p;
    gen_plan_init(&p, prices, seed, start);
    if (plan_only) {
        printf("prices\t%" PRIu64 "\nseed\t%" PRIu64 "\ndays\t%u\norigins\t%u\ndestinations\t%u\n"
               "ports\t%u\nregions\t%u\npairs\t%" PRIu64 "\n",
               p.prices, p.seed, p.days, p.norig, p.ndest, p.norig + p.ndest + p.nother,
               2 + p.orig_mids + p.dest_mids * (1 + p.dest_leaves), p.pairs);
    } else if (list) {
        gen_prices(&p, list);
    } else {
        gen_sql(&p, schema);
    }
    if (fflush(stdout) != 0 || ferror(stdout) || gen_oerr) {
        fprintf(stderr, "rates-gen: write error: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
