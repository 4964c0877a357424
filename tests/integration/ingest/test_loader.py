"""rates-load, the operators' loader, against the real ratesd and PostgreSQL: the three
formats, replay by the file's SHA-256, --new-key, --key reuse, 422 errors, auth, progress
lines, and retries (503 with Retry-After, a broken connection whose commit outcome is
unknown: the batch lands exactly once; only transient answers are retried: a retracted
batch's key or a removed port is a final 409, exit 8)."""
import hashlib
import json
import os
import pty
import re
import socket
import subprocess
import threading

import pytest

from tests import support
from tests.support import ingest as iu

DB = "rates_loader"
LOAD_BIN = os.environ.get("RATES_LOAD_BIN",
                          os.path.join(os.path.dirname(support.RATES_BIN), "rates-load"))


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory):
    if not os.path.exists(LOAD_BIN):
        pytest.skip(f"no loader binary at {LOAD_BIN} (make builds it)")
    url = iu.make_db(pg, DB)
    s = iu.start_server(url)
    st, _, _ = s.request("POST", "/batches", body=b"", headers={"Content-Type": "text/csv"})
    if st == 404:
        iu.stop_server(s)
        pytest.fail("POST /batches answers 404: nothing to load into")
    yield {"pg": pg, "server": s, "url": url, "dir": tmp_path_factory.mktemp("loader")}
    iu.stop_server(s)


