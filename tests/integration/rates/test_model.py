"""The read model (docs/readmodel.md): every ratesd answers GET /rates from memory, loaded
from one snapshot and kept current from the change log (migrations 0016, 0017).

Answers must equal the database's, byte for byte, on the instance that wrote (never older
than its 2xx, though the writer does not wait for the model) and, within a bounded time, on
every other instance; whatever another login role sends
(NOTIFY) changes nothing; a lost connection reloads; a model over its bound is dropped and the
database answers."""
import json
import os
import random
import shutil
import subprocess
import threading
import time

import psycopg2
import pytest

from tests import support
from tests.support import ingest as iu
from tests.support.ingest import rates_path

DB = "rates_model"
SQL_PORTS = iu.PORTS[:8]


@pytest.fixture(scope="module")
def db(pg):
    return iu.make_db(pg, DB)


@pytest.fixture(scope="module")
def pair(db):
    """Two instances on one database, and a third that never uses the model (the oracle's
    bytes: the database path as before)."""
    a, b, off = iu.start_model_trio(db)
    yield a, b, off
    for s in (a, b, off):
        iu.stop_server(s)


def q(pg, sql, user="postgres"):
    return pg.psql(sql, db=DB, user=user)


def newest_change_version(pg, day):
    """The newest version of a change of `day`, folded or not: what a model that holds every
    write of that day has at least."""
    return int(q(pg, "SELECT max(version) FROM (SELECT version, day FROM rates_changes "
                     "UNION ALL SELECT version, day FROM rates_changes_folded) c "
                     f"WHERE day = '{day}'"))


def get(s, path, headers=None):
    st, h, body = s.request("GET", path, headers=headers)
    assert st == 200, body
    return body, h


ROUTES = [("CNSGH", "NLRTM"), ("china_main", "northern_europe"), ("CNSGH", "north_europe_main"),
          ("ZTAA", "ZTAB"), ("ingest_test", "ingest_test"), ("ZTAA", "ingest_test"),
          ("NOPE1", "NLRTM"), ("china_main", "nowhere")]


def assert_same(a, off, routes=ROUTES, d0="2016-01-01", d1="2016-01-31"):
    for orig, dest in routes:
        path = rates_path(orig, dest, d0, d1)
        have, _ = get(a, path)
        want, _ = get(off, path)
        assert have == want, (orig, dest, d0, d1)


def wait_current(s, timeout=10):
    """True once s serves its model (state current), False after timeout seconds."""
    return support.wait_for(lambda: s.metric('rates_model_state{state="current"}') == 1, timeout)


def model_reads(s):
    return s.metric('rates_model_reads_total{source="model"}')


def test_model_answers_equal_the_database(pair):
    a, b, off = pair
    for s in (a, b):
        assert s.metric('rates_model_state{state="current"}') == 1
        assert s.metric("rates_model_keys") > 0
    before = model_reads(a)
    assert_same(a, off)
    assert_same(b, off, d0="2016-01-01", d1="2016-12-31")
    assert model_reads(a) >= before + len(ROUTES)
    assert off.metric('rates_model_state{state="off"}') == 1


def test_etags_are_equal_across_instances(pair):
    a, b, _ = pair
    path = rates_path("china_main", "northern_europe", "2016-02-01", "2016-02-29")
    _, ha = get(a, path)
    _, hb = get(b, path)
    assert ha["etag"] == hb["etag"]


def test_write_then_read_is_never_stale_and_other_instance_follows(pg, pair):
    a, b, off = pair
    lag, own = [], []
    for i in range(12):
        day = f"2031-01-{i + 1:02d}"
        rows = [("ZTAA", "ZTAB", day, 100 + i)] * 3
        st, _, doc = iu.post(a, iu.body(rows))
        assert st == 201, doc
        path = rates_path("ZTAA", "ZTAB", day, day)
        # The writer's own instance never answers without the batch once it said 201 (its
        # reads wait for the follower's pass, not the writer).
        t0 = time.monotonic()
        body, h = get(a, path)
        own.append(time.monotonic() - t0)
        assert h.get("server-timing", "").startswith("model;dur="), repr(sorted(dict(h).items()))
        got = json.loads(body)["rates"][0]
        assert got["count"] == 3 * (1 + 0) and got["price"] == 100 + i, got
        t0 = time.monotonic()
        while json.loads(get(b, path)[0])["rates"][0]["count"] != 3:
            assert time.monotonic() - t0 < 5, "the other instance did not follow in 5 s"
            time.sleep(0.005)
        lag.append(time.monotonic() - t0)
    lag.sort()
    own.sort()
    print(f"\nother instance's staleness after a batch: median {lag[len(lag) // 2] * 1000:.1f} ms, "
          f"max {lag[-1] * 1000:.1f} ms; the writer's own first read took median "
          f"{own[len(own) // 2] * 1000:.1f} ms, max {own[-1] * 1000:.1f} ms")
    assert_same(a, off, routes=[("ZTAA", "ZTAB"), ("ingest_test", "ingest_test")],
                d0="2031-01-01", d1="2031-01-31")


