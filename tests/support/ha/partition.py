"""tests/support/ha/partition.py: the network-partition drill (make ha-partition-drill).

  python3 -m tests.support.ha.partition [--keep-logs]

A small stack of its own: 3 etcd members and 3 PostgreSQL nodes under Patroni (the same
deploy/patroni/patroni.yml.tpl and timings as tests/support/ha/stack.py), each node (its etcd
member, its Patroni, its PostgreSQL) in its own network namespace on a private bridge
(tests/support/ha/netns.py), the clients in an app namespace with HAProxy (deploy/haproxy/ha.cfg)
and 2 ratesd on its own loopback, synthetic data (rates-gen, 2000 prices).

The drill: under a writer on the leader's own address FROM INSIDE the leader's namespace
(the clients on the leader's side of the cut) and a writer in the app namespace that commits
wherever a read-write node is found among the others, plus the HTTP load of the other drills
(readers of GET /rates and a batch writer retrying its Idempotency-Key, through HAProxy and
ratesd), the leader's link is taken down; two rounds, the etcd raft leader first on the
isolated node, then on the majority side. Recorded (seconds from the cut): when the isolated node stops answering as primary and
refuses writes (demotes), when another node is promoted, the isolated node's last
acknowledged commit and the new leader's first one (their difference is the split-brain
window: positive means both accepted writes at once), the commits in flight at the cut (never
acknowledged; on the new leader or rewound away), the HTTP write RTO, and after healing, when the old node is back
as a replica. Finally every commit acknowledged by the isolated node, and every batch
acknowledged by ratesd, is looked up on the new leader. One JSON report; everything is torn down, namespaces included, also on failure.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time

from tests.support.ha import drills  # the HTTP load through HAProxy and ratesd, the ledger check
from tests.support.ha import netns
from tests.support.ha import stack as stk
from tests.support.ha.verdict import stack_reader
from tests.support.paths import RATES_BIN

PG_PORT, REST_PORT, ETCD_CLIENT, ETCD_PEER = 5432, 8008, 2379, 2380
# HAProxy and ratesd listen on the app namespace's own loopback.
APP_PORTS = {"write": 5000, "read": 5001, "http": 3000, "stats": 8404, "r1": 3001, "r2": 3002}
NODE_OF = {"e1": "n1", "e2": "n2", "e3": "n3"}  # each etcd member lives on its node
REJOIN_BOUND_S = 120  # heal -> the old leader streams from the new one (see partition_drill)


def log(msg):
    print(f"partition: {msg}", file=sys.stderr, flush=True)


class NetnsStack(stk.Stack):
    """stack.Stack with each node in its own namespace, on the node's private address. Only
    the methods that name a host or start a process differ; call everything from a thread
    inside the app namespace (run_drill does)."""

    def __init__(self, directory, net):
        super().__init__(directory)
        self.net = net

    HBA_NET = netns.SUBNET

    def host(self, n):
        return self.net.addr(NODE_OF.get(n, n))

    def node_url(self, n, db="rates"):
        return (f"postgresql://postgres:{self.st['secrets']['pg']}@{self.host(n)}:{PG_PORT}/{db}"
                "?connect_timeout=2")

    def others_url(self, exclude, db="rates"):
        """Any read-write node but `exclude` (libpq tries them in turn)."""
        hosts = ",".join(f"{self.host(n)}:{PG_PORT}" for n in stk.NODES if n != exclude)
        return (f"postgresql://postgres:{self.st['secrets']['pg']}@{hosts}/{db}"
                "?target_session_attrs=read-write&connect_timeout=2")

    def spawn(self, name, argv, user=None, env=None):
        where = NODE_OF.get(name, name if name in stk.NODES else "app")
        with self.net.enter(where):  # the child is forked in there
            return super().spawn(name, argv, user=user, env=env)

    def up(self, ratesd_bin, gen_bin, prices=2000):
        if os.path.exists(self.state_path):
            raise RuntimeError(f"a stack exists in {self.dir}")
        for tool in ("etcd", "etcdctl", "patroni", "pgbackrest", "haproxy"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is not installed (make ha-deps)")
        t0 = time.monotonic()
        os.makedirs(self.dir, exist_ok=True)
        d = self.dir
        while d != "/":  # postgres and etcd must reach the directory
            if os.stat(d).st_mode & 0o005 != 0o005:
                os.chmod(d, os.stat(d).st_mode | 0o005)
            d = os.path.dirname(d)
        tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
        ports = {}
        for e in stk.ETCDS:
            ports.update({e + "_client": ETCD_CLIENT, e + "_peer": ETCD_PEER})
        for n in stk.NODES:
            ports.update({n + "_pg": PG_PORT, n + "_rest": REST_PORT})
        ports.update(APP_PORTS)
        self.st = {
            "ports": ports, "netns": self.net.id,
            "secrets": {k: secrets.token_hex(12) for k in
                        ("pg", "repl", "rest", "etcd", "etcd_root", "token")},
            "etcd_token": "rates-" + secrets.token_hex(4),
            "tmpfs": os.path.join(tmpfs, "rates-ha-" + secrets.token_hex(4)),
            "pids": {}, "timings": stk.TIMINGS, "ratesd_bin": os.path.abspath(ratesd_bin)}
        os.makedirs(self.st["tmpfs"], mode=0o755)
        self.save()
        for e in stk.ETCDS:
            self.start_etcd(e)
        stk.wait_until("etcd healthy", lambda: all(self.etcd_healthy(e) for e in stk.ETCDS), 30)
        self.etcd_auth_setup()
        self.write_backrest_conf()
        for n in stk.NODES:
            os.makedirs(self.node_dir(n), mode=0o700, exist_ok=True)
            self.chown_pg(self.node_dir(n))
            self.write_patroni_conf(n)
        self.start_patroni("n1")
        stk.wait_until("n1 leader", lambda: self.role("n1") == "primary", 90)
        self.load_data(gen_bin, None, prices)
        self.backrest("stanza-create", node="n1")
        for n in stk.NODES[1:]:
            self.start_patroni(n)
        stk.wait_until("replicas streaming, one synchronous", self.healthy, 120, 0.25)
        self.start_haproxy()
        lead = self.leader()
        stk.wait_until("haproxy endpoints", lambda: (
            self.haproxy_stats("pg_primary").get(lead, "").startswith("UP") and
            self.haproxy_stats("pg_replicas").get(lead, "UP").startswith("DOWN")), 20)
        for r in stk.RATESDS:
            self.start_ratesd(r)

        def ratesd_ready():
            for r in stk.RATESDS:
                if not self.alive(r):
                    raise RuntimeError(f"ratesd {r} exited (logs/{r}.log)")
            return all(stk.http_get(f"http://127.0.0.1:{self.ports[r]}/readyz?scope=read")[0]
                       == 200 for r in stk.RATESDS)
        stk.wait_until("ratesd ready", ratesd_ready, 40, 0.2)
        stk.wait_until("ratesd in rotation", lambda: len(self.haproxy_stats("ratesd")) == len(
            stk.RATESDS) and all(v.startswith("UP") for v in self.haproxy_stats(
                "ratesd").values()), 40, 0.2)
        self.st["up_s"] = round(time.monotonic() - t0, 1)
        self.save()
        return self.st["up_s"]

    def down(self, purge=True):
        """Heals every link, stops everything (stack.Stack.down), then checks that nothing
        listens on the nodes' addresses and no process is left in the namespaces."""
        for n in stk.NODES:
            self.net.heal(n)
        left = super().down(purge=False)
        for n in stk.NODES:
            for port in (PG_PORT, REST_PORT, ETCD_CLIENT, ETCD_PEER):
                if stk.port_open(port, self.host(n)):
                    left.append(f"port {self.host(n)}:{port} still listening")
        if purge and not left:
            shutil.rmtree(self.dir, ignore_errors=True)
            parent = os.path.dirname(self.dir)
            if os.path.basename(parent).startswith("rates-part-"):
                shutil.rmtree(parent, ignore_errors=True)
        return left