def load(env, path, *args, token=iu.TOKEN, url=None, timeout=120):
    e = {k: v for k, v in os.environ.items() if not k.startswith("RATES_")}
    if token is not None:
        e["RATES_INGEST_TOKEN"] = token
    url = url or f"http://127.0.0.1:{env['server'].port}"
    r = subprocess.run([LOAD_BIN, *args, str(path), url], env=e, capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def write(env, name, data):
    p = env["dir"] / name
    p.write_bytes(data)
    return p


def batch_id(out):
    m = re.search(r"batch (\d+): (\d+) rows", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("fmt,ext", [("csv", "csv"), ("ndjson", "ndjson"), ("json", "json")])
def test_formats_commit_then_replay(env, fmt, ext):
    pg = env["pg"]
    rows = iu.gen_rows(3000, seed={"csv": 11, "ndjson": 12, "json": 13}[fmt])
    data = iu.body(rows, fmt)
    if fmt == "csv":
        data = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    p = write(env, f"prices-{fmt}.{ext}", data)
    rc, out, err = load(env, p)
    assert rc == 0, out + err
    bid, n = batch_id(out)
    assert n == 3000 and "replayed" not in out
    assert hashlib.sha256(data).hexdigest() in err  # the key it used, for the operator
    assert iu.count(pg, DB, f"batch_id = {bid}") == 3000
    assert "progress: 100%" in out  # plain lines when stdout is not a terminal
    # The same command again: the same key, a replay, nothing inserted twice.
    rc, out, err = load(env, p)
    assert rc == 0, out + err
    assert batch_id(out)[0] == bid and "replayed" in out
    assert iu.count(pg, DB, f"batch_id = {bid}") == 3000


def test_progress_bar_on_a_terminal(env):
    p = write(env, "tty.csv", iu.body(iu.gen_rows(20000, seed=81)))
    master, slave = pty.openpty()
    e = {k: v for k, v in os.environ.items() if not k.startswith("RATES_")}
    e["RATES_INGEST_TOKEN"] = iu.TOKEN
    url = f"http://127.0.0.1:{env['server'].port}"
    proc = subprocess.Popen([LOAD_BIN, "--new-key", str(p), url], stdout=slave,
                            stderr=subprocess.DEVNULL, env=e)
    os.close(slave)
    out = b""
    while True:
        try:
            got = os.read(master, 65536)
        except OSError:  # EIO: the loader closed the terminal
            break
        if not got:
            break
        out += got
    os.close(master)
    assert proc.wait(60) == 0, out
    text = out.decode()
    assert "\r[" in text and "] 100%" in text and "MB/s" in text and "ETA" in text, text
    assert "progress:" not in text
    batch_id(text)


def test_new_key_loads_again_and_key_reuse_is_refused(env):
    pg = env["pg"]
    p = write(env, "again.csv", iu.body(iu.gen_rows(50, seed=21)))
    rc, out, err = load(env, p, "--quiet")
    assert rc == 0, err
    first = batch_id(out)[0]
    assert "progress" not in out
    rc, out, err = load(env, p, "--new-key", "-q")
    assert rc == 0, err
    assert batch_id(out)[0] != first
    q = write(env, "other.csv", iu.body(iu.gen_rows(50, seed=22)))
    rc, out, err = load(env, p, "--key", "operator-key-1", "-q")
    assert rc == 0, err
    rc, out, err = load(env, q, "--key", "operator-key-1", "-q")
    assert rc == 4, out + err
    assert "idempotency_key_reused" in err
    assert iu.count(pg, DB, "batch_id IS NOT NULL AND price > 0") > 0


def test_invalid_rows_print_first_errors(env):
    pg = env["pg"]
    before = iu.count(pg, DB)
    rows = iu.gen_rows(100, seed=31)
    lines = iu.body(rows).decode().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",-5"
    lines[50] = lines[50].replace("2030-", "2030-13-").rsplit(",", 1)[0] + ",7"
    p = write(env, "bad.csv", ("\n".join(lines) + "\n").encode())
    rc, out, err = load(env, p, "-q")
    assert rc == 3, out + err
    assert re.search(r"line 3: price: .*sign", err), err
    assert "line 51: day" in err and "nothing was inserted" in err
    assert iu.count(pg, DB) == before


def test_auth_and_usage_errors(env):
    p = write(env, "auth.csv", iu.body(iu.gen_rows(5, seed=41)))
    rc, out, err = load(env, p, "-q", token="wrong-token")
    assert rc == 5 and "401" in err
    rc, out, err = load(env, p, "-q", token=None)
    assert rc == 5
    tf = write(env, "token", (iu.TOKEN + "\n").encode())
    rc, out, err = load(env, p, "-q", "--token-file", str(tf), token=None)
    assert rc == 0, err
    rc, out, err = load(env, write(env, "x.txt", b"a"), "-q")
    assert rc == 2 and "--format" in err  # usage, as in every tool (docs/exit-codes.md)
    rc, out, err = load(env, env["dir"] / "missing.csv", "-q")
    assert rc == 1
    rc, out, err = load(env, write(env, "x.txt", b"a,b"), "-q", "--format", "csv")
    assert rc == 3  # accepted as CSV by the flag, then the row is invalid
    rc, out, _ = load(env, p, "--help")
    assert rc == 0 and "Exit codes" in out


def test_too_large_is_refused_without_retries(env):
    small = iu.start_server(env["url"], RATES_MAX_BODY_BYTES=1000)
    try:
        for n in (100, 60000):  # a small body, and one large enough for Expect: 100-continue
            p = write(env, f"large-{n}.csv", iu.body(iu.gen_rows(n, seed=71)))
            rc, out, err = load(env, p, "-q", url=f"http://127.0.0.1:{small.port}")
            assert rc == 6, out + err
            assert "HTTP 413" in err and "retrying" not in err
    finally:
        iu.stop_server(small)


class FlakyProxy:
    """A loopback HTTP/1.1 proxy in front of ratesd. Its plan says what each connection gets:
    "503" (answered here, Retry-After: 0), "drop" (forwarded; the server's answer is read and
    thrown away and the connection closed: the client cannot know the outcome) or "pass"."""

    def __init__(self, upstream_port, plan):
        self.upstream = upstream_port
        self.plan = list(plan)
        self.keys = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, c):
        data = b""
        while b"\r\n\r\n" not in data:
            got = c.recv(65536)
            if not got:
                return None, None
            data += got
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get(b"expect", b"").lower() == b"100-continue":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        n = int(hdrs.get(b"content-length", b"0"))
        while len(rest) < n:
            got = c.recv(65536)
            if not got:
                return None, None
            rest += got
        kept = [l for l in lines[1:] if not l.lower().startswith((b"expect:", b"connection:"))]
        fwd = b"\r\n".join([lines[0]] + kept + [b"Connection: close"]) + b"\r\n\r\n" + rest
        return hdrs, fwd

    def _forward(self, fwd):
        u = socket.create_connection(("127.0.0.1", self.upstream), timeout=60)
        u.sendall(fwd)
        resp = b""
        while True:
            got = u.recv(65536)
            if not got:
                break
            resp += got
        u.close()
        return resp

    def _serve(self):
        while self.plan:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            step = self.plan.pop(0)
            with c:
                hdrs, fwd = self._read_request(c)
                if hdrs is None:
                    continue
                self.keys.append(hdrs.get(b"idempotency-key", b"").decode())
                if step == "503":
                    c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 17\r\n"
                              b"Connection: close\r\n\r\n{\"error\": \"busy\"}")
                    continue
                if step.startswith("409:"):  # "409:CODE": a 409 with that error code
                    doc = json.dumps({"error": "conflict", "code": step[4:]}).encode()
                    c.sendall(b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(doc)
                              + doc)
                    continue
                resp = self._forward(fwd)
                if step == "pass":
                    c.sendall(resp)
                # "drop": the batch was committed upstream; the client never hears of it.

    def close(self):
        self.sock.close()


