"""tests/support/ha/stack.py: the HA stack on loopback: 3 etcd, 3 PostgreSQL under Patroni,
pgBackRest, HAProxy and 2 ratesd (make ha-up / ha-status / ha-down; the drills reuse it).

  python3 -m tests.support.ha.stack up|status|down   (from the repository root)

  up       starts everything in the background and returns once it is ready;
           writes $RATES_HA_DIR/ha.env (default var/ha)
  status   members, roles, timeline and lag (like patronictl list), and the endpoints
  down     stops everything it started, checks no process and no port is left, and
           removes the directory

Every process runs as its own user (PostgreSQL and Patroni as postgres, etcd as etcd, HAProxy
as haproxy). Only PIDs recorded in state.json are ever signalled, after checking what they run.
Every wait is bounded.
"""
import argparse
import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.support.cluster import pg_bindir
from tests.support.paths import ROOT
from tests.support.ports import free_ports, port_open  # noqa: F401  (stack.port_open)
from tests.support.waiting import wait_until  # noqa: F401  (the drills call stk.wait_until)

NODES = ("n1", "n2", "n3")
ETCDS = ("e1", "e2", "e3")
RATESDS = ("r1", "r2")
TIMINGS = {"ttl": 5, "loop_wait": 1, "retry_timeout": 2}
DRILL_TOKEN_NAME = "ha"


def log(msg):
    print(f"ha: {msg}", file=sys.stderr, flush=True)


