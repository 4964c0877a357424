"""POST /batches end to end: the three formats, validation, idempotency, retraction, the
least-privilege role. Real ratesd (as rates_app) against a real PostgreSQL."""
import json
import subprocess
import threading

import pytest

from tests import support
from tests.support import ingest as iu

DB = "rates_ingest"


@pytest.fixture(scope="module")
def env(pg):
    url = iu.make_db(pg, DB)
    s = iu.start_server(url)
    yield {"pg": pg, "server": s}
    iu.stop_server(s)


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_50k_rows_commit_and_are_visible(env, fmt):
    pg, s = env["pg"], env["server"]
    rows = iu.gen_rows(50000, seed={"csv": 0, "ndjson": 1, "json": 2}[fmt])
    data = iu.body(rows, fmt)
    st, hd, doc = iu.post(s, data, fmt)
    assert st == 201, doc
    assert doc["rows"] == 50000 and doc["bytes"] == len(data) and doc["replayed"] is False
    bid = doc["batch_id"]
    assert hd["location"] == f"/batches/{bid}"
    assert iu.count(pg, DB, f"batch_id = {bid}") == 50000
    # Visible to the very next read.
    o, d = rows[0][0], rows[0][1]
    want = sum(1 for r in rows if r[0] == o and r[1] == d)
    before_other = iu.count(pg, DB, f"orig_code = '{o}' AND dest_code = '{d}' AND batch_id <> {bid}")
    assert iu.rates_count(s, o, d, "2030-01-01", "2031-12-31") == want + before_other
    st, _, b = s.request("GET", f"/batches/{bid}", headers=iu.AUTH)
    rec = json.loads(b)
    assert st == 200 and rec["status"] == "committed" and rec["rows"] == 50000
    assert rec["token_name"] == iu.TOKEN_NAME and len(rec["body_sha256"]) == 64


def test_bad_row_near_the_end_rejects_all(env):
    pg, s = env["pg"], env["server"]
    before = iu.count(pg, DB, "true")
    rows = iu.gen_rows(50000, seed=7)
    lines = iu.body(rows).decode().split("\n")
    lines[49998] = lines[49998].rsplit(",", 1)[0] + ",12.5"  # line 49,999 (header is line 1)
    st, _, doc = iu.post(s, "\n".join(lines).encode())
    assert st == 422, doc
    assert doc["error_count"] == 1
    assert doc["errors"][0]["line"] == 49999 and doc["errors"][0]["field"] == "price"
    assert iu.count(pg, DB, "true") == before
    assert pg.psql(f"SELECT status, error_count FROM batches WHERE id = {doc['batch_id']}",
                   db=DB) == "rejected|1"


def test_unknown_ports_reported_with_lines(env):
    pg, s = env["pg"], env["server"]
    before = iu.count(pg, DB, "true")
    rows = iu.gen_rows(300, seed=11)
    rows[9] = ("NOPEX", rows[9][1], rows[9][2], rows[9][3])
    rows[149] = (rows[149][0], "NOPEY", rows[149][2], rows[149][3])
    st, _, doc = iu.post(s, iu.body(rows, "ndjson"), "ndjson")
    assert st == 422, doc
    assert doc["error_count"] == 2
    assert [(e["line"], e["field"]) for e in doc["errors"]] == [(10, "orig_code"), (150, "dest_code")]
    assert iu.count(pg, DB, "true") == before


def test_many_errors_capped_at_100(env):
    s = env["server"]
    rows = [("NOPE", "NOPE", "2030-01-01", 5)] * 150
    st, _, doc = iu.post(s, iu.body(rows))
    assert st == 422 and doc["error_count"] == 300 and len(doc["errors"]) == 100


def test_replay_and_key_reuse(env):
    pg, s = env["pg"], env["server"]
    data = iu.body(iu.gen_rows(1000, seed=21))
    st, _, first = iu.post(s, data, key="replay-key-1")
    assert st == 201 and first["replayed"] is False
    n = iu.count(pg, DB, "true")
    st, hd, again = iu.post(s, data, key="replay-key-1")
    assert st == 201, again
    assert again["replayed"] is True and again["batch_id"] == first["batch_id"]
    assert again["rows"] == 1000 and hd["location"] == f"/batches/{first['batch_id']}"
    assert iu.count(pg, DB, "true") == n
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(1000, seed=22)), key="replay-key-1")
    assert st == 422 and doc["code"] == "idempotency_key_reused"
    assert iu.count(pg, DB, "true") == n
    # Keys are scoped to the token: another token may use the same key.
    st, _, doc = iu.post(s, data, key="replay-key-1",
                         headers={"Authorization": "Bearer another-token-abcdef"})
    assert st == 201 and doc["replayed"] is False and doc["batch_id"] != first["batch_id"]


