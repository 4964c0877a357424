"""Batches belong to the token name that sent them (issue 13): another token's GET/DELETE
/batches/{id} is answered exactly like a missing batch; a token with the admin scope
("admin+NAME:TOKEN") may read and retract any batch; a rotated token (same name, new secret)
keeps its batches; a retry with the key of a retracted batch is a 409 batch_retracted, not a
replay; a write that reaches a read-only node (SQLSTATE 25006) is a retryable 503."""
import json

import pytest

from tests.support import ingest as iu

DB = "rates_batches_owner"
OTHER = {"Authorization": "Bearer another-token-abcdef"}
ADMIN_TOKEN = "admin-token-for-tests-987654321"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TOKENS = f"{iu.TOKEN_NAME}:{iu.TOKEN},other:another-token-abcdef,admin+ops:{ADMIN_TOKEN}"


@pytest.fixture(scope="module")
def env(pg):
    url = iu.make_db(pg, DB)
    s = iu.start_server(url, RATES_INGEST_TOKENS=TOKENS)
    yield {"pg": pg, "server": s, "url": url}
    iu.stop_server(s)


def _get(s, bid, headers):
    st, _, b = s.request("GET", f"/batches/{bid}", headers=headers)
    return st, json.loads(b) if b else None


def _delete(s, bid, headers):
    st, _, b = s.request("DELETE", f"/batches/{bid}", headers=headers)
    return st, json.loads(b) if b else None


def test_another_tokens_batch_is_not_found(env):
    pg, s = env["pg"], env["server"]
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(300, seed=101)))
    assert st == 201, doc
    bid = doc["batch_id"]
    missing = _get(s, 999999998, OTHER)
    assert missing[0] == 404
    # Same status and same body as a batch that does not exist: nothing reveals it.
    assert _get(s, bid, OTHER) == missing
    st, doc = _delete(s, bid, OTHER)
    assert (st, doc) == _delete(s, 999999998, OTHER)
    assert iu.count(pg, DB, f"batch_id = {bid}") == 300
    assert pg.psql(f"SELECT status FROM batches WHERE id = {bid}", db=DB) == "committed"
    st, rec = _get(s, bid, iu.AUTH)
    assert st == 200 and rec["token_name"] == iu.TOKEN_NAME and rec["status"] == "committed"


def test_admin_reads_and_retracts_any_batch(env):
    pg, s = env["pg"], env["server"]
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(200, seed=111)), headers=OTHER)
    assert st == 201, doc
    bid = doc["batch_id"]
    st, rec = _get(s, bid, ADMIN)
    assert st == 200 and rec["token_name"] == "other"
    st, rec = _delete(s, bid, ADMIN)
    assert st == 200 and rec["status"] == "retracted" and rec["retracted_rows"] == 200
    assert iu.count(pg, DB, f"batch_id = {bid}") == 0
    # The admin's own batches are recorded under its name without the scope prefix.
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(10, seed=112)), headers=ADMIN)
    assert st == 201, doc
    assert _get(s, doc["batch_id"], ADMIN)[1]["token_name"] == "ops"
    assert _get(s, doc["batch_id"], iu.AUTH)[0] == 404


def test_retry_of_retracted_batch_is_409(env):
    pg, s = env["pg"], env["server"]
    data = iu.body(iu.gen_rows(150, seed=121))
    st, _, doc = iu.post(s, data, key="retracted-key-1")
    assert st == 201 and doc["replayed"] is False, doc
    bid = doc["batch_id"]
    assert _delete(s, bid, iu.AUTH)[0] == 200
    st, hd, doc = iu.post(s, data, key="retracted-key-1")
    assert st == 409, doc
    assert doc["code"] == "batch_retracted" and doc["batch_id"] == bid
    assert "retry-after" not in hd
    assert iu.count(pg, DB, f"batch_id = {bid}") == 0
    assert pg.psql("SELECT count(*) FROM batches WHERE idempotency_key = 'retracted-key-1'",
                   db=DB) == "1"
    # The same key under another token is another key.
    st, _, doc = iu.post(s, data, key="retracted-key-1", headers=OTHER)
    assert st == 201 and doc["replayed"] is False, doc


def test_rotated_token_keeps_its_batches(env, pg):
    s = env["server"]
    st, _, doc = iu.post(s, iu.body(iu.gen_rows(50, seed=131)))
    assert st == 201, doc
    bid = doc["batch_id"]
    new = "rotated-secret-for-loader-55555"
    s2 = iu.start_server(env["url"], RATES_INGEST_TOKENS=f"{iu.TOKEN_NAME}:{new}")
    try:
        st, rec = _get(s2, bid, {"Authorization": f"Bearer {new}"})
        assert st == 200 and rec["batch_id"] == bid
        assert _get(s2, bid, iu.AUTH)[0] == 401
    finally:
        iu.stop_server(s2)


def test_write_to_read_only_node_is_503(pg):
    """default_transaction_read_only=on for the app role: every write fails with 25006, as on
    a hot standby or a primary being demoted; the answer is retryable."""
    db = "rates_batches_ro"
    url = iu.make_db(pg, db)
    pg.psql("INSERT INTO batches (id, token_name, content_type, rows, bytes, status, http_status,"
            " received_at) VALUES (nextval('batches_id_seq'), 'loader', 'text/csv', 0, 0,"
            " 'committed', 201, now())", db=db)
    bid = pg.psql("SELECT max(id) FROM batches", db=db)
    pg.psql(f"ALTER ROLE rates_app IN DATABASE {db} SET default_transaction_read_only = on",
            db="postgres")
    s = iu.start_server(url)
    try:
        st, hd, doc = iu.post(s, iu.body(iu.gen_rows(20, seed=141)))
        assert st == 503 and hd.get("retry-after") == "1", doc
        st, hd, b = s.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
        assert st == 503 and hd.get("retry-after") == "1", b
        assert "read-only transaction" in s.log_text()
        assert pg.psql(f"SELECT status FROM batches WHERE id = {bid}", db=db) == "committed"
    finally:
        iu.stop_server(s)
        pg.psql(f"ALTER ROLE rates_app IN DATABASE {db} RESET default_transaction_read_only",
                db="postgres")
