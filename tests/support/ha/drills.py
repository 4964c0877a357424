"""tests/support/ha/drills.py: the failure drills on the Patroni stack (tests/support/ha/stack.py).

  python3 -m tests.support.ha.drills [--reuse] crash|switchover|etcd|restore|freeze|all

  crash       kill -9 of the leader's Patroni and postmaster, ROUNDS times, under a writer
              (POST /batches with Idempotency-Key, same key retried on 503 or a broken
              connection) and readers (GET /rates through HAProxy, SELECT on the read endpoint);
              the old node comes back as a replica each round; every acknowledged batch is
              then checked on the leader: there once, with all its rows
  switchover  patronictl switchover under rates-load (retrying with its key): none lost, pause
  etcd        kill -9 of the etcd raft leader: Patroni keeps its leader, writes keep flowing
  restore     pgBackRest point-in-time restore into a fresh cluster: counts and ledger checksum
              equal those of the chosen instant
  freeze      SIGSTOP of the leader's Patroni while its PostgreSQL runs, a writer on that node
              directly: what fences it, and no acknowledged commit the new leader lacks

Each prints a JSON report. --reuse runs on the stack of `make ha-up` (var/ha); otherwise one
stack in a temp dir, shared by the drills of the run, torn down at the end even on failure.
Every loop is bounded in count and time; only processes recorded by the stack are signalled.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from tests.support.ha import drill  # writer, readers, ledger check
from tests.support.ha import stack as stk
from tests.support.ha.verdict import stack_reader
from tests.support.paths import RATES_BIN
ORIG, DEST = drill.ORIG, drill.DEST


def log(msg):
    print(f"drill: {msg}", file=sys.stderr, flush=True)


def seed(s):
    s.psql("INSERT INTO regions (slug, name) VALUES ('ha_drill', 'HA drill') "
           "ON CONFLICT DO NOTHING; "
           f"INSERT INTO ports (code, name, parent_slug) VALUES ('{ORIG}', 'HA drill A', "
           f"'ha_drill'), ('{DEST}', 'HA drill B', 'ha_drill') ON CONFLICT DO NOTHING")


def set_token(s):
    drill.TOKEN = s.st["secrets"]["token"]


def db_reader(url, stop, events, kind="db_read"):
    """SELECTs on the database read endpoint directly (psycopg2, reconnecting)."""
    import psycopg2  # Debian's python3-psycopg2, for /usr/bin/python3
    conn = None
    for _ in range(drill.MAX_REQUESTS_PER_THREAD):
        if stop.is_set():
            break
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = psycopg2.connect(url, connect_timeout=2)
                conn.autocommit = True
            with conn.cursor() as c:
                c.execute("SELECT count(*) FROM prices WHERE orig_code = %s", (ORIG,))
                c.fetchone()
            events.add(kind, t0, time.monotonic(), True, "ok")
            time.sleep(0.01)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            events.add(kind, t0, time.monotonic(), False, type(e).__name__)
            try:
                conn and conn.close()
            except Exception:  # noqa: BLE001
                pass
            conn = None
            time.sleep(0.05)
    if conn:
        conn.close()


class Load:
    """A writer and readers running until stop()."""

    def __init__(self, s, run, readers=2, db_readers=1, writer=True):
        self.events, self.recs, self.stop_ev = drill.Events(), [], threading.Event()
        port = s.http_port
        self.threads = [threading.Thread(target=drill.reader, args=(port, "read", self.stop_ev,
                                                                    self.events))
                        for _ in range(readers)]
        self.threads += [threading.Thread(target=db_reader, args=(s.read_url, self.stop_ev,
                                                                  self.events))
                         for _ in range(db_readers)]
        if writer:
            self.threads.append(threading.Thread(target=drill.batcher, args=(
                port, run, self.stop_ev, self.events, self.recs)))
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(90)

    def summary(self, kind):
        ev = self.events.of(kind)
        fails = [e for e in ev if not e[3]]
        kinds = {}
        for e in fails:
            kinds[str(e[4])] = kinds.get(str(e[4]), 0) + 1
        return {"requests": len(ev), "failed": len(fails), "failures_by_kind": kinds}

    def next_ack_after(self, t):
        ok = [e[2] for e in self.events.of("batch") if e[3] and e[1] >= t]
        return round(min(ok) - t, 3) if ok else None

    def max_ack_gap(self, t_from, t_to):
        ends = sorted(e[2] for e in self.events.of("batch") if e[3])
        ends = [x for x in ends if t_from - 5 <= x <= t_to + 30]
        gaps = [(b - a, a) for a, b in zip(ends, ends[1:]) if b >= t_from and a <= t_to]
        return round(max(gaps)[0], 3) if gaps else None


def wait_healthy(s, timeout=90):
    stk.wait_until("the cluster healthy (leader, 2 replicas, a sync standby)", s.healthy,
                   timeout, 0.2)


def wait_new_leader(s, old, timeout=40):
    """Polls the nodes' /primary until another node answers 200; returns (name, t)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in stk.NODES:
            if n != old and s.role(n) == "primary":
                return n, time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"no new leader {timeout} s after losing {old}")


