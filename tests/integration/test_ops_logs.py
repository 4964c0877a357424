"""Logs (issue 4): one line per request, JSON when stdout is not a terminal and text when it is,
the request id echoed, Server-Timing with the database time, and no secret ever written."""
import json
import os
import pty
import select
import signal
import subprocess
import time

import harness
import ops_util
from ops_util import RATES_Q

PASSWORD = "Pw-9d2c41-never-log-me"
TOKEN = "tok-7be0aa-never-log-me"


def test_json_request_lines_and_request_id(server, need_dump):
    st, h, _ = server.request("GET", RATES_Q, headers={"X-Request-Id": "ops-log-1"})
    assert st == 200 and h["x-request-id"] == "ops-log-1"
    assert h["server-timing"].startswith("db;dur=")
    assert float(h["server-timing"].split("=")[1]) > 0
    st, h, _ = server.request("GET", "/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert h["x-request-id"] != "bad id with spaces" and len(h["x-request-id"]) == 32
    deadline = time.time() + 5
    line = None
    while time.time() < deadline and not line:
        lines = [l for l in server.log_lines() if l.get("request_id") == "ops-log-1"]
        line = lines[0] if lines else None
        time.sleep(0.05)
    assert line, server.log_text()[-2000:]
    for k in ("ts", "level", "method", "path", "status", "bytes", "duration_ms", "db_ms"):
        assert k in line, (k, line)
    assert line["status"] == 200 and line["method"] == "GET" and line["path"] == "/rates"
    assert line["db_ms"] > 0 and line["bytes"] > 0
    assert all("raw" not in l for l in server.log_lines()), "every line must be JSON"


def test_text_format_on_a_terminal(rates_db):
    master, slave = pty.openpty()
    port = harness.free_port()
    env = harness.server_env({"RATES_DATABASE_URL": rates_db["url"],
                              "RATES_LISTEN": f"127.0.0.1:{port}", "RATES_LOG_FORMAT": "auto"})
    proc = subprocess.Popen([harness.RATES_BIN], env=env, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if harness.request("GET", "/healthz", port=port,
                                   headers={"X-Request-Id": "tty-1"}, timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        deadline = time.time() + 5
        while time.time() < deadline and b"tty-1" not in out:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        os.close(master)
    text = out.decode("utf-8", "replace")
    line = [l for l in text.splitlines() if "tty-1" in l]
    assert line, text
    assert not line[0].lstrip().startswith("{"), line[0]
    assert "request_id=tty-1 msg=request method=GET path=/healthz status=200" in line[0], line[0]
    assert proc.returncode == 0


def test_secrets_never_logged(pg, rates_db, tmp_path):
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg.port}/rates"
    dead = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{harness.free_port()}/rates"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:{TOKEN}\n")
    logs = []
    for db_url in (url, dead):
        s = harness.Server(db_url, admin=True, wait=True,
                           env={"RATES_INGEST_TOKENS_FILE": str(tokens), "RATES_LOG_LEVEL": "debug",
                                "RATES_CONNECT_TIMEOUT_S": "2"})
        try:
            s.request("GET", RATES_Q)
            s.request("GET", "/readyz")
            auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"}
            s.request("POST", "/batches", body=b"orig_code,dest_code,day,price\n", headers=auth)
            s.request("POST", "/batches", body=b"x", headers={"Authorization": f"Bearer {TOKEN}x"})
            s.request("GET", "/rates?token=" + TOKEN, headers={"X-Request-Id": "secret-probe"})
            s.signal(signal.SIGHUP)
            time.sleep(1.5)  # let the readiness monitor fail once against the dead URL
        finally:
            assert s.stop() == 0
        logs.append(s.log_text())
    text = "\n".join(logs)
    assert "readiness: database unreachable" in logs[1], logs[1][-2000:]
    assert "reloaded" in text
    assert PASSWORD not in text
    assert "postgresql://" not in text
    # The token may appear only where the client itself sent it in the URL (the path is logged,
    # the query string is not), never from a header or the token file.
    assert TOKEN not in text, [l for l in text.splitlines() if TOKEN in l][:3]
