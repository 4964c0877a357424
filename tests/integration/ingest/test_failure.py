"""POST /batches failure semantics: aborted and stalled uploads, a database error mid-batch,
shutdown mid-batch, and readers during a large commit: nothing partial is ever visible and
the service (and its pooled connections) stay healthy."""
import json
import signal
import subprocess
import threading
import time

import pytest

from tests import support
from tests.support import ingest as iu

DB = "rates_ingest_fail"
IDLE = ("SELECT count(*) FROM pg_stat_activity WHERE usename = 'rates_app' "
        "AND datname = '" + DB + "' AND (state LIKE 'idle in transaction%' "
        "OR query LIKE 'COPY%' AND state = 'active')")


@pytest.fixture(scope="module")
def env(pg):
    url = iu.make_db(pg, DB)
    s = iu.start_server(url, RATES_UPLOAD_IDLE_TIMEOUT_S=2)
    yield {"pg": pg, "server": s, "url": url}
    iu.stop_server(s)


def _ledger(pg, status):
    return int(pg.psql(f"SELECT count(*) FROM batches WHERE status = '{status}'", db=DB))


def test_upload_aborted_halfway(env):
    pg, s = env["pg"], env["server"]
    before, aborted = iu.count(pg, DB, "true"), _ledger(pg, "aborted")
    data = iu.body(iu.gen_rows(50000, seed=5))
    up = iu.RawUpload(s.port, len(data))
    up.send(data[:len(data) // 2])
    time.sleep(0.3)
    up.close()
    assert support.wait_for(lambda: _ledger(pg, "aborted") == aborted + 1)
    assert iu.count(pg, DB, "true") == before
    assert support.wait_for(lambda: pg.psql(IDLE, db=DB) == "0")
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(100, seed=6)))
    assert st == 201, doc


