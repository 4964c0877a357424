/* siphash.c: SipHash-2-4 as specified in the paper (little-endian words, 2 compression rounds
 * per 8-byte block, 4 finalization rounds). Checked against the paper's vectors in
 * tests/unit/test_cache.c. */
#include "siphash.h"

static uint64_t sip_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t sip_load(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

struct sip_state {
    uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sip_state *s)
{
    s->v0 += s->v1;
    s->v1 = sip_rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = sip_rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = sip_rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = sip_rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = sip_rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = sip_rotl(s->v2, 32);
}

static void sip_absorb(struct sip_state *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_BYTES], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t k0 = sip_load(key), k1 = sip_load(key + 8);
    struct sip_state s = { .v0 = k0 ^ 0x736f6d6570736575ull,
                           .v1 = k1 ^ 0x646f72616e646f6dull,
                           .v2 = k0 ^ 0x6c7967656e657261ull,
                           .v3 = k1 ^ 0x7465646279746573ull };
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8)
        sip_absorb(&s, sip_load(p + i));
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)p[full + i] << (8 * i);
    sip_absorb(&s, last);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
