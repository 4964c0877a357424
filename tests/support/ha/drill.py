"""tests/support/ha/drill.py: the load generators shared by the HA drills, and the lb drill.

  python3 -m tests.support.ha.drill lb   (make ha-lb-drill, from the repository root)

The lb drill: three ratesd behind HAProxy (deploy/haproxy/haproxy.cfg) on one PostgreSQL,
under load: kill -9 one replica, SIGTERM-drain another. One JSON report.

The readers, the batch writer (Idempotency-Key, the same key retried) and the ledger check are
used by the failure drills on the Patroni stack too (tests/support/ha/drills.py).

Every loop is bounded in count and time; only the processes started here are signalled.
The pytest drills (tests/integration/ha) call the same functions.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from tests import support
from tests.support import contract
from tests.support.ha.verdict import LeaderReader
from tests.support.paths import ROOT

TOKEN_NAME, TOKEN = "drill", "drill-secret-token"
ORIG, DEST = "HADRA", "HADRB"  # the drill's own ports: its prices never mix with the dump's
READ_PATH = f"/rates?date_from=2030-01-01&date_to=2030-01-10&orig_code={ORIG}&dest_code={DEST}"
MAX_REQUESTS_PER_THREAD = 20000


def log(msg):
    print(f"drill: {msg}", file=sys.stderr, flush=True)


class LbDatabase:
    """One PostgreSQL (support.PgCluster) for the lb drill: only ratesd replicas fail there.
    Its verdict is read like the other drills' (verdict.LeaderReader): one leader, itself."""

    def __init__(self):
        self.pg = support.PgCluster()
        support.create_rates_db(self.pg, "rates", load_dump=False)
        self.url = self.pg.url("rates")
        self.verdict = LeaderReader(lambda: "pg", lambda _, sql: self.pg.psql(sql))

    def psql(self, sql, check=True):
        return self.pg.psql(sql, check=check)

    def down(self):
        self.pg.destroy()


def seed_ports(cluster):
    cluster.psql("INSERT INTO regions (slug, name) VALUES ('ha_drill', 'HA drill') "
                 "ON CONFLICT DO NOTHING; "
                 f"INSERT INTO ports (code, name, parent_slug) VALUES ('{ORIG}', 'HA drill A', "
                 f"'ha_drill'), ('{DEST}', 'HA drill B', 'ha_drill') ON CONFLICT DO NOTHING")


