"""SIGHUP (issue 4, test 6): reloads the ingest tokens and the log level without dropping
anything: the new token works, the old one is refused, a request in flight completes."""
import socket
import signal
import time

import contract
import harness
import ops_util


def _auth_status(s, token):
    st, _, _ = s.request("POST", "/batches", body=b"orig_code,dest_code,day,price\n",
                         headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"})
    return st


def _wait_log(s, text, count, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if s.log_text().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def test_sighup_reloads_tokens_and_log_level(rates_db, tmp_path):
    conf = tmp_path / "ratesd.conf"
    conf.write_text("log_level = info\n")
    tokens = tmp_path / "tokens"
    tokens.write_text("ops:old-token-1\n")
    s = harness.Server(rates_db["url"], env={"RATES_CONFIG": str(conf),
                                              "RATES_INGEST_TOKENS_FILE": str(tokens)})
    # The harness sets RATES_LOG_LEVEL, which would override the file: restart without it.
    s.proc.kill()
    s.proc.wait()
    s.logf.close()
    del s.env["RATES_LOG_LEVEL"]
    s.start()
    try:
        s.wait_ready()
        has_batches = ops_util.batches_available(s.port)
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
        assert _wait_log(s, "reloaded: applied=log_level,ingest_tokens restart_needed=0", 1), s.log_text()[-2000:]
        held.sendall(b"\r\n")
        got = held.recv(65536)
        assert got.startswith(b"HTTP/1.1 200")
        contract.check_raw("GET", "/healthz", got)  # complete: checked against api/openapi.json
        held.close()
        if has_batches:
            assert _auth_status(s, "new-token-2") != 401
            assert _auth_status(s, "old-token-1") == 401
        # Debug lines now appear (MHD's own refusals are logged at debug).
        ops_util.raw_request(s.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n")
        assert _wait_log(s, '"level":"debug"', 1), s.log_text()[-2000:]
        # A bad reload is refused and changes nothing.
        conf.write_text("log_level = loud\n")
        s.signal(signal.SIGHUP)
        assert _wait_log(s, "reload refused", 1)
        assert s.request("GET", "/healthz")[0] == 200 and s.proc.poll() is None
        if has_batches:
            assert _auth_status(s, "new-token-2") != 401
        log = s.log_text()
        assert "old-token-1" not in log and "new-token-2" not in log
    finally:
        assert s.stop() == 0
    assert not s.sanitizer_reports(), s.log_text()[-3000:]
