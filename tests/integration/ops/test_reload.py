"""SIGHUP reload (issue 4, test 6, and the option table).

Driven by the option table: every option flagged reloadable is re-read from all layers and
applied; a changed option that is not reloadable is logged as needing a restart and keeps its
running value. The ingest tokens and the log level reload without dropping anything: the new
token works, the old one is refused, a request in flight completes."""
import signal
import socket
import time

from tests import support
from tests.support import contract, ops

Q = "/rates?date_from=2021-01-01&date_to=2021-05-01&orig_code=CNSGH&dest_code=NOOSL"  # 121 days


def _auth_status(s, token):
    st, _, _ = s.request("POST", "/batches", body=b"orig_code,dest_code,day,price\n",
                         headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"})
    return st


def test_reload_applies_reloadable_and_reports_the_rest(rates_db, tmp_path):
    conf = tmp_path / "ratesd.conf"
    conf.write_text("log_level = info\nmax_span_days = 100\n")
    s = support.Server(rates_db["url"], env={"RATES_CONFIG": str(conf), "RATES_INGEST_TOKENS": "ops:t-1"},
                       wait=False)
    s.restart_without("RATES_LOG_LEVEL")  # server_env's would override the file
    try:
        s.wait_ready()
        assert s.request("GET", Q)[0] == 400  # 121 days > 100
        # Unchanged layers: everything reloadable applied, nothing needs a restart.
        s.signal(signal.SIGHUP)
        assert s.wait_log("reloaded: applied=log_level,ingest_tokens restart_needed=0"), s.log_text()[-2000:]
        # A reloadable and a non-reloadable change, from the file and the environment layers.
        conf.write_text("log_level = debug\nmax_span_days = 1000\n")
        s.signal(signal.SIGHUP)
        assert s.wait_log("reloaded: applied=log_level,ingest_tokens restart_needed=1"), s.log_text()[-2000:]
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
        assert s.wait_log("reload refused, keeping the running configuration"), s.log_text()[-2000:]
        assert s.request("GET", "/healthz")[0] == 200
    finally:
        assert s.stop() == 0


def test_sighup_reloads_tokens_and_log_level(rates_db, tmp_path):
    conf = tmp_path / "ratesd.conf"
    conf.write_text("log_level = info\n")
    tokens = tmp_path / "tokens"
    tokens.write_text("ops:old-token-1\n")
    s = support.Server(rates_db["url"], env={"RATES_CONFIG": str(conf),
                                              "RATES_INGEST_TOKENS_FILE": str(tokens)})
    # server_env sets RATES_LOG_LEVEL, which would override the file: restart without it.
    s.restart_without("RATES_LOG_LEVEL")
    try:
        s.wait_ready()
        has_batches = ops.batches_available(s.port)
        if has_batches:
            assert _auth_status(s, "old-token-1") != 401
            assert _auth_status(s, "new-token-2") == 401
        # A request in flight across the reload.
        held = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        tokens.write_text("ops:new-token-2\n")
        conf.write_text("log_level = debug\n")
        s.signal(signal.SIGHUP)
        assert s.wait_log("reloaded: applied=log_level,ingest_tokens restart_needed=0", timeout=5), s.log_text()[-2000:]
        held.sendall(b"\r\n")
        got = held.recv(65536)
        assert got.startswith(b"HTTP/1.1 200")
        contract.check_raw("GET", "/healthz", got)  # complete: checked against api/openapi.json
        held.close()
        if has_batches:
            assert _auth_status(s, "new-token-2") != 401
            assert _auth_status(s, "old-token-1") == 401
        # Debug lines now appear (MHD's own refusals are logged at debug).
        support.raw_request(s.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n")
        assert s.wait_log('"level":"debug"', timeout=5), s.log_text()[-2000:]
        # A bad reload is refused and changes nothing.
        conf.write_text("log_level = loud\n")
        s.signal(signal.SIGHUP)
        assert s.wait_log("reload refused", timeout=5)
        assert s.request("GET", "/healthz")[0] == 200 and s.proc.poll() is None
        if has_batches:
            assert _auth_status(s, "new-token-2") != 401
        log = s.log_text()
        assert "old-token-1" not in log and "new-token-2" not in log
    finally:
        assert s.stop() == 0
    assert not s.sanitizer_reports(), s.log_text()[-3000:]
