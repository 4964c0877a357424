/* siphash.h: SipHash-2-4 (Aumasson and Bernstein, 2012), a keyed 64-bit hash for tables whose
 * keys come from clients: without the key, nobody can build keys that collide. */
#ifndef RATES_SIPHASH_H
#define RATES_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_BYTES 16

/* The hash of len bytes at data (may be NULL when len is 0) under key. Pure; thread-safe. */
uint64_t siphash24(const uint8_t key[SIPHASH_KEY_BYTES], const void *data, size_t len);

#endif
