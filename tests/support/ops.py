"""Helpers for the operations tests (tests/integration/ops, http): bounded client loads,
process bookkeeping after a self-upgrade, metrics. Real processes and loopback sockets only."""
import errno
import http.client
import json
import os
import re
import signal
import threading
import time

from tests.support import contract
from tests.support.http import request

RATES_Q = "/rates?date_from=2016-01-01&date_to=2016-01-10&orig_code=CNGGZ&dest_code=EETLL"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def status_kb(pid, key):
    """One kB line of /proc/PID/status (VmRSS, VmHWM...); 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_pid_gone(pid, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not pid_alive(pid):
            return True
        # A process re-parented away from us cannot be waited for; poll /proc for zombies.
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except OSError:
            return True
        time.sleep(0.02)
    return False


def upgraded_pids(log_text):
    """PIDs of the processes that took over through SIGUSR2, in order."""
    return [int(m) for m in re.findall(r'upgrade: pid (\d+) serves', log_text)]


class Load:
    """A bounded client loop: `threads` clients, each a new connection per request, no retries.
    Every outcome is counted: status codes, resets, refusals, other errors."""

    def __init__(self, port, paths, threads=4, duration=10.0, timeout=10.0, batch_fn=None,
                 keepalive_threads=0):
        self.port, self.paths, self.threads = port, paths, threads
        self.keepalive_threads = keepalive_threads  # these reuse one connection (HTTP/1.1)
        self.duration, self.timeout, self.batch_fn = duration, timeout, batch_fn
        self.lock = threading.Lock()
        self.status = {}
        self.errors = {}
        self.error_samples = []
        self.batches_ok = 0
        self.timeline = []  # (start, end, status or error kind), times from time.time()
        self.started = None
        self._ts = []

    def _count(self, d, k):
        with self.lock:
            d[k] = d.get(k, 0) + 1

    def _one(self, path, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        t0 = time.time()
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            self._count(self.status, r.status)
            with self.lock:
                self.timeline.append((t0, time.time(), r.status))
                self.answers = getattr(self, "answers", 0) + 1
                sample = self.answers % contract.SAMPLE_EVERY == 1
            if sample:  # a sample of the answers against api/openapi.json (contract.py)
                try:
                    contract.check_response("GET", path, r, body)
                except contract.ContractError as e:
                    self._err("contract", e)
        except ConnectionResetError as e:
            self._err("reset", e)
        except ConnectionRefusedError as e:
            self._err("refused", e)
        except http.client.RemoteDisconnected as e:
            self._err("disconnected", e)
        except OSError as e:
            self._err(errno.errorcode.get(e.errno, type(e).__name__), e)
        except http.client.HTTPException as e:
            self._err(type(e).__name__, e)
            c.close()
        finally:
            if conn is None:
                c.close()

    def _err(self, kind, e):
        self._count(self.errors, kind)
        with self.lock:
            self.timeline.append((time.time(), time.time(), kind))
        with self.lock:
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{kind}: {e!r} at {time.time() - self.started:.3f}s")

    def _run(self, idx):
        i = 0
        end = self.started + self.duration
        # A keep-alive client: http.client reconnects by itself after "Connection: close".
        conn = (http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if idx < self.keepalive_threads else None)
        while time.time() < end and i < 1_000_000:
            if self.batch_fn and i % 10 == 5:
                try:
                    st = self.batch_fn()
                    self._count(self.status, f"batch:{st}")
                    if st == 201:
                        with self.lock:
                            self.batches_ok += 1
                except OSError as e:
                    self._err("batch-" + type(e).__name__, e)
            else:
                self._one(self.paths[(i + idx) % len(self.paths)], conn)
            i += 1
        if conn:
            conn.close()

    def start(self):
        self.started = time.time()
        self._ts = [threading.Thread(target=self._run, args=(k,), daemon=True)
                    for k in range(self.threads)]
        for t in self._ts:
            t.start()
        return self

    def join(self):
        for t in self._ts:
            t.join(self.duration + self.timeout + 30)

    def total(self):
        return sum(self.status.values()) + sum(self.errors.values())

    def summary(self):
        return json.dumps({"status": self.status, "errors": self.errors,
                           "samples": self.error_samples, "batches_ok": self.batches_ok})


def kill_quietly(pid):
    """Stops a process this test started (directly or through its self-upgrade)."""
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        if not wait_pid_gone(pid, 20):
            os.kill(pid, signal.SIGKILL)


TOKEN = "ops-token-5f1c9e"  # the ingest token the ops tests configure


def batches_available(port):
    """POST /batches exists; ingestion is part of the product, so its absence is a failure,
    never a reason to skip."""
    try:
        st, _, _ = request("POST", "/batches", body=b"", port=port, timeout=5,
                                   headers={"Content-Type": "text/csv"})
    except OSError:
        return False
    assert st != 404, "POST /batches answers 404"
    return True


def small_batch(port, rows=5, token=TOKEN, timeout=30):
    """Posts a small CSV batch; returns the status."""
    days = [f"2015-0{1 + i // 28 % 9}-{1 + i % 28:02d}" for i in range(rows)]
    body = "orig_code,dest_code,day,price\n" + "".join(
        f"CNGGZ,EETLL,{d},{1000 + i}\n" for i, d in enumerate(days))
    st, _, _ = request("POST", "/batches", body=body.encode(), port=port, timeout=timeout,
                               headers={"Content-Type": "text/csv",
                                        "Authorization": f"Bearer {token}"})
    return st


def set_subreaper(on):
    """Makes this process adopt orphaned descendants (a self-upgraded ratesd outlives the
    process we started), so that their exit codes can be read with os.waitpid."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0


def reap(pid, timeout):
    """Waits for a child (or adopted) process; returns its exit code or None on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            got, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if got == pid:
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.02)
    return None


def metrics(port):
    """Scrapes /metrics; returns (text, {"name{labels}": float})."""
    st, h, body = request("GET", "/metrics", port=port)
    assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return text, out
