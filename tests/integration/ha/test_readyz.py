"""/readyz?scope=read (src/health.c): an instance that can read stays in the balancer's rotation
while no primary takes writes; plain /readyz still says not ready, and the body says which side
is degraded."""
import json
import time

from tests import support


def readyz(s, query=""):
    st, _, body = s.request("GET", "/readyz" + query)
    return st, json.loads(body)


def test_reads_ready_while_writes_are_down(rates_db):
    dead = f"postgresql://postgres@127.0.0.1:{support.free_port()}/rates"
    s = support.Server(dead, env={"RATES_DATABASE_READ_URL": rates_db["url"],
                                  "RATES_CONNECT_TIMEOUT_S": "2"})
    try:
        assert support.wait_for(lambda: readyz(s, "?scope=read")[0] == 200), readyz(s, "?scope=read")
        st, body = readyz(s, "?scope=read")
        assert body["status"] == "degraded" and body["scope"] == "read", body
        assert body["checks"]["writes"] == "unavailable" and body["checks"]["reads"] == "ok", body
        st, body = readyz(s)
        assert st == 503 and body["status"] == "degraded", body
        assert body["checks"]["database"] == "unreachable", body
        assert readyz(s, "?scope=write")[0] == 503
        # Reads are served meanwhile.
        st, _, _ = s.request("GET", "/rates?date_from=2021-01-01&date_to=2021-01-02"
                             "&orig_code=CNSGH&dest_code=NLRTM")
        assert st < 500, st  # served (an unknown port is a 4xx), not 503
    finally:
        assert s.stop() == 0
        assert not s.sanitizer_reports(), s.log_text()[-3000:]


def test_both_sides_down_is_not_ready_for_either_scope():
    dead = f"postgresql://postgres@127.0.0.1:{support.free_port()}/rates"
    s = support.Server(dead, env={"RATES_CONNECT_TIMEOUT_S": "2"})
    try:
        time.sleep(2.5)
        st, body = readyz(s, "?scope=read")
        assert st == 503 and body["status"] == "not ready", body
        assert readyz(s)[0] == 503
    finally:
        assert s.stop() == 0


def test_one_database_ready_for_both_scopes(server):
    st, body = readyz(server, "?scope=read")
    assert st == 200 and body["status"] == "ready", body
    st, body = readyz(server)
    assert st == 200 and body["checks"]["writes"] == "ok", body