def test_plain_sql_writers_and_tree_changes_are_followed(pg, pair):
    """Writers that bypass the service (the owner's SQL), and a port that moves in the tree
    (the node map changes: every model reloads)."""
    a, b, off = pair
    rng = random.Random(7)
    values = ",".join(f"('{rng.choice(SQL_PORTS)}', '{rng.choice(SQL_PORTS)}', "
                      f"'2032-03-{rng.randint(1, 28):02d}', {rng.randint(50, 900)})"
                      for _ in range(400))
    q(pg, f"INSERT INTO prices (orig_code, dest_code, day, price) VALUES {values}")
    q(pg, "UPDATE prices SET price = price + 1 WHERE day BETWEEN '2032-03-01' AND '2032-03-05'")
    q(pg, "DELETE FROM prices WHERE day BETWEEN '2032-03-06' AND '2032-03-08'")
    loads = a.metric("rates_model_loads_total")
    q(pg, "INSERT INTO regions (slug, name, parent_slug) VALUES ('model_sub', 'Model sub', "
          "'ingest_test') ON CONFLICT DO NOTHING")
    q(pg, "UPDATE ports SET parent_slug = 'model_sub' WHERE code = 'ZTAC'")
    routes = [(o, d) for o in ("ZTAA", "ZTAC", "model_sub", "ingest_test")
              for d in ("ZTAB", "ZTAD", "model_sub", "ingest_test")]
    deadline = time.monotonic() + 10
    for s in (a, b):
        while True:
            try:
                assert_same(s, off, routes=routes, d0="2032-03-01", d1="2032-03-31")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    assert a.metric("rates_model_loads_total") > loads, "a node-map change must reload"


def test_forged_notify_changes_nothing(pg, pair):
    a, _, off = pair
    q(pg, "DROP ROLE IF EXISTS model_mallory; CREATE ROLE model_mallory LOGIN PASSWORD 'x'")
    # Migration 0018 took CONNECT from PUBLIC: an operator granting it is the worst case.
    q(pg, f"GRANT CONNECT ON DATABASE {DB} TO model_mallory")
    version = a.metric("rates_model_version")
    loads = a.metric("rates_model_loads_total")
    q(pg, "NOTIFY rates_data_version, '9223372036854775807'", user="model_mallory")
    q(pg, "NOTIFY rates_data_version, 'garbage'", user="model_mallory")
    time.sleep(0.5)
    assert a.metric("rates_model_version") == version
    assert a.metric("rates_model_loads_total") == loads
    assert a.metric('rates_model_state{state="current"}') == 1
    assert_same(a, off, routes=ROUTES[:3])


def test_lost_connection_reloads(pg, pair):
    a, _, off = pair
    loads = a.metric("rates_model_loads_total")
    q(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          f"WHERE application_name = 'ratesd-model' AND datname = '{DB}'")
    assert support.wait_for(lambda: a.metric("rates_model_loads_total") > loads, 10), \
        "no reload after the model's connection was cut"
    assert wait_current(a)
    assert_same(a, off, routes=ROUTES[:3])


def test_model_over_its_bound_falls_back_to_the_database(db, pair):
    _, _, off = pair
    s = iu.start_server(db, RATES_MODEL_MAX_BYTES=4096)
    try:
        assert s.metric('rates_model_state{state="too_large"}') == 1
        assert s.wait_log("over RATES_MODEL_MAX_BYTES", timeout=5)
        before = s.metric('rates_model_reads_total{source="database"}')
        assert_same(s, off, routes=ROUTES[:4])
        assert s.metric('rates_model_reads_total{source="database"}') >= before + 4
        assert s.metric("rates_model_bytes") < 4096
    finally:
        iu.stop_server(s)


