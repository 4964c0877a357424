"""The API document itself: served as written, versioned like the binary, and its check bites.

Every other test's responses are validated by contract.py (through support.request); these tests
prove the check is real: it refuses shapes, statuses, paths and headers that the document does
not describe, and it ran on every documented operation here."""
import json
import os

import pytest

from tests import support
from tests.support import contract


def test_served_document_is_the_repository_file(server):
    st, h, body = server.request("GET", "/openapi.json")
    assert st == 200 and h["content-type"].startswith("application/json")
    with open(contract.DOC_PATH, encoding="utf-8") as f:
        assert json.loads(body) == json.load(f)


def test_document_version_is_the_release(server):
    with open(os.path.join(support.ROOT, "VERSION")) as f:
        version = f.read().strip()
    doc = json.loads(server.request("GET", "/openapi.json")[2])
    assert doc["openapi"].startswith("3.1") and doc["info"]["version"] == version


def test_every_documented_operation_answers_as_documented(server):
    """One request per documented GET (the contract check runs inside request())."""
    before = contract.STATS["checked"]
    doc = json.loads(server.request("GET", "/openapi.json")[2])
    concrete = {"/batches/{id}": "/batches/1", "/docs/{asset}": "/docs/redoc.standalone.js"}
    seen = 0
    for template, item in doc["paths"].items():
        if "get" not in item:
            continue
        path = concrete.get(template, template)
        if template == "/rates":
            path += "?date_from=2016-01-01&date_to=2016-01-03&orig_code=CNSGH&dest_code=NOOSL"
        st, _, _ = server.request("GET", path)
        st_head, _, body = server.request("HEAD", path)
        assert st_head == st and body == b""
        seen += 1
    assert seen >= 10
    assert contract.STATS["checked"] - before >= 2 * seen


def test_unknown_paths_answer_the_generic_error(server):
    st, _, _ = server.request("GET", "/no/such/path")
    assert st == 404
    st, h, _ = server.request("DELETE", "/rates")
    assert st == 405 and "GET" in h["allow"]


BAD = [
    ("a field the schema forbids", "GET", "/", 200, "application/json", b'{"message": "Hello world!", "x": 1}'),
    ("a wrong type", "GET", "/rates", 200, "application/json",
     b'{"rates": [{"count": "3", "day": "2021-01-01", "price": 1.5}]}'),
    ("a missing key", "GET", "/regions", 200, "application/json", b'{"regions": [{"slug": "a"}]}'),
    ("an undocumented status", "GET", "/rates", 418, "application/json", b'{"error": "teapot"}'),
    ("an undocumented media type", "GET", "/rates", 200, "text/html", b"<p>rates</p>"),
    ("an error that is not JSON", "GET", "/ports", 404, "text/plain", b"Unknown region"),
    ("a 201 without Location", "POST", "/batches", 201, "application/json",
     b'{"batch_id": 1, "rows": 1, "bytes": 10, "duration_ms": 1.0, "replayed": false}'),
    ("a 503 without Retry-After", "POST", "/batches", 503, "application/json",
     b'{"error": "busy", "code": "too_many_batches"}'),
    ("an unknown path with 200", "GET", "/nope", 200, "application/json", b"{}"),
    ("an error without error", "GET", "/nope", 404, "application/json", b'{"message": "x"}'),
]


@pytest.mark.parametrize("why,method,path,status,ctype,body", BAD, ids=[b[0] for b in BAD])
def test_contract_refuses(why, method, path, status, ctype, body):
    with pytest.raises(contract.ContractError):
        contract.check(method, path, status, {"content-type": ctype}, body)


def test_contract_accepts_a_documented_answer():
    contract.check("POST", "/batches", 201,
                   {"content-type": "application/json", "location": "/batches/7"},
                   b'{"batch_id": 7, "rows": 2, "bytes": 60, "duration_ms": 3.5, "replayed": true}')
    contract.check("POST", "/batches", 409, {"content-type": "application/json"},
                   b'{"error": "retracted", "code": "batch_retracted", "batch_id": 7}')


def test_raw_socket_answers_are_checked_too():
    """check_raw() (for tests on their own sockets) parses complete answers, Content-Length or
    chunked, and refuses the same wrong shapes as request(); incomplete answers are not judged."""
    good = b'{"status": "ok"}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    st, h, body = contract.check_raw("GET", "/healthz", head + b"Content-Length: %d\r\n\r\n" % len(good) + good)
    assert st == 200 and body == good
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(good) + good + b"\r\n0\r\n\r\n"
    assert contract.check_raw("GET", "/healthz", chunked)[2] == good
    assert contract.parse_raw(chunked[:-5]) is None and contract.parse_raw(head) is None
    before = contract.STATS["checked"]
    with pytest.raises(contract.ContractError):
        contract.check_raw("GET", "/healthz", b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(contract.ContractError):
        contract.check_raw("GET", "/no-such-path", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert contract.STATS["checked"] == before + 2
