"""POST /batches admission and limits: 401/403/400/413/415/503 (instance and global)."""
import json
import subprocess

import pytest

from tests import support
from tests.support import ingest as iu

DB = "rates_ingest_limits"


@pytest.fixture(scope="module")
def env(pg):
    url = iu.make_db(pg, DB)
    s = iu.start_server(url, RATES_MAX_BODY_BYTES=200000, RATES_MAX_BATCH_ROWS=1000,
                        RATES_MAX_CONCURRENT_BATCHES=2, RATES_GLOBAL_CONCURRENT_BATCHES=1)
    yield {"pg": pg, "server": s, "url": url}
    iu.stop_server(s)


def test_401_without_or_with_a_wrong_token(env):
    s = env["server"]
    for h in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        st, hd, b = s.request("POST", "/batches", body=b"x", headers={"Content-Type": "text/csv", **h})
        assert st == 401, b
        assert hd["www-authenticate"].startswith("Bearer")
        assert "error" in json.loads(b)
    st, _, _ = s.request("GET", "/batches/1")
    assert st == 401
    assert "s3cret" not in s.log_text() and "nope" not in s.log_text()


def test_403_when_no_token_is_configured_and_open_mode(env):
    s = support.Server(env["url"])
    try:
        st, _, b = s.request("POST", "/batches", body=b"x", headers={"Content-Type": "text/csv", **iu.AUTH})
        assert st == 403, b
    finally:
        iu.stop_server(s)
    s = support.Server(env["url"], env={"RATES_INGEST_OPEN": "true"})
    try:
        st, _, b = s.request("POST", "/batches", body=iu.body(iu.gen_rows(3)),
                             headers={"Content-Type": "text/csv"})
        assert st == 201, b
        bid = json.loads(b)["batch_id"]
        assert env["pg"].psql(f"SELECT token_name FROM batches WHERE id = {bid}", db=DB) == "anonymous"
    finally:
        iu.stop_server(s)


def test_415_and_400(env):
    s = env["server"]
    st, _, b = iu.post(s, b"a,b", headers={"Content-Type": "text/plain"})
    assert st == 415
    st, _, b = iu.post(s, b"a,b", key="bad\x7fkey" if False else "x" * 300)
    assert st == 400


def test_413_by_content_length_before_reading(env):
    s = env["server"]
    up = iu.RawUpload(s.port, 10_000_000)
    st, hd, b = up.response(timeout=10)
    up.close()
    assert st == 413, b


def test_413_chunked_body_over_the_limit(env):
    pg, s = env["pg"], env["server"]
    before = iu.count(pg, DB, "true")
    data = iu.body(iu.gen_rows(900, seed=3))  # under the row limit, over 200,000 bytes x2
    up = iu.RawUpload(s.port, 0, chunked=True)
    for _ in range(3):
        for i in range(0, len(data), 16384):
            up.send(data[i:i + 16384] if _ == 0 else data[i:i + 16384].replace(b"orig_code,dest_code,day,price\n", b""))
    up.finish()
    st, _, b = up.response()
    up.close()
    assert st == 413, b
    assert iu.count(pg, DB, "true") == before


def test_413_too_many_rows(env):
    pg, s = env["pg"], env["server"]
    before = iu.count(pg, DB, "true")
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(1500)))
    assert st == 413 and doc["code"] == "too_many_rows"
    assert iu.count(pg, DB, "true") == before


def _hold(s, key=None):
    """An upload that has begun (its batch holds a slot) and waits for the rest."""
    data = iu.body(iu.gen_rows(500, seed=9))
    up = iu.RawUpload(s.port, len(data) + 10, key=key)
    up.send(data)
    return up


