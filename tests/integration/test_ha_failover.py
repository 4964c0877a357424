"""High availability (issue 7): failover of the primary under load, exactly-once batches,
and reads from a replica with read-your-writes. Real clusters (scripts/ha/cluster.sh), the
real ratesd; scripts/ha/drill.py does the work and the failover-drill script prints the same."""
import json
import os
import shutil
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "ha"))
import drill  # noqa: E402
import harness  # noqa: E402

pytestmark = pytest.mark.drill


def test_failover_drill_loses_and_duplicates_no_batch():
    rep = drill.failover_drill(before_s=2.0, detect_s=1.0, after_s=5.0)
    print(json.dumps(rep, indent=2, sort_keys=True))
    assert rep["new_primary"] == "n2"
    assert not rep.get("sanitizer_reports"), rep
    assert all(code == 0 for code in rep["ratesd_exit"].values()), rep
    # Reads on the primary pool come back within a few seconds of the promotion.
    assert rep["reads_primary_url"]["recovered_after_s"] is not None
    assert rep["reads_primary_url"]["recovered_after_s"] < 10
    # Reads on the read pool (a standby) never notice.
    assert rep["reads_read_url"]["failed"] == 0, rep["reads_read_url"]
    if not rep["batches_endpoint"]:
        pytest.fail("POST /batches is not in this build")
    assert rep["batches"]["recovered_after_s"] is not None
    assert rep["batches"]["recovered_after_s"] < 15
    assert rep["batches_lost"] == 0, rep
    assert rep["batches_duplicated"] == 0, rep
    assert rep["batches_unacknowledged"] == [], rep
    uo = rep["unknown_outcome"]
    assert uo["committed_on_standby_before_kill"], uo
    assert uo["retry_replayed"] is True, uo
    assert uo["ledger_records_for_key"] == 1, uo
    assert uo["price_rows_for_key"] == 3, uo


def test_read_pool_and_read_your_writes():
    """/rates reads a standby; a standby that lags serves stale data unless the request asks
    for the primary (Rates-Consistency) or names the WAL position it needs (Rates-Min-LSN)."""
    # Not pytest's tmp_path: PostgreSQL runs as another user and must reach the directory.
    work = tempfile.mkdtemp(prefix="rates-ha-")
    cluster = drill.HaCluster(os.path.join(work, "pg"), sync=False)
    srv = None
    try:
        drill.seed_ports(cluster)
        srv = drill.start_ratesd(cluster.url, read_url=cluster.read_url)
        path = drill.READ_PATH.replace("2030-01-01", "2030-03-01").replace("2030-01-10",
                                                                         "2030-03-01")

        def count(headers=None):
            st, _, body = harness.request("GET", path, port=srv.port, headers=headers or {})
            assert st == 200, body
            return json.loads(body)["rates"][0]["count"]

        assert count() is None
        cluster.psql("SELECT pg_wal_replay_pause()", node="n2")
        for _ in range(50):
            if cluster.psql("SELECT pg_get_wal_replay_pause_state()", node="n2") == "paused":
                break
            time.sleep(0.1)
        body = "".join(f"{drill.ORIG},{drill.DEST},2030-03-01,{500 + i}\n" for i in range(3))
        st, _, data = drill.post_batch(srv.port, "ryw-1", body.encode())
        assert st == 201, data
        lsn = cluster.psql("SELECT pg_current_wal_insert_lsn()", node="n1")
        assert count() is None  # the standby has not replayed the batch: stale read
        assert count({"Rates-Consistency": "primary"}) == 3
        assert count({"Rates-Min-LSN": lsn}) == 3  # standby behind: served by the primary
        cluster.psql("SELECT pg_wal_replay_resume()", node="n2")
        for _ in range(100):
            if count() == 3:
                break
            time.sleep(0.05)
        assert count() == 3
        assert count({"Rates-Min-LSN": lsn}) == 3  # the standby caught up: served there
        # The read pool really is on the standby.
        apps = cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'ratesd' AND backend_type = 'client backend'", node="n2")
        assert int(apps) >= 1
    finally:
        if srv:
            code = srv.stop()
            assert not srv.sanitizer_reports(), srv.log_text()[-3000:]
            assert code == 0
        cluster.down()
        shutil.rmtree(work, ignore_errors=True)
