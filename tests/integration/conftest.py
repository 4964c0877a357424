"""Shared fixtures: one cluster and one server for the session; tests that break things make
their own (tests/support: PgCluster, Server)."""
import shutil

import pytest

from tests import support


@pytest.fixture(scope="session")
def pg():
    c = support.PgCluster()
    yield c
    c.destroy()


@pytest.fixture(scope="session")
def rates_db(pg):
    loaded = support.create_rates_db(pg, "rates")
    return {"url": pg.url("rates"), "dump": loaded}


@pytest.fixture(scope="session")
def pristine_db(pg):
    """A database that no test writes to: the golden answers depend on the dump alone."""
    loaded = support.create_rates_db(pg, "rates_pristine")
    return {"url": pg.url("rates_pristine"), "dump": loaded}


@pytest.fixture(scope="session")
def server(pg, pristine_db):
    """The shared read-only server (tests that write start their own, on rates_db)."""
    s = support.Server(pristine_db["url"])
    s.wait_ready()
    yield s
    code = s.stop()
    reports = s.sanitizer_reports()
    assert not reports, f"sanitizer reports in ratesd log: {reports}\n{s.log_text()[-4000:]}"
    assert code == 0, f"ratesd exited {code}"


@pytest.fixture
def need_dump(rates_db):
    if not rates_db["dump"]:
        pytest.skip("no dump: set RATES_DUMP to ../shared/db/rates.sql")


@pytest.fixture(scope="module")
def ha_stack():
    """ONE Patroni + etcd + HAProxy + pgBackRest stack with 2 ratesd (tests/support/ha/stack.py),
    shared by the drills of one file (ha/test_engine.py; synthetic data) and stopped after it,
    so that it does not idle beside the partition drill's own stack on 2 cores (with it up, that
    drill's healed node missed its 60 s rejoin bound in 3 full runs; alone it rejoined in time).
    Everything it started is stopped, and no process or port may be left."""
    for tool in ("patroni", "etcd", "haproxy", "pgbackrest"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (make ha-deps)")
    from tests.support.ha import drills  # only the HA drills need it
    s = drills.up_stack()
    yield s
    left = s.down()
    assert not left, f"HA stack left behind: {left}"
