"""GET /metrics (issue 4, test 4): passes `promtool check metrics`, has every family the issue
lists, and its counters move as requests are made. Also /healthz and /readyz bodies, on the
public and the admin listener."""
import json
import shutil
import subprocess
import time

import pytest

from tests import support
from tests.support import ops
from tests.support.ops import RATES_Q

FAMILIES = [
    "rates_build_info", "rates_http_requests_total", "rates_http_request_duration_seconds",
    "rates_http_requests_in_flight", "rates_http_connections", "rates_db_pool_size",
    "rates_db_pool_in_use", "rates_db_pool_wait_seconds", "rates_db_query_duration_seconds",
    "rates_db_errors_total", "rates_db_reconnects_total", "rates_batches_total",
    "rates_batch_rows_total", "rates_batch_bytes_total", "rates_batch_duration_seconds",
    "rates_batches_in_flight", "process_resident_memory_bytes", "process_cpu_seconds_total",
    "process_open_fds", "process_start_time_seconds", "rates_lane_workers",
    "rates_lane_busy_workers", "rates_lane_queue_depth", "rates_lane_wait_seconds",
    "rates_overload_rejections_total",
]


@pytest.fixture(scope="module")
def admin_server(pg, rates_db):
    # Its own database: the batch committed below must not change other tests' data.
    support.create_rates_db(pg, "ops_metrics")
    s = support.Server(pg.url("ops_metrics"), admin=True,
                       env={"RATES_INGEST_TOKENS": f"ops:{ops.TOKEN}"})
    s.wait_ready()
    yield s
    assert s.stop() == 0
    assert not s.sanitizer_reports(), s.log_text()[-3000:]


def test_promtool_check_metrics(admin_server, need_dump):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool missing: apt-get install prometheus (scripts/packages-test.txt)")
    admin_server.request("GET", RATES_Q)
    admin_server.request("GET", "/nope")
    # /metrics answers on the admin listener only when there is one (issue 27;
    # tests/integration/httpd/test_request_bounds.py checks the public port's 404).
    text, _ = ops.metrics(admin_server.admin_port)
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_every_family_present(admin_server):
    text, m = ops.metrics(admin_server.admin_port)
    for f in FAMILIES:
        assert f"# TYPE {f} " in text, f
    build = [k for k in m if k.startswith("rates_build_info{")]
    assert len(build) == 1 and 'version="' in build[0] and 'commit="' in build[0]
    assert m["process_resident_memory_bytes"] > 1e6
    assert m["process_open_fds"] > 3


def _settled(port):
    """A request is counted when its connection's completion callback runs, just after the
    client has the response: give the last one a moment before scraping."""
    time.sleep(0.2)
    return ops.metrics(port)


