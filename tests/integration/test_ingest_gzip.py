"""POST /batches with Content-Encoding: gzip (issue 16 item 4): decompressed as a stream, the
byte limit applied to the decompressed size (a zip bomb gets 413, the database untouched),
corrupt or truncated gzip 400, unknown codings 415, and rates-load --gzip."""
import gzip
import json
import os
import random
import re
import subprocess
import zlib

import pytest

import harness
import ingest_util as iu

DB = "rates_ingest_gzip"
MAX_BYTES = 300_000
LOAD_BIN = os.path.join(os.path.dirname(harness.RATES_BIN), "rates-load")
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


def test_zip_bomb_is_413_and_touches_nothing(env):
    pg, s = env["pg"], env["server"]
    body, inflated = bomb(50_000_000)
    assert len(body) < MAX_BYTES / 2 and inflated > 100 * MAX_BYTES  # small on the wire
    rows0, batches0 = iu.count(pg, DB, "true"), ledger(pg, "status = 'committed'")
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
    with open(f"/proc/{s.proc.pid}/status") as f:
        hwm_kb = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
    assert hwm_kb < 150_000, f"peak RSS {hwm_kb} kB after a {inflated}-byte bomb"


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