class Writer(threading.Thread):
    """INSERTs, one autocommit transaction each, on `url`, from the namespace the thread was
    started in; acked = (t_sent, t_acked, key, server address), errors = (t, error, key,
    t_sent, whether the INSERT was sent). No statement_timeout: a
    cancelled wait for the synchronous standby would report a COMMIT the standby lacks."""

    def __init__(self, name, url, stop, max_s=300):
        super().__init__(daemon=True)
        self.tag, self.url, self.stop_ev, self.max_s = name, url, stop, max_s
        self.acked, self.errors = [], []

    def run(self):
        import psycopg2  # Debian's python3-psycopg2, for /usr/bin/python3
        conn, deadline = None, time.monotonic() + self.max_s
        for i in range(1000000):
            if self.stop_ev.is_set() or time.monotonic() > deadline:
                break
            key = f"{self.tag}-{i}"
            t0, sent = time.monotonic(), False
            try:
                if conn is None:
                    conn = psycopg2.connect(self.url, options="-c statement_timeout=0")
                    conn.autocommit = True
                sent = True  # from here on the server may commit it
                with conn.cursor() as c:
                    c.execute("INSERT INTO ha_partition (k) VALUES (%s) "
                              "RETURNING host(inet_server_addr())", (key,))
                    server = c.fetchone()[0]
                self.acked.append((t0, time.monotonic(), key, server))
                time.sleep(0.02)
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                self.errors.append((time.monotonic(), f"{type(e).__name__}: "
                                    f"{str(e).strip().splitlines()[0][:100] if str(e) else ''}",
                                    key, t0, sent))
                try:
                    conn and conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.1)
        if conn:
            conn.close()