def test_503_instance_and_global_capacity(env):
    pg, s = env["pg"], env["server"]
    # A batch holding a slot has locked a row of ingest_slots (migration 0014): its
    # transaction holds RowShareLock on the table until it ends.
    slot_locks = ("SELECT count(*) FROM pg_locks WHERE relation = 'ingest_slots'::regclass "
                  "AND mode = 'RowShareLock' AND granted")
    def in_flight():
        text = s.request("GET", "/metrics")[2].decode()
        return int(next(l.split()[1] for l in text.splitlines()
                        if l.startswith("rates_batches_in_flight ")))

    base = in_flight()
    a = _hold(s)
    assert support.wait_for(lambda: pg.psql(slot_locks, db=DB) == "1")
    # Global: one slot across instances; this instance still has room.
    st, hd, doc = iu.post(s, iu.body(iu.gen_rows(3)))
    assert st == 503 and hd["retry-after"] and doc["code"] == "too_many_batches"
    # The refused request leaves the instance's count when its connection completes.
    assert support.wait_for(lambda: in_flight() == base + 1), (base, in_flight())
    b = _hold(s)
    # Wait until the server has admitted b (its headers may still be in flight on another
    # HTTP thread), so that the two admitted uploads fill this instance.
    assert support.wait_for(lambda: in_flight() >= base + 2), (base, in_flight())
    # Instance: the two admitted uploads fill it; the third is refused before its body.
    up = iu.RawUpload(s.port, 100)
    st, hd, body = up.response(timeout=10)
    up.close()
    assert st == 503 and hd["retry-after"] == "1", body
    for u in (a, b):
        u.close()
    assert support.wait_for(lambda: pg.psql(slot_locks, db=DB) == "0")
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(3)))
    assert st == 201, doc


def test_slot_squatting_by_another_role_refuses_nothing(env):
    """Another login role (PostgreSQL 13 lets PUBLIC connect) holding every advisory lock the
    old slots used, (72730002, 1..8), and trying the slot rows itself, cannot stop batches:
    the slots are rows it may neither lock nor take through the function."""
    pg, s = env["pg"], env["server"]
    pg.psql("DROP ROLE IF EXISTS rates_squatter; CREATE ROLE rates_squatter LOGIN", db=DB)
    # Migration 0018 took CONNECT from PUBLIC: an operator granting it is the worst case.
    pg.psql(f"GRANT CONNECT ON DATABASE {DB} TO rates_squatter", db=DB)
    cmd = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "rates_squatter",
           "-d", DB]
    for stmt in ("SELECT 1 FROM ingest_slots FOR UPDATE", "SELECT ingest_take_slot(8)"):
        r = subprocess.run(cmd + ["-c", stmt], capture_output=True, text=True)
        assert r.returncode != 0 and "permission denied" in r.stderr, r.stdout + r.stderr
    holder = subprocess.Popen(cmd + ["-c", "SELECT count(pg_advisory_lock(72730002, s)) FROM "
                                           "generate_series(1, 8) s",
                                     "-c", "SELECT pg_sleep(8)"], stdout=subprocess.DEVNULL)
    try:
        assert support.wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 72730002",
            db=DB) == "8", 10)
        st, _, doc = iu.post(s, iu.body(iu.gen_rows(50, seed=123)))
        assert st == 201, doc
    finally:
        holder.kill()
        holder.wait(timeout=10)
        pg.psql(f"REVOKE CONNECT ON DATABASE {DB} FROM rates_squatter; DROP ROLE rates_squatter", db=DB)


def test_aggregate_lock_squatting_blocks_no_writer(env):
    """The aggregate's lock (writers share it, the node-map refresh and the rebuild take it
    alone) is a row of rates_locks since migration 0015, not the advisory lock 72730015:
    another login role holding that advisory lock exclusively no longer stalls every writer,
    and it may not lock the row."""
    pg, s = env["pg"], env["server"]
    pg.psql("DROP ROLE IF EXISTS rates_squatter2; CREATE ROLE rates_squatter2 LOGIN", db=DB)
    # Migration 0018 took CONNECT from PUBLIC: an operator granting it is the worst case.
    pg.psql(f"GRANT CONNECT ON DATABASE {DB} TO rates_squatter2", db=DB)
    cmd = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "rates_squatter2",
           "-d", DB]
    r = subprocess.run(cmd + ["-c", "SELECT 1 FROM rates_locks FOR UPDATE"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "permission denied" in r.stderr, r.stdout + r.stderr
    holder = subprocess.Popen(cmd + ["-c", "SELECT pg_advisory_lock(72730015)",
                                     "-c", "SELECT pg_sleep(8)"], stdout=subprocess.DEVNULL)
    try:
        assert support.wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 72730015 "
            "AND mode = 'ExclusiveLock' AND granted", db=DB) == "1", 10)
        st, _, doc = iu.post(s, iu.body(iu.gen_rows(50, seed=321)), timeout=6)
        assert st == 201, doc
        # A plain SQL writer as the owner goes through the same trigger.
        pg.psql(f"INSERT INTO prices (orig_code, dest_code, day, price) VALUES "
                f"('{iu.PORTS[0]}', '{iu.PORTS[1]}', '2033-01-01', 10)", db=DB)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        pg.psql(f"REVOKE CONNECT ON DATABASE {DB} FROM rates_squatter2; DROP ROLE rates_squatter2", db=DB)
