"""The real ratesd on a free loopback port (Server), its environment, its log."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from tests.support.http import request
from tests.support.paths import RATES_BIN, TSAN_SUPP
from tests.support.ports import free_port


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

    def restart_without(self, *names):
        """Kills the process, drops the named variables from its environment and starts it
        again (server_env sets RATES_LOG_LEVEL, which would override a config file's)."""
        self.proc.kill()
        self.proc.wait()
        self.logf.close()
        for n in names:
            self.env.pop(n, None)
        self.start()

    def wait_log(self, text, count=1, timeout=10):
        """True once text occurs count times in the log; False after timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(text) >= count:
                return True
            time.sleep(0.05)
        return False

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
        if self.proc.returncode == 66:
            # A sanitizer's exit code: put its report where pytest shows it (captured stderr).
            sys.stderr.write(self._sanitizer_excerpt())
        return self.proc.returncode

    def _sanitizer_excerpt(self, limit=20000):
        t = self.log_text()
        at = min((i for i in (t.find(m) for m in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                                                   "ERROR: LeakSanitizer", "runtime error:")) if i >= 0),
                 default=max(0, len(t) - limit))
        return "ratesd sanitizer report (" + self.log + "):\n" + t[max(0, at - 200):at + limit]

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

    def metric(self, name):
        """The value of one series on /metrics (name with its labels, as rendered)."""
        st, _, body = self.request("GET", "/metrics")
        assert st == 200, body
        for line in body.decode().splitlines():
            key, _, value = line.rpartition(" ")
            if key == name:
                return float(value)
        raise AssertionError(f"{name} not on /metrics")
