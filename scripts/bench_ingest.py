"""Ingestion benchmark (issue 3): the same generated CSVs loaded
  (a) through POST /batches into the migrated schema, the service connected as rates_app
      (since issue 26: no route index, one grouped append to the change log per statement;
      the daily aggregate is folded afterwards, off the commit path: the time from the 201
      to an empty change log is printed as the fold's, and the next run starts after it);
  (b) with psql \\copy in one transaction into prices as the dump defines it (two foreign
      keys) plus the route index of migration 0002: the naive way;
  (c) with psql \\copy into a bare table with the same columns: the COPY limit.
  (d) with psql \\copy into a table with the same columns and only the route index: the
      limit of any design that keeps the route index (which /rates needs).
  (e) with psql \\copy straight into the migrated prices (integrity trigger, BRIN by batch)
      with the change-log trigger disabled, rolled back: the floor of the integrity machinery
      alone, so (e)/(c) bounds what any cheaper log could give (issue 15);
  (f) the same COPY straight into prices with every trigger (the integrity checks and the
      change log from the COPY's transition table), rolled back: no staging table.
On a throwaway cluster with fsync, synchronous_commit and full_page_writes ON. Sizes run in
order; within a size the three ways alternate, three rounds; the median counts. Prints rows/s,
the ratios and the server's peak RSS growth (VmHWM) across the largest batches."""
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tests import support
from tests.support import ops

SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "50000,1000000").split(",")]
SHAPES = os.environ.get("BENCH_SHAPES", "spread,dump").split(",")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TOKEN = "bench-token-0123456789abcdef"


