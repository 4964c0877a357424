"""Test harness: a throwaway PostgreSQL cluster and the real ratesd binary, on loopback.

Everything here runs real processes: initdb/pg_ctl (as the postgres user when we are root,
since PostgreSQL refuses to run as root) and build/ratesd (or $RATES_BIN). Nothing is mocked.
"""
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import contract

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RATES_BIN = os.environ.get("RATES_BIN", os.path.join(ROOT, "build", "ratesd"))
# RATES_TSAN=1: the ThreadSanitizer pass (scripts/test.sh). Everything runs several times
# slower there, so tests skip their timing assertions: `assert harness.TSAN or took < 1`.
TSAN = os.environ.get("RATES_TSAN") == "1"
TSAN_SUPP = os.path.join(ROOT, "tests", "tsan.supp")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# RATES_PG_CHROOT=ROOT (tests/pg13/chroot.sh prints one): initdb, pg_ctl and postgres run
# inside that root (Debian 11's PostgreSQL 13 needs its own libraries), as the root's postgres
# user; the cluster's directory is under ROOT/var/tmp and the server listens on 127.0.0.1,
# shared with the chroot. Unset: this machine's PostgreSQL, as before.
PG_CHROOT = os.environ.get("RATES_PG_CHROOT", "")
PG_CHROOT_BINDIR = os.environ.get("RATES_PG_CHROOT_BINDIR", "/usr/lib/postgresql/13/bin")


def pg_chroot_user():
    """(uid, gid) of the postgres user in PG_CHROOT's /etc/passwd."""
    with open(os.path.join(PG_CHROOT, "etc", "passwd")) as f:
        for line in f:
            part = line.split(":")
            if part[0] == "postgres":
                return int(part[2]), int(part[3])
    raise RuntimeError(f"no postgres user in {PG_CHROOT}/etc/passwd")


def pg_bindir():
    if PG_CHROOT:
        return PG_CHROOT_BINDIR  # a path inside the chroot
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    if out and os.path.exists(os.path.join(out, "initdb")):
        return out
    for v in ("17", "16", "15", "14", "13"):
        d = f"/usr/lib/postgresql/{v}/bin"
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    raise RuntimeError("PostgreSQL server binaries not found")


def dump_path():
    p = os.environ.get("RATES_DUMP", os.path.join(ROOT, "db", "rates.sql"))
    return p if os.path.isfile(p) else None


class PgCluster:
    """A PostgreSQL cluster in a temp dir, on a free 127.0.0.1 port, fsync off."""

    def __init__(self, extra_conf=""):
        self.bindir = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="rates-pg-", dir=os.path.join(PG_CHROOT, "var", "tmp")
                                    if PG_CHROOT else None)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.as_root = os.geteuid() == 0
        if PG_CHROOT:
            os.chown(self.dir, *pg_chroot_user())
            os.chmod(self.dir, 0o700)
        elif self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self._in(self.data), "-U", "postgres",
                   "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"""
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self._in(self.dir)}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
{extra_conf}
""")
        self.start()

    def _in(self, path):
        """The path as the server sees it (inside PG_CHROOT, or unchanged)."""
        return "/" + os.path.relpath(path, PG_CHROOT) if PG_CHROOT else path

    def _run(self, cmd, check=True, **kw):
        if PG_CHROOT:
            uid, gid = pg_chroot_user()
            cmd = ["chroot", f"--userspec={uid}:{gid}", PG_CHROOT, "/usr/bin/env", "-i",
                   "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/var/lib/postgresql"] + cmd
        elif self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)

    def start(self):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self._in(self.data), "-l",
                   self._in(self.log), "-w", "-t", "60", "start"])

    def stop(self, mode="fast"):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self._in(self.data), "-m", mode,
                   "-w", "stop"], check=False)

    def url(self, db="rates", user="postgres"):
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="rates", user="postgres", check=True):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", db,
                            "-c", sql], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout.strip()

    def psql_file(self, path, db="rates"):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", str(self.port), "-U", "postgres", "-d", db, "-f", path],
                       check=True, capture_output=True, text=True)

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def create_rates_db(pg, name="rates", load_dump=True):
    """Creates a database, loads the dump when there is one, and migrates it with ratesd."""
    pg.psql(f"CREATE DATABASE {name}", db="postgres")
    dump = dump_path() if load_dump else None
    if dump:
        pg.psql_file(dump, db=name)
    r = subprocess.run([RATES_BIN, "migrate"], env=server_env({"RATES_DATABASE_URL": pg.url(name)}),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"migrate failed: {r.stdout}{r.stderr}")
    return dump is not None


def server_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATES_") and not k.startswith("PG")}
    env.update({"RATES_LOG_FORMAT": "json", "RATES_LOG_LEVEL": "info",
                "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                # A race is reported (and makes the exit code 66), the run goes on.
                "TSAN_OPTIONS": f"suppressions={TSAN_SUPP}:halt_on_error=0:exitcode=66:"
                                "second_deadlock_stack=1:report_signal_unsafe=0"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Server:
    """The real ratesd on a free loopback port. Its stdout+stderr go to a log file."""

    def __init__(self, database_url, env=None, args=None, port=None, admin=False, wait=True):
        self.port = port or free_port()
        self.admin_port = free_port() if admin else None
        self.logdir = tempfile.mkdtemp(prefix="rates-srv-")
        self.log = os.path.join(self.logdir, "ratesd.log")
        e = {"RATES_DATABASE_URL": database_url, "RATES_LISTEN": f"127.0.0.1:{self.port}"}
        if admin:
            e["RATES_ADMIN_LISTEN"] = f"127.0.0.1:{self.admin_port}"
        e.update(env or {})
        self.env = server_env(e)
        self.args = args or []
        self.proc = None
        self.start(wait)

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([RATES_BIN] + self.args, env=self.env, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()

    def _wait_for(self, path, what, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ratesd exited with {self.proc.returncode}: {self.log_text()}")
            try:
                st, _, _ = request("GET", path, port=self.port, timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"ratesd did not become {what}: " + self.log_text())

    def wait_healthy(self, timeout=20):
        self._wait_for("/healthz", "healthy", timeout)

    def wait_ready(self, timeout=20):
        self._wait_for("/readyz", "ready", timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def sanitizer_reports(self):
        t = self.log_text()
        return [m for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                            "UndefinedBehaviorSanitizer", "WARNING: ThreadSanitizer",
                            "ThreadSanitizer: ") if m in t]

    def request(self, method, path, body=None, headers=None, timeout=30):
        return request(method, path, body=body, headers=headers, port=self.port, timeout=timeout)


def request(method, path, body=None, headers=None, port=3000, timeout=30, host="127.0.0.1"):
    """One request on a new connection; returns (status, headers dict lower-cased, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        contract.check(method, path, r.status, hdrs, data)  # api/openapi.json describes it
        return r.status, hdrs, data
    finally:
        c.close()
