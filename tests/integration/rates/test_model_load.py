"""The read model's load from a snapshot (issue 26, src/model_build.c): prices written with plain
SQL before the instances start, on days far apart (1901 to 2099: pairs whose windows turn
into sorted lists), a dense year, and repeats of a day, under ports and a region. Each
instance builds its model from the table's rows (binary COPY) at start; every answer must
be byte for byte the database path's, ports and region, narrow spans and century-long ones."""
import random

import pytest

from tests.support import ingest as iu

DB = "rates_model_load"
PORTS = iu.PORTS[20:26]
SPARSE_DAYS = ["1901-03-01", "1950-06-15", "1999-12-31", "2000-01-01", "2000-02-29",
               "2040-01-01", "2099-12-31"]


@pytest.fixture(scope="module")
def loaded(pg):
    url = iu.make_db(pg, DB)
    rng = random.Random(2026)
    rows = []
    for day in SPARSE_DAYS:  # one route, days decades apart, one to four prices each
        rows += [(PORTS[0], PORTS[1], day, rng.randint(1, 5000)) for _ in range(rng.randint(1, 4))]
    for _ in range(3000):  # a dense year over every pair of the six ports
        rows.append((rng.choice(PORTS), rng.choice(PORTS),
                     f"2035-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", rng.randint(1, 5000)))
    rows += [(PORTS[2], PORTS[3], "2035-06-01", 10)] * 5  # the same price five times on one day
    values = ",".join(f"('{o}', '{d}', '{day}', {p})" for o, d, day, p in rows)
    pg.psql(f"INSERT INTO prices (orig_code, dest_code, day, price) VALUES {values}", db=DB)
    a, b, oracle = iu.start_model_trio(url)
    yield a, b, oracle
    for s in (a, b, oracle):
        iu.stop_server(s)


def _paths():
    names = PORTS[:4] + ["ingest_test"]
    out = [iu.rates_path(PORTS[0], PORTS[1], "1901-01-01", "1999-12-31"),
           iu.rates_path(PORTS[0], PORTS[1], "2000-01-01", "2099-12-31"),
           iu.rates_path("ingest_test", "ingest_test", "2000-01-01", "2099-12-31"),
           iu.rates_path(PORTS[0], "ingest_test", "1900-01-01", "1999-12-31")]
    for day in SPARSE_DAYS:
        y, m, d = day.split("-")
        out.append(iu.rates_path(PORTS[0], PORTS[1], f"{y}-{m}-01", f"{y}-{m}-28"))
        out.append(iu.rates_path("ingest_test", PORTS[1], day, day))
    out += [iu.rates_path(o, d, "2035-01-01", "2035-12-31") for o in names for d in names]
    return out


def test_a_loaded_model_answers_as_the_database(loaded):
    a, b, oracle = loaded
    for s in (a, b):
        assert s.metric('rates_model_state{state="current"}') == 1
        assert s.metric("rates_model_loads_total") == 1
    for path in _paths():
        st, _, want = oracle.request("GET", path)
        assert st == 200, (path, want)
        for s, name in ((a, "A"), (b, "B")):
            st, headers, got = s.request("GET", path)
            assert st == 200, (name, path, got)
            assert got == want, f"{name} differs from the database at {path}"
    # The answers came from memory, not from the database path.
    assert a.metric('rates_model_reads_total{source="model"}') >= len(_paths())
