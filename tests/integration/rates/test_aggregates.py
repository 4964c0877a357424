"""The daily aggregate (issue 15, docs/aggregates.md) against an independent oracle.

Every step changes prices another way (batches with duplicates within and across them,
retractions, plain SQL as rates_app and as the owner: INSERT, UPDATE of a price and of a key,
DELETE, TRUNCATE; ports moving between regions, a region re-parented), then
`ratesd aggregates check` must be clean and hundreds of random /rates queries (port-port,
port-region, region-port, region-region at every depth, spans 1-62 days, unknown codes)
must equal, number text for number text, what the raw prices say. The oracle never reads the
aggregate or its functions: a value's ports come from the ports and regions rows walked in
Python, counts and sums are added up in Python from the raw prices, and each average is
PostgreSQL's own avg(integer)::float8 of a set with that count and sum (avg of integers is
exactly sum / count in numeric, then float8: that is what the service must reproduce).
Bounded: a fixed number of steps and queries, every wait has a timeout."""
import datetime
import json
import os
import random
import subprocess
import threading
import time
import urllib.parse

import pytest

from tests import support
from tests.support import ingest as iu

DB = "rates_agg"
QUERIES_PER_STEP = int(os.environ.get("RATES_AGG_QUERIES", "400"))
DUMP_DAYS = [datetime.date(2021, 1, 1) + datetime.timedelta(days=i) for i in range(31)]
TEST_REGIONS = [("agg_top", None), ("agg_mid", "agg_top"), ("agg_low", "agg_mid"),
                ("agg_side", "agg_top")]


@pytest.fixture(scope="module")
def env(pg):
    url = iu.make_db(pg, DB)
    for slug, parent in TEST_REGIONS:
        p = f"'{parent}'" if parent else "NULL"
        pg.psql(f"INSERT INTO regions (slug, name, parent_slug) VALUES ('{slug}', '{slug}', {p})",
                db=DB)
    # Spread the test ports over the test tree (every depth).
    for i, code in enumerate(iu.PORTS):
        pg.psql(f"UPDATE ports SET parent_slug = '{TEST_REGIONS[i % 4][0]}' "
                f"WHERE code = '{code}'", db=DB)
    s = iu.start_server(url)
    yield {"pg": pg, "server": s, "url": url}
    iu.stop_server(s)