def finish(s, load, run, report):
    load.stop()
    report["reads_http"] = load.summary("read")
    report["reads_db_endpoint"] = load.summary("db_read")
    report["batches"] = load.summary("batch")
    if load.recs:
        report.update(drill.ledger_check(stack_reader(s), run, load.recs))


# ---- the drills ----

def crash_drill(s, rounds=3):
    run = f"crash{int(time.time())}"
    report = {"drill": "crash", "run": run, "rounds": [], "timings": s.st["timings"]}
    wait_healthy(s)
    load = Load(s, run)
    try:
        time.sleep(2)
        for i in range(rounds):
            wait_healthy(s)
            time.sleep(1)
            old = s.leader()
            t_kill = time.monotonic()
            killed = s.kill_node(old)
            log(f"round {i + 1}: killed {old} (pids {killed})")
            new, t_new = wait_new_leader(s, old)
            # What a supervisor (systemd Restart=) does: Patroni comes back; it rejoins as a
            # replica (pg_rewind when its timeline diverged).
            s.start_patroni(old)
            t0 = time.monotonic()
            wait_healthy(s)
            rto = None
            for _ in range(300):
                rto = load.next_ack_after(t_kill)
                if rto is not None:
                    break
                time.sleep(0.1)
            report["rounds"].append({
                "killed": old, "new_leader": new,
                "leader_after_s": round(t_new - t_kill, 3),
                "write_rto_s": rto,
                "old_node_rejoined_s": round(time.monotonic() - t0, 3)})
        time.sleep(1)
    finally:
        finish(s, load, run, report)
    rtos = [r["write_rto_s"] for r in report["rounds"] if r["write_rto_s"] is not None]
    report["write_rto_max_s"] = max(rtos) if rtos else None
    return report


