"""libpq's environment is honoured: PGAPPNAME beats ratesd's fallback_application_name, as in psql."""
from tests import support


def apps(pg, port_marker):
    return pg.psql("SELECT string_agg(DISTINCT application_name, ',' ORDER BY application_name)"
                   f" FROM pg_stat_activity WHERE datname = 'rates' AND application_name LIKE '{port_marker}'",
                   db="postgres")


def test_application_name_is_a_fallback(pg, rates_db):
    s = support.Server(rates_db["url"], env={"PGAPPNAME": "ops-ratesd-x"})
    try:
        s.wait_ready()
        assert s.request("GET", "/regions")[0] == 200
        assert apps(pg, "ops-ratesd-x") == "ops-ratesd-x"
    finally:
        assert s.stop() == 0
    s = support.Server(rates_db["url"])
    try:
        s.wait_ready()
        assert s.request("GET", "/regions")[0] == 200
        assert "ratesd" in apps(pg, "ratesd%")
    finally:
        assert s.stop() == 0


def test_pgconnect_timeout_is_accepted(pg, rates_db):
    """With PGCONNECT_TIMEOUT set, ratesd leaves the timeout to libpq and still connects."""
    s = support.Server(rates_db["url"], env={"PGCONNECT_TIMEOUT": "7"})
    try:
        s.wait_ready()
        assert s.request("GET", "/regions")[0] == 200
    finally:
        assert s.stop() == 0
