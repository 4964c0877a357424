"""Abuse, round two (issue 27), at the HTTP level: every byte of a request has a deadline
(a body where none is taken is refused with the head; an upload has a total deadline; gzip
input that decodes to nothing is not progress), /metrics only on the admin listener when
there is one, request smuggling (Content-Length with Transfer-Encoding, repeated
Content-Length, obs-fold) answered 400 and closed, and a Content-Type that is not printable
ASCII refused before it can reach the ledger.

Everything runs on loopback with short timeouts; every loop is bounded in count and time."""
import gzip
import json
import socket
import time

import pytest

from tests import support
from tests.support import ingest as iu

HEAD_S = 2  # RATES_HEADER_TIMEOUT_S of these servers
BOUND_S = 8  # how long a test keeps a slow client going before it calls it "still open"
SLACK = 2.0 if support.TSAN else 0.0  # ThreadSanitizer runs everything several times slower


@pytest.fixture(scope="module")
def db_url(pg):
    return iu.make_db(pg, "abuse2")


def _server(url, **env):
    e = {"RATES_HEADER_TIMEOUT_S": HEAD_S, "RATES_CONNECTION_TIMEOUT_S": 30}
    e.update(env)
    return iu.start_server(url, **e)


def _status(data):
    if data.startswith(b"HTTP/1.1 ") or data.startswith(b"HTTP/1.0 "):
        return int(data[9:12])
    return None


def _body_json(data):
    _, _, body = data.partition(b"\r\n\r\n")
    try:
        return json.loads(body)
    except ValueError:
        return None