def switchover_drill(s, rows=200):
    """rates-load, one file after another, each retried with its own key by the loader."""
    run = f"sw{int(time.time())}"
    report = {"drill": "switchover", "run": run}
    wait_healthy(s)
    loader = os.path.join(os.path.dirname(s.st["ratesd_bin"]), "rates-load")
    work = tempfile.mkdtemp(prefix="rates-sw-")
    loads, stop = [], threading.Event()

    def loader_loop():
        for i in range(2000):
            if stop.is_set():
                return
            path = os.path.join(work, f"{run}-{i}.csv")
            with open(path, "w") as f:
                for j in range(rows):
                    f.write(f"{ORIG},{DEST},2031-{1 + j % 12:02d}-{1 + i % 28:02d},"
                            f"{200000 + i * rows + j}\n")
            t0 = time.monotonic()
            r = subprocess.run([loader, "-q", "-k", f"{run}-{i}", path,
                                f"http://127.0.0.1:{s.http_port}"],
                               env=dict(os.environ, RATES_INGEST_TOKEN=s.st["secrets"]["token"]),
                               capture_output=True, text=True, timeout=300)
            loads.append({"key": f"{run}-{i}", "exit": r.returncode, "t0": t0,
                          "t1": time.monotonic(), "out": (r.stdout + r.stderr)[-300:]})

    load = Load(s, run + "w", db_readers=1)
    th = threading.Thread(target=loader_loop)
    th.start()
    try:
        time.sleep(3)
        old = s.leader()
        cand = [m["name"] for m in s.cluster()["members"] if m.get("role") == "sync_standby"]
        cand = cand[0] if cand else [n for n in stk.NODES if n != old][0]
        t_sw = time.monotonic()
        r = subprocess.run(["patronictl", "-c", s.path(old, "patroni.yml"), "switchover",
                            "--leader", old, "--candidate", cand, "--force"],
                           capture_output=True, text=True, timeout=120)
        report["patronictl"] = (r.stdout + r.stderr).strip().splitlines()[-3:]
        new, t_new = wait_new_leader(s, old)
        report.update(old_leader=old, candidate=cand, new_leader=new,
                      leader_after_s=round(t_new - t_sw, 3))
        wait_healthy(s)
        time.sleep(3)
        report["write_pause_s"] = load.max_ack_gap(t_sw, time.monotonic())
    finally:
        stop.set()
        th.join(300)
        finish(s, load, run + "w", report)
        shutil.rmtree(work, ignore_errors=True)
    keys = [x["key"] for x in loads if x["exit"] == 0]
    present = stack_reader(s).psql("SELECT b.idempotency_key || '|' || count(*) || '|' || "
                     "(SELECT count(*) FROM prices p WHERE p.batch_id = min(b.id)) "
                     f"FROM batches b WHERE b.idempotency_key LIKE '{run}-%' "
                     "AND b.status = 'committed' GROUP BY b.idempotency_key")
    got = {ln.split("|")[0]: ln.split("|")[1:] for ln in present.splitlines() if ln}
    report["loader"] = {
        "runs": len(loads), "exit_codes": sorted({x["exit"] for x in loads}),
        "failed": [x["out"] for x in loads if x["exit"] != 0][:3],
        "lost": [k for k in keys if k not in got or got[k][1] != str(rows)],
        "duplicated": [k for k, v in got.items() if v[0] != "1"],
        "longest_run_s": round(max((x["t1"] - x["t0"] for x in loads), default=0), 3)}
    return report


def etcd_drill(s, observe_s=6.0):
    run = f"etcd{int(time.time())}"
    report = {"drill": "etcd"}
    wait_healthy(s)
    status = json.loads(s.etcdctl("endpoint", "status", "-w", "json"))
    leader_id = status[0]["Status"]["leader"]
    victim = None
    for e, st in zip(stk.ETCDS, status):
        if st["Status"]["header"]["member_id"] == leader_id:
            victim = e
    victim = victim or "e1"
    pg_leader = s.leader()
    load = Load(s, run)
    try:
        time.sleep(2)
        t0 = time.monotonic()
        s.signal(victim, signal.SIGKILL)
        s.reap(victim, 5)
        log(f"killed etcd {victim} (the raft leader)")
        # Patroni's own answer per node (GET /primary), not /cluster: the latter reads etcd
        # and may time out while a member is gone, which is the observer's problem.
        changes, deadline = set(), time.monotonic() + observe_s
        while time.monotonic() < deadline:
            changes.add(",".join(n for n in stk.NODES if s.role(n) == "primary") or None)
            time.sleep(0.2)
        report.update(killed=victim, was_raft_leader=True, patroni_leader_before=pg_leader,
                      patroni_leaders_seen=sorted(x or "none" for x in changes),
                      max_write_gap_s=load.max_ack_gap(t0, time.monotonic()))
        s.start_etcd(victim, state="existing")
        stk.wait_until("etcd back", lambda: s.etcd_healthy(victim), 30)
        report["etcd_rejoined_s"] = round(time.monotonic() - t0, 3)
    finally:
        finish(s, load, run, report)
    # "none": one poll where no node's GET /primary said 200 (Patroni's answer waits on
    # etcd); the leader is kept when no other node ever answered as primary.
    seen = [x for x in report["patroni_leaders_seen"] if x != "none"]
    report["leader_kept"] = seen == [pg_leader]
    return report


