"""SIGHUP reload is driven by the option table: every option flagged reloadable is re-read from
all layers and applied; a changed option that is not reloadable is logged as needing a restart
and keeps its running value."""
import signal
import time

import harness

Q = "/rates?date_from=2021-01-01&date_to=2021-05-01&orig_code=CNSGH&dest_code=NOOSL"  # 121 days


def wait_log(s, text, count=1, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if s.log_text().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def test_reload_applies_reloadable_and_reports_the_rest(rates_db, tmp_path):
    conf = tmp_path / "ratesd.conf"
    conf.write_text("log_level = info\nmax_span_days = 100\n")
    s = harness.Server(rates_db["url"], env={"RATES_CONFIG": str(conf), "RATES_INGEST_TOKENS": "ops:t-1"},
                       wait=False)
    s.proc.kill()
    s.proc.wait()
    s.logf.close()
    del s.env["RATES_LOG_LEVEL"]  # the harness's would override the file
    s.start()
    try:
        s.wait_ready()
        assert s.request("GET", Q)[0] == 400  # 121 days > 100
        # Unchanged layers: everything reloadable applied, nothing needs a restart.
        s.signal(signal.SIGHUP)
        assert wait_log(s, "reloaded: applied=log_level,ingest_tokens restart_needed=0"), s.log_text()[-2000:]
        # A reloadable and a non-reloadable change, from the file and the environment layers.
        conf.write_text("log_level = debug\nmax_span_days = 1000\n")
        s.signal(signal.SIGHUP)
        assert wait_log(s, "reloaded: applied=log_level,ingest_tokens restart_needed=1"), s.log_text()[-2000:]
        assert "max_span_days changed but is not reloadable: restart ratesd to apply it" in s.log_text()
        assert "log_level changed" not in s.log_text()
        assert s.request("GET", Q)[0] == 400, "a non-reloadable option must keep its running value"
        recs = [r for r in s.log_lines() if r.get("msg") == "request"]
        assert recs  # the server still logs requests
        # log_level=debug is in force: debug lines appear (MHD refusals, batch phases...).
        before = sum(1 for r in s.log_lines() if r.get("level") == "debug")
        s.request("POST", "/batches", body=b"orig_code,dest_code,day,price\n",
                  headers={"Content-Type": "text/csv", "Authorization": "Bearer t-1"})
        deadline = time.time() + 10
        while time.time() < deadline and sum(1 for r in s.log_lines() if r.get("level") == "debug") <= before:
            time.sleep(0.05)
        assert sum(1 for r in s.log_lines() if r.get("level") == "debug") > before, s.log_text()[-2000:]
        # A broken layer: nothing applied, the running configuration stays.
        conf.write_text("log_level = loud\n")
        s.signal(signal.SIGHUP)
        assert wait_log(s, "reload refused, keeping the running configuration"), s.log_text()[-2000:]
        assert s.request("GET", "/healthz")[0] == 200
    finally:
        assert s.stop() == 0
