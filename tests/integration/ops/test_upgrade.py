"""Zero-downtime restarts on one host (issue 4, test 2): the self-upgrade on SIGUSR2 hands the
same listening sockets to a new process; systemd socket activation (LISTEN_FDS) and sd_notify."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings

import pytest

from tests import support
from tests.support import ops
from tests.support.ops import RATES_Q


def _wait_log(server, pattern_fn, timeout):
    """pattern_fn(the log)'s first true value within timeout seconds, else a false one."""
    return support.wait_for(lambda: pattern_fn(server.log_text()), timeout, 0.02)


@pytest.mark.drill
def test_rolling_restart_under_load(pg, rates_db):
    """Two successive self-upgrades during a ~10 s client loop of reads (and small batches when
    POST /batches exists) by 6 clients, 2 of them on keep-alive connections: zero failed
    requests, zero resets, zero lost batches."""
    support.create_rates_db(pg, "ops_upgrade")
    url = pg.url("ops_upgrade")
    ops.set_subreaper(True)
    # Batch slots above the client count: a 503 here can only mean a failed hand-over.
    s = support.Server(url, admin=True, env={"RATES_INGEST_TOKENS": f"ops:{ops.TOKEN}",
                                              "RATES_LOG_LEVEL": "info",
                                              "RATES_MAX_CONCURRENT_BATCHES": "16",
                                              "RATES_POOL_SIZE": "20",  # 4 read + 16 batches
                                              "RATES_GLOBAL_CONCURRENT_BATCHES": "32"})
    pids = [s.proc.pid]
    try:
        s.wait_ready()
        with_batches = ops.batches_available(s.port)
        if with_batches and ops.small_batch(s.port) != 201:
            warnings.warn("POST /batches does not accept a small CSV batch yet: reads only")
            with_batches = False
        rows_before = int(pg.psql("SELECT count(*) FROM prices", db="ops_upgrade"))
        batch_fn = (lambda: ops.small_batch(s.port)) if with_batches else None
        load = ops.Load(s.port, [RATES_Q, "/healthz", "/", RATES_Q], threads=6,
                             duration=10.0, batch_fn=batch_fn, keepalive_threads=2).start()
        handovers = []
        for k, at in enumerate((3.0, 6.5)):
            time.sleep(max(0.0, load.started + at - time.time()))
            t0 = time.time()
            os.kill(pids[-1], signal.SIGUSR2)
            new = _wait_log(s, lambda t: len(ops.upgraded_pids(t)) > k, 20)
            assert new, "no new process reported ready: " + s.log_text()[-3000:]
            ready_s = time.time() - t0
            old = pids[-1]
            pids.append(ops.upgraded_pids(s.log_text())[k])
            code = s.proc.wait(30) if old == s.proc.pid else ops.reap(old, 30)
            handovers.append({"ready_s": round(ready_s, 3), "old_exit_s": round(time.time() - t0, 3),
                              "old_exit_code": code})
            assert code == 0, f"old process {old} exited {code}"
        load.join()
        report = f"handovers={handovers} requests={load.total()} {load.summary()}"
        print("rolling restart:", report)
        assert load.errors == {}, report
        assert set(load.status) <= {200, "batch:201"}, report
        assert load.total() > 100, report
        if with_batches:
            rows_after = int(pg.psql("SELECT count(*) FROM prices", db="ops_upgrade"))
            assert rows_after - rows_before == load.batches_ok * 5, report
        st, _, _ = support.request("GET", "/readyz", port=s.admin_port)
        assert st == 200
        assert not s.sanitizer_reports(), s.log_text()[-3000:]
    finally:
        for p in pids[1:]:
            ops.kill_quietly(p)
            ops.reap(p, 10)
        ops.set_subreaper(False)
        s.stop()


