"""Environments on demand (scripts/env.sh, docs/environments.md) and the synthetic data
generator (rates-gen).

The drill starts three local copies side by side with different data modes in a throwaway
RATES_ENV_ROOT (never a developer's var/envs), checks each answers on its own port with the
data its mode implies, that `env.sh ls` lists them with URL and memory, that a TTL tears a
copy down by itself, and that `env.sh down` leaves nothing behind: no process, no listening
port, no folder, no database.
"""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from tests import support
from tests.support import ops

ENV_SH = os.path.join(support.ROOT, "scripts", "env.sh")
GEN = os.path.join(os.path.dirname(support.RATES_BIN), "rates-gen")
JAN = "date_from=2021-01-01&date_to=2021-01-31"
# Sample mode keeps every 10th route in (orig_code, dest_code) order: the first is kept, the
# second is not (both have prices in the dump).
KEPT = ("CNCWN", "BEANR")
DROPPED = ("CNCWN", "BEZEE")


def need_gen():
    if not os.path.exists(GEN):
        pytest.skip(f"no rates-gen next to {support.RATES_BIN} (make)")


def gen(*args):
    return subprocess.run([GEN, *args], check=True, capture_output=True).stdout


def price_rows(sql_bytes):
    out, inside = [], False
    for line in sql_bytes.decode().splitlines():
        if line.startswith("COPY public." "prices"):
            inside = True
        elif line == "\\.":
            inside = False
        elif inside:
            out.append(line.split("\t"))
    return out


# --- rates-gen ------------------------------------------------------------------------------

def test_gen_is_deterministic_and_exact():
    need_gen()
    a = gen("--prices", "1000", "--seed", "7")
    assert hashlib.sha256(a).digest() == hashlib.sha256(gen("--prices", "1000", "--seed", "7")).digest()
    assert a != gen("--prices", "1000", "--seed", "8")
    rows = price_rows(a)
    assert len(rows) == 1000
    per_day = {}
    for o, d, day, price in rows:
        assert re.fullmatch(r"[A-Z]{2}[0-9A-Z]{3}", o) and re.fullmatch(r"[A-Z]{2}[0-9A-Z]{3}", d)
        assert re.fullmatch(r"2021-\d\d-\d\d", day)
        assert 100 <= int(price) <= 10000
        per_day[(o, d, day)] = per_day.get((o, d, day), 0) + 1
    assert set(per_day.values()) <= {1, 2, 3}
    # The dump's size keeps the dump's shape: 31 days, ~15 x ~67 ports, ~700-800 routes.
    rows = price_rows(gen())
    assert len(rows) == 56689
    assert len({r[2] for r in rows}) == 31
    assert 600 <= len({(r[0], r[1]) for r in rows}) <= 900
    first = gen("--routes", "1").decode().split("\t")
    assert (first[0], first[1]) == (rows[0][0], rows[0][1])


def test_gen_streams_large_sizes_in_constant_memory():
    need_gen()
    # 2,000,000 rows through a pipe: exactly that many, and the RSS stays small.
    p = subprocess.Popen([GEN, "--prices", "2000000", "--seed", "3"], stdout=subprocess.PIPE)
    n, inside, hwm = 0, False, 0
    for line in p.stdout:
        if line.startswith(b"COPY public." b"prices"):
            inside = True
        elif line == b"\\.\n":
            inside = False
        elif inside:
            n += 1
            if n % 200000 == 0:  # the peak RSS so far, while it is still writing
                hwm = max(hwm, ops.status_kb(p.pid, "VmHWM"))
    assert p.wait() == 0
    assert n == 2000000
    assert 0 < hwm < 20000, f"peak RSS {hwm} kB"


@pytest.mark.parametrize("bad", [["--prices", "0"], ["--prices", "x"], ["--seed", "-1"],
                                 ["--start", "2021-02-30"], ["--nope"]])
def test_gen_rejects_bad_arguments(bad):
    need_gen()
    r = subprocess.run([GEN, *bad], capture_output=True, text=True)
    assert r.returncode == 2 and "bad argument" in r.stderr


