"""Both log formats carry the same keys: JSON lines, and logfmt text (key=value, quoted when needed).

The same requests are sent to a server logging JSON and one logging text; every line of both
parses (the logfmt parser below is strict: anything it cannot read fails the test), and the
request lines and the message lines have the same keys and values (but the timestamps)."""
import json
import re

import harness

TOKEN = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)(?:\s+|$)')
ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def logfmt(line):
    out, pos = {}, 0
    while pos < len(line):
        m = TOKEN.match(line, pos)
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
    s = harness.Server(pg_url, env={"RATES_LOG_FORMAT": fmt})
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
