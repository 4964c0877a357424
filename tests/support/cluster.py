"""A throwaway PostgreSQL cluster on loopback, and databases migrated by the real ratesd.

Everything here runs real processes: initdb/pg_ctl (as the postgres user when we are root,
since PostgreSQL refuses to run as root). Nothing is mocked. pg_bindir() is mirrored by
scripts/lib.sh's pg_bindir (shell cannot import this): change both together.
"""
import os
import pwd
import shutil
import subprocess
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
