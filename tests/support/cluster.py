"""A throwaway PostgreSQL cluster on loopback, and databases migrated by the real ratesd.

Everything here runs real processes: initdb/pg_ctl (as the postgres user when we are root,
since PostgreSQL refuses to run as root). Nothing is mocked.

PgDir is the persistent mode of the scripts (make up's var/pg, the environments' shared
cluster, the benchmarks'): created once in a given directory, started on a given port. Run
from the repository root, this module is its command line, with the arguments, messages and
exit codes of scripts/lib.sh's pg_cluster_start, pg_cluster_stop and pg_bindir:

  python3 -m tests.support.cluster start DIR PORT   # extra postgresql.conf lines: $PG_EXTRA_CONF
  python3 -m tests.support.cluster stop DIR
  python3 -m tests.support.cluster bindir

(-W ignore::RuntimeWarning:runpy quiets runpy's note that tests.support imported it first.)

scripts/lib.sh's pg_cluster_start, pg_cluster_stop, pg_bindir and free_port call it (and
tests.support.ports): one implementation for the tests and the scripts.
"""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

from tests.support.paths import RATES_BIN, ROOT
from tests.support.ports import free_port
from tests.support.server import server_env

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


class ClusterError(RuntimeError):
    """A cluster that could not be made or started; str() is what to show the operator."""


def pg_bindir():
    """pg_config's bindir when it has initdb, else the newest of PostgreSQL 17..13 (the server
    binaries are not on PATH on Debian)."""
    if PG_CHROOT:
        return PG_CHROOT_BINDIR  # a path inside the chroot
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and os.access(os.path.join(out, "initdb"), os.X_OK):
            return out
    for v in ("17", "16", "15", "14", "13"):
        d = f"/usr/lib/postgresql/{v}/bin"
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    raise ClusterError("rates: no PostgreSQL server binaries found (apt-get install postgresql)")


def dump_path():
    p = os.environ.get("RATES_DUMP", os.path.join(ROOT, "db", "rates.sql"))
    return p if os.path.isfile(p) else None


class PgCluster:
    """A PostgreSQL cluster in a temp dir, on a free 127.0.0.1 port, fsync off."""

    def __init__(self, extra_conf=""):
        self._setup(tempfile.mkdtemp(prefix="rates-pg-", dir=os.path.join(PG_CHROOT, "var", "tmp")
                                     if PG_CHROOT else None), free_port())
        self._own_dir()
        self._run(self._initdb_cmd("--no-sync"))
        self._conf(f"""
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

    def _setup(self, path, port):
        """Where the cluster lives and on which port."""
        self.bindir = pg_bindir()
        self.dir = path
        self.port = port
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.as_root = os.geteuid() == 0

    def _own_dir(self):
        """The cluster's directory (it exists) to the postgres user, mode 0700, when we are
        root: the server runs as postgres and keeps its socket there."""
        if PG_CHROOT:
            os.chown(self.dir, *pg_chroot_user())
            os.chmod(self.dir, 0o700)
        elif self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)

    def _initdb_cmd(self, *extra):
        return [os.path.join(self.bindir, "initdb"), "-D", self._in(self.data), "-U", "postgres",
                "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", *extra]

    def _conf(self, text):
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(text)

    def _pg_ctl(self, *args):
        return [os.path.join(self.bindir, "pg_ctl"), "-D", self._in(self.data), *args]

    def _in(self, path):
        """The path as the server sees it (inside PG_CHROOT, or unchanged)."""
        return "/" + os.path.relpath(path, PG_CHROOT) if PG_CHROOT else path

    def _run(self, cmd, check=True, **kw):
        """Runs a server binary as the postgres user; output captured unless kw redirects it."""
        if PG_CHROOT:
            uid, gid = pg_chroot_user()
            cmd = ["chroot", f"--userspec={uid}:{gid}", PG_CHROOT, "/usr/bin/env", "-i",
                   "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/var/lib/postgresql"] + cmd
        elif self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        if "stdout" not in kw and "stderr" not in kw:
            kw["capture_output"] = True
        return subprocess.run(cmd, check=check, text=True, **kw)

    def start(self):
        self._run(self._pg_ctl("-l", self._in(self.log), "-w", "-t", "60", "start"))

    def stop(self, mode="fast"):
        self._run(self._pg_ctl("-m", mode, "-w", "stop"), check=False)

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


class PgDir(PgCluster):
    """A cluster kept in a directory across runs: PgDir(DIR, PORT).start(extra_conf) makes it
    once (initdb into DIR/data, output in DIR/initdb.log; listen on 127.0.0.1, socket in DIR,
    fsync on, then the extra_conf lines) and starts it on PORT, given to the server at each
    start rather than written in its postgresql.conf; the log is DIR/postgres.log. Data dirs
    made earlier by scripts/lib.sh's shell version start as they are. pg_ctl's messages go to
    our stderr; a failure raises ClusterError carrying initdb.log or the log's last 20 lines."""

    def __init__(self, path, port=None):
        if PG_CHROOT:
            raise ClusterError("rates: a persistent cluster does not run in RATES_PG_CHROOT")
        self._setup(os.path.abspath(path), port)

    def start(self, extra_conf=""):
        os.makedirs(self.dir, exist_ok=True)
        self._own_dir()
        if not os.path.isfile(os.path.join(self.data, "PG_VERSION")):
            ilog = os.path.join(self.dir, "initdb.log")
            with open(ilog, "w") as f:
                r = self._run(self._initdb_cmd(), check=False, stdout=f, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                with open(ilog) as f:
                    raise ClusterError(f.read().rstrip("\n"))
            self._conf(f"""listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.dir}'
max_connections = 200
shared_buffers = 128MB
{extra_conf}
""")
        r = self._run(self._pg_ctl("-o", f"-p {self.port}", "-l", self.log, "-w", "-t", "60",
                                   "start"), check=False, stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            try:
                with open(self.log, errors="replace") as f:
                    tail = "".join(f.readlines()[-20:]).rstrip("\n")
            except OSError as e:
                tail = f"rates: {self.log}: {e.strerror}"
            raise ClusterError(tail)

    def stop(self, mode="fast"):
        """Stops the server when it runs (a postmaster.pid is there); never fails."""
        if os.path.isfile(os.path.join(self.data, "postmaster.pid")):
            self._run(self._pg_ctl("-m", mode, "-w", "stop"), check=False,
                      stdout=subprocess.DEVNULL)


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


def main(argv):
    usage = "usage: python3 -m tests.support.cluster start DIR PORT | stop DIR | bindir"
    try:
        if argv[:1] == ["bindir"] and len(argv) == 1:
            print(pg_bindir())
        elif argv[:1] == ["start"] and len(argv) == 3 and argv[2].isdigit():
            PgDir(argv[1], int(argv[2])).start(os.environ.get("PG_EXTRA_CONF", ""))
        elif argv[:1] == ["stop"] and len(argv) == 2:
            PgDir(argv[1]).stop()
        else:
            print(usage, file=sys.stderr)
            return 2
    except ClusterError as e:
        if str(e):
            print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
