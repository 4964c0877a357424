"""Regions in /rates, GET /regions and GET /ports (issue 6), against the real binary and the dump.

Expected /rates answers come from tests/support/regions.py: explicit port lists from hand-written
subtrees and one plain aggregate in SQL, never the service's recursive expansion.
"""
import json
import time
import urllib.parse

import pytest

from tests import support
from tests.support.regions import SUBTREES, expected_rates, ports_of


def get(server, path, **params):
    st, headers, body = server.request("GET", path + ("?" + urllib.parse.urlencode(params)
                                                      if params else ""))
    assert headers["content-type"].startswith("application/json")
    return st, json.loads(body) if body else None


def rates(server, **params):
    return get(server, "/rates", **params)


# (origin, destination, from, to, has prices)
PAIRS = [
    ("china_main", "northern_europe", "2021-01-01", "2021-01-31", True),   # root to root
    ("china_main", "scandinavia", "2021-01-01", "2021-01-15", True),       # depth 0 to 1
    ("china_south_main", "baltic", "2020-12-30", "2021-01-05", True),      # leaf, empty days
    ("china_east_main", "kattegat", "2021-01-10", "2021-01-20", True),     # leaf to leaf
    ("china_main", "north_europe_main", "2021-01-01", "2021-01-31", True),  # golden line 23
    ("CNSGH", "north_europe_main", "2021-01-01", "2021-01-10", True),      # README example
    ("CNGGZ", "baltic", "2021-01-01", "2021-01-03", True),                 # code to slug
    ("china_south_main", "EETLL", "2021-01-01", "2021-01-03", True),       # slug to code
    ("china_north_main", "NOFRO", "2021-01-01", "2021-01-31", True),       # few prices a day
    ("CNGGZ", "EETLL", "2021-01-01", "2021-01-31", True),                  # port to port
    ("china_main", "russia_north_west", "2021-01-01", "2021-01-05", False),  # slug, no prices
    ("northern_europe", "china_main", "2021-01-01", "2021-01-05", False),  # wrong direction
    ("nowhere", "northern_europe", "2021-01-01", "2021-01-05", False),     # unknown slug
]


@pytest.mark.parametrize("orig,dest,date_from,date_to,has_prices", PAIRS,
                         ids=[f"{p[0]}->{p[1]}" for p in PAIRS])
def test_rates_by_region(server, pg, need_dump, orig, dest, date_from, date_to, has_prices):
    st, got = rates(server, date_from=date_from, date_to=date_to, orig_code=orig, dest_code=dest)
    assert st == 200, got
    want = expected_rates(pg, orig, dest, date_from, date_to)
    assert got == want
    counts = [r["count"] for r in got["rates"]]
    assert any(counts) == has_prices
    if not has_prices:
        assert all(r["count"] is None and r["price"] is None for r in got["rates"])


def test_region_average_is_over_all_prices(server, pg, need_dump):
    """One day by hand: the average of every price, not the average of per-route averages."""
    o, d = ports_of(pg, "china_main"), ports_of(pg, "scandinavia")
    raw = pg.psql("SELECT price FROM prices WHERE day = '2021-01-07' AND orig_code IN ("
                  + ",".join(f"'{c}'" for c in o) + ") AND dest_code IN ("
                  + ",".join(f"'{c}'" for c in d) + ")").split()
    prices = [int(p) for p in raw]
    assert len(prices) >= 3
    st, got = rates(server, date_from="2021-01-07", date_to="2021-01-07", orig_code="china_main",
                    dest_code="scandinavia")
    assert st == 200
    assert got["rates"][0]["count"] == len(prices)
    assert got["rates"][0]["price"] == pytest.approx(sum(prices) / len(prices), rel=1e-12)


def test_aliases(server, need_dump):
    base = dict(date_from="2021-01-01", date_to="2021-01-05")
    _, a = rates(server, **base, orig_code="china_main", dest_code="baltic")
    _, b = rates(server, **base, origin="china_main", destination="baltic")
    _, c = rates(server, **base, orig_code="china_main", destination="baltic")
    _, d = rates(server, **base, origin="china_main", dest_code="baltic")
    assert a == b == c == d
    assert any(r["count"] for r in a["rates"])


