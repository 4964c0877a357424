"""POST /batches with Content-Encoding: gzip (issue 16 item 4): decompressed as a stream, the
byte limit applied to the decompressed size (a zip bomb gets 413, the database untouched),
corrupt or truncated gzip 400, unknown codings 415, and rates-load --gzip."""
import gzip
import json
import os
import random
import re
import socket
import subprocess
import threading
import zlib

import pytest

from tests import support
from tests.support import ingest as iu

DB = "rates_ingest_gzip"
MAX_BYTES = 300_000
LOAD_BIN = os.path.join(os.path.dirname(support.RATES_BIN), "rates-load")
GZ = {"Content-Encoding": "gzip"}


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory):
    url = iu.make_db(pg, DB)
    s = iu.start_server(url, RATES_MAX_BODY_BYTES=MAX_BYTES, RATES_MAX_BATCH_ROWS=1_000_000)
    yield {"pg": pg, "server": s, "dir": tmp_path_factory.mktemp("gzip")}
    iu.stop_server(s)


def gz(data):
    return gzip.compress(data, mtime=0)


def batch_rows(pg, bid):
    return pg.psql("SELECT string_agg(concat_ws(',', orig_code, dest_code, day, price), ';' "
                   f"ORDER BY orig_code, dest_code, day, price) FROM prices WHERE batch_id = {bid}",
                   db=DB)


def ledger(pg, where):
    return pg.psql(f"SELECT count(*) FROM batches WHERE {where}", db=DB)


def raw_chunked(s, pieces, headers):
    """Sends pieces as chunks on a raw socket; returns (status, headers, parsed JSON)."""
    up = iu.RawUpload(s.port, 0, chunked=True, headers=headers)
    for p in pieces:
        up.send(p)
    up.finish()
    st, hd, b = up.response()
    up.close()
    return st, hd, json.loads(b)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_gzip_round_trip_equals_the_plain_upload(env, fmt):
    pg, s = env["pg"], env["server"]
    data = iu.body(iu.gen_rows(700, seed=11 if fmt == "csv" else 12), fmt)
    st, _, plain = iu.post(s, data, fmt, key=f"plain-{fmt}")
    assert st == 201, plain
    st, _, zipped = iu.post(s, gz(data), fmt, key=f"gzip-{fmt}", headers=GZ)
    assert st == 201, zipped
    assert not zipped["replayed"]
    assert zipped["rows"] == plain["rows"] == 700
    assert zipped["bytes"] == plain["bytes"] == len(data)  # the decompressed size
    assert batch_rows(pg, zipped["batch_id"]) == batch_rows(pg, plain["batch_id"])
    # The hash is of the decompressed body: the same rows sent plain with the gzip batch's key
    # are a replay of it, and the same gzip body with the plain batch's key one of that.
    st, _, again = iu.post(s, data, fmt, key=f"gzip-{fmt}")
    assert st == 201 and again["replayed"] and again["batch_id"] == zipped["batch_id"], again
    st, _, again = iu.post(s, gz(data), fmt, key=f"plain-{fmt}", headers=GZ)
    assert st == 201 and again["replayed"] and again["batch_id"] == plain["batch_id"], again


def test_streamed_in_small_chunks_and_several_members(env):
    """Chunks cut anywhere (inside the header, the trailer) and gzip -c a b > ab (members)."""
    pg, s = env["pg"], env["server"]
    rows = iu.gen_rows(600, seed=21)
    a, b = iu.body(rows[:300]), iu.body(rows[300:], header=False)
    comp = gz(a) + gz(b)
    rnd = random.Random(5)
    pieces, i = [], 0
    while i < len(comp):
        n = rnd.choice([1, 2, 3, 7, 100, 1000])
        pieces.append(comp[i:i + n])
        i += n
    assert len(pieces) < 5000
    st, _, doc = raw_chunked(s, pieces, {**GZ, "Idempotency-Key": "members"})
    assert st == 201, doc
    assert doc["rows"] == 600 and doc["bytes"] == len(a) + len(b)
    assert int(pg.psql(f"SELECT count(*) FROM prices WHERE batch_id = {doc['batch_id']}",
                       db=DB)) == 600


