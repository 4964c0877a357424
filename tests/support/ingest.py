"""Helpers for the batch-ingestion tests: a migrated database with test ports, the server
running as the least-privilege role rates_app, body generators in the three formats, and
raw-socket uploads (for aborted and stalled bodies)."""
import datetime
import json
import socket

from tests.support import contract
from tests.support.cluster import create_rates_db
from tests.support.server import Server

TOKEN = "s3cret-token-for-tests-0123456789"
TOKEN_NAME = "loader"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PORTS = [f"ZT{c}{d}" for c in "ABCDEFGH" for d in "ABCDEFGH"][:40]
CT = {"csv": "text/csv", "ndjson": "application/x-ndjson", "json": "application/json"}


def make_db(pg, name):
    """A database from the dump (when there is one), migrated, with 40 test ports."""
    create_rates_db(pg, name)
    pg.psql("INSERT INTO regions (slug, name) VALUES ('ingest_test', 'Ingest test') "
            "ON CONFLICT DO NOTHING", db=name)
    values = ",".join(f"('{c}', 'Port {c}', 'ingest_test')" for c in PORTS)
    pg.psql(f"INSERT INTO ports (code, name, parent_slug) VALUES {values} "
            "ON CONFLICT DO NOTHING", db=name)
    return pg.url(name, user="rates_app")


def start_server(url, **env):
    e = {"RATES_INGEST_TOKENS": f"{TOKEN_NAME}:{TOKEN},other:another-token-abcdef"}
    e.update({k: str(v) for k, v in env.items()})
    s = Server(url, env=e)
    s.wait_ready()
    return s


def stop_server(s):
    code = s.stop()
    reports = s.sanitizer_reports()
    assert not reports, f"sanitizer reports: {reports}\n{s.log_text()[-4000:]}"
    assert code == 0, f"ratesd exited {code}\n{s.log_text()[-3000:]}"


def gen_rows(n, seed=0, first_day=datetime.date(2030, 1, 1), ports=PORTS):
    """n rows (orig, dest, day, price); deterministic."""
    k = len(ports)
    out = []
    for i in range(n):
        j = i + seed
        out.append((ports[j % k], ports[(j // k + 1 + j) % k],
                    (first_day + datetime.timedelta(days=(j // 7) % 365)).isoformat(),
                    100 + (j * 7919) % 5000))
    return out


def body(rows, fmt="csv", header=True):
    if fmt == "csv":
        lines = ["orig_code,dest_code,day,price"] if header else []
        lines += [f"{o},{d},{day},{p}" for o, d, day, p in rows]
        return ("\n".join(lines) + "\n").encode()
    objs = [{"orig_code": o, "dest_code": d, "day": day, "price": p} for o, d, day, p in rows]
    if fmt == "ndjson":
        return ("\n".join(json.dumps(x) for x in objs) + "\n").encode()
    return ("[\n" + ",\n".join(json.dumps(x) for x in objs) + "\n]\n").encode()


def post(server, data, fmt="csv", key=None, headers=None, timeout=120):
    h = {"Content-Type": CT[fmt], **AUTH}
    if key is not None:
        h["Idempotency-Key"] = key
    h.update(headers or {})
    st, hd, b = server.request("POST", "/batches", body=data, headers=h, timeout=timeout)
    try:
        doc = json.loads(b) if b else None
    except ValueError:
        doc = b
    return st, hd, doc


def count(pg, db, where="batch_id IS NOT NULL"):
    return int(pg.psql(f"SELECT count(*) FROM prices WHERE {where}", db=db))


class RawUpload:
    """A POST /batches whose body is sent piece by piece on a raw socket."""

    def __init__(self, port, length, fmt="csv", key=None, headers=None, chunked=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        h = {"Host": "127.0.0.1", "Content-Type": CT[fmt], **AUTH, **(headers or {})}
        if key is not None:
            h["Idempotency-Key"] = key
        if chunked:
            h["Transfer-Encoding"] = "chunked"
        else:
            h["Content-Length"] = str(length)
        self.chunked = chunked
        head = "POST /batches HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        self.sock.sendall((head + "\r\n").encode())

    def send(self, data):
        if self.chunked:
            self.sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.sock.sendall(data)

    def finish(self):
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")

    def response(self, timeout=60):
        self.sock.settimeout(timeout)
        data = b""
        while True:
            try:
                got = self.sock.recv(65536)
            except socket.timeout:
                break
            if not got:
                break
            data += got
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(rest) >= int(line.split(b":")[1]):
                            return self._parse(data)
        return self._parse(data) if data else None

    @staticmethod
    def _parse(data):
        # A complete answer is checked against api/openapi.json (contract.py); a cut one is
        # returned as read (the tests of cut uploads look at what arrived).
        return contract.check_raw("POST", "/batches", data) or RawUpload._parse_cut(data)

    @staticmethod
    def _parse_cut(data):
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        return status, headers, rest

    def close(self):
        self.sock.close()


def start_model_trio(url):
    """Two instances with the read model on one database, and a third without the model nor
    the response cache: the oracle (the database path's bytes)."""
    return (start_server(url), start_server(url),
            start_server(url, RATES_MODEL="false", RATES_CACHE_BYTES=0))


def rates_path(orig, dest, d0, d1):
    return f"/rates?date_from={d0}&date_to={d1}&orig_code={orig}&dest_code={dest}"


def rates_count(server, orig, dest, d0, d1):
    st, _, b = server.request("GET", rates_path(orig, dest, d0, d1))
    assert st == 200, b
    return sum(x["count"] or 0 for x in json.loads(b)["rates"])