class Events:
    """What the clients saw: (kind, start, end, ok, detail), monotonic seconds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, kind, t0, t1, ok, detail):
        with self.lock:
            self.items.append((kind, t0, t1, ok, detail))

    def of(self, kind):
        with self.lock:
            return [e for e in self.items if e[0] == kind]


def reader(port, kind, stop, events):
    for _ in range(MAX_REQUESTS_PER_THREAD):
        if stop.is_set():
            return
        t0 = time.monotonic()
        try:
            st, _, data = support.request("GET", READ_PATH, port=port, timeout=5)
            ok, detail = st == 200, st
            if not ok:  # who answered: ratesd's JSON error, or HAProxy's own page
                detail = f"{st} {data[:60].decode('utf-8', 'replace')}"
        except (OSError, http.client.HTTPException) as e:
            ok, detail = False, type(e).__name__
        except contract.ContractError as e:  # an answer the API document forbids
            ok, detail = False, f"contract: {e}"[:160]
        events.add(kind, t0, time.monotonic(), ok, detail)
        time.sleep(0.005 if ok else 0.02)


def batch_body(run, i):
    day = 1 + i % 28
    return "".join(f"{ORIG},{DEST},2030-02-{day:02d},{100000 + i * 10 + j}\n"
                   for j in range(3)).encode()


def post_batch(port, key, body, timeout=10):
    return support.request("POST", "/batches", body=body, port=port, timeout=timeout,
                           headers={"Authorization": f"Bearer {TOKEN}",
                                    "Content-Type": "text/csv", "Idempotency-Key": key})


def send_until_acked(port, key, body, events, deadline, rec):
    """Retries one batch with the same key until it is acknowledged (201, or 200 replayed),
    a permanent refusal, or the deadline: what a careful client does."""
    delay = 0.05
    while time.monotonic() < deadline:
        rec["attempts"] += 1
        t0 = time.monotonic()
        try:
            st, _, data = post_batch(port, key, body)
            detail = st
        except (OSError, http.client.HTTPException) as e:
            st, data, detail = None, b"", type(e).__name__
        except contract.ContractError as e:  # e.g. a 503 without Retry-After
            st, data, detail = None, b"", f"contract: {e}"[:160]
        ok = st in (200, 201)
        events.add("batch", t0, time.monotonic(), ok, detail)
        if ok:
            j = json.loads(data)
            rec.update(acked=True, replayed=bool(j.get("replayed")), batch_id=j.get("batch_id"))
            return
        if st is not None and 400 <= st < 500 and st not in (408, 409, 429):
            rec["refused"] = f"{st} {data[:200]!r}"
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def batcher(port, run, stop, events, out, grace_s=30):
    for i in range(MAX_REQUESTS_PER_THREAD):
        if stop.is_set():
            return
        rec = {"key": f"{run}-{i}", "rows": 3, "attempts": 0, "acked": False,
               "replayed": False}
        out.append(rec)
        # A batch started before the stop is finished even after it: its outcome must be known.
        send_until_acked(port, rec["key"], batch_body(run, i), events,
                         time.monotonic() + grace_s, rec)
        time.sleep(0.02)


def recovery(events, t_fault):
    """(seconds from the fault until requests succeed again, failed requests). Recovery ends
    with the first success that started after the last failure."""
    after = [e for e in events if e[2] >= t_fault]
    fails = [e for e in after if not e[3]]
    if not fails:
        return 0.0, 0, {}
    last = max(e[1] for e in fails)
    ok_after = [e[2] for e in after if e[3] and e[1] >= last]
    kinds = {}
    for e in fails:
        kinds[str(e[4])] = kinds.get(str(e[4]), 0) + 1
    return (round(min(ok_after) - t_fault, 3) if ok_after else None), len(fails), kinds


def ledger_check(cluster, run, recs):
    """Compares what the client knows with the ledger and the prices. cluster.psql(sql) must
    read from a stable leader (verdict.LeaderReader), never once through HAProxy."""
    rows = cluster.psql(
        "SELECT b.idempotency_key, b.id, b.rows, "
        "(SELECT count(*) FROM prices p WHERE p.batch_id = b.id) "
        f"FROM batches b WHERE b.idempotency_key LIKE '{run}-%' AND b.status = 'committed'")
    ledger = {}
    for line in rows.splitlines():
        key, bid, nrows, nprices = line.split("|")
        ledger.setdefault(key, []).append((int(bid), int(nrows), int(nprices)))
    dup_prices = int(cluster.psql(
        f"SELECT count(*) FROM (SELECT p.price FROM prices p JOIN batches b ON b.id = "
        f"p.batch_id WHERE p.orig_code = '{ORIG}' AND p.dest_code = '{DEST}' AND "
        f"b.idempotency_key LIKE '{run}-%' GROUP BY p.price HAVING count(*) > 1) d"))
    acked = [r for r in recs if r["acked"]]
    lost = [r["key"] for r in acked
            if r["key"] not in ledger or ledger[r["key"]][0][2] != r["rows"]]
    duplicated = [k for k, v in ledger.items() if len(v) > 1]
    return {
        "batches_sent": len(recs),
        "batches_acknowledged": len(acked),
        "batches_unacknowledged": [r["key"] for r in recs if not r["acked"]],
        "batches_refused": [r.get("refused") for r in recs if r.get("refused")],
        "batches_retried": sum(1 for r in recs if r["attempts"] > 1),
        "acks_that_were_replays": sum(1 for r in acked if r["replayed"]),
        "batches_lost": len(lost),
        "batches_duplicated": len(duplicated) + dup_prices,
        "committed_but_unacknowledged": len([k for k in ledger
                                             if k not in {r["key"] for r in acked}]),
        "lost_keys": lost[:10],
        "duplicated_keys": duplicated[:10],
    }


def batches_available(port):
    """POST /batches exists (the drill measures batches too; a 404 is a failure)."""
    try:
        st, _, _ = support.request("POST", "/batches", body=b"", port=port, timeout=5,
                                   headers={"Content-Type": "text/csv"})
    except OSError:
        return False
    if st == 404:
        raise SystemExit("drill: POST /batches answers 404")
    return True


def start_ratesd(url, read_url=None, extra=None):
    env = {"RATES_INGEST_TOKENS": f"{TOKEN_NAME}:{TOKEN}", "RATES_CONNECT_TIMEOUT_S": "2"}
    if read_url:
        env["RATES_DATABASE_READ_URL"] = read_url
    env.update(extra or {})
    s = support.Server(url, env=env)
    s.wait_ready()
    return s


def stop_ratesd(s, name, report):
    code = s.stop(timeout=30)
    bad = s.sanitizer_reports()
    report.setdefault("ratesd_exit", {})[name] = code
    if bad:
        report.setdefault("sanitizer_reports", {})[name] = bad
    if bad:
        report.setdefault("logs_kept", {})[name] = s.log
    # Server-side errors (5xx other than 503) with the reason the log gives: a failover
    # should produce 503s (retry later), never 500s.
    errs = [f"{ln.get('method')} {ln.get('path')} {ln.get('status')}: {ln.get('error')}"
            for ln in s.log_lines() if isinstance(ln.get("status"), int) and
            ln["status"] >= 500 and ln["status"] != 503]
    if errs:
        report.setdefault("server_5xx", {})[name] = {"count": len(errs), "first": errs[:3]}
    if not bad:
        shutil.rmtree(s.logdir, ignore_errors=True)


# ---- several replicas behind HAProxy ----

def haproxy_stats(stats_port, field="status"):
    """{server name: field} from HAProxy's CSV stats (status, stot: sessions served)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=2) as r:
        lines = r.read().decode().splitlines()
    cols = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        f = dict(zip(cols, line.split(",")))
        if f.get("pxname") == "ratesd" and f.get("svname") not in ("FRONTEND", "BACKEND"):
            out[f["svname"]] = f[field]
    return out