@pytest.mark.parametrize("params,names", [
    ({"orig_code": "CNGGZ", "origin": "CNGGZ", "dest_code": "EETLL"}, ("orig_code", "origin")),
    ({"orig_code": "CNGGZ", "dest_code": "EETLL", "destination": "baltic"},
     ("dest_code", "destination")),
    ({"orig_code": "", "origin": "CNGGZ", "dest_code": "EETLL"}, ("orig_code", "origin")),
])
def test_both_forms_is_400(server, params, names):
    st, got = rates(server, date_from="2021-01-01", date_to="2021-01-03", **params)
    assert st == 400
    assert all(n in got["error"] for n in names), got
    assert "both" in got["error"]


def test_validation_order_unchanged(server):
    # Dates are checked before locations, whatever the location parameters.
    st, got = rates(server, date_from="garbage", date_to="2021-01-03", orig_code="x",
                    origin="y", dest_code="EETLL")
    assert (st, got) == (400, {"error": "Invalid date arguments"})
    st, got = rates(server, date_from="2021-01-01", date_to="2021-01-03", dest_code="EETLL")
    assert (st, got) == (400, {"error": "Invalid location arguments"})
    st, got = rates(server, date_from="2021-01-01", date_to="2021-01-03", origin="",
                    destination="baltic")
    assert (st, got) == (400, {"error": "Invalid location arguments"})
    st, got = rates(server, date_from="2021-01-03", date_to="2021-01-01", origin="china_main",
                    destination="baltic")
    assert (st, got) == (200, {"rates": []})
    st, got = rates(server, date_from="1900-01-01", date_to="2021-01-01", origin="china_main",
                    destination="baltic")
    assert st == 400 and got["error"].startswith("Date range too large")


def test_invalid_utf8_slug_is_all_null(server):
    st, _, body = server.request("GET", "/rates?date_from=2021-01-01&date_to=2021-01-02"
                                 "&origin=china%FF&destination=baltic")
    assert st == 200
    assert json.loads(body) == {"rates": [
        {"count": None, "day": "2021-01-02", "price": None},
        {"count": None, "day": "2021-01-01", "price": None}]}


def test_regions_tree(server, pg, need_dump):
    st, got = get(server, "/regions")
    assert st == 200
    rows = got["regions"]
    table = pg.psql("SELECT slug || '|' || coalesce(parent_slug, '') || '|' || name FROM regions")
    want = {line.split("|")[0]: line.split("|") for line in table.splitlines()}
    assert {r["slug"] for r in rows} == set(want)
    seen = {}
    for r in rows:
        slug, parent, name = want[r["slug"]]
        assert r["name"] == name
        assert r["parent_slug"] == (parent or None)
        # Depth-first: a parent comes before its children, one level up.
        assert r["depth"] == (0 if not parent else seen[parent] + 1)
        seen[slug] = r["depth"]
        # The hand-written subtrees agree with the tree the service shows.
        if slug in SUBTREES and parent in SUBTREES:
            assert slug in SUBTREES[parent]
    assert max(seen.values()) == 2
    st, headers, body = server.request("HEAD", "/regions")
    assert st == 200 and body == b""


def test_ports_all(server, pg, need_dump):
    st, got = get(server, "/ports")
    assert st == 200
    want = pg.psql("SELECT code || '|' || name || '|' || parent_slug FROM ports ORDER BY code")
    assert [f"{p['code']}|{p['name']}|{p['parent_slug']}" for p in got["ports"]] == \
        want.splitlines()


@pytest.mark.parametrize("slug", sorted(SUBTREES))
def test_ports_by_region(server, pg, need_dump, slug):
    st, got = get(server, "/ports", region=slug)
    assert st == 200, got
    assert [p["code"] for p in got["ports"]] == ports_of(pg, slug)
    assert all(p["parent_slug"] in SUBTREES[slug] for p in got["ports"])