def _trickle(port, head, pieces, interval, bound=BOUND_S):
    """Sends head, then one piece every interval until the server closes the connection or
    bound seconds pass. Returns (seconds until closed or None when still open, bytes read)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    got = b""
    closed = None
    try:
        s.sendall(head)
        s.settimeout(interval)
        for piece in pieces:
            if time.monotonic() - t0 > bound:
                break
            try:
                s.sendall(piece)
            except OSError:
                closed = time.monotonic() - t0
                break
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                closed = time.monotonic() - t0
                break
            if not data:
                closed = time.monotonic() - t0
                break
            got += data
        # The answer may be in while the socket is still open a moment: wait for the end.
        if closed is None and got:
            s.settimeout(1.0)
            for _ in range(20):
                try:
                    data = s.recv(65536)
                except (socket.timeout, OSError):
                    break
                if not data:
                    closed = time.monotonic() - t0
                    break
                got += data
    finally:
        s.close()
    return closed, got


def _bytes_forever(n=1000, byte=b"x"):
    return (byte for _ in range(n))


# 1. A body where none is taken: refused with the head, the connection closed.

@pytest.mark.parametrize("line", [
    "GET /rates?origin=CNSGH&destination=NLRTM&date_from=2016-01-01&date_to=2016-01-10",
    "GET /no/such/path",
    "HEAD /healthz",
    "DELETE /rates",
])
def test_slow_body_where_none_is_taken_is_cut_at_once(db_url, line):
    """Before: Content-Length 99999 and a byte every 0.5 s kept the connection open past the
    bound (each byte resets the idle timer, the head deadline ends with the headers). Now it
    is answered (413, or the 404/405 it gets anyway) and closed within the head deadline."""
    s = _server(db_url)
    try:
        head = f"{line} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n".encode()
        closed, got = _trickle(s.port, head, _bytes_forever(), 0.5)
        assert closed is not None and closed < HEAD_S + 1 + SLACK, (closed, got[:300])
        if not line.startswith("HEAD"):
            assert _status(got) in (404, 405, 413), got[:300]
            assert "error" in (_body_json(got) or {}), got[:300]
        assert b"connection: close" in got.lower(), got[:300]
        # The server still serves others.
        assert s.request("GET", "/healthz")[0] == 200
    finally:
        iu.stop_server(s)


def test_chunked_body_on_get_is_refused(db_url):
    s = _server(db_url)
    try:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        closed, got = _trickle(s.port, head, (b"1\r\nx\r\n" for _ in range(100)), 0.5)
        assert closed is not None and closed < HEAD_S + 1 + SLACK, (closed, got[:300])
        assert _status(got) == 413, got[:300]
    finally:
        iu.stop_server(s)


# 2. A batch upload has a total deadline (RATES_UPLOAD_TIMEOUT_S); gzip input that decodes
# to nothing counts against it and against the idle timeout.

def _rows_csv(n, seed=7700):
    return iu.body(iu.gen_rows(n, seed=seed))


def _upload_head(length=None, gzip_body=False):
    h = ["POST /batches HTTP/1.1", "Host: x", "Content-Type: text/csv",
         f"Authorization: Bearer {iu.TOKEN}"]
    if gzip_body:
        h.append("Content-Encoding: gzip")
    h.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(h) + "\r\n\r\n").encode()


def _no_open_transaction(pg):
    for _ in range(50):  # the rollback runs on its own thread: give it a moment
        n = int(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'abuse2' "
                        "AND state LIKE 'idle in transaction%'", db="postgres"))
        if n == 0:
            return True
        time.sleep(0.1)
    return False


def test_slow_upload_is_cut_at_the_total_deadline(pg, db_url):
    """A live but slow upload (a byte every 0.25 s, so the 30 s idle timeout never fires):
    before, it went on as long as the client liked; now 408 upload_timeout at
    RATES_UPLOAD_TIMEOUT_S=3, nothing inserted, the transaction rolled back."""
    before = iu.count(pg, "abuse2")
    s = _server(db_url, RATES_UPLOAD_TIMEOUT_S=3, RATES_UPLOAD_IDLE_TIMEOUT_S=30)
    try:
        data = _rows_csv(200)
        closed, got = _trickle(s.port, _upload_head(len(data)),
                               (data[i:i + 1] for i in range(len(data))), 0.25)
        assert closed is not None and 2.5 < closed < 3 + 1.5 + SLACK, (closed, got[:300])
        assert _status(got) == 408, got[:300]
        doc = _body_json(got)
        assert doc and doc.get("code") == "upload_timeout", got[:400]
        assert iu.count(pg, "abuse2") == before
        assert _no_open_transaction(pg)
        assert s.request("GET", "/healthz")[0] == 200
    finally:
        iu.stop_server(s)


def test_upload_that_sends_nothing_is_closed_after_the_total_deadline(pg, db_url):
    """Headers, part of the body, then silence, with an idle timeout longer than the total
    deadline: the sweeper closes it shortly after RATES_UPLOAD_TIMEOUT_S."""
    s = _server(db_url, RATES_UPLOAD_TIMEOUT_S=2, RATES_UPLOAD_IDLE_TIMEOUT_S=60)
    try:
        data = _rows_csv(50)
        pieces = [data[:100]] + [b""] * 100  # sendall(b"") sends nothing
        closed, _ = _trickle(s.port, _upload_head(len(data)), iter(pieces), 0.25)
        assert closed is not None and closed < 2 + 2.5 + SLACK, closed
        assert _no_open_transaction(pg)
    finally:
        iu.stop_server(s)


def _chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


@pytest.mark.parametrize("which", ["idle", "total"])
def test_endless_empty_gzip_members_are_cut(pg, db_url, which):
    """A gzip body of empty members (20 bytes each, decoding to nothing), one every 0.2 s:
    each resets libmicrohttpd's idle timer, so before it was never cut. Now it is cut by the
    idle timeout (no decoded byte for RATES_UPLOAD_IDLE_TIMEOUT_S) or the total deadline."""
    env = {"idle": dict(RATES_UPLOAD_IDLE_TIMEOUT_S=2, RATES_UPLOAD_TIMEOUT_S=600),
           "total": dict(RATES_UPLOAD_IDLE_TIMEOUT_S=600, RATES_UPLOAD_TIMEOUT_S=2)}[which]
    s = _server(db_url, **env)
    try:
        first = _chunk(gzip.compress(b"orig_code,dest_code,day,price\n"))
        member = _chunk(gzip.compress(b""))
        closed, got = _trickle(s.port, _upload_head(gzip_body=True) + first,
                               (member for _ in range(200)), 0.2)
        assert closed is not None and closed < 2 + 1.5 + SLACK, (closed, got[:300])
        assert _status(got) == 408, got[:300]
        assert (_body_json(got) or {}).get("code") == "upload_timeout", got[:400]
        assert _no_open_transaction(pg)
    finally:
        iu.stop_server(s)


def test_upload_within_the_deadline_commits(pg, db_url):
    """The deadlines do not cut a normal upload (plain and gzip)."""
    s = _server(db_url, RATES_UPLOAD_TIMEOUT_S=30, RATES_UPLOAD_IDLE_TIMEOUT_S=5)
    try:
        st, _, doc = iu.post(s, _rows_csv(300, seed=30000))
        assert st == 201, doc
        data = gzip.compress(iu.body(iu.gen_rows(300, seed=9100)))
        st, _, doc = iu.post(s, data, headers={"Content-Encoding": "gzip"})
        assert st == 201, doc
    finally:
        iu.stop_server(s)


# 3. /metrics only on the admin listener when there is one.

def test_metrics_placement(db_url):
    s = _server(db_url)
    try:
        assert s.request("GET", "/metrics")[0] == 200
    finally:
        iu.stop_server(s)
    s = support.Server(db_url, admin=True, env={"RATES_HEADER_TIMEOUT_S": str(HEAD_S)})
    try:
        s.wait_ready()
        st, _, body = s.request("GET", "/metrics")
        assert st == 404 and json.loads(body) == {"error": "Not found"}, (st, body)
        assert support.request("GET", "/metrics", port=s.admin_port)[0] == 200
        for path in ("/healthz", "/readyz"):
            assert s.request("GET", path)[0] == 200, path
            assert support.request("GET", path, port=s.admin_port)[0] == 200, path
    finally:
        iu.stop_server(s)


# 4. Request smuggling: 400 and the connection closed.

SMUGGLING = {
    "content-length-and-transfer-encoding":
        b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Authorization: Bearer " + iu.TOKEN.encode() + b"\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "content-length-and-transfer-encoding-on-get":
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate-content-length-equal":
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    "duplicate-content-length-different":
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"
        b"GET /",
    "obs-fold-space": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "obs-fold-tab": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\r\n\tdef\r\n\r\n",
    "obs-fold-empty-value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A:\r\n b\r\n\r\n",
    "transfer-encoding-not-chunked":
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
}


def _exchange(port, data, wait=3.0):
    """Sends data; returns (bytes read, True when the server closed within wait seconds)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    out = b""
    closed = False
    t0 = time.monotonic()
    try:
        s.sendall(data)
        for _ in range(100):
            if time.monotonic() - t0 > wait:
                break
            try:
                got = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not got:
                closed = True
                break
            out += got
    finally:
        s.close()
    return out, closed