LEDGER_SUM = ("SELECT (SELECT count(*) FROM batches WHERE status = 'committed') || '|' || "
              "(SELECT count(*) FROM prices) || '|' || "
              "(SELECT coalesce(md5(string_agg(idempotency_key || ':' || rows, ',' "
              "ORDER BY id)), '') FROM batches WHERE status = 'committed')")


def restore_drill(s):
    run = f"pitr{int(time.time())}"
    report = {"drill": "restore", "run": run}
    wait_healthy(s)
    t_b = time.monotonic()
    s.backrest("backup", "--type=incr")
    report["backup_s"] = round(time.monotonic() - t_b, 3)
    port = s.http_port

    def post(i):
        rec = {"attempts": 0, "acked": False, "replayed": False}
        drill.send_until_acked(port, f"{run}-{i}", drill.batch_body(run, i), drill.Events(),
                               time.monotonic() + 30, rec)
        return rec["acked"]

    report["before_acked"] = sum(post(i) for i in range(5))
    time.sleep(1.1)
    target = s.psql("SELECT now()::text")
    want = s.psql(LEDGER_SUM)
    time.sleep(1.1)
    report["after_acked"] = sum(post(i) for i in range(5, 10))
    s.psql("SELECT pg_switch_wal()")
    s.backrest("check")  # waits until the WAL up to here is in the archive
    dest = s.path("restore")
    os.makedirs(dest, mode=0o700, exist_ok=True)
    s.chown_pg(dest)
    data = os.path.join(dest, "data")
    t_r = time.monotonic()
    s.backrest("restore", "--type=time", f"--target={target}",
               "--target-action=promote", "--archive-mode=off", pg_path=data)
    rport = stk.free_ports(1)[0]
    bindir = stk.pg_bindir()
    r = s.as_postgres([os.path.join(bindir, "pg_ctl"), "-D", data, "-l",
                       os.path.join(dest, "postgres.log"), "-w", "-t", "120", "-o",
                       f"-p {rport} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dest}"
                       " -c archive_mode=off -c synchronous_standby_names= -c hot_standby=on",
                       "start"], timeout=180)
    try:
        if r.returncode != 0:
            raise RuntimeError(f"restored cluster does not start: {r.stdout}{r.stderr}")
        url = f"postgresql://postgres@/rates?host={dest}&port={rport}"
        stk.wait_until("recovery done", lambda: s.psql("SELECT NOT pg_is_in_recovery()",
                                                       url=url, check=False) == "t", 120, 0.2)
        got = s.psql(LEDGER_SUM, url=url)
        report.update(target=target, restore_s=round(time.monotonic() - t_r, 3),
                      at_target=want, restored=got, now=s.psql(LEDGER_SUM), match=got == want)
    finally:
        s.as_postgres([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w",
                       "stop"], timeout=60)
        shutil.rmtree(dest, ignore_errors=True)
    return report


