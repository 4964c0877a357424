"""avg_exact() (src/avg.c) against PostgreSQL itself, bit for bit.

The read model will answer /rates from (sum, count) pairs in memory; its averages must be what
PostgreSQL gives today, (total::numeric / n)::float8 (src/rates.c). This test has the server
compute, for millions of pairs, float8send of that expression (its 64 bits) and the numeric
quotient's text, and pipes them into the driver build/tests/avg_check --compare (tests/
avg_check.c, mk/avg.mk), which compares avg_exact() and avg_text() with every row and counts
the pairs where (double)sum / n differs. The sets: 2,000,000 pairs shaped like the service's
(sums to 3 M, counts to 3,000), 1,000,000 with sums to +-2^50 and counts log-uniform to 2^31
(both drawn server side with setseed), and a table of edge pairs plus 200,000 pairs over the
whole proven range (any int64 sum, counts to 10^12 - 1) made here and COPYed in. The
PostgreSQL 13 stage (tests/stages/pg13.sh) runs this file against Debian 11's server too.
Needs no ratesd and no rates database: only the cluster (fixture pg)."""
import io
import os
import random
import struct
import subprocess
import time

import psycopg2
import pytest

from tests.support import paths

N_MAX = 999999999999  # AVG_N_MAX in src/avg.h


def _avg_check():
    """The driver beside the binary under test (build/ or build-san/), or RATES_AVG_CHECK."""
    if os.environ.get("RATES_AVG_CHECK"):
        return os.environ["RATES_AVG_CHECK"]
    path = os.path.join(os.path.dirname(paths.RATES_BIN), "tests", "avg_check")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: make unit-bins (mk/avg.mk)")
    return path


def edge_pairs():
    """Sums and counts at every base-10000 weight change (where the scale moves by 4 digits),
    powers of ten and their neighbours, the int64 and 2^53 limits, counts whose quotients
    repeat (3, 7, 9, 11, 13) or end in a half (2, 4, 8, 16), both signs."""
    sums = {0, 1, 2, 3, 5, 7, 9, 99, 3463, 12345, 2999999, 3000000, 2**31 - 1, 2**31, 2**32,
            2**50, 2**53 - 1, 2**53, 2**53 + 1, 2**62, 2**63 - 1}
    for j in range(1, 19):
        sums |= {10**j - 1, 10**j, 10**j + 1, 5 * 10**j}
    counts = {1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 16, 17, 99, 100, 101, 128, 2999, 3000,
              9999, 10000, 10001, 99999999, 100000000, 100000001, 2**31 - 1, 2**31, N_MAX}
    pairs = [(sign * s, n) for s in sorted(sums) for n in sorted(counts) for sign in (1, -1)]
    pairs += [(-2**63, n) for n in (1, 2, 3, 10000, N_MAX)]
    return pairs


def wide_pairs(count, seed):
    """Any int64 sum (magnitudes spread over every bit length), counts log-uniform to N_MAX."""
    rnd = random.Random(seed)
    pairs = []
    for _ in range(count):
        bits = rnd.randint(1, 63)
        s = rnd.getrandbits(bits) * rnd.choice((1, -1))
        n = min(N_MAX, int(2 ** rnd.uniform(0, 39.87)))
        pairs.append((s, max(1, n)))
    return pairs


def _select(pairs_sql):
    """COPY of s, n, the float8's bits and the numeric text; OFFSET 0 keeps the division in
    the subquery so the server computes it once per row."""
    return ("COPY (SELECT s, n, encode(float8send(q::float8), 'hex'), q::text FROM "
            f"(SELECT s, n, s::numeric / n AS q FROM ({pairs_sql}) p OFFSET 0) t) TO STDOUT")


def compare(pg, copy_sql, seed=None, pairs=None):
    """Runs copy_sql on a fresh connection (after setseed(seed), or after loading pairs into
    the temporary table avg_pairs) into avg_check --compare; returns its counts."""
    conn = psycopg2.connect(pg.url("postgres"))
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        if seed is not None:
            cur.execute("SELECT setseed(%s)", (seed,))
        if pairs is not None:
            cur.execute("CREATE TEMPORARY TABLE avg_pairs (s int8 NOT NULL, n int8 NOT NULL)")
            cur.copy_expert("COPY avg_pairs FROM STDIN",
                            io.StringIO("".join(f"{s}\t{n}\n" for s, n in pairs)))
        proc = subprocess.Popen([_avg_check(), "--compare"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            cur.copy_expert(copy_sql, proc.stdin)
        finally:
            proc.stdin.close()
        out = proc.stdout.read().decode()
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=60)
    finally:
        conn.close()
    words = out.split()
    assert len(words) == 8 and words[0] == "pairs", f"avg_check said {out!r} {err}"
    counts = dict(zip(words[0::2], map(int, words[1::2])))
    assert rc == 0 and counts["mismatches"] == 0, (
        f"avg_exact differs from PostgreSQL {version} on {counts['mismatches']} of "
        f"{counts['pairs']} pairs; first ones:\n{err}")
    assert counts["texts"] == counts["pairs"]
    counts["server"] = version
    return counts


def test_known_pair_differs_from_double_division(pg):
    """2470454 / 142: PostgreSQL prints 17397.563380281690 (the scale is 12 here) and reads
    back 17397.56338028169; the binary division rounds once, to 17397.563380281692."""
    conn = psycopg2.connect(pg.url("postgres"))
    try:
        cur = conn.cursor()
        cur.execute("SELECT encode(float8send((2470454::numeric / 142)::float8), 'hex'), "
                    "(2470454::numeric / 142)::text")
        want_bits, want_text = cur.fetchone()
    finally:
        conn.close()
    out = subprocess.run([_avg_check()], input="2470454 142\n", capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["2470454", "142", want_bits, want_text]
    assert want_text == "17397.563380281690"
    naive = struct.pack(">d", 2470454 / 142).hex()
    assert naive != want_bits, "the plain double division happens to agree here"


def test_edges_and_the_whole_range(pg):
    pairs = edge_pairs() + wide_pairs(200000, 26)
    counts = compare(pg, _select("SELECT s, n FROM avg_pairs"), pairs=pairs)
    assert counts["pairs"] == len(pairs)
    print(f"edges and whole range: {counts}")


def test_service_shaped_pairs(pg):
    """2,000,000 pairs, sums 0..3,000,000 and counts 1..3,000; about 0.5% of them come out
    different from (double)sum / n, which is why avg_exact() exists."""
    t0 = time.monotonic()
    counts = compare(pg, _select(
        "SELECT floor(random() * 3000001)::int8 AS s, 1 + floor(random() * 3000)::int8 AS n "
        "FROM generate_series(1, 2000000)"), seed=0.26)
    assert counts["pairs"] == 2000000
    assert 0.001 < counts["naive_differs"] / counts["pairs"] < 0.02, counts
    print(f"service-shaped: {counts} in {time.monotonic() - t0:.1f} s")


def test_pairs_to_2_50(pg):
    """1,000,000 pairs, sums uniform in +-2^50 (two 25-bit draws: random() has 48 bits on 13),
    counts log-uniform in 1..2^31."""
    counts = compare(pg, _select(
        "SELECT (floor(random() * 33554432)::int8 * 33554432 + floor(random() * 33554432)::int8)"
        " * (CASE WHEN random() < 0.5 THEN -1 ELSE 1 END) AS s, "
        "floor(exp(random() * ln(2147483648.0)))::int8 AS n FROM generate_series(1, 1000000)"),
        seed=-0.5)
    assert counts["pairs"] == 1000000
    print(f"to 2^50: {counts}")
