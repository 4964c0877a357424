/* reqid.c: request ids (see reqid.h). */
#include "reqid.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "common.h"

static _Thread_local bool reqid_seeded;
static _Thread_local uint64_t reqid_prefix, reqid_key, reqid_counter;

/* splitmix64's finaliser: a bijection of 64-bit words, so distinct counters give distinct
 * halves. */
static uint64_t reqid_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static void reqid_seed(void)
{
    uint64_t r[2];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* No entropy source: ids stay unique per thread, only less unpredictable. */
        r[0] = clock_mono_ns() ^ clock_wall_ns() ^ (uint64_t)(uintptr_t)&reqid_seeded;
        r[1] = reqid_mix(r[0] + 1);
    }
    reqid_prefix = r[0];
    reqid_key = r[1];
    reqid_seeded = true;
}

static void reqid_hex(uint64_t v, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[v & 15u];
        v >>= 4;
    }
}

void reqid_make(char *out, size_t cap)
{
    if (cap < REQID_LEN + 1)
        return;
    if (!reqid_seeded)
        reqid_seed();
    uint64_t n = reqid_counter++;
    reqid_hex(reqid_prefix, out);
    reqid_hex(reqid_mix(n ^ reqid_key), out + 16);
    out[REQID_LEN] = '\0';
}