def freeze_drill(s, frozen_s=None):
    """SIGSTOP of the leader's Patroni: PostgreSQL keeps running as a primary, nothing renews
    the leader lease. A writer connected to that node directly keeps committing."""
    import psycopg2
    run = f"frz{int(time.time())}"
    report = {"drill": "freeze", "watchdog": os.path.exists("/dev/watchdog"), "run": run}
    wait_healthy(s)
    old = s.leader()
    s.psql("CREATE TABLE IF NOT EXISTS ha_freeze (k text PRIMARY KEY, t timestamptz "
           "DEFAULT now())")
    acked, errors, stop = [], [], threading.Event()

    def direct_writer():
        conn = None
        for i in range(100000):
            if stop.is_set():
                break
            try:
                if conn is None:
                    conn = psycopg2.connect(s.node_url(old), connect_timeout=2,
                                            options="-c statement_timeout=0")
                    conn.autocommit = True
                with conn.cursor() as c:
                    c.execute("INSERT INTO ha_freeze (k) VALUES (%s)", (f"{run}-{i}",))
                acked.append((time.monotonic(), f"{run}-{i}"))
            except Exception as e:  # noqa: BLE001 - counted
                errors.append((time.monotonic(), type(e).__name__, str(e).strip()[:120]))
                try:
                    conn and conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.2)
            time.sleep(0.02)

    load = Load(s, run + "w", db_readers=1)
    th = threading.Thread(target=direct_writer)
    th.start()
    try:
        time.sleep(2)
        t_stop = time.monotonic()
        s.signal(old, signal.SIGSTOP)
        log(f"SIGSTOP to Patroni of {old}")
        new, t_new = wait_new_leader(s, old, timeout=60)
        report.update(frozen=old, new_leader=new, leader_after_s=round(t_new - t_stop, 3))
        hap = stk.wait_until("haproxy drops the frozen node", lambda: not s.haproxy_stats(
            "pg_primary").get(old, "").startswith("UP") and s.haproxy_stats("pg_primary"), 20)
        report["haproxy_write_backend"] = hap
        acks_before = [t for t, _ in acked if t < t_stop]
        last = max((t for t, _ in acked), default=None)
        report["direct_last_ack_after_stop_s"] = round(last - t_stop, 3) if last else None
        time.sleep(frozen_s if frozen_s is not None else 2)
        report["direct_acks_after_promotion"] = sum(1 for t, _ in acked if t >= t_new)
        plog = s.path("logs", f"{old}.log")
        plog_at = os.path.getsize(plog) if os.path.exists(plog) else 0
        t_cont = time.monotonic()
        s.signal(old, signal.SIGCONT)
        log(f"SIGCONT to Patroni of {old}")
        # What the resumed Patroni does: demote (it lost the key), or take the key back from
        # the node promoted meanwhile (Patroni 3.0.2's etcd3 DCS did, from a stale watch
        # cache; the v2 DCS's compare-and-swap refuses it). Recorded, not assumed.
        seen, deadline = [], time.monotonic() + 20
        while time.monotonic() < deadline:
            lead = s.leader()
            if not seen or seen[-1][1] != lead:
                seen.append((round(time.monotonic() - t_cont, 3), lead))
            time.sleep(0.1)
        report["leaders_after_resume"] = seen
        try:
            with open(plog, errors="replace") as f:
                f.seek(plog_at)
                said = f.read(1 << 20).splitlines()
        except OSError:
            said = []
        # Its log records about the lock and demotion (not tracebacks, not "Lock owner:").
        report["resumed_patroni_said"] = [
            ln[:160] for ln in said
            if ln[:2] == "20" and "Lock owner:" not in ln
            and any(w in ln.lower() for w in ("demot", "lock", "promot", "compare"))][:8]
        try:
            wait_healthy(s, timeout=30)
            report["old_node_rejoined_s"] = round(time.monotonic() - t_cont, 3)
        except RuntimeError as e:
            report["healthy_after_resume"] = str(e)
            report["cluster_after_resume"] = [
                (m.get("name"), m.get("role"), m.get("state"), m.get("timeline"))
                for m in s.cluster().get("members", [])]
        report["write_rto_s"] = load.next_ack_after(t_stop)
        # The writer through HAProxy: its longest wait between two acknowledged batches, from
        # the freeze to the old node's return (the outage the frozen leader causes).
        report["max_write_gap_s"] = load.max_ack_gap(t_stop, time.monotonic())
        report["direct_acks_before_stop"] = len(acks_before)
    finally:
        stop.set()
        th.join(60)
        s.signal(old, signal.SIGCONT)
        finish(s, load, run + "w", report)
    keys = {k for _, k in acked}
    have = set(stack_reader(s).psql(f"SELECT k FROM ha_freeze WHERE k LIKE '{run}-%'").split())
    report["direct_acked"] = len(keys)
    report["direct_acked_missing_on_new_leader"] = sorted(keys - have)[:10]
    report["direct_errors"] = sorted({f"{e[1]}: {e[2]}" for e in errors})[:5]
    return report