def test_retries_503_and_unknown_outcome_lands_exactly_once(env):
    pg = env["pg"]
    rows = iu.gen_rows(2000, seed=51)
    data = iu.body(rows, "ndjson")
    p = write(env, "flaky.ndjson", data)
    proxy = FlakyProxy(env["server"].port, ["503", "drop", "pass"])
    try:
        rc, out, err = load(env, p, "-q", url=f"http://127.0.0.1:{proxy.port}/")
    finally:
        proxy.close()
    assert rc == 0, out + err
    key = hashlib.sha256(data).hexdigest()
    assert proxy.keys == [f'"{key}"'] * 3, proxy.keys  # the same key on every attempt
    assert "HTTP 503" in err and "retrying" in err
    bid, n = batch_id(out)
    assert n == 2000 and "replayed" in out  # the dropped attempt had committed it
    assert int(pg.psql(f"SELECT count(*) FROM batches WHERE idempotency_key = '{key}'",
                       db=DB)) == 1
    assert iu.count(pg, DB, f"batch_id = {bid}") == 2000


def test_gives_up_after_bounded_retries(env):
    p = write(env, "never.csv", iu.body(iu.gen_rows(5, seed=61)))
    proxy = FlakyProxy(env["server"].port, ["503"] * 3)
    try:
        rc, out, err = load(env, p, "-q", "--retries", "2", url=f"http://127.0.0.1:{proxy.port}")
    finally:
        proxy.close()
    assert rc == 7, out + err
    assert "giving up after 3 attempts" in err and len(proxy.keys) == 3


def test_retracted_batch_is_final_409(env):
    pg = env["pg"]
    p = write(env, "retracted.csv", iu.body(iu.gen_rows(30, seed=81)))
    rc, out, err = load(env, p, "-q")
    assert rc == 0, out + err
    bid, _ = batch_id(out)
    st, _, _ = env["server"].request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
    assert st == 200
    rc, out, err = load(env, p, "-q")
    assert rc == 8, out + err
    assert "HTTP 409" in err and "batch_retracted" in err and "retracted" in err
    assert "retrying" not in err and "committed earlier" not in out
    assert iu.count(pg, DB, f"batch_id = {bid}") == 0
    rc, out, err = load(env, p, "-q", "--new-key")  # what the message says to do
    assert rc == 0, out + err
    assert batch_id(out)[1] == 30 and "replayed" not in out


@pytest.mark.parametrize("plan,want_rc,want_attempts", [
    (["409:port_removed"] * 3, 8, 1),           # final: never retried
    (["409:batch_retracted"] * 3, 8, 1),
    (["409:idempotency_key_in_progress", "pass"], 0, 2),  # transient: retried
])
def test_only_transient_409_is_retried(env, plan, want_rc, want_attempts):
    p = write(env, f"conflict-{len(plan)}-{plan[0][4:]}.csv",
              iu.body(iu.gen_rows(5, seed=91 + len(plan[0]))))
    proxy = FlakyProxy(env["server"].port, plan)
    try:
        rc, out, err = load(env, p, "-q", "--retries", "2", url=f"http://127.0.0.1:{proxy.port}")
    finally:
        proxy.close()
    assert rc == want_rc, out + err
    assert len(proxy.keys) == want_attempts, (proxy.keys, err)