def gen_csv(path, n, codes, shape="spread"):
    """spread: nearly every row its own (route, day), over six years (the worst case for
    any per-key aggregate: one aggregate key per price); dump: the dump's 31 days, so a
    route-day gets many prices (as the dump's 2.6 per route-day, more for large batches)."""
    k = len(codes)
    with open(path, "w") as f:
        f.write("orig_code,dest_code,day,price\n")
        for i in range(n):
            o, d = codes[i % k], codes[(i // k + 1 + i) % k]
            if shape == "dump":
                day = f"2021-01-{1 + (i // 7) % 31:02d}"
            else:
                day = f"20{22 + (i // 365) % 6}-{1 + (i // 28) % 12:02d}-{1 + i % 28:02d}"
            f.write(f"{o},{d},{day},{100 + (i * 7919) % 5000}\n")


def vm_hwm_kb(pid):
    return ops.status_kb(pid, "VmHWM")


def run_a(server, path):
    size = os.path.getsize(path)
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        c.request("POST", "/batches", body=f, headers={
            "Content-Type": "text/csv", "Content-Length": str(size),
            "Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        body = r.read()
    dt = time.perf_counter() - t0
    c.close()
    if r.status != 201:
        raise RuntimeError(f"POST /batches: {r.status} {body[:300]!r}")
    return dt


def run_copy(pg, db, table, path):
    t0 = time.perf_counter()
    subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                    "-p", str(pg.port), "-U", "postgres", "-d", db, "-c",
                    f"\\copy {table} (orig_code, dest_code, day, price) FROM '{path}' CSV HEADER"],
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def wait_folded(pg, db, bound_s=900):
    """Seconds until the service's background fold has emptied the change log."""
    t0 = time.perf_counter()
    while pg.psql("SELECT count(*) FROM public.rates_changes", db=db) != "0":
        if time.perf_counter() - t0 > bound_s:
            raise RuntimeError(f"the fold did not empty the change log in {bound_s} s")
        time.sleep(0.05)
    return time.perf_counter() - t0


def run_direct(pg, db, path, aggregate):
    """(e) and (f): a COPY straight into the migrated prices, without (e) or with (f) the
    change-log trigger, in a transaction that is rolled back (the aggregate stays right for
    (a)). Both run at the 64 MB work_mem that the service sets for its batch INSERT."""
    pre = [] if aggregate else ["-c", "ALTER TABLE public.prices DISABLE TRIGGER zz_changes_insert"]
    t0 = time.perf_counter()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                    "-p", str(pg.port), "-U", "postgres", "-d", db, "-c", "BEGIN", "-c",
                    "SET LOCAL work_mem = '64MB'"] + pre + ["-c",
                    f"\\copy public.prices (orig_code, dest_code, day, price) FROM '{path}' "
                    "CSV HEADER", "-c", "ROLLBACK"],
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def main():
    if not support.dump_path():
        print("bench-ingest: the dump is needed (RATES_DUMP)", file=sys.stderr)
        return 2
    pg = support.PgCluster(extra_conf="fsync = on\nsynchronous_commit = on\n"
                                      "full_page_writes = on\nmax_wal_size = 4GB\n")
    tmp = tempfile.mkdtemp(prefix="rates-bench-ingest-")
    server = nomodel = None
    try:
        support.create_rates_db(pg, "bench_a")
        pg.psql("CREATE DATABASE bench_b", db="postgres")
        pg.psql_file(support.dump_path(), db="bench_b")
        pg.psql("CREATE INDEX prices_route_day_idx ON public.prices (orig_code, dest_code, day) "
                "INCLUDE (price); CREATE TABLE prices_bare (orig_code text NOT NULL, "
                "dest_code text NOT NULL, day date NOT NULL, price integer NOT NULL); "
                "CREATE TABLE prices_idx (LIKE prices_bare); CREATE INDEX ON prices_idx "
                "(orig_code, dest_code, day) INCLUDE (price)", db="bench_b")
        fks = pg.psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'prices'::regclass "
                      "AND contype = 'f'", db="bench_b")
        codes = pg.psql("SELECT code FROM ports ORDER BY code LIMIT 60", db="bench_a").split("\n")
        server = support.Server(pg.url("bench_a", user="rates_app"),
                                env={"RATES_INGEST_TOKENS": f"bench:{TOKEN}",
                                     "RATES_LOG_LEVEL": "warn", "RATES_FOLD_INTERVAL_MS": "200"})
        server.wait_ready()
        # (g): the same upload on an instance without the read model (RATES_MODEL=false): the
        # cost of applying the batch to the model before the 201 (docs/readmodel.md).
        nomodel = support.Server(pg.url("bench_a", user="rates_app"),
                                 env={"RATES_INGEST_TOKENS": f"bench:{TOKEN}",
                                      "RATES_LOG_LEVEL": "warn", "RATES_FOLD_INTERVAL_MS": "200",
                                      "RATES_MODEL": "false"})
        nomodel.wait_ready()
        print(f"cluster: fsync={pg.psql('SHOW fsync', db='postgres')}, "
              f"synchronous_commit={pg.psql('SHOW synchronous_commit', db='postgres')}; "
              f"(b) prices has {fks} foreign keys + route index; service role: "
              f"{pg.psql('SELECT usename FROM pg_stat_activity WHERE datname = $$bench_a$$ AND application_name = $$ratesd$$ LIMIT 1', db='postgres') or 'rates_app'}")
        print("%6s %9s %18s %15s %15s %15s %15s %15s %15s %6s %6s %6s %6s %6s %6s" % (
            "shape", "rows", "(a) POST /batches", "(b) copy+FKs", "(c) copy bare",
            "(d) bare+index", "(e) no aggregate", "(f) copy+trigs", "(g) a, no model", "a/b",
            "a/c", "a/d", "e/c", "f/c", "g/c"))
        results = {}
        for shape, n in [(sh, n) for sh in SHAPES for n in SIZES]:
            path = os.path.join(tmp, f"prices_{shape}_{n}.csv")
            gen_csv(path, n, codes, shape)
            times = {"a": [], "b": [], "c": [], "d": [], "e": [], "f": [], "g": []}
            folds = []
            hwm0 = vm_hwm_kb(server.proc.pid)
            for _ in range(ROUNDS):
                times["a"].append(run_a(server, path))
                folds.append(wait_folded(pg, "bench_a"))
                times["b"].append(run_copy(pg, "bench_b", "prices", path))
                times["c"].append(run_copy(pg, "bench_b", "prices_bare", path))
                times["d"].append(run_copy(pg, "bench_b", "prices_idx", path))
                times["e"].append(run_direct(pg, "bench_a", path, aggregate=False))
                times["f"].append(run_direct(pg, "bench_a", path, aggregate=True))
                times["g"].append(run_a(nomodel, path))
                wait_folded(pg, "bench_a")
            hwm1 = vm_hwm_kb(server.proc.pid)
            rate = {k: n / statistics.median(v) for k, v in times.items()}
            results[(shape, n)] = (rate, (hwm1 - hwm0) / 1024, hwm0 / 1024, hwm1 / 1024)
            print(f"{shape:>6} {n:>9} {rate['a']:>14,.0f} r/s {rate['b']:>11,.0f} r/s "
                  f"{rate['c']:>11,.0f} r/s {rate['d']:>11,.0f} r/s {rate['e']:>11,.0f} r/s "
                  f"{rate['f']:>11,.0f} r/s {rate['g']:>11,.0f} r/s "
                  f"{rate['a'] / rate['b']:>5.1f}x {rate['a'] / rate['c']:>5.2f}x "
                  f"{rate['a'] / rate['d']:>5.2f}x {rate['e'] / rate['c']:>5.2f}x "
                  f"{rate['f'] / rate['c']:>5.2f}x {rate['g'] / rate['c']:>5.2f}x   ratesd VmHWM {hwm0 / 1024:.1f} -> "
                  f"{hwm1 / 1024:.1f} MB; fold after (a): median {statistics.median(folds):.2f} s "
                  f"({n / statistics.median(folds):,.0f} prices/s)")
        big = max(SIZES)
        goals = []
        for (shape, n), (rate, growth, _, _) in results.items():
            goals.append((f"{shape} {n}: (a) >= 0.5x (c) (issue 15)", rate["a"] >= 0.5 * rate["c"]))
            if n == big:
                goals += [(f"{shape} {n}: (a) >= 3x (b)", rate["a"] >= 3 * rate["b"]),
                          (f"{shape}: peak RSS growth {growth:.1f} MB <= 32 MB at {big} rows",
                           growth <= 32)]
        for name, ok in goals:
            print(f"goal {name}: {'met' if ok else 'NOT met'}")
        return 0
    finally:
        for s in (server, nomodel):
            if s:
                s.stop()
        pg.destroy()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