def http_get(url, timeout=1.0, auth=None, method="GET", body=None):
    """(status, parsed JSON or text); status 0 when the server does not answer."""
    req = urllib.request.Request(url, method=method, data=body)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            st, data = r.status, r.read()
    except urllib.error.HTTPError as e:
        st, data = e.code, e.read()
    except (OSError, ValueError):
        return 0, None
    try:
        return st, json.loads(data)
    except ValueError:
        return st, data.decode(errors="replace")


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def pid_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Stack:
    """One HA stack in a directory. State (ports, secrets, pids) in state.json."""

    def __init__(self, directory=None):
        self.dir = os.path.abspath(directory or os.environ.get("RATES_HA_DIR") or
                                   os.path.join(ROOT, "var", "ha"))
        self.state_path = os.path.join(self.dir, "state.json")
        self.st = {}
        self.procs = {}  # name -> Popen, for the processes this Python process started
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.st = json.load(f)

    # ---- state ----
    def save(self):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.st, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state_path)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def node_dir(self, n):
        return self.path(n)

    def data_dir(self, n):
        return self.path(n, "data")

    @property
    def ports(self):
        return self.st["ports"]

    # Where a member (node n1.., etcd e1..) listens: loopback here; tests/support/ha/partition.py
    # puts each node in its own network namespace by overriding these two.
    HBA_NET = "127.0.0.1/32"

    def host(self, name):
        return "127.0.0.1"

    def rest_url(self, n):
        return f"http://{self.host(n)}:{self.ports[n + '_rest']}"

    def pg_url(self, port, db="rates", user="postgres"):
        return f"postgresql://{user}:{self.st['secrets']['pg']}@127.0.0.1:{port}/{db}"

    def node_url(self, n, db="rates"):
        return self.pg_url(self.ports[n + "_pg"], db)

    @property
    def write_url(self):
        return self.pg_url(self.ports["write"])

    @property
    def read_url(self):
        return self.pg_url(self.ports["read"])

    @property
    def http_port(self):
        return self.ports["http"]

    @property
    def rest_auth(self):
        return "patroni:" + self.st["secrets"]["rest"]

    # ---- processes ----
    def spawn(self, name, argv, user=None, env=None):
        """Starts argv in its own session as user, output to logs/<name>.log; records its pid."""
        os.makedirs(self.path("logs"), exist_ok=True)
        logf = open(self.path("logs", f"{name}.log"), "ab")
        kw = {}
        if user and os.geteuid() == 0:
            pw = pwd.getpwnam(user)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            env = dict(env or os.environ, HOME=pw.pw_dir, USER=user, LOGNAME=user)
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=env, cwd="/", **kw)
        logf.close()
        self.procs[name] = p
        self.st.setdefault("pids", {})[name] = p.pid
        self.save()
        return p

    def alive(self, name):
        pid = self.st.get("pids", {}).get(name)
        if not pid:
            return False
        p = self.procs.get(name)
        if p is not None and p.poll() is not None:
            return False
        return pid_alive(pid)

    def signal(self, name, sig):
        """Signals a recorded process, only if it still runs what we started."""
        pid = self.st.get("pids", {}).get(name)
        want = {"e": "etcd", "n": "patroni", "r": "ratesd", "h": "haproxy"}[name[0]]
        if pid and pid_alive(pid) and want in pid_cmdline(pid):
            os.kill(pid, sig)
            return True
        return False

    def reap(self, name, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive(name):
            time.sleep(0.05)
        p = self.procs.get(name)
        if p is not None and p.poll() is None and not pid_alive(p.pid):
            p.wait(1)
        return not self.alive(name)

    def postmaster_pid(self, n):
        try:
            with open(os.path.join(self.data_dir(n), "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) and "postgres" in pid_cmdline(pid) else None

    def as_postgres(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, capture_output=True, text=True, **kw)

    # ---- etcd ----
    @property
    def etcd_endpoints(self):
        return ",".join(f"http://{self.host(e)}:{self.ports[e + '_client']}" for e in ETCDS)

    def etcdctl(self, *args, endpoints=None, auth=True):
        argv = ["etcdctl", f"--endpoints={endpoints or self.etcd_endpoints}",
                "--dial-timeout=2s", "--command-timeout=5s"]
        if auth and self.st.get("etcd_auth"):
            argv.append(f"--user=root:{self.st['secrets']['etcd_root']}")
        r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if r.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def start_etcd(self, e, state="new"):
        cluster = ",".join(f"{x}=http://{self.host(x)}:{self.ports[x + '_peer']}" for x in ETCDS)
        data = os.path.join(self.st["tmpfs"], e)
        os.makedirs(data, mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("etcd")
            os.chown(data, pw.pw_uid, pw.pw_gid)
        h, c, p = self.host(e), self.ports[e + "_client"], self.ports[e + "_peer"]
        self.spawn(e, ["etcd", "--name", e, "--data-dir", data,
                       "--listen-client-urls", f"http://{h}:{c}",
                       "--advertise-client-urls", f"http://{h}:{c}",
                       "--listen-peer-urls", f"http://{h}:{p}",
                       "--initial-advertise-peer-urls", f"http://{h}:{p}",
                       "--initial-cluster", cluster, "--initial-cluster-state", state,
                       "--initial-cluster-token", self.st["etcd_token"],
                       # Raft heartbeats 150 ms, election after 1.5 s: above scheduling
                       # hiccups on two busy cores, well below Patroni's retry_timeout.
                       "--heartbeat-interval", "150", "--election-timeout", "1500",
                       # Pre-vote: a member cut off by a partition cannot raise its term, so
                       # on heal it follows the current raft leader at the next heartbeat
                       # instead of forcing an election. Without it the healed member served
                       # Patroni a stale v2 read for ~4 s (Patroni's reads are not quorum
                       # reads): the new leader saw the old one as lock owner and demoted.
                       "--pre-vote=true",
                       # Patroni uses the v2 API (deploy/patroni/patroni.yml.tpl: its leader
                       # update is a compare-and-swap, which fences a resumed frozen primary).
                       "--enable-v2=true",
                       "--logger", "zap", "--log-level", "warn"],
                   user="etcd" if os.geteuid() == 0 else None)

    def etcd_healthy(self, e):
        st, body = http_get(f"http://{self.host(e)}:{self.ports[e + '_client']}/health")
        return st == 200 and isinstance(body, dict) and body.get("health") == "true"

    def etcd_auth_setup(self):
        """Client auth: root for the operator, patroni with read-write on /service/ only.
        Nobody else (ratesd's users included) can write; the listeners are loopback-only."""
        s = self.st["secrets"]
        self.etcdctl("user", "add", f"root:{s['etcd_root']}", "--interactive=false")
        self.etcdctl("role", "add", "patroni")
        self.etcdctl("role", "grant-permission", "patroni", "--prefix=true", "readwrite",
                     "/service/")
        self.etcdctl("user", "add", f"patroni:{s['etcd']}", "--interactive=false")
        self.etcdctl("user", "grant-role", "patroni", "patroni")
        self.etcdctl("auth", "enable")
        self.etcd_v2_auth_setup()
        self.st["etcd_auth"] = True
        self.save()

    def etcd_v2_auth_setup(self):
        """The same for the v2 API (a separate store with its own users, which Patroni uses):
        root, patroni read-write on /service/*, and the guest role (anonymous) stripped."""
        s, url = self.st["secrets"], self.etcd_endpoints.split(",")[0] + "/v2/auth"
        root = f"root:{s['etcd_root']}"
        steps = [("users/root", {"user": "root", "password": s["etcd_root"]}, None),
                 ("roles/patroni", {"role": "patroni", "permissions": {"kv": {
                     "read": ["/service/*"], "write": ["/service/*"]}}}, None),
                 ("users/patroni", {"user": "patroni", "password": s["etcd"],
                                    "roles": ["patroni"]}, None),
                 ("enable", None, None),
                 ("roles/guest", {"role": "guest", "revoke": {"kv": {
                     "read": ["/*"], "write": ["/*"]}}}, root)]
        for path, body, auth in steps:
            st, data = http_get(f"{url}/{path}", timeout=5, auth=auth, method="PUT",
                                body=json.dumps(body).encode() if body else b"")
            if st not in (200, 201):
                raise RuntimeError(f"etcd v2 auth {path}: {st} {data}")

    # ---- Patroni ----
    def write_patroni_conf(self, n):
        with open(os.path.join(ROOT, "deploy", "patroni", "patroni.yml.tpl")) as f:
            tpl = string.Template(f.read())
        s = self.st["secrets"]
        conf = tpl.substitute(
            name=n, host=self.host(n), hba_net=self.HBA_NET, rest_port=self.ports[n + "_rest"],
            rest_password=s["rest"],
            etcd_hosts=",".join(f"{self.host(e)}:{self.ports[e + '_client']}" for e in ETCDS),
            etcd_password=s["etcd"], pg_port=self.ports[n + "_pg"], data_dir=self.data_dir(n),
            bin_dir=pg_bindir(), node_dir=self.node_dir(n), pg_password=s["pg"],
            repl_password=s["repl"], backrest_conf=self.path("pgbackrest.conf"),
            watchdog_mode="automatic" if os.path.exists("/dev/watchdog") else "off",
            **TIMINGS)
        path = self.path(n, "patroni.yml")
        with open(path, "w") as f:
            f.write(conf)
        os.chmod(path, 0o600)
        self.chown_pg(path)

    def chown_pg(self, path):
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def start_patroni(self, n):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PATRONI"))}
        env["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin"
        self.spawn(n, ["/usr/bin/python3", "/usr/bin/patroni", self.path(n, "patroni.yml")],
                   user="postgres", env=env)

    def patroni(self, n, path="patroni", timeout=1.0):
        return http_get(self.rest_url(n) + "/" + path, timeout=timeout)

    def role(self, n):
        """Patroni's answer: primary, replica (/replica 200), or down/unknown."""
        if http_get(self.rest_url(n) + "/primary", timeout=1)[0] == 200:
            return "primary"
        if http_get(self.rest_url(n) + "/replica", timeout=1)[0] == 200:
            return "replica"
        return "down"

    def cluster(self):
        for n in NODES:
            st, body = self.patroni(n, "cluster")
            if st == 200 and isinstance(body, dict):
                return body
        return {"members": []}

    def leader(self):
        for m in self.cluster().get("members", []):
            if m.get("role") in ("leader", "master", "primary") and m.get("state") == "running":
                return m["name"]
        return None

    def healthy(self, members=3):
        """A running leader, members-1 streaming replicas, one of them synchronous."""
        ms = self.cluster().get("members", [])
        lead = [m for m in ms if m.get("role") in ("leader", "master", "primary")
                and m.get("state") == "running"]
        reps = [m for m in ms if m.get("role") in ("replica", "sync_standby")
                and m.get("state") in ("running", "streaming")]
        sync = [m for m in reps if m.get("role") == "sync_standby"]
        return len(lead) == 1 and len(reps) == members - 1 and len(sync) >= 1

    def psql(self, sql, url=None, check=True, timeout=30):
        r = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
                            url or self.write_url, "-c", sql], capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return r.stdout.strip() if r.returncode == 0 else None

    def kill_node(self, n):
        """kill -9 of the node's Patroni and postmaster at once (the postmaster's parent is
        not Patroni: both die). Returns the pids killed."""
        pm = self.postmaster_pid(n)
        killed = []
        if self.signal(n, signal.SIGKILL):
            killed.append(self.st["pids"][n])
        if pm:
            os.kill(pm, signal.SIGKILL)
            killed.append(pm)
        self.reap(n, 5)
        return killed

    # ---- pgBackRest ----
    def backrest(self, *args, node=None, pg_path=None, timeout=300):
        """pgbackrest as postgres on the leader (or node); pg_path: restore's target."""
        n = node or self.leader()
        argv = ["pgbackrest", f"--config={self.path('pgbackrest.conf')}", "--stanza=rates",
                f"--pg1-path={pg_path or self.data_dir(n)}"]
        if not pg_path:
            argv += [f"--pg1-port={self.ports[n + '_pg']}", f"--pg1-socket-path={self.node_dir(n)}"]
        argv += list(args)
        r = self.as_postgres(argv, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"pgbackrest {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def write_backrest_conf(self):
        repo = self.path("backrest")
        for d in ("repo", "log", "lock", "spool"):
            os.makedirs(os.path.join(repo, d), exist_ok=True)
            self.chown_pg(os.path.join(repo, d))
        self.chown_pg(repo)
        conf = "\n".join([
            "# pgbackrest.conf: written by tests/support/ha/stack.py; one stanza, one repository",
            "[global]", f"repo1-path={repo}/repo", "repo1-retention-full=2",
            f"log-path={repo}/log", f"lock-path={repo}/lock", f"spool-path={repo}/spool",
            "log-level-console=warn", "log-level-file=info", "start-fast=y",
            "compress-type=lz4", "process-max=1", "archive-timeout=30",
            "[rates]", f"pg1-path={self.data_dir('n1')}", ""])
        with open(self.path("pgbackrest.conf"), "w") as f:
            f.write(conf)
        os.chmod(self.path("pgbackrest.conf"), 0o640)
        self.chown_pg(self.path("pgbackrest.conf"))

    # ---- HAProxy, ratesd ----
    def start_haproxy(self):
        p = self.ports
        env = dict(os.environ, RATES_HA_BIND_WRITE=f"127.0.0.1:{p['write']}",
                   RATES_HA_BIND_READ=f"127.0.0.1:{p['read']}",
                   RATES_HA_BIND_HTTP=f"127.0.0.1:{p['http']}",
                   RATES_HA_BIND_STATS=f"127.0.0.1:{p['stats']}")
        for i, n in enumerate(NODES, 1):
            env[f"RATES_HA_N{i}_PG"] = f"{self.host(n)}:{p[n + '_pg']}"
            env[f"RATES_HA_N{i}_REST"] = str(p[n + "_rest"])
        for i, r in enumerate(RATESDS, 1):
            env[f"RATES_HA_R{i}"] = f"127.0.0.1:{p[r]}"
        self.spawn("haproxy", ["haproxy", "-db", "-f",
                               os.path.join(ROOT, "deploy", "haproxy", "ha.cfg")],
                   user="haproxy" if os.geteuid() == 0 else None, env=env)

    def haproxy_stats(self, backend, field="status"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['stats']}/stats;csv",
                                        timeout=2) as r:
                lines = r.read().decode().splitlines()
        except OSError:
            return {}
        cols = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            f = dict(zip(cols, line.split(",")))
            if f.get("pxname") == backend and f.get("svname") not in ("FRONTEND", "BACKEND"):
                out[f["svname"]] = f[field]
        return out

    def ratesd_env(self, r):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RATES_") and not k.startswith("PG")}
        env.update({
            "RATES_DATABASE_URL": self.write_url, "RATES_DATABASE_READ_URL": self.read_url,
            "RATES_LISTEN": f"127.0.0.1:{self.ports[r]}",
            "RATES_INGEST_TOKENS": f"{DRILL_TOKEN_NAME}:{self.st['secrets']['token']}",
            "RATES_LOG_FORMAT": "json", "RATES_LOG_LEVEL": "info",
            # Behind the balancer every client has HAProxy's address: no per-IP limit.
            "RATES_MAX_CONNECTIONS_PER_IP": "0",
            "RATES_CONNECT_TIMEOUT_S": "2",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
        return env

    def start_ratesd(self, r):
        self.spawn(r, [self.st["ratesd_bin"]], env=self.ratesd_env(r))

    # ---- up ----
    def up(self, ratesd_bin, gen_bin=None, dump=None, prices=20000):
        if os.path.exists(self.state_path):
            raise RuntimeError(f"a stack exists in {self.dir} (make ha-down first)")
        for tool in ("etcd", "etcdctl", "patroni", "haproxy", "pgbackrest"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is not installed (make deps-ha)")
        t0 = time.monotonic()
        os.makedirs(self.dir, exist_ok=True)
        # PostgreSQL, etcd and HAProxy run as other users: they must reach the directory.
        d = self.dir
        while d != "/":
            if os.stat(d).st_mode & 0o005 != 0o005:
                os.chmod(d, os.stat(d).st_mode | 0o005)
            d = os.path.dirname(d)
        tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
        names = ([f"{e}_client" for e in ETCDS] + [f"{e}_peer" for e in ETCDS] +
                 [f"{n}_pg" for n in NODES] + [f"{n}_rest" for n in NODES] +
                 ["write", "read", "http", "stats"] + list(RATESDS))
        self.st = {
            "ports": dict(zip(names, free_ports(len(names)))),
            "secrets": {k: secrets.token_hex(12) for k in
                        ("pg", "repl", "rest", "etcd", "etcd_root", "token")},
            "etcd_token": "rates-" + secrets.token_hex(4),
            "tmpfs": os.path.join(tmpfs, "rates-ha-" + secrets.token_hex(4)),
            "ratesd_bin": os.path.abspath(ratesd_bin), "pids": {}, "timings": TIMINGS,
        }
        os.makedirs(self.st["tmpfs"], mode=0o755)
        self.save()
        # etcd: three members; Patroni's leader lease lives there.
        for e in ETCDS:
            self.start_etcd(e)
        wait_until("etcd healthy", lambda: all(self.etcd_healthy(e) for e in ETCDS), 30)
        self.etcd_auth_setup()
        self.write_backrest_conf()
        for n in NODES:
            os.makedirs(self.node_dir(n), mode=0o700, exist_ok=True)
            self.chown_pg(self.node_dir(n))
            self.write_patroni_conf(n)
        # n1 bootstraps (initdb) and becomes the leader; the others clone it.
        self.start_patroni("n1")
        wait_until("n1 leader", lambda: self.role("n1") == "primary", 90)
        self.load_data(gen_bin, dump, prices)
        self.backrest("stanza-create", node="n1")
        for n in NODES[1:]:
            self.start_patroni(n)
        wait_until("replicas streaming, one synchronous", self.healthy, 120, 0.25)
        self.backrest("backup", "--type=full", node="n1")
        self.start_haproxy()
        lead = self.leader()
        wait_until("haproxy endpoints (leader for writes, replicas only for reads)", lambda: (
            self.haproxy_stats("pg_primary").get(lead, "").startswith("UP") and
            self.haproxy_stats("pg_replicas").get(lead, "UP").startswith("DOWN")), 20)
        for r in RATESDS:
            self.start_ratesd(r)

        def ratesd_ready():
            for r in RATESDS:
                if not self.alive(r):
                    raise RuntimeError(f"ratesd {r} exited (logs/{r}.log)")
            return all(http_get(f"http://127.0.0.1:{self.ports[r]}/readyz?scope=read")[0] == 200
                       for r in RATESDS)
        wait_until("ratesd ready", ratesd_ready, 40, 0.2)
        # HAProxy starts servers UP before their first check: wait for checks that passed.
        wait_until("ratesd in rotation", lambda: all(
            v.startswith("UP") for v in self.haproxy_stats("ratesd").values()) and
            len(self.haproxy_stats("ratesd")) == len(RATESDS), 40, 0.2)
        self.write_env()
        self.st["up_s"] = round(time.monotonic() - t0, 1)
        self.save()
        return self.st["up_s"]

    def load_data(self, gen_bin, dump, prices):
        self.psql("CREATE DATABASE rates", url=self.node_url("n1", "postgres"))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RATES_") and not k.startswith("PG")}
        migrate = lambda: subprocess.run(  # noqa: E731
            [self.st["ratesd_bin"], "migrate"], capture_output=True, text=True, timeout=300,
            env=dict(env, RATES_DATABASE_URL=self.node_url("n1")))
        if dump:
            r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                                self.node_url("n1"), "-f", dump], capture_output=True,
                               text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"loading {dump}: {r.stderr[-2000:]}")
        m = migrate()
        if m.returncode != 0:
            raise RuntimeError(f"migrate: {m.stdout}{m.stderr}")
        if not dump and gen_bin:
            gen = subprocess.run([gen_bin, "--prices", str(prices)], capture_output=True,
                                 timeout=120)
            if gen.returncode != 0:
                raise RuntimeError(f"rates-gen: {gen.stderr.decode()}")
            r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                                self.node_url("n1")], input=gen.stdout, capture_output=True,
                               timeout=300)
            if r.returncode != 0:
                raise RuntimeError(f"loading synthetic data: {r.stderr.decode()[-2000:]}")
        self.st["data"] = dump or f"rates-gen --prices {prices}"

    def write_env(self):
        s = self.st["secrets"]
        lines = [
            "# var/ha/ha.env: written by tests/support/ha/stack.py (make ha-up); sourceable.",
            f"RATES_HA_DIR='{self.dir}'",
            "# ratesd through HAProxy (2 instances)",
            f"RATES_HA_HTTP='http://127.0.0.1:{self.http_port}'",
            "# libpq URIs of the write endpoint (Patroni's leader) and the read endpoint",
            "# (replicas, the leader when none is left), admin role",
            f"RATES_HA_PG_WRITE='{self.write_url}'",
            f"RATES_HA_PG_READ='{self.read_url}'",
            "# Patroni REST base URLs (unsafe endpoints need RATES_HA_PATRONI_AUTH)",
            "RATES_HA_PATRONI='" + " ".join(self.rest_url(n) for n in NODES) + "'",
            f"RATES_HA_PATRONI_AUTH='{self.rest_auth}'",
            f"RATES_HA_ETCD='{self.etcd_endpoints}'",
            f"RATES_HA_STATS='http://127.0.0.1:{self.ports['stats']}'",
            f"RATES_HA_INGEST_TOKEN='{s['token']}'",
            f"RATES_HA_PATRONICTL='patronictl -c {self.path('n1', 'patroni.yml')}'",
            ""]
        path = self.path("ha.env")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        os.chmod(path, 0o600)

    # ---- status ----
    def status(self):
        out = []
        c = self.cluster()
        out.append(f"{'member':8} {'host':16} {'role':13} {'state':10} {'TL':>3} {'lag MB':>7}")
        for m in sorted(c.get("members", []), key=lambda m: m.get("name", "")):
            lag = m.get("lag", "")
            lag = f"{lag / 1048576:.1f}" if isinstance(lag, int) else str(lag)
            out.append(f"{m.get('name', ''):8} {m.get('host', '')}:{m.get('port', ''):<6} "
                       f"{m.get('role', ''):13} {m.get('state', ''):10} "
                       f"{m.get('timeline', ''):>3} {lag:>7}")
        for n in NODES:
            if not any(m.get("name") == n for m in c.get("members", [])):
                out.append(f"{n:8} {'127.0.0.1:' + str(self.ports[n + '_pg']):16} down")
        etcd = " ".join(f"{e}={'up' if self.etcd_healthy(e) else 'down'}" for e in ETCDS)
        out.append(f"etcd: {etcd}")
        out.append("haproxy pg_primary: " + json.dumps(self.haproxy_stats("pg_primary")) +
                   " pg_replicas: " + json.dumps(self.haproxy_stats("pg_replicas")) +
                   " ratesd: " + json.dumps(self.haproxy_stats("ratesd")))
        out.append(f"http: http://127.0.0.1:{self.http_port}  env: {self.path('ha.env')}")
        return "\n".join(out)

    # ---- down ----
    def down(self, purge=True):
        """Stops everything; returns the list of leftovers (processes or ports), empty when
        clean. Order: clients first, then PostgreSQL under Patroni, then etcd one by one."""
        pids = self.st.get("pids", {})
        for name in list(RATESDS) + ["haproxy"]:
            self.signal(name, signal.SIGTERM) if name in pids else None
        for name in list(RATESDS) + ["haproxy"]:
            if name in pids and not self.reap(name, 20):
                self.signal(name, signal.SIGKILL)
                self.reap(name, 5)
        for n in NODES:
            if n in pids:
                self.signal(n, signal.SIGTERM)
        for n in NODES:
            if n in pids and not self.reap(n, 30):
                self.signal(n, signal.SIGKILL)
                self.reap(n, 5)
            pm = self.postmaster_pid(n)
            if pm:  # a postmaster orphaned by a killed Patroni
                self.as_postgres([os.path.join(pg_bindir(), "pg_ctl"), "-D", self.data_dir(n),
                                  "-m", "immediate", "-w", "-t", "20", "stop"], timeout=40)
        # etcd members one at a time: stopping them together can leave one waiting for quorum.
        for e in ETCDS:
            if e in pids:
                self.signal(e, signal.SIGTERM)
                if not self.reap(e, 15):
                    self.signal(e, signal.SIGKILL)
                    self.reap(e, 5)
        left = [f"{k} pid {v}" for k, v in pids.items() if self.alive(k)]
        left += [f"postmaster of {n}" for n in NODES if self.postmaster_pid(n)]
        for name, port in self.st.get("ports", {}).items():
            if port_open(port):
                left.append(f"port {port} ({name}) still listening")
        # etcd's data on tmpfs goes in any case (nothing to debug there, and it holds memory).
        if not left and self.st.get("tmpfs", "").startswith(("/dev/shm/rates-ha-",
                                                              "/tmp/rates-ha-")):
            shutil.rmtree(self.st["tmpfs"], ignore_errors=True)
        if purge:
            shutil.rmtree(self.dir, ignore_errors=True)
            parent = os.path.dirname(self.dir)
            if os.path.basename(parent).startswith("rates-ha-"):  # the drills' temp dir
                try:
                    os.rmdir(parent)
                except OSError:
                    pass
        return left


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=("up", "down", "status", "env"))
    ap.add_argument("--keep", action="store_true", help="down: keep the directory")
    ap.add_argument("--prices", type=int, default=20000, help="synthetic price rows")
    args = ap.parse_args()
    s = Stack()
    if args.cmd == "up":
        build = os.environ.get("RATES_BUILD", os.path.join(ROOT, "build"))
        dump = os.environ.get("RATES_DUMP") or None
        if dump and not os.path.isfile(dump):
            raise SystemExit(f"ha: RATES_DUMP={dump} is not a file")
        try:
            secs = s.up(os.environ.get("RATES_BIN", os.path.join(build, "ratesd")),
                        os.path.join(os.path.dirname(os.environ.get(
                            "RATES_BIN", os.path.join(build, "ratesd"))), "rates-gen"),
                        dump, args.prices)
        except Exception as e:  # noqa: BLE001 - everything started is stopped again
            log(f"up failed: {e}; logs in {s.path('logs')}")
            left = s.down(purge=False)
            if left:
                log(f"left behind: {left}")
            raise SystemExit(1)
        print(s.status())
        print(f"ha: ready in {secs} s; source {s.path('ha.env')}")
    elif args.cmd == "down":
        if not s.st:
            print(f"ha: no stack in {s.dir}")
            return
        left = s.down(purge=not args.keep)
        if left:
            raise SystemExit("ha: left behind: " + "; ".join(left))
        print("ha: stopped; no process and no port left")
    elif args.cmd == "status":
        if not s.st:
            raise SystemExit(f"ha: no stack in {s.dir} (make ha-up)")
        print(s.status())
    else:
        with open(s.path("ha.env")) as f:
            print(f.read(), end="")


if __name__ == "__main__":
    main()