@pytest.fixture(scope="module")
def plain_server(db_url):
    s = _server(db_url)
    yield s
    iu.stop_server(s)


@pytest.mark.parametrize("case", sorted(SMUGGLING))
def test_smuggling_is_refused_and_closed(plain_server, case):
    out, closed = _exchange(plain_server.port, SMUGGLING[case])
    assert _status(out) == 400, out[:300]
    assert "error" in (_body_json(out) or {}), out[:300]
    assert closed, out[:300]
    assert out.count(b"HTTP/1.1 ") == 1, out[:600]


def test_ordinary_headers_still_pass(plain_server):
    """Whitespace around values, long values, many headers, keep-alive: all still 200."""
    one = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A:    spaced value   \r\nX-B:\tv\r\n"
           b"X-Request-Id: keep-1\r\nX-Long: " + b"v" * 3000 + b"\r\nContent-Length: 0\r\n\r\n")
    out, _ = _exchange(plain_server.port, one + one.replace(b"keep-1", b"keep-2"), wait=1.0)
    assert out.count(b"HTTP/1.1 200 ") == 2, out[:600]
    assert b"keep-1" in out and b"keep-2" in out


# 5. A Content-Type parameter that is not printable ASCII never reaches the ledger.

@pytest.mark.parametrize("param", [b"\xc3", b"\xe2\x82\xac", b"\xff\xfe", b"a" * 58 + b"\xc3\xa9"])
def test_content_type_not_ascii_is_refused(pg, db_url, param):
    before = int(pg.psql("SELECT count(*) FROM batches", db="abuse2"))
    data = _rows_csv(5)
    head = (b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv; x=" + param +
            b"\r\nAuthorization: Bearer " + iu.TOKEN.encode() +
            b"\r\nContent-Length: %d\r\n\r\n" % len(data))
    s = _server(db_url)
    try:
        out, _ = _exchange(s.port, head + data, wait=5.0)
        assert _status(out) == 415, out[:400]
        assert int(pg.psql("SELECT count(*) FROM batches", db="abuse2")) == before
        # Printable ASCII parameters still work.
        seed = 40000 + 100 * len(param) + param[-1]
        st, _, doc = iu.post(s, _rows_csv(5, seed=seed),
                             headers={"Content-Type": "text/csv; charset=utf-8"})
        assert st == 201, doc
    finally:
        iu.stop_server(s)
