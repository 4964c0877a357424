"""PostgreSQL stopped and started under ratesd: 503 during the outage, answers after, no
restart of ratesd (issue 2, item 7)."""
import json
import time

import harness

Q = "/rates?date_from=2021-01-01&date_to=2021-01-03&orig_code=CNGGZ&dest_code=EETLL"


def test_database_restart():
    pg = harness.PgCluster()
    try:
        harness.create_rates_db(pg, "rates")
        s = harness.Server(pg.url("rates"), env={"RATES_CONNECT_TIMEOUT_S": "2"})
        try:
            s.wait_ready()
            assert s.request("GET", Q)[0] == 200
            pg.stop("fast")
            t0 = time.time()
            statuses = []
            for _ in range(5):
                st, h, body = s.request("GET", Q, timeout=10)
                statuses.append(st)
                assert st == 503, body
                assert h["content-type"].startswith("application/json")
                assert "error" in json.loads(body)
            assert time.time() - t0 < 15, "503s must come within the connect timeout"
            deadline = time.time() + 10
            while time.time() < deadline and s.request("GET", "/readyz")[0] != 503:
                time.sleep(0.1)
            assert s.request("GET", "/readyz")[0] == 503
            pg.start()
            t1 = time.time()
            ok_at = None
            while time.time() - t1 < 10:
                st, _, _ = s.request("GET", Q, timeout=10)
                if st == 200:
                    ok_at = time.time() - t1
                    break
                time.sleep(0.05)
            assert ok_at is not None and ok_at < 3, f"service did not resume ({ok_at})"
            # Every pooled connection was broken: all later requests must succeed.
            for _ in range(30):
                assert s.request("GET", Q)[0] == 200
            assert s.proc.poll() is None
        finally:
            assert s.stop() == 0
            assert not s.sanitizer_reports(), s.log_text()[-3000:]
    finally:
        pg.destroy()