class Observer(threading.Thread):
    """From inside the node's namespace, every 0.1 s: Patroni's GET /primary (what a
    balancer checks) and whether PostgreSQL accepts writes (pg_is_in_recovery on a fresh
    connection). samples = (t, '/primary <status>' or 'no answer',
    'primary' | 'read-only' | 'down')."""

    def __init__(self, s, node, stop, max_s=300):
        super().__init__(daemon=True)
        self.s, self.node, self.stop_ev, self.max_s = s, node, stop, max_s
        self.samples = []

    def run(self):
        import psycopg2
        deadline = time.monotonic() + self.max_s
        for _ in range(100000):
            if self.stop_ev.is_set() or time.monotonic() > deadline:
                break
            t = time.monotonic()
            st, _ = stk.http_get(self.s.rest_url(self.node) + "/primary", timeout=0.5)
            role = f"/primary {st}" if st else "no answer"
            try:
                conn = psycopg2.connect(self.s.node_url(self.node))
                try:
                    with conn.cursor() as c:
                        c.execute("SELECT pg_is_in_recovery()")
                        pg = "read-only" if c.fetchone()[0] else "primary"
                finally:
                    conn.close()
            except Exception:  # noqa: BLE001 - down or refusing connections
                pg = "down"
            self.samples.append((t, role, pg))
            time.sleep(0.1)

    def changes(self, t_ref):
        """The samples where something changed, times from t_ref."""
        out, last = [], None
        for t, role, pg in self.samples:
            if (role, pg) != last:
                out.append((round(t - t_ref, 3), role, pg))
                last = (role, pg)
        return out

    def first_after(self, t_ref, pred):
        for t, role, pg in self.samples:
            if t >= t_ref and pred(role, pg):
                return round(t - t_ref, 3)
        return None


def rejoined(s, old, new):
    """The new leader's view (not the old node's cache): old streams as a replica on the
    leader's timeline."""
    st, body = s.patroni(new, "cluster")
    if st != 200 or not isinstance(body, dict):
        return False
    ms = {m.get("name"): m for m in body.get("members", [])}
    lead, o = ms.get(new, {}), ms.get(old, {})
    return (lead.get("role") in ("leader", "master", "primary") and
            o.get("role") in ("replica", "sync_standby") and
            o.get("state") in ("running", "streaming") and
            o.get("timeline") == lead.get("timeline") and s.healthy())


NODE_OF_INV = {v: k for k, v in NODE_OF.items()}


def etcd_move_leader(s, e, timeout=15):
    """Makes member e the etcd raft leader (etcdctl move-leader, sent to the current one)."""
    for _ in range(5):
        if etcd_raft_leader(s) == e:
            return
        status = json.loads(s.etcdctl("endpoint", "status", "-w", "json"))
        ids = {st["Endpoint"]: st["Status"]["header"]["member_id"] for st in status}
        lead_id = status[0]["Status"]["leader"]
        lead_ep = [ep for ep, i in ids.items() if i == lead_id]
        target = [i for ep, i in ids.items() if ep.startswith(f"http://{s.host(e)}:")]
        if lead_ep and target:
            s.etcdctl("move-leader", format(target[0], "x"), endpoints=lead_ep[0])
        stk.wait_until(f"etcd leader {e}", lambda: etcd_raft_leader(s) == e, timeout, 0.2)
    raise RuntimeError(f"etcd raft leader is not {e}")