def test_consistency_headers_cost_no_query_and_see_the_latest_commit(pg, pair):
    """Rates-Consistency: primary and Rates-Min-LSN (any LSN, a future one too) are answered
    from the model after a pass that began after the request: a commit made a moment before by
    someone else (the owner's SQL, no wait) is seen, and a flood of such reads makes no
    database query (they share passes: anonymous clients cannot force database work)."""
    import concurrent.futures
    a, _, off = pair
    path = rates_path("ZTAE", "ZTAF", "2033-05-01", "2033-05-01")
    for i, hdr in enumerate(({"Rates-Consistency": "primary"},
                             {"Rates-Min-LSN": "FFFFFFFF/FFFFFFFF"}, {"Rates-Min-LSN": "0/0"})):
        q(pg, "INSERT INTO prices (orig_code, dest_code, day, price) "
              "VALUES ('ZTAE', 'ZTAF', '2033-05-01', 10)")
        body, h = get(a, path, headers=hdr)
        assert json.loads(body)["rates"][0]["count"] == i + 1, (hdr, body)
        assert h["server-timing"].startswith("model;dur="), h
    q0 = a.metric("rates_db_query_duration_seconds_count")
    m0 = model_reads(a)
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        got = list(ex.map(lambda i: a.request("GET", path, headers={
            "Rates-Consistency": "primary"} if i % 2 else {"Rates-Min-LSN": "0/1"}), range(64)))
    assert all(st == 200 for st, _, _ in got)
    # They share passes: none makes a query of its own. A read whose pass takes longer than
    # its 200 ms bound (a loaded machine, a sanitizer build) falls back to the database once:
    # at most 2 of the 64, where one query each would be 64.
    queries = a.metric("rates_db_query_duration_seconds_count") - q0
    assert queries <= 2, queries
    assert model_reads(a) >= m0 + 64 - queries
    want, _ = get(off, path, headers={"Rates-Consistency": "primary"})
    assert {b for _, _, b in got} == {want}


def test_the_service_role_cannot_write_the_models_tables(pg, db):
    for sql in ("INSERT INTO rates_changes_folded VALUES (1, 'ZTAA', 'ZTAB', '2030-01-01', 1, 1)",
                "UPDATE rates_model_state SET epoch = epoch + 1",
                "DELETE FROM rates_changes_folded",
                "SELECT 1 FROM rates_model_state FOR UPDATE"):
        with pytest.raises(Exception) as e:
            q(pg, sql, user="rates_app")
        assert "permission denied" in str(e.value), sql


def test_reads_after_writes_with_a_frozen_replica(pg):
    """RATES_DATABASE_READ_URL at a 'replica' that never replays (another database): the model
    follows the primary, so every read after a write here sees it, and none goes to the
    replica, a request with Rates-Min-LSN neither (it gets a fresh model answer)."""
    primary = iu.make_db(pg, "rates_model_rr")
    frozen = iu.make_db(pg, "rates_model_frozen")
    s = iu.start_server(primary, RATES_DATABASE_READ_URL=frozen)
    try:
        for i in range(10):
            day = f"2032-02-{1 + i:02d}"
            st, _, doc = iu.post(s, iu.body([("ZTAA", "ZTAB", day, 500 + i)]))
            assert st == 201, doc
            body, h = get(s, rates_path("ZTAA", "ZTAB", "2032-02-01", day))
            assert sum(x["count"] or 0 for x in json.loads(body)["rates"]) == i + 1
            assert h["server-timing"].startswith("model;dur="), h
        body, _ = get(s, rates_path("ZTAA", "ZTAB", "2032-02-01", "2032-02-01"),
                      headers={"Rates-Min-LSN": "0/0"})
        assert sum(x["count"] or 0 for x in json.loads(body)["rates"]) == 1
    finally:
        iu.stop_server(s)


