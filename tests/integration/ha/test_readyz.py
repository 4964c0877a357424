"""/readyz?scope=read (src/health.c): an instance that can read stays in the balancer's rotation
while no primary takes writes; plain /readyz still says not ready, and the body says which side
is degraded."""
import json
import re
import socket
import threading
import time

from tests import support


def readyz(s, query=""):
    st, _, body = s.request("GET", "/readyz" + query)
    return st, json.loads(body)


def test_reads_ready_while_writes_are_down(rates_db):
    dead = f"postgresql://postgres@127.0.0.1:{support.free_port()}/rates"
    s = support.Server(dead, env={"RATES_DATABASE_READ_URL": rates_db["url"],
                                  "RATES_CONNECT_TIMEOUT_S": "2"})
    try:
        assert support.wait_for(lambda: readyz(s, "?scope=read")[0] == 200), readyz(s, "?scope=read")
        st, body = readyz(s, "?scope=read")
        assert body["status"] == "degraded" and body["scope"] == "read", body
        assert body["checks"]["writes"] == "unavailable" and body["checks"]["reads"] == "ok", body
        st, body = readyz(s)
        assert st == 503 and body["status"] == "degraded", body
        assert body["checks"]["database"] == "unreachable", body
        assert readyz(s, "?scope=write")[0] == 503
        # Reads are served meanwhile.
        st, _, _ = s.request("GET", "/rates?date_from=2021-01-01&date_to=2021-01-02"
                             "&orig_code=CNSGH&dest_code=NLRTM")
        assert st < 500, st  # served (an unknown port is a 4xx), not 503
    finally:
        assert s.stop() == 0
        assert not s.sanitizer_reports(), s.log_text()[-3000:]


def test_both_sides_down_is_not_ready_for_either_scope():
    dead = f"postgresql://postgres@127.0.0.1:{support.free_port()}/rates"
    s = support.Server(dead, env={"RATES_CONNECT_TIMEOUT_S": "2"})
    try:
        time.sleep(2.5)
        st, body = readyz(s, "?scope=read")
        assert st == 503 and body["status"] == "not ready", body
        assert readyz(s)[0] == 503
    finally:
        assert s.stop() == 0


def test_one_database_ready_for_both_scopes(server):
    st, body = readyz(server, "?scope=read")
    assert st == 200 and body["status"] == "ready", body
    st, body = readyz(server)
    assert st == 200 and body["checks"]["writes"] == "ok", body


class CutProxy:
    """A loopback TCP proxy in front of PostgreSQL that can be cut: cut() closes every
    connection through it and, until mend(), closes each new one at once (what a client sees
    while a balancer moves its backend)."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.lock = threading.Lock()
        self.is_cut, self.socks, self.refused = False, [], 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if self.is_cut:
                    self.refused += 1
                    c.close()
                    continue
                try:
                    u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                except OSError:
                    c.close()
                    continue
                self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.is_cut = True
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def mend(self):
        with self.lock:
            self.is_cut = False

    def close(self):
        self.cut()
        self.sock.close()


def test_a_read_endpoint_blip_shorter_than_a_reads_retries_keeps_reads_ready(rates_db):
    """The monitor tries a failed side again on src/retry.h's schedule, as a read does, before
    it says "cannot read": one failed look at the read endpoint took every instance behind
    HAProxy out of rotation at once (a partition drill in CI: 104 reads answered by HAProxy's
    own 503) while their reads, retrying, still succeeded. A longer outage still shows."""
    port = int(re.search(r":(\d+)/", rates_db["url"]).group(1))
    proxy = CutProxy(port)
    read_url = rates_db["url"].replace(f":{port}/", f":{proxy.port}/")
    s = support.Server(rates_db["url"], env={"RATES_DATABASE_READ_URL": read_url})
    try:
        assert support.wait_for(lambda: readyz(s, "?scope=read")[0] == 200)
        # Cuts of 450 ms every 1.3 s: the monitor looks once a second, so its looks drift
        # across the cycle and some land inside a cut (each then reconnects and is refused:
        # only the monitor uses the read URL here, the test reads nothing else). The cuts
        # run on their own thread, so a slow look at /readyz never lengthens one.
        done = threading.Event()

        def cycle():
            for _ in range(6):
                proxy.cut()
                time.sleep(0.45)
                proxy.mend()
                time.sleep(0.85)
            done.set()
        cutter = threading.Thread(target=cycle, daemon=True)
        cutter.start()
        seen = []
        while not done.is_set():
            seen.append(readyz(s, "?scope=read")[0])
            time.sleep(0.03)
        cutter.join()
        assert proxy.refused >= 2, proxy.refused  # looks did land inside cuts
        assert seen.count(200) == len(seen), seen
        # Longer than the retries: reads are unavailable, and the balancer is told.
        proxy.cut()
        assert support.wait_for(lambda: readyz(s, "?scope=read")[0] == 503, timeout=6)
        st, body = readyz(s, "?scope=read")
        assert body["checks"]["reads"] == "unavailable", body
        proxy.mend()
        assert support.wait_for(lambda: readyz(s, "?scope=read")[0] == 200, timeout=6)
    finally:
        proxy.close()
        assert s.stop() == 0
        assert not s.sanitizer_reports(), s.log_text()[-3000:]