def test_gen_loads_into_migrated_schema_and_empty_database(pg):
    """Data-only output into the migrated schema (with whatever triggers and keys the
    migrations put on prices), and --schema output into an empty database then migrated."""
    need_gen()
    support.create_rates_db(pg, "gen_migrated", load_dump=False)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url("gen_migrated")],
                   input=gen("--prices", "5000", "--seed", "5"), check=True, capture_output=True)
    assert pg.psql("SELECT count(*) FROM public.prices", db="gen_migrated") == "5000"
    assert pg.psql("SELECT count(*) FROM public.prices p WHERE NOT EXISTS (SELECT 1 FROM "
                   "public.ports o WHERE o.code = p.orig_code) OR NOT EXISTS (SELECT 1 FROM "
                   "public.ports d WHERE d.code = p.dest_code)", db="gen_migrated") == "0"
    assert pg.psql("SELECT count(*) FROM public.ports p LEFT JOIN public.regions r ON "
                   "r.slug = p.parent_slug WHERE r.slug IS NULL", db="gen_migrated") == "0"
    pg.psql("CREATE DATABASE gen_schema", db="postgres")
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url("gen_schema")],
                   input=gen("--schema", "--prices", "5000", "--seed", "5"), check=True,
                   capture_output=True)
    r = subprocess.run([support.RATES_BIN, "migrate"],
                       env=support.server_env({"RATES_DATABASE_URL": pg.url("gen_schema")}),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    q = "SELECT md5(string_agg(orig_code || dest_code || day || price, ',' ORDER BY orig_code, dest_code, day, price)) FROM public.prices"
    assert pg.psql(q, db="gen_schema") == pg.psql(q, db="gen_migrated")


# --- environments ------------------------------------------------------------------------------

class Envs:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="rates-envs-")
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("RATES_") or k.startswith("PG"):
                del self.env[k]
        self.env.update({"RATES_ENV_ROOT": self.root, "RATES_BIN": support.RATES_BIN,
                         "RATES_GEN": GEN, "RATES_DUMP": support.dump_path() or "/nonexistent"})

    def run(self, *args, timeout=120):
        r = subprocess.run(["sh", ENV_SH, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, f"env.sh {args}: {r.stdout}{r.stderr}"
        return r.stdout + r.stderr

    def pid(self, name, what="ratesd"):
        with open(os.path.join(self.root, name, f"{what}.pid")) as f:
            return int(f.read())


def alive(pid, wait=5.0):
    """Whether pid still runs (a zombie does not) after up to `wait` seconds."""
    deadline = time.time() + wait
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state == "Z" or time.time() > deadline:
            return state != "Z"
        time.sleep(0.1)


def group_alive(pgid, wait=5.0):
    """Whether any live (non-zombie) process is left in process group pgid."""
    deadline = time.time() + wait
    while True:
        left = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                left.append(int(d))
        if not left or time.time() > deadline:
            return bool(left)
        time.sleep(0.1)


def listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def days_with_prices(port, orig, dest):
    st, _, body = support.request("GET", f"/rates?{JAN}&orig_code={orig}&dest_code={dest}", port=port)
    assert st == 200
    import json
    return sum(1 for d in json.loads(body)["rates"] if d["count"] is not None)


@pytest.mark.drill
def test_three_copies_side_by_side_then_nothing_left():
    need_gen()
    t0 = time.time()
    e = Envs()
    copies = {}
    try:
        synth = gen("--routes", "1").decode().split("\t")[:2]
        for name, data, ttl in (("a", "dump", ""), ("b", "sample", "1h"), ("c", "synthetic", "")):
            out = e.run("up", name, "--data", data, "--ttl", ttl)
            m = re.search(r"url: +http://127\.0\.0\.1:(\d+)/", out)
            assert m, out
            copies[name] = {"port": int(m.group(1)), "pid": e.pid(name), "data": data}
            if not support.dump_path() and data != "synthetic":
                assert "falls back to DATA=synthetic" in out
        ports = {c["port"] for c in copies.values()}
        assert len(ports) == 3
        for c in copies.values():
            st, _, _ = support.request("GET", "/readyz", port=c["port"])
            assert st == 200
        a, b, c = (copies[n]["port"] for n in "abc")
        if support.dump_path():
            assert days_with_prices(a, *KEPT) == 31 and days_with_prices(a, *DROPPED) == 31
            assert days_with_prices(b, *KEPT) == 31 and days_with_prices(b, *DROPPED) == 0
            assert days_with_prices(c, *KEPT) == 0 and days_with_prices(a, *synth) == 0
        assert days_with_prices(c, *synth) > 0

        ls = e.run("ls")
        for name, cp in copies.items():
            line = next(l for l in ls.splitlines() if l.startswith(name + " "))
            assert f"http://127.0.0.1:{cp['port']}/" in line and str(cp["pid"]) in line
            mem = int(line.split()[6])
            assert 1 <= mem <= 100, line  # scaled down: about 100 MB or less per copy
        assert re.search(r"^b .* 5\dm\d\ds +ready$", ls, re.M), ls  # TTL left of b

        # A TTL tears its copy down by itself (the watchdog recorded in the copy's folder).
        out = e.run("up", "d", "--data", "synthetic", "--ttl", "3s")
        wd = e.pid("d", "watchdog")
        dpid = e.pid("d")
        deadline = time.time() + 30
        while os.path.exists(os.path.join(e.root, "d")) and time.time() < deadline:
            time.sleep(0.25)
        assert not os.path.exists(os.path.join(e.root, "d")), "TTL did not tear d down"
        assert not alive(dpid) and not alive(wd) and not group_alive(wd)

        pg_port = int(open(os.path.join(e.root, "_pg", "port")).read())
        postmaster = int(open(os.path.join(e.root, "_pg", "data", "postmaster.pid")).readline())
        wd_b = e.pid("b", "watchdog")
        e.run("down", "a")
        e.run("down", "b")
        r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(pg_port), "-U",
                            "postgres", "-d", "postgres", "-c",
                            "SELECT datname FROM pg_database WHERE datname LIKE 'rates_env_%'"],
                           capture_output=True, text=True, check=True)
        assert r.stdout.split() == ["rates_env_c"]
        e.run("down", "c")
        for cp in copies.values():
            assert not alive(cp["pid"]), cp
            assert not listening(cp["port"]), cp
        assert not alive(wd_b) and not group_alive(wd_b)  # its sleep too
        assert not alive(postmaster) and not listening(pg_port)  # last copy: cluster stopped
        assert [n for n in os.listdir(e.root) if not n.startswith((".", "_")) and n != "templates.log"] == []
        assert "no environments" in e.run("ls")
    finally:
        subprocess.run(["sh", ENV_SH, "purge"], env=e.env, capture_output=True, timeout=120)
        shutil.rmtree(e.root, ignore_errors=True)
    assert not os.path.exists(e.root)
    assert time.time() - t0 < 90