def bomb(total):
    """A gzip body of total bytes of valid CSV rows (one row repeated: ~1000:1)."""
    row = iu.body(iu.gen_rows(1, seed=31), header=False)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(b"orig_code,dest_code,day,price\n")]
    block = row * (1_000_000 // len(row))
    sent = 0
    while sent < total:
        out.append(c.compress(block))
        sent += len(block)
    out.append(c.flush())
    return b"".join(out), sent


def mem_kb(s):
    """(VmRSS, VmHWM) of the server process, in kB."""
    with open(f"/proc/{s.proc.pid}/status") as f:
        text = f.read()
    return tuple(int(re.search(rf"{k}:\s+(\d+) kB", text).group(1)) for k in ("VmRSS", "VmHWM"))


def test_zip_bomb_is_413_and_touches_nothing(env):
    pg, s = env["pg"], env["server"]
    body, inflated = bomb(100_000_000)
    assert len(body) < MAX_BYTES and inflated > 300 * MAX_BYTES  # small on the wire
    rows0, batches0 = iu.count(pg, DB, "true"), ledger(pg, "status = 'committed'")
    rss0, _ = mem_kb(s)
    for attempt in range(2):  # sized (Content-Length) and chunked
        if attempt == 0:
            st, hd, doc = iu.post(s, body, headers=GZ, key=f"bomb-{attempt}")
        else:
            pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
            st, hd, doc = raw_chunked(s, pieces, {**GZ, "Idempotency-Key": f"bomb-{attempt}"})
        assert st == 413, doc
        assert hd["content-type"].startswith("application/json")
        assert doc["code"] == "body_too_large"
    assert iu.count(pg, DB, "true") == rows0
    assert ledger(pg, "status = 'committed'") == batches0
    st, _, _ = s.request("GET", "/healthz")
    assert st == 200
    # The process stayed small: it decompressed in fixed pieces, never the whole bomb.
    _, hwm_after = mem_kb(s)
    grew = hwm_after - rss0
    print(f"RSS {rss0} kB before, peak {hwm_after} kB after")  # + 0.2-3 MB (normal, ASan, TSan)
    assert grew * 1024 < inflated / 4, f"peak RSS grew {grew} kB with a {inflated}-byte bomb"


def test_corrupt_truncated_and_not_gzip_are_400(env):
    pg, s = env["pg"], env["server"]
    data = iu.body(iu.gen_rows(400, seed=41))
    comp = gz(data)
    flipped = bytearray(comp)
    for i in range(len(comp) // 2, len(comp) // 2 + 8):
        flipped[i] ^= 0x5A
    bad_crc = bytearray(comp)
    bad_crc[-6] ^= 0xFF
    cases = [
        (comp[:len(comp) - 20], r"truncated: it ends after \d+ compressed bytes"),
        (comp[:5], "truncated"),
        (bytes(flipped), r"corrupt at compressed byte \d+"),
        (bytes(bad_crc), "incorrect data check"),
        (data, r"not gzip data"),
        (comp + b"\0\0\0\0", "data after the end of the gzip stream"),
        (b"", "The gzip body is empty"),
    ]
    rows0 = iu.count(pg, DB, "true")
    for i, (body, want) in enumerate(cases):
        st, _, doc = iu.post(s, body, headers=GZ, key=f"bad-{i}")
        assert st == 400, (i, doc)
        assert doc["code"] == "bad_gzip", doc
        assert re.search(want, doc["error"]), (i, doc["error"])
    assert iu.count(pg, DB, "true") == rows0


@pytest.mark.parametrize("coding", ["br", "deflate", "gzip, br", "compress"])
def test_unknown_content_encoding_is_415(env, coding):
    s = env["server"]
    st, hd, doc = iu.post(s, b"orig_code,dest_code,day,price\n", headers={"Content-Encoding": coding})
    assert st == 415, doc
    assert "Content-Encoding" in doc["error"]
    assert hd.get("accept-encoding") == "gzip"


def test_identity_is_a_plain_body(env):
    s = env["server"]
    data = iu.body(iu.gen_rows(5, seed=51))
    st, _, doc = iu.post(s, data, headers={"Content-Encoding": "identity"}, key="identity")
    assert st == 201 and doc["rows"] == 5, doc


def test_rates_load_gzip(env):
    if not os.path.exists(LOAD_BIN):
        pytest.fail(f"no loader binary at {LOAD_BIN} (make builds it)")
    pg, s = env["pg"], env["server"]
    data = iu.body(iu.gen_rows(2000, seed=61))
    assert len(data) < MAX_BYTES
    path = env["dir"] / "rows.csv"
    path.write_bytes(data)
    e = {k: v for k, v in os.environ.items() if not k.startswith("RATES_")}
    e["RATES_INGEST_TOKEN"] = iu.TOKEN
    cmd = [LOAD_BIN, "--gzip", "-q", str(path), f"http://127.0.0.1:{s.port}"]
    r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    m = re.search(r"batch (\d+): (\d+) rows, (\d+) bytes", r.stdout)
    assert m and int(m.group(2)) == 2000 and int(m.group(3)) == len(data), r.stdout
    assert "gzip" in r.stderr
    assert int(pg.psql(f"SELECT count(*) FROM prices WHERE batch_id = {m.group(1)}", db=DB)) == 2000
    # The default key is the file's SHA-256: the plain loader replays the gzip batch.
    r = subprocess.run([c for c in cmd if c != "--gzip"], env=e, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "replayed" in r.stdout and f"batch {m.group(1)}:" in r.stdout, r
    # The server's limit is on the uncompressed file: a bigger one is refused (exit 6, 413).
    big = env["dir"] / "big.csv"
    big.write_bytes(iu.body(iu.gen_rows(12000, seed=62)))
    r = subprocess.run([LOAD_BIN, "-z", "-q", str(big), f"http://127.0.0.1:{s.port}"], env=e,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 6 and "413" in r.stderr, r


def read_chunked_request(c):
    """Reads one HTTP/1.1 request with a chunked body from socket c: (headers, body)."""
    c.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        got = c.recv(65536)
        assert got, "connection closed in the headers"
        data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in
            (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    if hdrs.get(b"expect", b"").lower() == b"100-continue":
        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = b""
    for _ in range(100000):
        while b"\r\n" not in rest:
            got = c.recv(65536)
            assert got, "connection closed in the body"
            rest += got
        size_line, _, rest = rest.partition(b"\r\n")
        n = int(size_line.split(b";")[0], 16)
        while len(rest) < n + 2:
            got = c.recv(65536)
            assert got, "connection closed in a chunk"
            rest += got
        body += rest[:n]
        rest = rest[n + 2:]
        if n == 0:
            return hdrs, body
    raise AssertionError("too many chunks")


def test_rates_load_gzip_retry_sends_the_same_bytes(env, tmp_path):
    """Each attempt restarts the compressor: a 503 and a retry carry identical gzip bodies."""
    if not os.path.exists(LOAD_BIN):
        pytest.fail(f"no loader binary at {LOAD_BIN} (make builds it)")
    data = iu.body(iu.gen_rows(3000, seed=71), "ndjson")
    path = tmp_path / "rows.ndjson"
    path.write_bytes(data)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(30)
    got = []

    def serve():
        for _ in range(2):
            c, _ = srv.accept()
            with c:
                got.append(read_chunked_request(c))
                c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 17\r\n"
                          b"Connection: close\r\n\r\n{\"error\": \"busy\"}")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    e = {k: v for k, v in os.environ.items() if not k.startswith("RATES_")}
    e["RATES_INGEST_TOKEN"] = iu.TOKEN
    try:
        r = subprocess.run([LOAD_BIN, "-z", "-q", "-r", "1", str(path),
                            f"http://127.0.0.1:{srv.getsockname()[1]}"], env=e,
                           capture_output=True, text=True, timeout=60)
    finally:
        t.join(30)
        srv.close()
    assert r.returncode == 7, r  # gave up after the retry
    assert len(got) == 2, got
    for hdrs, body in got:
        assert hdrs[b"content-encoding"] == b"gzip"
        assert hdrs[b"transfer-encoding"].lower() == b"chunked"
        assert gzip.decompress(body) == data
        assert len(body) < len(data) / 2
    assert got[0][1] == got[1][1]