def test_a_stuck_follower_never_holds_a_write_and_reads_stay_exact(pg, db, pair):
    """The writer's 2xx never waits for the model: with the follower's pass blocked (a lock on
    rates_model_state, which every pass reads), a batch still answers 201 at once; a read on
    the same instance then waits up to 200 ms for the pass and answers from the database,
    with the batch (read-your-writes); past RATES_MODEL_SYNC_MS the model goes stale and the
    miss is counted once; when the lock goes, the model is current again and answers."""
    _, _, off = pair
    s = iu.start_server(db, RATES_MODEL_SYNC_MS=300)
    conn = psycopg2.connect(pg.url(DB))
    try:
        day = "2033-03-03"
        path = rates_path("ZTAA", "ZTAB", day, day)
        cur = conn.cursor()
        cur.execute("LOCK TABLE rates_model_state IN ACCESS EXCLUSIVE MODE")
        timeouts = s.metric("rates_model_sync_timeouts_total")
        t0 = time.monotonic()
        st, _, doc = iu.post(s, iu.body([("ZTAA", "ZTAB", day, 700)] * 3))
        took = time.monotonic() - t0
        assert st == 201, doc
        assert took < 1.0, f"the 201 took {took:.3f} s with the follower stuck"
        body, h = get(s, path)
        assert json.loads(body)["rates"][0]["count"] == 3
        assert h["server-timing"].startswith("db;dur="), h
        time.sleep(0.4)  # past RATES_MODEL_SYNC_MS; another span (no cache hit)
        body, h = get(s, rates_path("ZTAA", "ZTAB", day, "2033-03-04"))
        assert json.loads(body)["rates"][1]["count"] == 3
        assert s.metric("rates_model_sync_timeouts_total") == timeouts + 1
        assert s.metric('rates_model_state{state="stale"}') == 1
        conn.rollback()  # the lock goes; the blocked pass completes
        assert wait_current(s), "the model did not catch up"
        body, h = get(s, rates_path("ZTAA", "ZTAB", day, "2033-03-05"))  # not cached
        assert h["server-timing"].startswith("model;dur="), h
        assert json.loads(body)["rates"][2]["count"] == 3
        assert_same(s, off, routes=[("ZTAA", "ZTAB")], d0=day, d1=day)
    finally:
        conn.close()
        iu.stop_server(s)


def test_a_large_write_is_in_the_model_before_its_2xx_and_holds_no_read(pg, db, pair):
    """A write of RATES_MODEL_SYNC_ROWS rows or more waits for a pass that holds it: its 201
    leaves with the model at least that new, and the read after it answers from memory
    without a wait. While that writer waits (the follower blocked by a lock), a read of the
    same instance is not held: it answers at once from the model, without the unacknowledged
    batch. Past RATES_MODEL_SYNC_MS the writer answers anyway, and the read after its 201
    still has the batch (read-your-writes, from the database)."""
    _, _, off = pair
    s = iu.start_server(db, RATES_MODEL_SYNC_ROWS=3, RATES_MODEL_SYNC_MS=1500)
    conn = psycopg2.connect(pg.url(DB))
    try:
        day = "2034-04-04"
        synced = s.metric("rates_model_commits_synced_total")
        st, _, doc = iu.post(s, iu.body([("ZTAA", "ZTAB", day, 600)] * 3))
        assert st == 201, doc
        have = s.metric("rates_model_version")  # at once: no time for a pass after the 201
        version = newest_change_version(pg, day)
        assert have >= version, (have, version)
        assert s.metric("rates_model_commits_synced_total") == synced + 1
        body, h = get(s, rates_path("ZTAA", "ZTAB", day, day))
        assert h["server-timing"].startswith("model;dur="), h
        assert json.loads(body)["rates"][0]["count"] == 3

        # The follower stuck: the writer waits RATES_MODEL_SYNC_MS, reads do not.
        day2 = "2034-04-05"
        path = rates_path("ZTAA", "ZTAB", day2, day2)
        cur = conn.cursor()
        cur.execute("LOCK TABLE rates_model_state IN ACCESS EXCLUSIVE MODE")
        got = {}

        def write():
            t0 = time.monotonic()
            got["post"] = iu.post(s, iu.body([("ZTAA", "ZTAB", day2, 800)] * 3))
            got["took"] = time.monotonic() - t0

        w = threading.Thread(target=write)
        w.start()
        time.sleep(0.5)  # the batch has committed; its worker waits for the model
        assert w.is_alive(), "the 201 came before RATES_MODEL_SYNC_MS with the follower stuck"
        t0 = time.monotonic()
        body, h = get(s, path)
        # Held, it would wait for the model (up to 200 ms) and then read the database, which
        # has the batch: the source and the count below tell; the time is a loose bound.
        assert time.monotonic() - t0 < 0.5, "a read was held by the writer's wait"
        assert h["server-timing"].startswith("model;dur="), h
        assert json.loads(body)["rates"][0]["count"] is None  # not acknowledged yet
        w.join(timeout=10)
        assert got["post"][0] == 201, got
        assert 1.4 < got["took"] < 5, got["took"]
        body, h = get(s, rates_path("ZTAA", "ZTAB", day2, "2034-04-06"))
        assert json.loads(body)["rates"][1]["count"] == 3
        assert h["server-timing"].startswith("db;dur="), h
        conn.rollback()
        assert wait_current(s), "the model did not catch up"
        assert_same(s, off, routes=[("ZTAA", "ZTAB")], d0=day, d1=day2)
    finally:
        conn.close()
        iu.stop_server(s)


