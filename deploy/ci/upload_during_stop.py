#!/usr/bin/env python3
"""upload_during_stop.py PORT TOKEN DOCKER API_CONTAINER DB_CONTAINER

Streams a CSV batch slowly to POST /batches (chunked) and runs `docker stop` on the api while
the upload is in flight. The service drains: it must finish the batch (201) and the rows must
be in the database afterwards. Exit 77 when POST /batches answers 404 (not landed yet)."""
import http.client
import subprocess
import sys
import threading
import time

port, token, docker, api, db = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
port = int(port)


def psql(sql):
    r = subprocess.run([docker, "exec", db, "sh", "-c", f'psql -X -At -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "{sql}"'],
                       capture_output=True, text=True)
    return r.stdout.strip()


c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("POST", "/batches", body=b"", headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"})
probe = c.getresponse()
probe.read()
c.close()
print("probe POST /batches ->", probe.status)
if probe.status in (404, 405):
    sys.exit(77)

pairs = psql("SELECT o.code || ',' || d.code FROM ports o, ports d WHERE o.code <> d.code LIMIT 1")
assert pairs, "no ports in the database (is the dump loaded?)"
before = int(psql("SELECT count(*) FROM prices") or 0)
N, CHUNKS = 2000, 20


def body():
    yield b"orig_code,dest_code,day,price\n"
    for k in range(CHUNKS):
        rows = []
        for i in range(N // CHUNKS):
            n = k * (N // CHUNKS) + i
            rows.append(f"{pairs},{2030 + n // 365:04d}-01-01,{1000 + n}\n".encode())
        yield b"".join(rows)
        time.sleep(0.2)


stopper = threading.Thread(target=lambda: (time.sleep(1.0), print("docker stop:", subprocess.run(
    [docker, "stop", "-t", "60", api], capture_output=True, text=True).returncode)))
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
t0 = time.time()
stopper.start()
c.request("POST", "/batches", body=body(), encode_chunked=True,
          headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}",
                   "Transfer-Encoding": "chunked", "Idempotency-Key": f"ci-stop-{int(t0)}"})
r = c.getresponse()
text = r.read()
stopper.join()
print(f"upload answered {r.status} after {time.time() - t0:.1f}s: {text[:300]!r}")
after = int(psql("SELECT count(*) FROM prices") or 0)
print(f"prices rows: before {before}, after {after}")
ok = r.status == 201 and after - before == N
sys.exit(0 if ok else 1)