def test_upgrade_failure_keeps_serving(rates_db, tmp_path):
    """The binary at our path fails (exits, or never gets ready): the old process keeps serving
    and says why. Then the path holds a new binary: it takes over."""
    exe = tmp_path / "ratesd"
    shutil.copy(support.RATES_BIN, exe)
    os.chmod(exe, 0o755)
    ops.set_subreaper(True)
    s = support.Server(rates_db["url"], env={"RATES_UPGRADE_TIMEOUT_S": "2"})
    s.proc.kill()
    s.proc.wait()
    s.logf.close()
    s.args = []
    s.proc = None
    # Start the copy, the way a deploy runs a binary from its own path.
    s.logf = open(s.log, "ab")
    s.proc = subprocess.Popen([str(exe)], env=s.env, stdout=s.logf, stderr=subprocess.STDOUT)
    new_pid = None
    try:
        s.wait_healthy()

        def deploy(text):
            tmp = tmp_path / "ratesd.new"
            tmp.write_text(text)
            os.chmod(tmp, 0o755)
            os.rename(tmp, exe)

        deploy("#!/bin/sh\necho 'new binary refuses to start' >&2\nexit 3\n")
        os.kill(s.proc.pid, signal.SIGUSR2)
        assert _wait_log(s, lambda t: "upgrade failed" in t, 10), s.log_text()[-2000:]
        assert "exited with status 3" in s.log_text()
        assert s.request("GET", "/healthz")[0] == 200 and s.proc.poll() is None

        deploy("#!/bin/sh\nexec sleep 30\n")
        t0 = time.time()
        os.kill(s.proc.pid, signal.SIGUSR2)
        assert _wait_log(s, lambda t: "not ready within 2000 ms" in t, 10), s.log_text()[-2000:]
        assert support.TSAN or time.time() - t0 < 6
        assert s.request("GET", "/healthz")[0] == 200 and s.proc.poll() is None

        marker = tmp_path / "new-binary-ran"
        deploy(f"#!/bin/sh\ntouch {marker}\nexec {support.RATES_BIN} \"$@\"\n")
        os.kill(s.proc.pid, signal.SIGUSR2)
        assert _wait_log(s, lambda t: ops.upgraded_pids(t), 20), s.log_text()[-2000:]
        new_pid = ops.upgraded_pids(s.log_text())[0]
        assert s.proc.wait(20) == 0
        assert marker.exists()
        assert s.request("GET", "/healthz")[0] == 200
        assert ops.pid_alive(new_pid)
    finally:
        if new_pid:
            ops.kill_quietly(new_pid)
            assert ops.reap(new_pid, 20) == 0
        ops.set_subreaper(False)
        s.stop()
    assert not s.sanitizer_reports(), s.log_text()[-3000:]


def test_sd_notify_and_socket_activation(rates_db, tmp_path):
    """systemd's protocol: the socket comes in as fd 3 (LISTEN_FDS/LISTEN_PID), READY=1 once
    serving, MAINPID+READY from the process that takes over, STOPPING=1 on SIGTERM."""
    nsock_path = str(tmp_path / "notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    nsock.settimeout(15)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    port = lsock.getsockname()[1]
    bogus = support.free_port()  # RATES_LISTEN must be ignored when a socket is inherited
    env = support.server_env({"RATES_DATABASE_URL": rates_db["url"],
                              "RATES_LISTEN": f"127.0.0.1:{bogus}", "NOTIFY_SOCKET": nsock_path})
    log = open(tmp_path / "ratesd.log", "ab")
    fd = lsock.fileno()
    ops.set_subreaper(True)
    proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0"', support.RATES_BIN],
                            env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(3,),
                            preexec_fn=lambda: os.dup2(fd, 3))
    lsock.close()  # only the service holds the socket now, as with systemd
    new_pid = None
    try:
        msg = nsock.recv(4096).decode()
        assert msg == "READY=1", msg
        assert support.request("GET", "/healthz", port=port)[0] == 200
        with pytest.raises(OSError):
            support.request("GET", "/healthz", port=bogus, timeout=2)
        os.kill(proc.pid, signal.SIGUSR2)
        msg = nsock.recv(4096).decode()
        assert msg.startswith("MAINPID=") and msg.endswith("\nREADY=1"), msg
        new_pid = int(msg.split("\n")[0].split("=")[1])
        assert new_pid != proc.pid
        assert proc.wait(20) == 0
        assert support.request("GET", "/healthz", port=port)[0] == 200
        nsock.settimeout(0.5)
        with pytest.raises(socket.timeout):  # the old process must not say STOPPING
            print("unexpected:", nsock.recv(4096))
        nsock.settimeout(15)
        os.kill(new_pid, signal.SIGTERM)
        assert nsock.recv(4096).decode() == "STOPPING=1"
        assert ops.reap(new_pid, 20) == 0
        new_pid = None
    finally:
        if new_pid:
            ops.kill_quietly(new_pid)
            ops.reap(new_pid, 10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ops.set_subreaper(False)
        nsock.close()
        log.close()
    text = open(tmp_path / "ratesd.log", errors="replace").read()
    assert "inherited socket" in text, text[-2000:]


def test_stop_signal_during_upgrade(rates_db, tmp_path):
    """SIGTERM while the new process is not ready yet: the upgrade is abandoned (the new
    process is stopped, killed if it ignores that), and the old one shuts down normally."""
    exe = tmp_path / "ratesd"
    shutil.copy(support.RATES_BIN, exe)
    os.chmod(exe, 0o755)
    env = support.server_env({"RATES_DATABASE_URL": rates_db["url"],
                              "RATES_LISTEN": f"127.0.0.1:{support.free_port()}"})
    log = tmp_path / "ratesd.log"
    with open(log, "ab") as lf:
        proc = subprocess.Popen([str(exe)], env=env, stdout=lf, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 10
            while time.time() < deadline and "listening on" not in log.read_text():
                time.sleep(0.05)
            tmp = tmp_path / "ratesd.new"
            tmp.write_text("#!/bin/sh\nexec sleep 30\n")  # never ready, SIGTERM blocked
            os.chmod(tmp, 0o755)
            os.rename(tmp, exe)
            os.kill(proc.pid, signal.SIGUSR2)
            time.sleep(0.5)
            t0 = time.time()
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(15) == 0
            assert support.TSAN or time.time() - t0 < 4
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert "upgrade aborted by a stop signal" in text and "shutdown: done" in text, text[-2000:]
