#!/usr/bin/python3
"""python3 -m deploy.ci.ha_failover_drill ENGINE CONF MEMBER=CONTAINER... -- HTTP_PORT TOKEN [REPORT]

Fails over a deployed Patroni cluster once each way, under load, through ratesd on
127.0.0.1:HTTP_PORT (published by the engine), whose database connections go through HAProxy.
ENGINE is docker or podman (the containers are reached with `ENGINE exec`), CONF the path of
Patroni's configuration inside them, MEMBER=CONTAINER maps each Patroni member to its container.
Used by the compose `ha` profile (tests/stages/deploy.sh, compose-ha-failover) and by the
Ansible HA roles on three podman hosts (deploy/ci/ha_deploy_check.sh, make ha-deploy-check):
  1. GET /rates answers through HAProxy and ratesd;
  2. `patronictl switchover` to the synchronous standby while a writer posts batches
     (Idempotency-Key, the same key retried: tests/support/ha/drill.py) and two readers read;
  3. `ENGINE kill` of the new leader's container: Patroni elects the synchronous standby once
     the leader key expires (ttl), HAProxy's checks move the write port, ratesd reconnects
     (the container is killed as a whole: its etcd member too, where etcd runs beside Patroni);
  4. the killed node is started again and must come back as a replica;
  5. every acknowledged batch is in the ledger of the final leader, once, with all its rows,
     read from a stable leader (tests/support/ha/verdict.py), retried across a late failover.
Prints the write and read gap of each fault and a JSON report (also to REPORT when given);
exits 1 on a lost or duplicated acknowledged batch, or when writes do not come back.
Addresses only 127.0.0.1 (the published port) and the containers through `docker exec`;
every loop is bounded in count and time."""
import http.client
import json
import subprocess
import sys
import threading
import time

from tests import support
from tests.support.ha import drill  # reader, batcher, recovery, ledger check
from tests.support.ha.verdict import LeaderReader
from tests.support.waiting import wait_until


def log(msg):
    print(f"ha-drill: {msg}", flush=True)


class Cluster:
    def __init__(self, engine, conf, containers):
        self.engine, self.conf, self.containers = engine, conf, containers

    def container(self, member):
        return self.containers[member]

    def run(self, args, timeout=60, check=True):
        r = subprocess.run([self.engine] + args, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.engine} {' '.join(args)}: {r.stderr.strip()[-400:]}")
        return r

    def running(self, member):
        r = self.run(["inspect", "-f", "{{.State.Running}}", self.container(member)], check=False)
        return r.stdout.strip() == "true"

    def patronictl(self, member, args, timeout=20, check=False):
        return self.run(["exec", self.container(member), "patronictl", "-c", self.conf] + args,
                        timeout=timeout, check=check)

    def members(self):
        """patronictl list as seen by the first running node: {member: (role, state)}."""
        for m in self.containers:
            if not self.running(m):
                continue
            r = self.patronictl(m, ["list", "-f", "json"])
            if r.returncode == 0:
                try:
                    return {x["Member"]: (x["Role"], x.get("State", "")) for x in json.loads(r.stdout)}
                except (ValueError, KeyError):
                    continue
        return {}

    def member_in(self, role, states, other_than=None):
        """The first member with that role in one of those states (not other_than), or None."""
        for name, (r, state) in self.members().items():
            if r == role and state in states and name != other_than:
                return name
        return None

    def leader(self, other_than=None):
        return self.member_in("Leader", ("running",), other_than)

    def sync_standby(self):
        # Patroni 3 says "streaming" for a replica that receives WAL, 2.0 "running".
        return self.member_in("Sync Standby", ("running", "streaming"))

    def switchover(self, old, cand):
        """Patroni 3 names the flag --leader, 2.0 (Debian 11) --master."""
        for flag in ("--leader", "--master"):
            r = self.patronictl(old, ["switchover", flag, old, "--candidate", cand, "--force"], timeout=60)
            if r.returncode == 0:
                return
            if "no such option" not in (r.stderr + r.stdout).lower():
                break
        raise RuntimeError(f"patronictl switchover: {r.stdout.strip()[-300:]} {r.stderr.strip()[-300:]}")

    def psql(self, sql, check=True):
        """SQL on the current leader, as the superuser over its Unix socket."""
        who = self.leader()
        if not who:
            raise RuntimeError("no leader to run SQL on")
        return self.psql_on(who, sql, check)

    def psql_on(self, who, sql, check=True):
        r = self.run(["exec", self.container(who), "runuser", "-u", "postgres", "--", "psql", "-X",
                      "-At", "-v", "ON_ERROR_STOP=1", "-d", "rates", "-c", sql],
                     check=check, timeout=60)
        return r.stdout.strip()

    def verdict(self):
        """Reads for the verdict: the same leader twice in a row (tests/support/ha/verdict.py)."""
        return LeaderReader(self.leader, lambda who, sql: self.psql_on(who, sql),
                            lambda who: self.psql_on(who, "SELECT pg_is_in_recovery()") != "f",
                            interval=1.0, log=log)


def wait_for(what, fn, timeout):
    """wait_until, polling every 0.5 s (each poll is an exec into a container)."""
    return wait_until(what, fn, timeout, interval=0.5)


