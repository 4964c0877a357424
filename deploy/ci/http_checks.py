#!/usr/bin/env python3
"""http_checks.py rates PORT [DUMP]: through 127.0.0.1:PORT, /healthz, /readyz, /metrics and
/rates answer; with the dump loaded, /rates returns its prices."""
import json
import sys
import time
import urllib.request

port = int(sys.argv[2])
dump = sys.argv[3] if len(sys.argv) > 3 else ""
base = f"http://127.0.0.1:{port}"


def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


deadline = time.time() + 60
while time.time() < deadline and get("/readyz")[0] != 200:
    time.sleep(1)
for path in ("/healthz", "/readyz", "/metrics"):
    st, body = get(path)
    print(path, st)
    assert st == 200, (path, st, body[:200])
st, body = get("/metrics")
assert b"rates_http_requests_total" in body
q = "/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CNGGZ&dest_code=EETLL"
st, body = get(q)
print(q, st, body[:200])
assert st == 200, st
data = json.loads(body)
if dump:
    assert len(data.get("rates", [])) == 31 and any(d.get("price") is not None for d in data["rates"]), data
    print("dump data served through 127.0.0.1:%d" % port)
else:
    print("no dump configured: only the empty schema is checked")
