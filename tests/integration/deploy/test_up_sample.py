"""`make up` from a clean clone without a dump serves a synthetic sample that answers the
README's sample request with data, says so, and gives way to the dump when one is given.

A drill (slow: a clean clone builds everything): the clone runs its own PostgreSQL on a free
loopback port and ratesd on another; nothing else is touched."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests import support

pytestmark = pytest.mark.drill

SAMPLE_Q = "/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CN000&dest_code=EE003"


def start_up(clone, pg_port, port, dump):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATES_", "PG"))}
    env.update(RATES_PG_PORT=str(pg_port), RATES_LISTEN=f"127.0.0.1:{port}", RATES_DUMP=dump,
               RATES_LOG_FORMAT="json")
    log = open(os.path.join(clone, "up.log"), "ab")
    p = subprocess.Popen(["sh", "scripts/up.sh"], cwd=clone, env=env, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    return p, log


def wait_ready(p, clone, port, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            raise AssertionError("make up exited: " + open(os.path.join(clone, "up.log")).read()[-4000:])
        try:
            st, _, body = support.request("GET", "/readyz", port=port, timeout=2)
            if st == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("make up never became ready: " + open(os.path.join(clone, "up.log")).read()[-4000:])


def stop_up(p, log):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
    log.close()


def test_make_up_without_dump_serves_the_sample_then_the_dump():
    work = tempfile.mkdtemp(prefix="rates-up-")
    os.chmod(work, 0o755)  # PostgreSQL runs as postgres under it
    clone = os.path.join(work, "rates")
    try:
        subprocess.run(["git", "clone", "-q", support.ROOT, clone], check=True, timeout=120)
        mods = os.path.join(support.ROOT, "tools", "api", "node_modules")
        if os.path.isdir(mods):  # spare the clone a 200 MB npm ci; same pinned lock file
            shutil.copytree(mods, os.path.join(clone, "tools", "api", "node_modules"), symlinks=True)
            os.utime(os.path.join(clone, "tools", "api", "node_modules", ".rates-installed"))
        pg_port, port = support.free_port(), support.free_port()
        p, log = start_up(clone, pg_port, port, "/nonexistent/rates.sql")
        try:
            ready = wait_ready(p, clone, port)
            assert ready.get("data") == "sample", ready
            st, _, body = support.request("GET", SAMPLE_Q, port=port)
            rates = json.loads(body)["rates"]
            assert st == 200 and len(rates) == 31
            assert sum(1 for d in rates if d["price"] is not None) >= 20, rates
            # It serves as rates_app, like every deploy target; postgres only migrated.
            who = subprocess.run(
                ["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-d",
                 "postgres", "-c", "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity "
                 "WHERE application_name LIKE 'ratesd%'"], capture_output=True, text=True, timeout=30)
            assert who.stdout.strip() == "rates_app", (who.stdout, who.stderr)
        finally:
            stop_up(p, log)
        text = open(os.path.join(clone, "up.log")).read()
        assert "SYNTHETIC SAMPLE" in text and SAMPLE_Q in text
        dump = support.dump_path()
        if not dump:
            return
        p, log = start_up(clone, pg_port, port, dump)
        try:
            ready = wait_ready(p, clone, port)
            assert ready.get("data") != "sample", ready
            st, _, body = support.request(
                "GET", "/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CNGGZ&dest_code=EETLL",
                port=port)
            assert st == 200 and any(d["count"] for d in json.loads(body)["rates"])
        finally:
            stop_up(p, log)
        assert "replacing the synthetic sample" in open(os.path.join(clone, "up.log")).read()
    finally:
        shutil.rmtree(work, ignore_errors=True)