def test_counters_move(admin_server, need_dump):
    port = admin_server.port
    _, a = _settled(admin_server.admin_port)
    for _ in range(7):
        assert admin_server.request("GET", "/healthz")[0] == 200
    for _ in range(3):  # past the response cache (docs/cache.md): the read model after a
        # fresh pass (docs/readmodel.md), on a worker of the read lane
        assert admin_server.request("GET", RATES_Q,
                                    headers={"Rates-Consistency": "primary"})[0] == 200
    assert admin_server.request("GET", "/nope")[0] == 404
    _, b = _settled(admin_server.admin_port)

    def d(k):
        return b.get(k, 0) - a.get(k, 0)
    assert d('rates_http_requests_total{route="/healthz",status="200"}') == 7
    assert d('rates_http_request_duration_seconds_count{route="/healthz"}') == 7
    assert d('rates_http_requests_total{route="/rates",status="200"}') == 3
    assert d('rates_http_request_duration_seconds_count{route="/rates"}') == 3
    assert d('rates_http_requests_total{route="other",status="404"}') == 1
    assert d('rates_model_reads_total{source="model"}') == 3
    assert d("rates_db_query_duration_seconds_count") == 0  # no query: one pass each
    assert d('rates_db_pool_wait_seconds_count{pool="primary"}') >= 3
    # Reads ran in the read lane, with the read lane's own connections (issue 13).
    assert d('rates_lane_wait_seconds_count{lane="read"}') >= 3
    assert d('rates_lane_wait_seconds_count{lane="batch"}') == 0
    # The scrape on the admin listener is counted there too, once per scrape.
    assert d('rates_http_requests_total{route="/metrics",status="200"}') == 1
    # The primary's 8 connections split by lane: the 4 read workers', the 4 batches'.
    assert b['rates_db_pool_size{pool="primary"}'] == 4
    assert b['rates_db_pool_size{pool="batch"}'] == 4
    assert b['rates_db_pool_in_use{pool="primary"}'] == 0
    assert b['rates_db_pool_in_use{pool="batch"}'] == 0
    assert 'rates_db_pool_size{pool="read"}' not in b  # no replica configured
    assert b['rates_lane_workers{lane="read"}'] == 4
    assert b['rates_lane_workers{lane="batch"}'] == 2
    assert b['rates_lane_workers{lane="commit"}'] == 1
    assert b['rates_lane_busy_workers{lane="read"}'] == 0
    assert b['rates_lane_queue_depth{lane="read"}'] == 0
    if ops.batches_available(port):
        _, b = _settled(admin_server.admin_port)
        st = ops.small_batch(port)
        st_bad = ops.small_batch(port, token="wrong")
        _, c = _settled(admin_server.admin_port)
        assert st_bad == 401
        assert c['rates_http_requests_total{route="/batches",status="401"}'] - \
            b.get('rates_http_requests_total{route="/batches",status="401"}', 0) == 1
        if st == 201:
            assert c['rates_batches_total{outcome="committed"}'] - \
                b['rates_batches_total{outcome="committed"}'] == 1
            assert c["rates_batch_rows_total"] - b["rates_batch_rows_total"] == 5
            assert c["rates_batch_duration_seconds_count"] > b["rates_batch_duration_seconds_count"]
            # The batch's chunks ran in the batch lane, its commit in the commit lane, on a
            # connection of the batch pool.
            assert c['rates_lane_wait_seconds_count{lane="batch"}'] > \
                b['rates_lane_wait_seconds_count{lane="batch"}']
            assert c['rates_lane_wait_seconds_count{lane="commit"}'] == \
                b['rates_lane_wait_seconds_count{lane="commit"}'] + 1
            assert c['rates_db_pool_wait_seconds_count{pool="batch"}'] > \
                b['rates_db_pool_wait_seconds_count{pool="batch"}']


def test_health_bodies_on_both_listeners(admin_server):
    for port in (admin_server.port, admin_server.admin_port):
        st, h, body = support.request("GET", "/healthz", port=port)
        assert st == 200 and json.loads(body) == {"status": "ok"}
        st, h, body = support.request("GET", "/readyz", port=port)
        r = json.loads(body)
        assert st == 200 and r["status"] == "ready", r
        assert r["checks"]["database"] == "ok" and r["checks"]["draining"] is False
        assert r["checks"]["schema"]["ok"] is True
    # Only health and metrics on the admin listener.
    st, _, _ = support.request("GET", RATES_Q, port=admin_server.admin_port)
    assert st == 404


@pytest.mark.parametrize("env", [
    {"RATES_POOL_SIZE": "8", "RATES_WORKERS": "8", "RATES_MAX_CONCURRENT_BATCHES": "4"},
    {"RATES_POOL_SIZE": "7"},
])
def test_lanes_that_cannot_hold_a_connection_are_refused(env):
    """Issue 13: a pool smaller than the read lane's workers + one connection per batch is
    refused at start with exit 2 and a message that says what to change."""
    r = subprocess.run([support.RATES_BIN], env=support.server_env(
        dict(env, RATES_LISTEN=f"127.0.0.1:{support.free_port()}")),
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "pool_size" in r.stderr and "RATES_POOL_SIZE" in r.stderr, r.stderr
