"""Migrations that build an index CONCURRENTLY (issue 13): a build that failed or timed out
leaves an INVALID index that the retry's IF NOT EXISTS would skip, and the migration would be
recorded as applied with a useless index. `ratesd migrate` must drop and rebuild it."""
import subprocess

from tests import support
from tests.support import ingest as iu

DB = "rates_migrate_idx"
INDEX = "prices_batch_id_brin"  # built CONCURRENTLY by 0003_batches_ledger
STATE = ("SELECT i.indisvalid::text || ' ' || a.amname FROM pg_index i"
         " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
         f" WHERE c.relname = '{INDEX}'")


def _migrate(pg):
    return subprocess.run([support.RATES_BIN, "migrate"],
                          env=support.server_env({"RATES_DATABASE_URL": pg.url(DB)}),
                          capture_output=True, text=True, timeout=120)


def test_invalid_concurrent_index_is_rebuilt(pg):
    iu.make_db(pg, DB)
    assert pg.psql(STATE, db=DB) == "true brin"
    # What a failed run leaves: the index INVALID, the migration not recorded. A concurrent
    # build that fails (here on a unique violation) leaves exactly such an index behind.
    pg.psql(f"DROP INDEX {INDEX}", db=DB)
    pg.psql("DELETE FROM schema_migrations WHERE version = 3", db=DB)
    pg.psql("INSERT INTO prices (orig_code, dest_code, day, price) VALUES"
            " ('ZTAA', 'ZTAB', '2030-01-01', 10), ('ZTAA', 'ZTAB', '2030-01-01', 11)", db=DB)
    r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U",
                        "postgres", "-d", DB, "-c",
                        f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON prices (orig_code)"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "could not create unique index" in r.stderr, r.stderr
    assert pg.psql(STATE, db=DB) == "false btree"
    r = _migrate(pg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert pg.psql(STATE, db=DB) == "true brin"  # dropped and rebuilt by its migration
    assert pg.psql("SELECT count(*) FROM schema_migrations WHERE version = 3", db=DB) == "1"
    assert "INVALID" in r.stdout + r.stderr
    # A second run has nothing to do and leaves it alone.
    r = _migrate(pg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert pg.psql(STATE, db=DB) == "true brin"
