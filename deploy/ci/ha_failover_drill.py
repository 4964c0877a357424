#!/usr/bin/python3
"""deploy/ci/compose_ha_drill.py DOCKER PROJECT HTTP_PORT TOKEN [REPORT]

Fails over the compose `ha` profile once each way, under load, through its HAProxy
(127.0.0.1:HTTP_PORT, published by compose):
  1. GET /rates answers through HAProxy and the two ratesd;
  2. `patronictl switchover` to the synchronous standby while a writer posts batches
     (Idempotency-Key, the same key retried: scripts/ha/drill.py) and two readers read;
  3. `docker kill` of the new leader's container: Patroni elects the synchronous standby once
     the leader key expires (ttl), HAProxy's checks move the write port, ratesd reconnects;
  4. the killed node is started again and must come back as a replica;
  5. every acknowledged batch is in the ledger of the final leader, once, with all its rows.
Prints the write and read gap of each fault and a JSON report (also to REPORT when given);
exits 1 on a lost or duplicated acknowledged batch, or when writes do not come back.
Addresses only 127.0.0.1 (the published port) and the containers through `docker exec`;
every loop is bounded in count and time."""
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "ha"))
import drill  # noqa: E402  (reader, batcher, recovery, ledger check)

NODES = ("ha-pg1", "ha-pg2", "ha-pg3")
CONF = "/run/patroni/patroni.yml"


def log(msg):
    print(f"compose-ha: {msg}", flush=True)


class Compose:
    def __init__(self, docker, project):
        self.docker, self.project = docker, project

    def container(self, service):
        return f"{self.project}_{service}_1"  # docker-compose 1.29's names

    def run(self, args, timeout=60, check=True):
        r = subprocess.run([self.docker] + args, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {r.stderr.strip()[-400:]}")
        return r

    def running(self, service):
        r = self.run(["inspect", "-f", "{{.State.Running}}", self.container(service)], check=False)
        return r.stdout.strip() == "true"

    def members(self):
        """patronictl list as seen by the first running node: {member: (role, state)}."""
        for svc in NODES:
            if not self.running(svc):
                continue
            r = self.run(["exec", self.container(svc), "patronictl", "-c", CONF, "list", "-f",
                          "json"], check=False, timeout=20)
            if r.returncode == 0:
                try:
                    return {m["Member"]: (m["Role"], m.get("State", "")) for m in json.loads(r.stdout)}
                except (ValueError, KeyError):
                    continue
        return {}

    def leader(self):
        for name, (role, state) in self.members().items():
            if role in ("Leader", "Standby Leader") and state == "running":
                return name
        return None

    def sync_standby(self):
        for name, (role, state) in self.members().items():
            if role == "Sync Standby" and state in ("running", "streaming"):
                return name
        return None

    def psql(self, sql, check=True):
        """SQL on the current leader, as the superuser over its Unix socket."""
        who = self.leader()
        if not who:
            raise RuntimeError("no leader to run SQL on")
        r = self.run(["exec", self.container(service_of(who)), "psql", "-X", "-At",
                      "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "rates", "-c", sql],
                     check=check, timeout=60)
        return r.stdout.strip()


def service_of(member):
    return "ha-" + member  # member pgN runs in service ha-pgN (compose.yaml)


def wait_for(what, fn, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        v = fn()
        if v:
            return v
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def wait_ready(port, timeout=180):
    def ok():
        try:
            st, _, _ = drill.harness.request("GET", "/readyz", port=port, timeout=3)
            return st == 200
        except (OSError, drill.harness.http.client.HTTPException):
            return False
    wait_for("GET /readyz 200 through HAProxy", ok, timeout)


def gaps(events, t_fault):
    w = drill.recovery(events.of("batch"), t_fault)
    r = drill.recovery(events.of("read"), t_fault)
    return {"write_gap_s": w[0], "failed_writes": w[1], "write_failures": w[2],
            "read_gap_s": r[0], "failed_reads": r[1], "read_failures": r[2]}


def main():
    docker, project, port, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    report_path = sys.argv[5] if len(sys.argv) > 5 else None
    drill.TOKEN = token  # post_batch sends drill.TOKEN as the bearer token
    c = Compose(docker, project)
    wait_ready(port)
    members = wait_for("a leader and a synchronous standby",
                       lambda: c.leader() and c.sync_standby() and c.members(), 120)
    log(f"cluster: {members}")
    st, _, body = drill.harness.request(
        "GET", "/rates?date_from=2016-01-01&date_to=2016-01-10&orig_code=CNSGH&dest_code=north_europe_main",
        port=port, timeout=10)
    log(f"GET /rates through HAProxy: {st}, {len(body)} bytes")
    if st != 200:
        raise SystemExit(f"compose-ha: GET /rates answered {st}: {body[:200]!r}")
    drill.seed_ports(c)

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
        t_sw = time.monotonic()
        c.run(["exec", c.container(service_of(old)), "patronictl", "-c", CONF, "switchover",
               "--master", old, "--candidate", cand, "--force"], timeout=60)
        new = wait_for("the switchover's new leader",
                       lambda: (lambda ld: ld if ld and ld != old else None)(c.leader()), 60)
        report["switchover"] = {"from": old, "to": new,
                                "leader_after_s": round(time.monotonic() - t_sw, 2)}
        time.sleep(5)
        report["switchover"].update(gaps(events, t_sw))
        log(f"switchover: {report['switchover']}")
        # 2. the leader's container killed (SIGKILL to everything in it, no goodbye to etcd).
        wait_for("a synchronous standby after the switchover", c.sync_standby, 60)
        victim = new
        log(f"docker kill {c.container(service_of(victim))} (the leader)")
        t_kill = time.monotonic()
        c.run(["kill", c.container(service_of(victim))])
        promoted = wait_for("a new leader after the kill",
                            lambda: (lambda ld: ld if ld and ld != victim else None)(c.leader()), 90)
        report["failover"] = {"killed": victim, "promoted": promoted,
                              "leader_after_s": round(time.monotonic() - t_kill, 2)}
        time.sleep(6)
        report["failover"].update(gaps(events, t_kill))
        log(f"failover: {report['failover']}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=40)
    # 3. the killed node rejoins as a replica (pg_rewind if its timeline diverged).
    c.run(["start", c.container(service_of(victim))])
    t_back = time.monotonic()
    wait_for(f"{victim} back as a replica",
             lambda: c.members().get(victim, ("", ""))[0] in ("Replica", "Sync Standby")
             and c.members()[victim][1] in ("running", "streaming"), 120)
    report["rejoin_s"] = round(time.monotonic() - t_back, 2)
    report["members_after"] = c.members()
    report["ledger"] = drill.ledger_check(c, run, recs)
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
        raise SystemExit("compose-ha: " + "; ".join(bad))


if __name__ == "__main__":
    main()