def check(pg):
    r = subprocess.run([support.RATES_BIN, "aggregates", "check"],
                       env=support.server_env({"RATES_DATABASE_URL": pg.url(DB)}),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"aggregates check: {r.returncode}\n{r.stdout[-3000:]}{r.stderr}"
    assert "0 differences" in r.stdout


def snapshot(pg):
    """The raw data: prices by (orig, dest) -> day -> [n, sum]; ports; regions."""
    out = pg.psql("COPY (SELECT orig_code, dest_code, day, price FROM prices) TO STDOUT", db=DB)
    by_route = {}
    for line in out.splitlines():
        o, d, day, price = line.split("\t")
        cell = by_route.setdefault(o, {}).setdefault(d, {}).setdefault(day, [0, 0])
        cell[0] += 1
        cell[1] += int(price)
    ports = dict(line.split("|") for line in
                 pg.psql("SELECT code, parent_slug FROM ports", db=DB).splitlines())
    parents = {}
    for line in pg.psql("SELECT slug, coalesce(parent_slug, '') FROM regions", db=DB).splitlines():
        slug, parent = line.split("|")
        parents[slug] = parent or None
    return by_route, ports, parents


def ports_of(value, ports, parents):
    """value itself plus every port whose region is value or below it (walked upwards)."""
    out = {value}
    if value in parents:
        for code, region in ports.items():
            r, depth = region, 0
            while r is not None and depth <= 65:
                if r == value:
                    out.add(code)
                    break
                r, depth = parents.get(r), depth + 1
    return out


def expected_days(by_route, orig_set, dest_set, days):
    """{day: [n, sum]} over every price from orig_set to dest_set on those days."""
    acc = {}
    wanted = set(days)
    for o in orig_set:
        dests = by_route.get(o)
        if not dests:
            continue
        for d in dest_set & dests.keys():
            for day, (n, s) in dests[d].items():
                if day in wanted:
                    cell = acc.setdefault(day, [0, 0])
                    cell[0] += n
                    cell[1] += s
    return acc


def averages(pg, pairs):
    """(n, sum) -> avg(integer)::float8 text, from PostgreSQL's avg over a synthetic set."""
    pairs = sorted(pairs)
    out = {}
    for i in range(0, len(pairs), 2000):
        chunk = pairs[i:i + 2000]
        values = ",".join(f"({n},{s})" for n, s in chunk)
        rows = pg.psql(
            "SELECT t.n, t.s, (SELECT avg(v)::float8 FROM (SELECT (CASE WHEN g = 1 THEN "
            "t.s - (t.n - 1) * (t.s / t.n) ELSE t.s / t.n END)::integer AS v "
            f"FROM generate_series(1, t.n) g) x) FROM (VALUES {values}) t(n, s)", db=DB)
        for line in rows.splitlines():
            n, s, a = line.split("|")
            out[(int(n), int(s))] = a
    return out


def random_queries(rng, ports, parents, count):
    codes = sorted(ports)
    slugs = sorted(parents)
    unknown = ["ZZZZZ", "no_such_region", "cn", "CNSGH "]
    out = []
    for _ in range(count):
        kinds = rng.choice([("p", "p"), ("p", "r"), ("r", "p"), ("r", "r")])
        pick = [rng.choice(codes) if k == "p" else rng.choice(slugs) for k in kinds]
        if rng.random() < 0.05:
            pick[rng.randrange(2)] = rng.choice(unknown)
        span = rng.randint(1, 62)
        if rng.random() < 0.6:
            start = DUMP_DAYS[0] + datetime.timedelta(days=rng.randint(-20, 30))
        else:
            start = datetime.date(2030, 1, 1) + datetime.timedelta(days=rng.randint(-10, 60))
        out.append((pick[0], pick[1], start, start + datetime.timedelta(days=span - 1)))
    return out


def compare(pg, server, rng, count=QUERIES_PER_STEP):
    by_route, ports, parents = snapshot(pg)
    queries = random_queries(rng, ports, parents, count)
    expected = []
    pairs = set()
    for o, d, f, t in queries:
        days = [(t - datetime.timedelta(days=i)).isoformat() for i in range((t - f).days + 1)]
        acc = expected_days(by_route, ports_of(o, ports, parents), ports_of(d, ports, parents),
                            days)
        expected.append((days, acc))
        pairs.update((n, s) for n, s in acc.values() if n >= 3)
    avg = averages(pg, pairs)
    for (o, d, f, t), (days, acc) in zip(queries, expected):
        query = urllib.parse.urlencode({"date_from": f, "date_to": t, "orig_code": o,
                                        "dest_code": d})
        st, _, body = server.request("GET", f"/rates?{query}")
        assert st == 200, (o, d, f, t, body)
        got = json.loads(body, parse_float=str, parse_int=str)["rates"]
        want = []
        for day in days:
            n, s = acc.get(day, (None, None))
            price = None if n is None or n < 3 else avg[(n, s)]
            want.append({"count": None if n is None else str(n), "day": day, "price": price})
        assert got == want, f"/rates {o} -> {d} {f}..{t}"
    return len(queries)


def sql(pg, statement, user="postgres"):
    return pg.psql(statement, db=DB, user=user)


def random_batch(rng, codes, n):
    rows = []
    for _ in range(n):
        day = rng.choice(DUMP_DAYS) if rng.random() < 0.7 else \
            datetime.date(2030, 1, 1) + datetime.timedelta(days=rng.randint(0, 40))
        rows.append((rng.choice(codes), rng.choice(codes), day.isoformat(),
                     rng.randint(1, 5000)))
    rows += rng.sample(rows, min(len(rows), n // 5))  # duplicates within the batch
    return rows


def test_property(env):
    pg, s = env["pg"], env["server"]
    rng = random.Random(1515)
    dump_codes = sql(pg, "SELECT code FROM ports WHERE parent_slug NOT LIKE 'agg_%' "
                         "ORDER BY code LIMIT 12").split()
    codes = list(iu.PORTS[:16]) + dump_codes
    deadline = time.monotonic() + 240
    batches, total = [], 0
    check(pg)
    total += compare(pg, s, rng)

    # 1. Batches, duplicates within and across them (every third batch is re-sent).
    for i in range(6):
        rows = random_batch(rng, codes, rng.randint(50, 600))
        if batches and i % 3 == 2:
            rows = batches[-1][1]
        st, _, doc = iu.post(s, iu.body(rows))
        assert st == 201, doc
        batches.append((doc["batch_id"], rows))
    check(pg)
    total += compare(pg, s, rng)

    # 2. Retractions.
    for bid, _ in rng.sample(batches, 2):
        st, _, b = s.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
        assert st == 200, b
    check(pg)
    total += compare(pg, s, rng)

    # 3. Plain SQL as the service role and as the owner: INSERT, UPDATE (price, key), DELETE.
    values = ",".join(f"('{o}','{d}','{day}',{p})" for o, d, day, p in random_batch(rng, codes, 80))
    sql(pg, f"INSERT INTO prices (orig_code, dest_code, day, price) VALUES {values}", "rates_app")
    sql(pg, "UPDATE prices SET price = price + 7 WHERE day = '2021-01-05' AND orig_code IN "
            f"('{codes[0]}', '{dump_codes[0]}')")
    sql(pg, f"UPDATE prices SET dest_code = '{codes[1]}' WHERE day = '2021-01-06' "
            f"AND orig_code IN ('{codes[2]}', '{dump_codes[1]}')")
    sql(pg, "UPDATE prices SET batch_id = batch_id WHERE batch_id IS NOT NULL")
    sql(pg, f"DELETE FROM prices WHERE day = '2021-01-07' AND dest_code = '{dump_codes[2]}'",
        "rates_app")
    sql(pg, "DELETE FROM prices WHERE ctid IN (SELECT ctid FROM prices WHERE day = '2021-01-08' "
            "LIMIT 500)")
    check(pg)
    total += compare(pg, s, rng)

    # 4. Ports move between regions (a test port, a dump port); a region is re-parented.
    sql(pg, f"UPDATE ports SET parent_slug = 'agg_low' WHERE code IN ('{codes[3]}', "
            f"'{dump_codes[3]}')")
    sql(pg, "UPDATE regions SET parent_slug = 'agg_side' WHERE slug = 'agg_mid'")
    sql(pg, f"UPDATE ports SET parent_slug = 'agg_side' WHERE code = '{codes[4]}'")
    check(pg)
    total += compare(pg, s, rng)

    # 5. The service role cannot write the aggregate (it could forge values).
    for stmt in ("UPDATE rates_daily SET n = n + 1", "DELETE FROM rates_daily",
                 "INSERT INTO rates_daily VALUES ('X', 'Y', '2021-01-01', 1, 1)",
                 "SELECT rates_daily_rebuild()", "DELETE FROM rates_nodes"):
        r = pg.psql(stmt, db=DB, user="rates_app", check=False)
        assert r == "", f"rates_app could run {stmt}: {r}"
    assert "permission denied" in subprocess.run(
        ["psql", "-X", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "rates_app", "-d", DB,
         "-c", "UPDATE rates_daily SET n = n + 1"], capture_output=True, text=True).stderr

    # 6. A corrupted aggregate is found, then rebuilt.
    sql(pg, "UPDATE rates_daily SET n = n + 1 WHERE ctid = (SELECT min(ctid) FROM rates_daily "
            "WHERE n > 0)")
    r = subprocess.run([support.RATES_BIN, "aggregates", "check"],
                       env=support.server_env({"RATES_DATABASE_URL": pg.url(DB)}),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "1 difference" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([support.RATES_BIN, "aggregates", "rebuild"],
                       env=support.server_env({"RATES_DATABASE_URL": pg.url(DB)}),
                       capture_output=True, text=True, timeout=120)
    # The corrupted row, plus the rows whose count fell to 0 (rebuild drops them).
    assert r.returncode == 0 and " rewritten in " in r.stdout, r.stdout + r.stderr
    assert not r.stdout.startswith("aggregates rebuild: 0 rows"), r.stdout
    check(pg)

    # 7. TRUNCATE, then new batches on an empty table.
    sql(pg, "TRUNCATE prices")
    assert sql(pg, "SELECT count(*) FROM rates_daily") == "0"
    for _ in range(3):
        st, _, doc = iu.post(s, iu.body(random_batch(rng, codes, 300)))
        assert st == 201, doc
    check(pg)
    total += compare(pg, s, rng)
    assert time.monotonic() < deadline, "the property test overran its time bound"
    assert total >= 6 * QUERIES_PER_STEP


def test_concurrent_batches_and_retraction(env):
    """Four batches on the same keys at once plus a retraction: no deadlock, no lost update."""
    pg, s = env["pg"], env["server"]
    rng = random.Random(77)
    codes = list(iu.PORTS[:6])
    st, _, doc = iu.post(s, iu.body(random_batch(rng, codes, 2000)))
    assert st == 201, doc
    victim = doc["batch_id"]
    bodies = [iu.body(random_batch(random.Random(i), codes, 3000)) for i in range(4)]
    results = []

    def upload(b):
        results.append(iu.post(s, b, timeout=120)[0])

    def retract():
        results.append(s.request("DELETE", f"/batches/{victim}", headers=iu.AUTH,
                                 timeout=120)[0])

    threads = [threading.Thread(target=upload, args=(b,)) for b in bodies]
    threads.append(threading.Thread(target=retract))
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "a batch hung"
    assert sorted(results) == [200, 201, 201, 201, 201], results
    check(pg)
    compare(pg, s, rng, count=100)