DRILLS = {"crash": crash_drill, "switchover": switchover_drill, "etcd": etcd_drill,
          "restore": restore_drill, "freeze": freeze_drill}


def up_stack(directory=None):
    """A fresh stack for the drills (synthetic data, small), in a temp dir by default."""
    d = directory or os.path.join(tempfile.mkdtemp(prefix="rates-ha-"), "ha")
    s = stk.Stack(d)
    bin_ = RATES_BIN
    try:
        s.up(bin_, os.path.join(os.path.dirname(bin_), "rates-gen"), None, 5000)
    except BaseException:
        left = s.down(purge=False)
        log(f"stack set-up failed; logs kept in {s.path('logs')}; left behind: {left}")
        raise
    seed(s)
    set_token(s)
    return s


def model_loads(s):
    """{ratesd: whole loads of its read model so far} from its log (docs/readmodel.md): each
    new connection of the follower (start, a failover) reloads from a snapshot."""
    out = {}
    for r in stk.RATESDS:
        try:
            with open(s.path("logs", f"{r}.log"), errors="replace") as f:
                out[r] = f.read().count("model: loaded version")
        except OSError:
            out[r] = 0
    return out


def ratesd_problems(s):
    """Sanitizer reports and 5xx other than 503 in the ratesd logs."""
    out = {}
    for r in stk.RATESDS:
        try:
            with open(s.path("logs", f"{r}.log"), errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        bad = [ln for ln in text.splitlines() if "runtime error" in ln or "Sanitizer" in ln]
        errs = []
        for ln in text.splitlines():
            try:
                j = json.loads(ln)
            except ValueError:
                continue
            if isinstance(j.get("status"), int) and j["status"] >= 500 and j["status"] != 503:
                errs.append(f"{j.get('method')} {j.get('path')} {j['status']}: {j.get('error')}")
        if bad or errs:
            out[r] = {"sanitizer": bad[:3], "5xx": errs[:3], "5xx_count": len(errs)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("drill", help="one of %s, several joined by commas, or all" %
                    ", ".join(DRILLS))
    ap.add_argument("--reuse", action="store_true", help="use the stack of make ha-up")
    ap.add_argument("--rounds", type=int, default=5, help="crash: rounds")
    args = ap.parse_args()
    s = stk.Stack() if args.reuse else up_stack()
    if args.reuse:
        if not s.st:
            raise SystemExit("drill: no stack (make ha-up)")
        seed(s)
        set_token(s)
    names = list(DRILLS) if args.drill == "all" else args.drill.split(",")
    bad = [n for n in names if n not in DRILLS]
    if bad:
        raise SystemExit(f"drill: unknown drill {bad}")
    ok = True
    try:
        for n in names:
            kw = {"rounds": args.rounds} if n == "crash" else {}
            rep = DRILLS[n](s, **kw)
            print(json.dumps(rep, indent=2, sort_keys=True), flush=True)
        probs = ratesd_problems(s)
        if probs:
            print(json.dumps({"ratesd_problems": probs}, indent=2))
            ok = False
    finally:
        if not args.reuse:
            left = s.down(purge=not os.environ.get("RATES_HA_KEEP"))
            if left:
                print(json.dumps({"left_behind": left}))
                ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