def test_key_in_flight_gets_409(env):
    pg, s = env["pg"], env["server"]
    data = iu.body(iu.gen_rows(2000, seed=31))
    up = iu.RawUpload(s.port, len(data), key="inflight-1")
    up.send(data[:len(data) // 2])
    # The first request holds the key once its batch has begun.
    support.wait_for(lambda: pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND objsubid = 1", db=DB) != "0")
    st, _, doc = iu.post(s, data, key="inflight-1")
    assert st == 409 and doc["code"] == "idempotency_key_in_progress"
    up.send(data[len(data) // 2:])
    st, _, b = up.response()
    up.close()
    assert st == 201, b
    st, _, doc = iu.post(s, data, key="inflight-1")
    assert st == 201 and doc["replayed"] is True


def test_concurrent_same_key_make_one_batch(env):
    pg, s = env["pg"], env["server"]
    data = iu.body(iu.gen_rows(20000, seed=41))
    results = []

    def go():
        results.append(iu.post(s, data, key="twins-1"))

    ts = [threading.Thread(target=go) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    statuses = sorted(r[0] for r in results)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, results
    created = [r[2] for r in results if r[0] == 201 and not r[2]["replayed"]]
    assert len(created) == 1
    assert pg.psql("SELECT count(*) FROM batches WHERE idempotency_key = 'twins-1' "
                   "AND status = 'committed'", db=DB) == "1"
    assert iu.count(pg, DB, f"batch_id = {created[0]['batch_id']}") == 20000


def test_retraction(env):
    pg, s = env["pg"], env["server"]
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(5000, seed=51)))
    assert st == 201
    bid = doc["batch_id"]
    st, _, _ = s.request("DELETE", f"/batches/{bid}")
    assert st == 401
    st, _, b = s.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
    rec = json.loads(b)
    assert st == 200 and rec["status"] == "retracted" and rec["retracted_rows"] == 5000
    assert rec["retracted_at"]
    assert iu.count(pg, DB, f"batch_id = {bid}") == 0
    st, _, b = s.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
    assert st == 200 and json.loads(b)["status"] == "retracted"
    st, _, _ = s.request("DELETE", "/batches/999999999", headers=iu.AUTH)
    assert st == 404
    st, _, doc = iu.post(s, b"orig_code,dest_code,day,price\nX,Y,2030-13-01,1\n")
    assert st == 422
    st, _, b = s.request("DELETE", f"/batches/{doc['batch_id']}", headers=iu.AUTH)
    assert st == 409


def test_runs_as_least_privilege_role(env):
    pg = env["pg"]
    assert pg.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'rates_app' "
                   f"AND datname = '{DB}'", db=DB) != "0"
    assert pg.psql("SELECT rolsuper OR rolcreaterole OR rolreplication OR rolbypassrls "
                   "FROM pg_roles WHERE rolname = 'rates_app'", db=DB) == "f"
    for sql in ("ALTER TABLE prices DISABLE TRIGGER USER",
                "SET session_replication_role = replica",
                "DROP TRIGGER prices_ports_insert ON prices",
                "DELETE FROM ports WHERE code = 'ZTAA'",
                "INSERT INTO prices VALUES ('NOPE', 'ZTAA', '2030-01-01', 1)"):
        r = subprocess.run(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "rates_app",
             "-d", DB, "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
        assert r.returncode != 0, sql


def test_setwise_integrity_holds_for_every_writer(env):
    pg = env["pg"]
    # A batch's rows to update below, whichever tests ran before on this worker (xdist).
    st, _, doc = iu.post(env["server"], iu.body(iu.gen_rows(3, seed=4242)))
    assert st == 201, doc
    with pytest.raises(RuntimeError, match="unknown port"):
        pg.psql("INSERT INTO prices VALUES ('ZTAA', 'NOPE', '2030-01-01', 1)", db=DB)
    with pytest.raises(RuntimeError, match="unknown port"):
        pg.psql("UPDATE prices SET dest_code = 'NOPE' WHERE batch_id IS NOT NULL "
                "AND ctid = (SELECT min(ctid) FROM prices WHERE batch_id IS NOT NULL)", db=DB)
    with pytest.raises(RuntimeError, match="still referenced"):
        pg.psql("DELETE FROM ports WHERE code = 'ZTAA'", db=DB)
    with pytest.raises(RuntimeError, match="still referenced"):
        pg.psql("UPDATE ports SET code = 'ZTZZ' WHERE code = 'ZTAB'", db=DB)
    with pytest.raises(RuntimeError, match="cannot truncate"):
        pg.psql("TRUNCATE ports CASCADE", db=DB)
    # An unreferenced port can go.
    pg.psql("INSERT INTO ports VALUES ('ZTQQ', 'q', 'ingest_test'); "
            "DELETE FROM ports WHERE code = 'ZTQQ'", db=DB)
    assert pg.psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'prices'::regclass "
                   "AND contype = 'f'", db=DB) == "0"
