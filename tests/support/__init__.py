"""The one support package of the tests, drills and benchmarks: real processes on loopback.

  paths     ROOT, RATES_BIN (build/ratesd or $RATES_BIN), TSAN
  ports     free_port, free_ports, port_open (the only free-port picker)
  waiting   wait_until (raises), wait_for (returns the last value)
  cluster   PgCluster (initdb in a temp dir), create_rates_db, pg_bindir, dump_path
  server    Server (ratesd on a free port: start, stop, log, restart_without, wait_log)
  http      request (checked against api/openapi.json), raw_request
  contract  the API document's check
  ingest, ops, regions   helpers of the ingestion, operations and regions tests
  ha        the HA stack on loopback (Patroni, etcd, HAProxy, pgBackRest), its drills

Import as `from tests import support` (pytest.ini's pythonpath puts the repository root on
the path; scripts run as modules from it: /usr/bin/python3 -m tests.support.ha.stack up).
The names below are the common ones: support.Server, support.request, support.PgCluster...
"""
from tests.support import contract
from tests.support.cluster import PgCluster, create_rates_db, dump_path, pg_bindir
from tests.support.http import raw_request, request
from tests.support.paths import RATES_BIN, ROOT, TSAN, TSAN_SUPP
from tests.support.ports import free_port, free_ports, port_open
from tests.support.server import Server, server_env
from tests.support.waiting import wait_for, wait_until

__all__ = ["contract", "PgCluster", "create_rates_db", "dump_path", "pg_bindir", "raw_request",
           "request", "RATES_BIN", "ROOT", "TSAN", "TSAN_SUPP", "free_port", "free_ports",
           "port_open", "Server", "server_env", "wait_for", "wait_until"]