def test_a_large_retraction_is_in_the_model_before_its_2xx(pg, db, pair):
    """DELETE /batches/{id} of RATES_MODEL_SYNC_ROWS rows or more waits for the model as a
    large batch does (batches.c sets the rows it deleted): its 200 leaves with the model
    holding the retraction, and the read after it answers from memory without the prices."""
    _, _, off = pair
    s = iu.start_server(db, RATES_MODEL_SYNC_ROWS=3)
    try:
        day = "2034-05-05"
        st, _, doc = iu.post(s, iu.body([("ZTAA", "ZTAB", day, 700)] * 3))
        assert st == 201, doc
        bid = doc["batch_id"]
        synced = s.metric("rates_model_commits_synced_total")
        st, _, b = s.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
        assert st == 200, b
        have = s.metric("rates_model_version")  # at once: no time for a pass after the 200
        version = newest_change_version(pg, day)
        assert have >= version, (have, version)
        assert s.metric("rates_model_commits_synced_total") == synced + 1
        body, h = get(s, rates_path("ZTAA", "ZTAB", day, day))
        assert h["server-timing"].startswith("model;dur="), h
        assert json.loads(body)["rates"][0]["count"] is None, body
        assert_same(s, off, routes=[("ZTAA", "ZTAB")], d0=day, d1=day)
    finally:
        iu.stop_server(s)


def test_a_failover_that_lost_an_answered_commit_reloads_and_reads_stay_in_memory():
    """The primary is replaced by a copy taken before a batch this instance acknowledged and
    answered with (a failover to a replica that lacked it). The follower's new connection
    reloads the model; no answer counts the lost batch, and the reads come from memory at
    once: the versions answered before the failover, newer than every version of the new
    primary, are forgotten with the reconnect (else every read would wait for a version that
    will never come, then ask the database)."""
    pgx = support.PgCluster()
    s = None
    try:
        url = iu.make_db(pgx, "rates_lost")
        # No fold: its commit would give the new primary a version past the lost one.
        s = iu.start_server(url, RATES_FOLD_INTERVAL_MS=0)
        kept, lost = "2035-05-05", "2035-05-06"
        path = rates_path("ZTAA", "ZTAB", kept, lost)
        st, _, doc = iu.post(s, iu.body([("ZTAA", "ZTAB", kept, 500)] * 3))
        assert st == 201, doc
        pgx.stop()
        snap = pgx.data + ".before"
        subprocess.run(["cp", "-a", pgx.data, snap], check=True)
        pgx.start()
        # The restart cut the pool's connections: a client retries with its key.
        for _ in range(20):
            st, _, doc = iu.post(s, iu.body([("ZTAA", "ZTAB", lost, 900)] * 3), key="lost-1")
            if st != 503:
                break
            time.sleep(0.25)
        assert st == 201, doc
        assert wait_current(s, 20), "the model did not come back after the restart"
        body, h = get(s, path)
        assert [d["count"] for d in json.loads(body)["rates"]] == [3, 3]
        loads = s.metric("rates_model_loads_total")
        pgx.stop()
        shutil.rmtree(pgx.data)
        os.rename(snap, pgx.data)
        pgx.start()
        assert support.wait_for(lambda: s.metric("rates_model_loads_total") > loads, 20), \
            "no reload after the primary was replaced"
        assert wait_current(s, 20), "no reload after the primary was replaced"
        t0 = time.monotonic()
        body, h = get(s, path)
        took = time.monotonic() - t0
        assert [d["count"] for d in json.loads(body)["rates"]] == [None, 3], body
        assert h.get("server-timing", "").startswith("model;dur="), h
        assert took < 0.15, f"{took:.3f} s: the read waited for a version that is gone"
        for _ in range(5):  # the cache (its listener reset too) never has the lost batch
            body, h = get(s, path)
            assert [d["count"] for d in json.loads(body)["rates"]] == [None, 3], body
    finally:
        if s:
            iu.stop_server(s)
        pgx.destroy()