@pytest.mark.parametrize("query,status", [
    ("region=nowhere", 404), ("region=CNGGZ", 404), ("region=scand%FF", 404),
    ("region=" + "x" * 300, 404), ("region=", 400), ("region=a%00b", 400),
])
def test_ports_bad_region(server, query, status):
    st, headers, body = server.request("GET", "/ports?" + query)
    assert st == status
    assert headers["content-type"].startswith("application/json")
    assert set(json.loads(body)) == {"error"}


@pytest.fixture(scope="module")
def cycle_server(pg):
    """A database whose regions hold a cycle (loop_a -> loop_b -> loop_a) under nothing, with a
    subtree hanging off it, and a sane region beside it."""
    support.create_rates_db(pg, "rates_cycle", load_dump=False)
    pg.psql("""
        INSERT INTO regions VALUES ('loop_a', 'Loop A', NULL), ('loop_b', 'Loop B', 'loop_a'),
            ('loop_c', 'Loop C', 'loop_b'), ('sane', 'Sane', NULL),
            ('empty_leaf', 'Empty', 'sane');
        UPDATE regions SET parent_slug = 'loop_b' WHERE slug = 'loop_a';
        INSERT INTO ports VALUES ('LPAAA', 'A', 'loop_a'), ('LPBBB', 'B', 'loop_b'),
            ('LPCCC', 'C', 'loop_c'), ('SANEA', 'S', 'sane');
        INSERT INTO prices VALUES ('LPAAA', 'SANEA', '2021-01-01', 100),
            ('LPBBB', 'SANEA', '2021-01-01', 200), ('LPCCC', 'SANEA', '2021-01-01', 600),
            ('LPAAA', 'SANEA', '2021-01-02', 10);
    """, db="rates_cycle")
    s = support.Server(pg.url("rates_cycle"), env={"RATES_STATEMENT_TIMEOUT_MS": "3000"})
    s.wait_ready()
    yield s
    code = s.stop()
    assert not s.sanitizer_reports(), s.log_text()[-4000:]
    assert code == 0


@pytest.mark.parametrize("slug", ["loop_a", "loop_b"])
def test_cycle_does_not_hang(cycle_server, slug):
    t0 = time.monotonic()
    st, got = rates(cycle_server, date_from="2021-01-01", date_to="2021-01-02", origin=slug,
                    destination="sane")
    assert time.monotonic() - t0 < 2
    assert st == 200, got
    # Every region on the cycle and below it: LPAAA, LPBBB, LPCCC, each price once.
    assert got == {"rates": [{"count": 1, "day": "2021-01-02", "price": None},
                             {"count": 3, "day": "2021-01-01", "price": 300}]}
    st, got = get(cycle_server, "/ports", region=slug)
    assert st == 200
    assert [p["code"] for p in got["ports"]] == ["LPAAA", "LPBBB", "LPCCC"]


def test_cycle_regions_listing(cycle_server):
    st, got = get(cycle_server, "/regions")
    assert st == 200
    # Regions on a cycle have no root: the tree lists only what hangs from a root.
    assert got == {"regions": [
        {"slug": "sane", "name": "Sane", "parent_slug": None, "depth": 0},
        {"slug": "empty_leaf", "name": "Empty", "parent_slug": "sane", "depth": 1}]}
    st, got = get(cycle_server, "/ports", region="loop_c")
    assert st == 200 and [p["code"] for p in got["ports"]] == ["LPCCC"]


def test_region_without_ports(cycle_server):
    st, got = get(cycle_server, "/ports", region="empty_leaf")
    assert (st, got) == (200, {"ports": []})
    st, got = rates(cycle_server, date_from="2021-01-01", date_to="2021-01-01",
                    origin="loop_a", destination="empty_leaf")
    assert (st, got) == (200, {"rates": [{"count": None, "day": "2021-01-01", "price": None}]})
    st, got = rates(cycle_server, date_from="2021-01-01", date_to="2021-01-01", origin="loop_a",
                    destination="SANEA")
    assert got["rates"][0]["count"] == 3