def etcd_raft_leader(s):
    """Name of the etcd member that leads raft (None when unknown)."""
    try:
        status = json.loads(s.etcdctl("endpoint", "status", "-w", "json"))
    except (RuntimeError, ValueError):
        return None
    ids = {st["Status"]["header"]["member_id"]: e for e, st in zip(stk.ETCDS, status)}
    return ids.get(status[0]["Status"]["leader"]) if status else None


def patroni_lines(s, n, since_wall, pattern=r"demot|lock|leader|DCS|offline|promot"):
    """Patroni's own log lines about leadership since the cut (a few, for the report)."""
    try:
        with open(s.path("logs", f"{n}.log"), errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since_wall - 1))
    out = [ln[:160] for ln in lines if ln[:1].isdigit() and ln[:19] >= stamp and
           re.search(pattern, ln, re.I)]
    return out[:8]


def partition_round(s, net, rnd, etcd_side, isolated_s=None):
    """One cut of the leader's link, healed again. etcd_side: where the etcd raft leader is
    moved before the cut: 'isolated' (the leader's own member) or 'majority'."""
    report = {"etcd_raft_leader_side": etcd_side}
    stk.wait_until("healthy", s.healthy, 60, 0.2)
    old = s.leader()
    want = NODE_OF_INV[old] if etcd_side == "isolated" else \
        [e for e in stk.ETCDS if NODE_OF[e] != old][0]
    etcd_move_leader(s, want)
    raft_leader = etcd_raft_leader(s)
    stop = threading.Event()
    with net.enter(old):  # the threads started here live in the leader's namespace
        direct = [Writer(f"r{rnd}direct{i}", s.node_url(old), stop) for i in range(2)]
        obs_old = Observer(s, old, stop)
        for t in direct + [obs_old]:
            t.start()
    others = Writer(f"r{rnd}others", s.others_url(old), stop)
    others.start()
    run = f"part{rnd}x{int(time.time())}"
    load = drills.Load(s, run)  # HTTP readers and a batch writer through HAProxy and ratesd
    try:
        time.sleep(2)
        t_cut, wall_cut = time.monotonic(), time.time()
        net.partition(old)
        log(f"isolated {old}")
        new, t_new = drills.wait_new_leader(s, old)
        log(f"{new} is the leader")
        # The isolated node: wait (bounded) until it refuses writes, then a little more.
        stk.wait_until(f"{old} refuses writes", lambda: obs_old.first_after(
            t_cut, lambda role, pg: pg != "primary") is not None, 30, 0.1)
        time.sleep(isolated_s if isolated_s is not None else 2)
        t_heal = time.monotonic()
        net.heal(old)
        log(f"healed {old}")
        try:
            # 120 s: the rejoin is the old leader's shutdown (its walsenders wait out the cut
            # links), a restart as a standby, Patroni noticing the fork, pg_rewind of what
            # changed since the divergence, a second start. Measured 20-40 s with the change
            # log of migration 0016 (whose fold rewrites rates_daily after every batch: more
            # blocks to rewind) and past 60 s in 2 of 5 runs on the loaded 2-core CI machine
            # before etcd ran with pre-vote; 21.8-25.6 s in 4 runs since.
            stk.wait_until(f"{old} back as a replica of {new}", lambda: rejoined(s, old, new),
                           REJOIN_BOUND_S, 0.25)
            report["old_rejoined_after_heal_s"] = round(time.monotonic() - t_heal, 3)
        except RuntimeError as e:
            report["old_rejoined_after_heal_s"] = None
            report["rejoin_problem"] = str(e)
        time.sleep(1)
    finally:
        stop.set()
        for t in direct + [obs_old, others]:
            t.join(30)
        drills.finish(s, load, run, report)
    report["http_write_rto_s"] = load.next_ack_after(t_cut)
    # The verdict: read from the leader once it is stable (normally `new`), like a client.
    on_new = set(stack_reader(s).psql("SELECT k FROM ha_partition").split())
    d_acked = [a for w in direct for a in w.acked]
    d_after = [a for a in d_acked if a[1] >= t_cut]
    refuses = obs_old.first_after(t_cut, lambda role, pg: pg != "primary")
    t_refused = t_cut + refuses if refuses is not None else float("inf")
    in_flight = {e[2] for w in direct for e in w.errors
                 if e[4] and e[3] < t_refused and e[0] >= t_cut}
    new_acks = [a for a in others.acked if a[1] >= t_cut and a[3] == s.host(new)]
    last_direct = max((a[1] for a in d_acked), default=None)
    first_new = min((a[1] for a in new_acks), default=None)
    rel = lambda t: round(t - t_cut, 3) if t is not None else None  # noqa: E731
    report.update({
        "isolated": old, "new_leader": new,
        "new_leader_promoted_s": rel(t_new),
        "isolated_patroni_not_primary_s": obs_old.first_after(
            t_cut, lambda role, pg: role != "/primary 200"),
        "isolated_refuses_writes_s": refuses,
        "isolated_states": obs_old.changes(t_cut)[:12],
        "healed_at_s": rel(t_heal), "etcd_raft_leader_at_cut": raft_leader,
        "isolated_stopped_writes_before_promotion": refuses is not None and
        refuses < rel(t_new),
        "direct_acked": len(d_acked), "direct_acked_after_cut": len(d_after),
        "direct_last_ack_s": rel(last_direct),
        "new_leader_first_ack_s": rel(first_new),
        # > 0: both nodes acknowledged writes in that window (split brain); < 0: the gap.
        "split_brain_window_s": round(last_direct - first_new, 3)
        if last_direct is not None and first_new is not None else None,
        "direct_acked_missing_on_new_leader": sorted({a[2] for a in d_acked} - on_new)[:10],
        # Commits in flight at the cut: never acknowledged (the session was cut at the
        # demotion); on the new leader only if their WAL had reached it (else rewound away).
        "direct_in_flight_at_cut": len(in_flight),
        "direct_in_flight_on_new_leader": len(in_flight & on_new),
        "others_acked": len(others.acked),
        "direct_errors": sorted({e[1] for w in direct for e in w.errors})[:5],
        "isolated_patroni_log": patroni_lines(s, old, wall_cut),
    })
    return report


