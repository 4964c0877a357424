"""The change log and its background fold (migration 0016, docs/aggregates.md).

Writers append grouped change rows; the fold moves them into rates_daily off the commit path.
Reads and `aggregates check` see fold + unfolded tail in one snapshot, so a batch is visible
at once whether or not it was folded, and the answer does not change when it is. Only the
definer functions write the log or take the fold's lock."""
import datetime
import json
import subprocess
import threading
import time

import pytest

from tests import support
from tests.support import ingest as iu

DB = "rates_fold"


@pytest.fixture(scope="module")
def db(pg):
    return iu.make_db(pg, DB)


def q(pg, sql, user="postgres"):
    return pg.psql(sql, db=DB, user=user)


def oracle(pg, orig, dest, d0, d1):
    """{day: (count, avg text)} straight from the raw prices."""
    out = {}
    for line in q(pg, f"SELECT day, count(*), avg(price)::float8 FROM prices WHERE orig_code = "
                      f"'{orig}' AND dest_code = '{dest}' AND day BETWEEN '{d0}' AND '{d1}' "
                      "GROUP BY day").splitlines():
        day, n, avg = line.split("|")
        out[day] = (int(n), avg)
    return out


def answers(server, orig, dest, d0, d1):
    st, _, b = server.request("GET", f"/rates?date_from={d0}&date_to={d1}&orig_code={orig}"
                                     f"&dest_code={dest}")
    assert st == 200, b
    return {r["day"]: (r["count"], r["price"]) for r in json.loads(b)["rates"] if r["count"]}


def assert_matches(pg, server, routes, d0, d1):
    for orig, dest in routes:
        want = oracle(pg, orig, dest, d0, d1)
        have = answers(server, orig, dest, d0, d1)
        assert set(have) == set(want), (orig, dest)
        for day, (n, avg) in want.items():
            price = have[day][1]
            assert have[day][0] == n
            # The service prints PostgreSQL's float8 text, or null under 3 prices.
            assert (price is None) if n < 3 else repr(float(price)) == repr(float(avg)), day


def check_clean(pg):
    r = subprocess.run([support.RATES_BIN, "aggregates", "check"],
                       env=support.server_env({"RATES_DATABASE_URL": pg.url(DB)}),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "0 differences" in r.stdout, r.stdout + r.stderr


def test_unfolded_tail_is_read_then_folded(pg, db):
    """With the fold off, a batch is answered from the tail; folding changes no answer."""
    s = iu.start_server(db, RATES_FOLD_INTERVAL_MS=0)
    try:
        rows = iu.gen_rows(3000, seed=11)
        st, _, doc = iu.post(s, iu.body(rows))
        assert st == 201, doc
        tail = int(q(pg, "SELECT count(*) FROM rates_changes", user="rates_app"))
        assert tail > 0
        routes = sorted({(o, d) for o, d, _, _ in rows})[:25]
        assert_matches(pg, s, routes, "2030-01-01", "2030-12-31")
        # A region pair too: every test port is under ingest_test.
        st, _, b = s.request("GET", "/rates?date_from=2030-01-01&date_to=2030-01-31"
                                    "&orig_code=ingest_test&dest_code=ingest_test")
        before = json.loads(b)["rates"]
        check_clean(pg)
        v0 = int(q(pg, "SELECT version FROM rates_data_version"))
        moved = int(q(pg, "SELECT rates_fold()", user="rates_app"))
        assert moved == tail
        assert q(pg, "SELECT count(*) FROM rates_changes") == "0"
        assert int(q(pg, "SELECT version FROM rates_data_version")) > v0
        assert int(q(pg, "SELECT folded_rows FROM rates_fold_state")) >= tail
        assert_matches(pg, s, routes, "2030-01-01", "2030-12-31")
        st, _, b = s.request("GET", "/rates?date_from=2030-01-01&date_to=2030-01-31"
                                    "&orig_code=ingest_test&dest_code=ingest_test")
        assert json.loads(b)["rates"] == before
        check_clean(pg)
        assert q(pg, "SELECT rates_fold()", user="rates_app") == "0"
    finally:
        iu.stop_server(s)


def test_service_folds_in_background(pg, db):
    """A folding instance empties the tail soon after its batch and says so in /metrics."""
    s = iu.start_server(db, RATES_FOLD_INTERVAL_MS=200)
    try:
        st, _, doc = iu.post(s, iu.body(iu.gen_rows(2000, seed=23)))
        assert st == 201, doc
        deadline = time.monotonic() + 20
        while q(pg, "SELECT count(*) FROM rates_changes") != "0":
            assert time.monotonic() < deadline, "the fold did not empty the tail in 20 s"
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while True:
            _, _, m = s.request("GET", "/metrics")
            m = m.decode()
            if 'rates_fold_runs_total{result="moved"} ' in m and \
                    'rates_fold_runs_total{result="moved"} 0\n' not in m and \
                    "rates_fold_tail_rows 0\n" in m:
                break
            assert time.monotonic() < deadline, m
            time.sleep(0.1)
        check_clean(pg)
    finally:
        iu.stop_server(s)


def test_one_fold_at_a_time(pg, db):
    """While one fold holds the state row, another returns -1 at once instead of waiting."""
    s = iu.start_server(db, RATES_FOLD_INTERVAL_MS=0)
    try:
        st, _, doc = iu.post(s, iu.body(iu.gen_rows(500, seed=31)))
        assert st == 201, doc
    finally:
        iu.stop_server(s)
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", DB,
         "-c", "BEGIN", "-c", "SELECT 1 FROM rates_fold_state FOR UPDATE",
         "-c", "SELECT pg_sleep(4)", "-c", "COMMIT"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1)
        t0 = time.monotonic()
        assert q(pg, "SELECT rates_fold()", user="rates_app") == "-1"
        assert time.monotonic() - t0 < 2
        assert q(pg, "SELECT count(*) > 0 FROM rates_changes") == "t"
    finally:
        holder.wait(timeout=30)
    assert int(q(pg, "SELECT rates_fold()", user="rates_app")) > 0
    check_clean(pg)


