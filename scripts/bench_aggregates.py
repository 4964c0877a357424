"""The daily aggregate at scale (issue 15): its size and build time next to the table's.

On a throwaway cluster with fsync on: `rates-gen --schema --prices N` (default 10,000,000)
loaded with psql, then `ratesd migrate` (0002's route index built, 0010's backfill of the
node map and rates_daily, 0011's drop of the route index, each timed from migrate's own log),
then the sizes of prices, of the route index it no longer needs (built again once, timed,
dropped) and of the aggregate, then `ratesd aggregates check` and `ratesd aggregates
rebuild` (BENCH_AGG_REBUILD=0 skips the rebuild), timed. Prints one table.
Usage: BENCH_AGG_PRICES=N python3 -m scripts.bench_aggregates (make bench-aggregates)."""
import json
import os
import re
import subprocess
import sys
import time

from tests import support

PRICES = int(os.environ.get("BENCH_AGG_PRICES", "10000000"))
REBUILD = os.environ.get("BENCH_AGG_REBUILD", "1") != "0"
GEN = os.environ.get("RATES_GEN", os.path.join(os.path.dirname(support.RATES_BIN), "rates-gen"))
DB = "agg"


def mb(pg, expr):
    return int(pg.psql(f"SELECT {expr}", db=DB)) / 1048576


def ratesd(pg, *args):
    """Runs ratesd ARGS as postgres (the owner's tools need it); (seconds, rc, output)."""
    env = support.server_env({"RATES_DATABASE_URL": pg.url(DB)})
    t0 = time.perf_counter()
    r = subprocess.run([support.RATES_BIN] + list(args), env=env, capture_output=True,
                       text=True, timeout=7200)
    return time.perf_counter() - t0, r.returncode, r.stdout + r.stderr


def migration_ms(log):
    """{migration name: ms} from migrate's 'applied NAME in X ms' lines (JSON or text)."""
    out = {}
    for line in log.splitlines():
        try:
            line = json.loads(line).get("msg", "")
        except ValueError:
            pass
        m = re.search(r"applied (\S+) in ([0-9.]+) ms", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def progress(msg):
    print(f"bench-aggregates: {msg}", file=sys.stderr, flush=True)


def main():
    pg = support.PgCluster(extra_conf="fsync = on\nsynchronous_commit = on\n"
                                      "full_page_writes = on\nmax_wal_size = 4GB\n")
    try:
        pg.psql(f"CREATE DATABASE {DB}", db="postgres")
        t0 = time.perf_counter()
        gen = subprocess.Popen([GEN, "--schema", "--prices", str(PRICES)], stdout=subprocess.PIPE)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", str(pg.port), "-U", "postgres", "-d", DB], stdin=gen.stdout,
                       check=True, capture_output=True)
        gen.stdout.close()
        if gen.wait() != 0:
            raise RuntimeError("rates-gen failed")
        load_s = time.perf_counter() - t0
        progress(f"loaded in {load_s:.1f} s")
        dt, rc, log = ratesd(pg, "migrate")
        if rc != 0:
            raise RuntimeError(f"migrate failed: {log}")
        ms = migration_ms(log)
        progress(f"migrate {dt:.1f} s")
        backfill = next((v for k, v in ms.items() if k.startswith("0010")), float("nan")) / 1e3
        idx0002 = next((v for k, v in ms.items() if k.startswith("0002")), float("nan")) / 1e3
        n_prices = int(pg.psql("SELECT count(*) FROM public.prices", db=DB))
        # Distinct route-days: one sort in bytes order with room to sort in memory (a
        # DISTINCT in the database collation at 4 MB work_mem takes over 15 min at 10 M).
        route_days = int(pg.psql("SET work_mem = '256MB'; SELECT count(*) FROM (SELECT 1 FROM "
                                 "public.prices GROUP BY orig_code COLLATE \"C\", "
                                 "dest_code COLLATE \"C\", day) s", db=DB).split("\n")[-1])
        n_daily = int(pg.psql("SELECT count(*) FROM public.rates_daily", db=DB))
        heap = mb(pg, "pg_relation_size('public.prices')")
        prices_idx = mb(pg, "pg_indexes_size('public.prices')")
        daily_heap = mb(pg, "pg_relation_size('public.rates_daily')")
        daily_idx = mb(pg, "pg_indexes_size('public.rates_daily')")
        t0 = time.perf_counter()
        pg.psql("SET maintenance_work_mem = '256MB'; CREATE INDEX bench_route_idx ON "
                "public.prices (orig_code, dest_code, day) INCLUDE (price)", db=DB)
        route_s = time.perf_counter() - t0
        route_mb = mb(pg, "pg_relation_size('public.bench_route_idx')")
        pg.psql("DROP INDEX public.bench_route_idx", db=DB)
        progress(f"route index {route_s:.1f} s")
        check_s, check_rc, check_out = ratesd(pg, "aggregates", "check")
        progress(f"check {check_s:.1f} s")
        rows = [
            ("prices heap (rates-gen load)", f"{n_prices:,}", f"{heap:,.0f} MB", f"{load_s:.1f} s"),
            ("prices indexes kept (BRIN by batch)", "", f"{prices_idx * 1024:,.0f} kB", ""),
            ("route index (0002; dropped by 0011)", "", f"{route_mb:,.0f} MB",
             f"{route_s:.1f} s (0002 in migrate: {idx0002:.1f} s)"),
            ("rates_daily heap + primary key (0010)", f"{n_daily:,}",
             f"{daily_heap + daily_idx:,.0f} MB ({daily_heap:,.0f} + {daily_idx:,.0f})",
             f"{backfill:.1f} s (0010 backfill)"),
            ("ratesd aggregates check", "", "", f"{check_s:.1f} s (exit {check_rc})"),
        ]
        if REBUILD:
            rb_s, rb_rc, _ = ratesd(pg, "aggregates", "rebuild")
            rows.append(("ratesd aggregates rebuild (a correct aggregate)", "", "",
                         f"{rb_s:.1f} s (exit {rb_rc})"))
        print(f"bench-aggregates: {n_prices:,} prices, {route_days:,} route-days "
              f"({n_prices / route_days:.2f} prices each), aggregate rows per price "
              f"{n_daily / n_prices:.2f}, aggregate / heap {(daily_heap + daily_idx) / heap:.2f}x, "
              f"aggregate / route index {(daily_heap + daily_idx) / route_mb:.2f}x")
        print("%-48s %12s %24s %s" % ("", "rows", "size", "time"))
        for r in rows:
            print("%-48s %12s %24s %s" % r)
        if check_rc != 0:
            print(check_out)
            return 1
        return 0
    finally:
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