def wait_statuses(stats_port, want, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = haproxy_stats(stats_port)
            if all(st.get(k, "").startswith(v) for k, v in want.items()):
                return st
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"haproxy servers not {want}: {haproxy_stats(stats_port)}")


def lb_drill(workdir=None, before_s=3.0, between_s=4.0, after_s=4.0, readers=3,
             drain_delay_s=2):
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="rates-lb-")
    run = f"lb{int(time.time())}"
    report = {"drill": "lb", "run": run, "replicas": 3, "drain_delay_s": drain_delay_s,
              "haproxy_check_interval_ms": 500}
    cluster = LbDatabase()
    servers, haproxy = [], None
    try:
        seed_ports(cluster)
        extra = {"RATES_DRAIN_DELAY_S": str(drain_delay_s), "RATES_SHUTDOWN_TIMEOUT_S": "20"}
        for i in range(3):
            servers.append((f"r{i + 1}", start_ratesd(cluster.url, extra=extra)))
        lb_port, stats_port = support.free_port(), support.free_port()
        env = dict(os.environ, RATES_LB_BIND=f"127.0.0.1:{lb_port}",
                   RATES_LB_STATS=f"127.0.0.1:{stats_port}")
        for i, (_, s) in enumerate(servers):
            env[f"RATES_BACKEND_{i + 1}"] = f"127.0.0.1:{s.port}"
        hlog = open(os.path.join(workdir, "haproxy.log"), "wb")
        haproxy = subprocess.Popen(["haproxy", "-db", "-f", os.path.join(
            ROOT, "deploy", "haproxy", "haproxy.cfg")], env=env, stdout=hlog,
            stderr=subprocess.STDOUT)
        wait_statuses(stats_port, {"r1": "UP", "r2": "UP", "r3": "UP"})
        with_batches = batches_available(lb_port)
        report["batches_endpoint"] = with_batches
        events, recs, stop = Events(), [], threading.Event()
        threads = [threading.Thread(target=reader, args=(lb_port, "read", stop, events))
                   for _ in range(readers)]
        if with_batches:
            threads.append(threading.Thread(target=batcher, args=(lb_port, run, stop, events,
                                                                  recs)))
        for t in threads:
            t.start()
        time.sleep(before_s)
        victim = servers[1][1]
        t_kill = time.monotonic()
        victim.proc.kill()  # SIGKILL of the ratesd this drill started
        victim.proc.wait(10)
        log("killed r2 (SIGKILL)")
        wait_statuses(stats_port, {"r2": "DOWN"})
        report["kill_detected_by_haproxy_s"] = round(time.monotonic() - t_kill, 3)
        time.sleep(between_s)
        drained = servers[2][1]
        t_term = time.monotonic()
        drained.proc.send_signal(signal.SIGTERM)
        log("SIGTERM to r3 (drain)")
        wait_statuses(stats_port, {"r3": "DOWN"})
        report["drain_detected_by_haproxy_s"] = round(time.monotonic() - t_term, 3)
        drained.proc.wait(60)
        report["drain_exit_s"] = round(time.monotonic() - t_term, 3)
        report["drain_exit_code"] = drained.proc.returncode
        time.sleep(after_s)
        stop.set()
        for t in threads:
            t.join(60)
        for kind, label in (("read", "reads"), ("batch", "batches")):
            ev = events.of(kind)
            if not ev:
                continue
            before = [e for e in ev if e[1] < t_kill]
            kill = [e for e in ev if t_kill <= e[1] < t_term or (e[1] < t_kill <= e[2])]
            drain = [e for e in ev if e[1] >= t_term or (t_kill <= e[1] < t_term <= e[2])]
            report[label] = {
                "requests": len(ev),
                "failed_before": sum(1 for e in before if not e[3] and e[2] < t_kill),
                "failed_kill_window": sum(1 for e in kill if not e[3]),
                "failed_drain_window": sum(1 for e in drain if not e[3]),
                "failure_kinds": sorted({str(e[4]) for e in ev if not e[3]}),
            }
        report["haproxy_status_after"] = haproxy_stats(stats_port)
        report["haproxy_sessions_per_replica"] = haproxy_stats(stats_port, "stot")
        if with_batches:
            report.update(ledger_check(cluster.verdict, run, recs))
    finally:
        if haproxy:
            haproxy.terminate()
            try:
                haproxy.wait(10)
            except subprocess.TimeoutExpired:
                haproxy.kill()
        for name, s in servers:
            stop_ratesd(s, name, report)
        cluster.down()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("drill", choices=("lb",))
    ap.parse_args()
    print(json.dumps(lb_drill(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