def partition_drill(s, net, sides=("isolated", "majority")):
    """Runs on a healthy NetnsStack from a thread inside the app namespace: one round per
    position of the etcd raft leader."""
    report = {"drill": "partition", "timings": s.st["timings"], "rounds": [],
              "partition": "the leader's eth0 down in its namespace (its etcd member, Patroni "
                           "and PostgreSQL cut from the other nodes and the app namespace)"}
    stk.wait_until("healthy", s.healthy, 60, 0.2)
    drills.seed(s)
    drills.set_token(s)
    s.psql("CREATE TABLE IF NOT EXISTS ha_partition (k text PRIMARY KEY, "
           "t timestamptz DEFAULT clock_timestamp())")
    for i, side in enumerate(sides):
        report["rounds"].append(partition_round(s, net, i + 1, side))
    rs = report["rounds"]
    report["ok"] = all(
        r["isolated_stopped_writes_before_promotion"] and r["split_brain_window_s"] is not None
        and r["split_brain_window_s"] < 0 and not r["direct_acked_missing_on_new_leader"] and
        r["old_rejoined_after_heal_s"] is not None and r["batches_lost"] == 0 and
        r["batches_duplicated"] == 0 for r in rs)
    report["ratesd_problems"] = drills.ratesd_problems(s)
    return report


def run(keep_logs=False):
    """Builds the namespaces and the stack, runs the drill, tears everything down."""
    why = netns.available()
    if why:
        raise RuntimeError(why)
    net = netns.Net()
    work = tempfile.mkdtemp(prefix="rates-part-")
    os.chmod(work, 0o755)
    s = None
    report, left = None, []
    try:
        net.create()
        with net.enter("app"):
            s = NetnsStack(os.path.join(work, "ha"), net)
            try:
                bin_ = RATES_BIN
                up_s = s.up(bin_, os.path.join(os.path.dirname(bin_), "rates-gen"))
                report = partition_drill(s, net)
                report["stack_up_s"] = up_s
            finally:
                left = s.down(purge=not keep_logs and report is not None)
    finally:
        stray = net.destroy()
        if stray:
            left.append(f"processes left in the namespaces: {stray}")
        if keep_logs or left or report is None:  # failed: the logs are what is left to read
            log(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if report is not None:
        report["left_behind"] = left
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C: run()'s teardown (processes, then namespaces) still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    rep = run(args.keep_logs)
    rep["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(rep, indent=2, sort_keys=True), flush=True)
    ok = rep["ok"] and not rep["left_behind"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
