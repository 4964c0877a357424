"""HTTP behaviour of the real binary: keep-alive, errors as JSON, concurrency, isolation."""
import http.client
import json
import threading

from tests import support
from tests.support import contract

README_Q = "/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CNGGZ&dest_code=EETLL"


def test_root(server):
    st, h, body = server.request("GET", "/")
    assert st == 200 and json.loads(body) == {"message": "Hello world!"}
    assert h["x-request-id"]


def test_request_id_echoed(server):
    st, h, _ = server.request("GET", "/", headers={"X-Request-Id": "abc-123"})
    assert h["x-request-id"] == "abc-123"


def test_not_found_is_json(server):
    for path in ("/nope", "/rates/", "/ratesX"):
        st, h, body = server.request("GET", path)
        assert st == 404
        assert h["content-type"].startswith("application/json")
        assert json.loads(body) == {"error": "Not found"}


def test_method_not_allowed_is_json(server):
    st, h, body = server.request("POST", README_Q, body=b"")
    assert st == 405 and "GET" in h["allow"]
    assert json.loads(body)["error"]
    st, h, body = server.request("DELETE", "/")
    assert st == 405


def test_keep_alive(server, need_dump):
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    socks = set()
    for _ in range(20):
        c.request("GET", README_Q)
        r = c.getresponse()
        body = r.read()
        contract.check_response("GET", README_Q, r, body)  # its own connection: checked here
        assert r.status == 200 and len(json.loads(body)["rates"]) == 31
        assert (r.getheader("Connection") or "").lower() != "close"
        socks.add(id(c.sock))
    assert len(socks) == 1, "the connection was not reused"
    c.close()


def test_span_limit(server):
    st, _, body = server.request("GET", "/rates?date_from=1900-01-01&date_to=2100-12-31&orig_code=A&dest_code=B")
    assert st == 400 and "36600" in json.loads(body)["error"]


def test_invalid_dates_table(server):
    bad = ["2021-02-29", "2021-13-01", "0000-01-01", "20210101", "2021-01-01T00:00:00",
           "%202021-01-01", "2021-01-01%20", "2021-01-%205", "2021-1-", "-2021-01-01",
           "2021-001-01", "%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%91-01-01", "2021-01-01%00"]
    for d in bad:
        st, _, body = server.request("GET", f"/rates?date_from={d}&date_to=2021-01-31&orig_code=A&dest_code=B")
        assert st == 400 and json.loads(body) == {"error": "Invalid date arguments"}, d


def test_poisoning_cannot_happen(server, need_dump):
    for q in ("/rates?date_from=2021-01-%205&date_to=2021-01-06&orig_code=CNGGZ&dest_code=EETLL",
              "/rates?date_from=2021-01-01&date_to=2021-01-03&orig_code=CNG%00GZ&dest_code=EETLL"):
        st, _, _ = server.request("GET", q)
        assert st == 400
        st, _, body = server.request("GET", README_Q)
        assert st == 200 and len(json.loads(body)["rates"]) == 31


def test_first_parameter_wins(server, need_dump):
    st, _, body = server.request("GET", "/rates?date_from=2021-01-01&date_from=2021-01-05&date_to=2021-01-03&orig_code=CNGGZ&orig_code=XXXXX&dest_code=EETLL")
    rates = json.loads(body)["rates"]
    assert st == 200 and len(rates) == 3 and rates[0]["count"] == 3


def test_concurrent_clients(server, need_dump):
    """32 clients x 200 requests on keep-alive connections, every answer correct."""
    _, _, ref = server.request("GET", README_Q)
    expected = json.loads(ref)
    errors = []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for i in range(200):
                c.request("GET", README_Q)
                r = c.getresponse()
                body = r.read()
                if i % contract.SAMPLE_EVERY == 0:  # a sample against api/openapi.json
                    contract.check_response("GET", README_Q, r, body)
                if r.status != 200 or json.loads(body) != expected:
                    errors.append((r.status, body[:100]))
        except Exception as e:  # noqa: BLE001 - any failure counts
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]


def test_metrics_and_health(server):
    st, h, body = server.request("GET", "/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain")
    assert b"rates_http_requests_total" in body
    assert server.request("GET", "/healthz")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200


def test_empty_database_serves(pg):
    """Without the dump, the service runs on the empty schema."""
    support.create_rates_db(pg, "rates_empty", load_dump=False)
    s = support.Server(pg.url("rates_empty"))
    try:
        s.wait_ready()
        st, _, body = s.request("GET", "/rates?date_from=2021-01-01&date_to=2021-01-02&orig_code=A&dest_code=B")
        assert st == 200 and json.loads(body)["rates"][0] == {"count": None, "day": "2021-01-02", "price": None}
    finally:
        assert s.stop() == 0
        assert not s.sanitizer_reports(), s.log_text()[-3000:]