def test_stalled_upload_rolled_back_after_idle_timeout(env):
    pg, s = env["pg"], env["server"]
    before, aborted = iu.count(pg, DB, "true"), _ledger(pg, "aborted")
    data = iu.body(iu.gen_rows(5000, seed=8))
    up = iu.RawUpload(s.port, len(data))
    up.send(data[:len(data) // 2])
    t0 = time.time()
    assert support.wait_for(lambda: _ledger(pg, "aborted") == aborted + 1, timeout=10)
    assert support.TSAN or time.time() - t0 < 8
    up.close()
    assert iu.count(pg, DB, "true") == before
    assert support.wait_for(lambda: pg.psql(IDLE, db=DB) == "0")


def test_database_error_mid_batch(env):
    pg, s = env["pg"], env["server"]
    before = iu.count(pg, DB, "true")
    data = iu.body(iu.gen_rows(20000, seed=12))
    up = iu.RawUpload(s.port, len(data))
    up.send(data[:len(data) // 2])
    assert support.wait_for(lambda: pg.psql(IDLE, db=DB) == "1")
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rates_app' "
            f"AND datname = '{DB}' AND query LIKE 'COPY%'", db=DB)
    up.send(data[len(data) // 2:])
    st, hd, b = up.response()
    up.close()
    assert st == 503 and hd.get("retry-after") == "1", b
    assert iu.count(pg, DB, "true") == before
    for seed in (13, 14):  # the pool replaced the broken connection
        st, _, doc = iu.post(s, iu.body(iu.gen_rows(100, seed=seed)))
        assert st == 201, doc


def test_readers_see_before_or_after_only(env):
    pg, s = env["pg"], env["server"]
    ports = ["ZTEA", "ZTEB"]
    rows = [("ZTEA", "ZTEB", f"2032-0{1 + i % 9}-1{i % 10}", 100 + i % 50) for i in range(200000)]
    full = len(rows)
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set() and len(seen) < 5000:
            seen.append(iu.rates_count(s, "ZTEA", "ZTEB", "2032-01-01", "2032-12-31"))

    t = threading.Thread(target=reader)
    t.start()
    try:
        st, _, doc = iu.post(s, iu.body(rows), timeout=300)
        time.sleep(0.2)
    finally:
        stop.set()
        t.join(30)
    assert st == 201, doc
    assert len(seen) > 5
    assert set(seen) <= {0, full}, sorted(set(seen))[:10]
    assert seen[0] == 0 and seen[-1] == full
    assert ports


def test_shutdown_mid_batch_rolls_back(env):
    pg = env["pg"]
    s = iu.start_server(env["url"], RATES_SHUTDOWN_TIMEOUT_S=1, RATES_DRAIN_DELAY_S=0)
    before, aborted = iu.count(pg, DB, "true"), _ledger(pg, "aborted")
    data = iu.body(iu.gen_rows(10000, seed=15))
    up = iu.RawUpload(s.port, len(data))
    up.send(data[:len(data) // 2])
    assert support.wait_for(lambda: pg.psql(IDLE, db=DB) == "1")
    s.signal(signal.SIGTERM)
    assert s.proc.wait(30) == 0
    up.close()
    assert iu.count(pg, DB, "true") == before
    assert support.wait_for(lambda: pg.psql(IDLE, db=DB) == "0")
    assert _ledger(pg, "aborted") == aborted + 1
    s.logf.close()
    assert not s.sanitizer_reports()


def test_queue_full_abort_is_recorded_with_503(env):
    """One worker, a queue of one: batch A is COPYING; a session waiting for an exclusive lock
    on ports (behind A's share lock) makes batch B's first step wait on the one worker, batch C
    fills the queue, and A's next chunk finds the queue full. A is answered 503 and its ledger
    record says 503 and why (it used to say http_status 0)."""
    pg = env["pg"]
    s = iu.start_server(env["url"], RATES_WORKERS=1, RATES_BATCH_WORKERS=1, RATES_QUEUE_MAX=1,
                        RATES_BATCH_STATEMENT_TIMEOUT_MS=60000)
    blocker, ups = None, []
    last = int(pg.psql("SELECT coalesce(max(id), 0) FROM batches", db=DB))
    try:
        data = iu.body(iu.gen_rows(20000, seed=17))
        a = iu.RawUpload(s.port, len(data))
        ups.append(a)
        a.send(data[:8192])
        assert support.wait_for(lambda: pg.psql(IDLE, db=DB) == "1")
        blocker = subprocess.Popen(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
             "-d", DB, "-c", "BEGIN; SET LOCAL lock_timeout = 0;"
             " LOCK TABLE ports IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert support.wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'ports' AND NOT l.granted", db=DB) == "1")
        small = iu.body(iu.gen_rows(50, seed=18))
        b = iu.RawUpload(s.port, len(small))
        ups.append(b)
        b.send(small[:100])
        # B's first step runs on the one worker and waits behind the exclusive lock request.
        assert support.wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'ports' AND NOT l.granted", db=DB) == "2")
        c = iu.RawUpload(s.port, len(small))
        ups.append(c)
        c.send(small[:100])  # queued: the queue is now full
        time.sleep(0.5)
        a.send(data[8192:])
        st, hd, body = a.response()
        assert st == 503 and hd.get("retry-after") == "1", body
        blocker.kill()
        blocker.wait(10)
        blocker = None
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{DB}' AND application_name = 'psql' AND pid <> pg_backend_pid()",
                db=DB)
        rec = support.wait_for(lambda: pg.psql(
            "SELECT http_status || ' ' || error FROM batches WHERE status = 'aborted'"
            f" AND id > {last} ORDER BY id LIMIT 1", db=DB))
        assert rec == "503 worker queue full", rec
    finally:
        if blocker:
            blocker.kill()
            blocker.wait(10)
        for u in ups:
            u.close()
        iu.stop_server(s)


def test_retraction_under_lock_timeout_is_503(env):
    """DELETE /batches/{id} maps SQLSTATEs as POST /batches does (src/sqlstate.h): a statement
    timeout while another session holds the batch's ledger row is 503 with Retry-After, not
    500, the batch stays committed, and the same DELETE succeeds once the lock is gone."""
    pg = env["pg"]
    s = iu.start_server(env["url"], RATES_BATCH_STATEMENT_TIMEOUT_MS=700)
    try:
        st, _, doc = iu.post(s, iu.body(iu.gen_rows(300, seed=77)))
        assert st == 201, doc
        bid = doc["batch_id"]
        holder = subprocess.Popen(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", DB,
             "-c", "BEGIN", "-c", f"SELECT 1 FROM batches WHERE id = {bid} FOR UPDATE",
             "-c", "SELECT pg_sleep(4)", "-c", "COMMIT"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(1)
            st, hd, b = s.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
            assert st == 503, b
            assert {k.lower(): v for k, v in hd.items()}.get("retry-after") == "1"
            assert "retry later" in json.loads(b)["error"]
            assert iu.count(pg, DB, f"batch_id = {bid}") == 300
        finally:
            holder.wait(timeout=30)
        st, _, b = s.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
        assert st == 200 and json.loads(b)["status"] == "retracted", b
        assert iu.count(pg, DB, f"batch_id = {bid}") == 0
    finally:
        iu.stop_server(s)