def wait_ready(port, timeout=180):
    def ok():
        try:
            st, _, _ = support.request("GET", "/readyz", port=port, timeout=3)
            return st == 200
        except (OSError, http.client.HTTPException):
            return False
    wait_for("GET /readyz 200 through HAProxy", ok, timeout)


def gaps(events, t_fault):
    w = drill.recovery(events.of("batch"), t_fault)
    r = drill.recovery(events.of("read"), t_fault)
    return {"write_gap_s": w[0], "failed_writes": w[1], "write_failures": w[2],
            "read_gap_s": r[0], "failed_reads": r[1], "read_failures": r[2]}


def fault(c, events, what, keys, old, act, timeout, settle_s):
    """Runs act() (a fault while the clients run), waits for a leader other than old, lets
    the clients run settle_s more, and returns {keys[0]: old, keys[1]: new leader,
    leader_after_s, and the write and read gaps counted from the fault}."""
    t0 = time.monotonic()
    act()
    new = wait_for(f"a new leader after the {what}", lambda: c.leader(other_than=old), timeout)
    r = {keys[0]: old, keys[1]: new, "leader_after_s": round(time.monotonic() - t0, 2)}
    time.sleep(settle_s)
    r.update(gaps(events, t0))
    log(f"{what}: {r}")
    return r


def main():
    args = sys.argv[1:]
    if "--" not in args or len(args) < 4:
        raise SystemExit(__doc__)
    sep = args.index("--")
    engine, conf = args[0], args[1]
    containers = dict(a.split("=", 1) for a in args[2:sep])
    port, token = int(args[sep + 1]), args[sep + 2]
    report_path = args[sep + 3] if len(args) > sep + 3 else None
    drill.TOKEN = token  # post_batch sends drill.TOKEN as the bearer token
    c = Cluster(engine, conf, containers)
    wait_ready(port)
    members = wait_for("a leader and a synchronous standby",
                       lambda: c.leader() and c.sync_standby() and c.members(), 120)
    log(f"cluster: {members}")
    drill.seed_ports(c)  # the drill's own two ports: its prices never mix with real data
    st, _, body = support.request("GET", drill.READ_PATH, port=port, timeout=10)
    log(f"GET {drill.READ_PATH} through HAProxy: {st}, {len(body)} bytes")
    if st != 200:
        raise SystemExit(f"ha-drill: GET /rates answered {st}: {body[:200]!r}")

    events, recs, stop = drill.Events(), [], threading.Event()
    run = f"cha{int(time.time())}"
    threads = [threading.Thread(target=drill.batcher, args=(port, run, stop, events, recs), daemon=True)]
    threads += [threading.Thread(target=drill.reader, args=(port, "read", stop, events), daemon=True)
                for _ in range(2)]
    for t in threads:
        t.start()
    report = {}
    try:
        time.sleep(3)
        # 1. switchover to the synchronous standby (Patroni's REST, authenticated by patronictl).
        old, cand = c.leader(), c.sync_standby()
        log(f"switchover {old} -> {cand}")
        report["switchover"] = fault(c, events, "switchover", ("from", "to"), old,
                                     lambda: c.switchover(old, cand), 60, 5)
        # 2. the leader's container killed (SIGKILL to everything in it, no goodbye to etcd).
        wait_for("a synchronous standby after the switchover", c.sync_standby, 60)
        victim = report["switchover"]["to"]
        log(f"{c.engine} kill {c.container(victim)} (the leader)")
        report["failover"] = fault(c, events, "failover", ("killed", "promoted"), victim,
                                   lambda: c.run(["kill", c.container(victim)]), 90, 6)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=40)
    # 3. the killed node rejoins as a replica (pg_rewind if its timeline diverged).
    c.run(["start", c.container(victim)])
    t_back = time.monotonic()
    wait_for(f"{victim} back as a replica",
             lambda: c.members().get(victim, ("", ""))
             in {(r, st) for r in ("Replica", "Sync Standby") for st in ("running", "streaming")},
             120)
    report["rejoin_s"] = round(time.monotonic() - t_back, 2)
    report["members_after"] = c.members()
    report["ledger"] = drill.ledger_check(c.verdict(), run, recs)
    text = json.dumps(report, indent=1, sort_keys=True)
    print(text)
    if report_path:
        with open(report_path, "w") as f:
            f.write(text + "\n")
    led = report["ledger"]
    bad = []
    if led["batches_lost"] or led["batches_duplicated"]:
        bad.append(f"{led['batches_lost']} lost, {led['batches_duplicated']} duplicated batches")
    if led["batches_unacknowledged"]:
        bad.append(f"unacknowledged at the end: {led['batches_unacknowledged'][:5]}")
    for k in ("switchover", "failover"):
        if report[k]["write_gap_s"] is None:
            bad.append(f"writes did not come back after the {k}")
    if led["batches_acknowledged"] < 5:
        bad.append(f"only {led['batches_acknowledged']} batches acknowledged")
    log(f"switchover write gap {report['switchover']['write_gap_s']} s, failover write gap "
        f"{report['failover']['write_gap_s']} s (leader after {report['failover']['leader_after_s']} s), "
        f"{led['batches_acknowledged']} batches acknowledged, {led['batches_lost']} lost")
    if bad:
        raise SystemExit("ha-drill: " + "; ".join(bad))


if __name__ == "__main__":
    main()