@pytest.mark.parametrize("stmt", [
    "INSERT INTO rates_changes VALUES (1, 'ZTAA', 'ZTAB', '2030-01-01', 1000, 1)",
    "DELETE FROM rates_changes",
    "TRUNCATE rates_changes",
    "UPDATE rates_fold_state SET folded_rows = 0",
    "SELECT 1 FROM rates_fold_state FOR UPDATE",
    "SELECT rates_fold_locked()",
    "SELECT rates_version_next()",
])
def test_service_role_cannot_forge_or_lock(pg, db, stmt):
    """rates_app reads the log; it cannot write it, take the fold's lock or bump versions."""
    r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U",
                        "rates_app", "-d", DB, "-c", stmt], capture_output=True, text=True)
    assert r.returncode != 0 and "permission denied" in r.stderr, r.stdout + r.stderr


def test_plain_sql_writers_are_logged(pg, db):
    """INSERT, UPDATE and DELETE by SQL, as the owner, go through the log like batches."""
    q(pg, "INSERT INTO prices (orig_code, dest_code, day, price) SELECT 'ZTAC', 'ZTAD', "
          "'2031-02-01'::date, 100 + g FROM generate_series(1, 5) g")
    q(pg, "UPDATE prices SET price = price + 1000 WHERE orig_code = 'ZTAC' AND "
          "dest_code = 'ZTAD' AND day = '2031-02-01' AND price = 101")
    q(pg, "DELETE FROM prices WHERE orig_code = 'ZTAC' AND dest_code = 'ZTAD' AND "
          "day = '2031-02-01' AND price = 102")
    s = iu.start_server(db, RATES_FOLD_INTERVAL_MS=0)
    try:
        assert_matches(pg, s, [("ZTAC", "ZTAD")], "2031-02-01", "2031-02-01")
        check_clean(pg)
        q(pg, "SELECT rates_fold()")
        assert_matches(pg, s, [("ZTAC", "ZTAD")], "2031-02-01", "2031-02-01")
    finally:
        iu.stop_server(s)
    check_clean(pg)


def test_concurrent_batches_while_folding(pg, db):
    """Batches commit while folds run: nothing lost, nothing counted twice."""
    s = iu.start_server(db, RATES_FOLD_INTERVAL_MS=50)
    errors = []

    def send(seed):
        rows = iu.gen_rows(1500, seed=seed, first_day=datetime.date(2032, 1, 1))
        st, _, doc = iu.post(s, iu.body(rows))
        if st != 201:
            errors.append((st, doc))

    try:
        # RATES_MAX_CONCURRENT_BATCHES is 4: one each.
        threads = [threading.Thread(target=send, args=(100 + i * 7,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        check_clean(pg)
        assert_matches(pg, s, [(iu.PORTS[0], iu.PORTS[1]), (iu.PORTS[5], iu.PORTS[7])],
                       "2032-01-01", "2032-12-31")
    finally:
        iu.stop_server(s)
    check_clean(pg)
