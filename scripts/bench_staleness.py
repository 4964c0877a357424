"""Staleness between instances after a batch (issue 26): two ratesd on one database, both
with the read model. Each round posts a BENCH_STALENESS_ROWS-row batch (50,000 by default,
the spread shape of bench_ingest.py, plus three prices on a route and day no other round
touches) to instance A; from the moment A's 201 is in, B is asked for that route and day
in a closed loop (one keep-alive connection, a millisecond apart) until its answer counts the
three prices. That interval is B's staleness: LISTEN/NOTIFY, B's fetch of the change log and
the apply. A's own first read, sent at the same instant from another thread, is timed beside
it (read-your-writes: A's reads wait for A's pass, not its writer). BENCH_ENV ("K=V,K=V")
adds to both servers' environment.

Two patterns, BENCH_ROUNDS rounds (20) each, in one run:
  sporadic      the next batch comes once the fold has caught up (rates_fold_lag() shows no
                tail, at most 30 s): the mission's sporadic bursts;
  back-to-back  the next batch 300 ms after the last read: the fold (about 13,000 change rows
                a second on 2 cores, docs/aggregates.md) never catches up and competes with
                both instances' passes for the cores.
Each pattern starts with one warm-up round, printed on its own and not counted: the first
50,000-row batch after start is slower on both instances (every part of the pass, 2-4x: the
model's and the tables' first growth, autovacuum's first look at them). Prints median, p99
(nearest rank) and max for each. Bounded: each wait at most 10 s."""
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time

from scripts.bench_ingest import TOKEN, gen_csv, run_a
from tests import support

ROWS = int(os.environ.get("BENCH_STALENESS_ROWS", "50000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
WAIT_S = 10.0


def count_on(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"GET {path}: {r.status} {body[:300]!r}")
    return json.loads(body)["rates"][0]["count"]


def wait_count(conn, path, want):
    """Seconds until GET path counts want prices (closed loop, 1 ms apart, at most WAIT_S)."""
    t0 = time.perf_counter()
    while count_on(conn, path) != want:
        if time.perf_counter() - t0 > WAIT_S:
            raise RuntimeError(f"{path}: not {want} prices after {WAIT_S} s")
        time.sleep(0.001)
    return time.perf_counter() - t0


def timed(f, *args):
    t0 = time.perf_counter()
    return f(*args), time.perf_counter() - t0


def wait_folded(pg, db):
    """Until the fold has moved every change row (at most 30 s)."""
    t0 = time.perf_counter()
    while pg.psql("SELECT tail_rows FROM rates_fold_lag()", db=db) != "0":
        if time.perf_counter() - t0 > 30:
            raise RuntimeError("the fold did not catch up in 30 s")
        time.sleep(0.1)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, -(-99 * len(xs) // 100) - 1))]


def main():
    if not support.dump_path():
        print("bench-staleness: the dump is needed (RATES_DUMP)", file=sys.stderr)
        return 2
    pg = support.PgCluster(extra_conf="fsync = on\nsynchronous_commit = on\nmax_wal_size = 4GB\n")
    tmp = tempfile.mkdtemp(prefix="rates-bench-staleness-")
    a = b = None
    try:
        support.create_rates_db(pg, "bench_stale")
        codes = pg.psql("SELECT code FROM ports ORDER BY code LIMIT 60", db="bench_stale").split("\n")
        env = {"RATES_INGEST_TOKENS": f"bench:{TOKEN}", "RATES_LOG_LEVEL": "warn"}
        env.update(kv.split("=", 1) for kv in os.environ.get("BENCH_ENV", "").split(",") if kv)
        url = pg.url("bench_stale", user="rates_app")
        a = support.Server(url, env=env)
        b = support.Server(url, env=env)
        a.wait_ready()
        b.wait_ready()
        path = os.path.join(tmp, "batch.csv")
        gen_csv(path, ROWS - 3, codes, "spread")
        with open(path, "rb") as f:
            base = f.read()
        orig, dest = codes[0], codes[1]
        conn_a = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
        conn_b = http.client.HTTPConnection("127.0.0.1", b.port, timeout=30)
        day_no = 0
        for pattern in ("sporadic", "back-to-back"):
            stale, own = [], []
            for k in range(ROUNDS + 1):
                if pattern == "sporadic":
                    wait_folded(pg, "bench_stale")
                day = f"2040-{1 + day_no // 28:02d}-{1 + day_no % 28:02d}"
                day_no += 1
                rates = f"/rates?date_from={day}&date_to={day}&orig_code={orig}&dest_code={dest}"
                if count_on(conn_b, rates):  # null: no price that day yet
                    raise RuntimeError(f"{rates}: B counts prices before the batch")
                with open(path + ".round", "wb") as f:
                    f.write(base + "".join(f"{orig},{dest},{day},{100 + k}\n"
                                           for k in range(3)).encode())
                run_a(a, path + ".round")
                # A's one read in a thread of its own: B's loop starts at the same instant.
                got = {}
                t = threading.Thread(target=lambda: got.update(a=timed(count_on, conn_a, rates)))
                t.start()
                stale.append(wait_count(conn_b, rates, 3))
                t.join()
                if got["a"][0] != 3:
                    raise RuntimeError(f"A answered {got['a'][0]} prices, not its own acknowledged 3")
                own.append(got["a"][1])
                if k == 0:
                    print(f"{pattern}: warm-up round (not counted): second instance "
                          f"{stale.pop() * 1000:.1f} ms, the writing instance's own read "
                          f"{own.pop() * 1000:.1f} ms")
                if pattern != "sporadic":
                    time.sleep(0.3)
            ms = [x * 1000 for x in stale]
            print(f"{pattern}: second instance's staleness after a {ROWS:,}-row batch, {ROUNDS} "
                  f"rounds: median {statistics.median(ms):.1f} ms, p99 {p99(ms):.1f} ms, "
                  f"max {max(ms):.1f} ms")
            ms = [x * 1000 for x in own]
            print(f"{pattern}: the writing instance's own first read after its 201 "
                  f"(read-your-writes): median {statistics.median(ms):.2f} ms, p99 {p99(ms):.2f} ms, "
                  f"max {max(ms):.2f} ms")
        print(f"B: model loads {b.metric('rates_model_loads_total'):.0f} (1: no reload), "
              f"applies {b.metric('rates_model_applies_total'):.0f}, keys {b.metric('rates_model_keys'):.0f}")
        return 0
    finally:
        for s in (a, b):
            if s:
                s.stop()
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
