"""Logs (issue 4 and the log formats): one line per request, JSON when stdout is not a terminal
and text when it is, the request id echoed, Server-Timing with the database time, and no secret
ever written.

Both log formats carry the same keys: JSON lines, and logfmt text (key=value, quoted when
needed). The same requests are sent to a server logging JSON and one logging text; every line of
both parses (the logfmt parser below is strict: anything it cannot read fails the test), and the
request lines and the message lines have the same keys and values (but the timestamps)."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import time

from tests import support
from tests.support.ops import RATES_Q

PASSWORD = "Pw-9d2c41-never-log-me"
TOKEN = "tok-7be0aa-never-log-me"

PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)(?:\s+|$)')
ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def logfmt(line):
    out, pos = {}, 0
    while pos < len(line):
        m = PAIR.match(line, pos)
        assert m, f"not logfmt at {pos}: {line!r}"
        key, val = m.group(1), m.group(2)
        if val.startswith('"'):
            val = re.sub(r'\\u([0-9a-f]{4})|\\(.)',
                         lambda e: chr(int(e.group(1), 16)) if e.group(1) else ESCAPES[e.group(2)],
                         val[1:-1])
        assert key not in out, f"key {key} twice: {line!r}"
        out[key] = val
        pos = m.end()
    return out


def run(pg_url, fmt):
    s = support.Server(pg_url, env={"RATES_LOG_FORMAT": fmt})
    try:
        s.wait_ready()
        s.request("GET", "/rates?date_from=2021-01-01&date_to=2021-01-02&orig_code=CNSGH&dest_code=NOOSL",
                  headers={"X-Request-Id": "logs-ok-1"})
        s.request("GET", "/rates?date_from=nope&date_to=2021-01-02&orig_code=a&dest_code=b",
                  headers={"X-Request-Id": "logs-bad-2"})
        s.request("GET", "/ports?region=no%20such%22region", headers={"X-Request-Id": "logs-404-3"})
    finally:
        assert s.stop() == 0
    lines = [ln for ln in s.log_text().splitlines() if ln.strip()]
    assert lines
    return lines


def normalise(rec):
    rec = {k: str(v) for k, v in rec.items() if k != "ts"}
    return rec


def test_text_is_logfmt_with_the_json_keys(pg, rates_db):
    js = [json.loads(ln) for ln in run(rates_db["url"], "json")]
    tx = [logfmt(ln) for ln in run(rates_db["url"], "text")]
    for rec in js + tx:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", str(rec["ts"])), rec
        assert rec["level"] in ("error", "warn", "info", "debug") and "msg" in rec
    by_id = {}
    for name, recs in (("json", js), ("text", tx)):
        for rec in recs:
            if rec.get("msg") == "request" and str(rec.get("request_id", "")).startswith("logs-"):
                by_id.setdefault(rec["request_id"], {})[name] = rec
    assert set(by_id) == {"logs-ok-1", "logs-bad-2", "logs-404-3"}, by_id
    for rid, pair in by_id.items():
        j, t = pair["json"], pair["text"]
        assert set(j) == set(t), (rid, j, t)
        for k in ("level", "msg", "method", "path", "status", "bytes", "request_id", "error"):
            if k in j:
                assert str(j[k]) == t[k], (rid, k, j[k], t[k])
        float(t["duration_ms"]), float(t["db_ms"])
    assert by_id["logs-bad-2"]["text"]["error"] == "Invalid date arguments"
    assert by_id["logs-bad-2"]["text"]["status"] == "400"
    # Message lines (start-up, readiness): the same keys in both formats.
    jkeys = {frozenset(r) for r in js if r.get("msg") != "request"}
    tkeys = {frozenset(r) for r in tx if r.get("msg") != "request"}
    assert jkeys == tkeys == {frozenset({"ts", "level", "msg"})}, (jkeys, tkeys)
    # The same message lines in both formats; threads (the cache's listener, the readiness
    # monitor) log concurrently, so their order may differ between two runs.
    assert sorted(r["msg"].split()[0] for r in js if r.get("msg") != "request") == \
        sorted(r["msg"].split()[0] for r in tx if r.get("msg") != "request")


def test_logfmt_parser_is_strict():
    assert logfmt('ts=1 msg="a \\"b\\" c=d" n=3') == {"ts": "1", "msg": 'a "b" c=d', "n": "3"}
    for bad in ('ts=1 msg=a b', 'msg="open', 'a==b', ' lead'):
        try:
            logfmt(bad)
        except AssertionError:
            continue
        raise AssertionError(f"parsed {bad!r}")


def test_model_answers_say_so_in_server_timing(server, need_dump):
    # A request no other test makes (a cache hit carries no Server-Timing).
    st, h, _ = server.request("GET", "/rates?date_from=2016-01-03&date_to=2016-01-09"
                                     "&orig_code=CNSGH&dest_code=north_europe_main")
    assert st == 200 and h["server-timing"].startswith("model;dur="), h
    assert float(h["server-timing"].split("=")[1]) > 0


def test_json_request_lines_and_request_id(pristine_db, need_dump):
    # The database path's line (the read model answers without it: see the test above).
    server = support.Server(pristine_db["url"], env={"RATES_MODEL": "false"})
    server.wait_ready()
    try:
        _check_request_lines(server)
    finally:
        assert server.stop() == 0


def _check_request_lines(server):
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
    port = support.free_port()
    env = support.server_env({"RATES_DATABASE_URL": rates_db["url"],
                              "RATES_LISTEN": f"127.0.0.1:{port}", "RATES_LOG_FORMAT": "auto"})
    proc = subprocess.Popen([support.RATES_BIN], env=env, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if support.request("GET", "/healthz", port=port,
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
    dead = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{support.free_port()}/rates"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:{TOKEN}\n")
    logs = []
    for db_url in (url, dead):
        s = support.Server(db_url, admin=True, wait=True,
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
