"""Request smuggling through the product's balancer (issue 27, item 7): HAProxy with
deploy/haproxy/haproxy.cfg as shipped, every backend slot pointing at one ratesd, on loopback.

Smuggling needs the two parsers to disagree about where a request ends, so that bytes an
attacker sent as a body become the start of a request that HAProxy then attributes to another
client on a shared (reused) backend connection. Each attack below is sent while victims keep
asking, over their own keep-alive connections, for a response whose body only they expect;
the test fails when a victim gets another answer than its own, or when ratesd ever logs the
smuggled path. What the attacker itself gets back (400 from HAProxy or from ratesd, or its
own pipelined request answered) is not the question. Bounded: 8 attacks, victims stop with
the attack's 3-second window."""
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from tests import support
from tests.support import ingest as iu

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")

CFG = os.path.join(support.ROOT, "deploy", "haproxy", "haproxy.cfg")
MARK = b"/smuggled-by-attacker"
SMUGGLED = b"GET " + MARK + b" HTTP/1.1\r\nHost: x\r\nX-Pad: "

ATTACKS = {
    # The front end takes Content-Length, the back end chunked (CL.TE), and the reverse.
    "cl-te": b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-cl": b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "te-obfuscated-space": b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                          b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-obs-fold": b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                   b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-list": b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-xchunked": b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                   b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "duplicate-content-length": b"POST /batches HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                b"Content-Length: %d\r\n\r\n" + SMUGGLED,
    "get-with-body": b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     + SMUGGLED,
}


def _attack_bytes(name):
    raw = ATTACKS[name]
    if b"%x" in raw:
        return raw.replace(b"%x", format(len(SMUGGLED), "x").encode())
    if b"%d" in raw:
        body = raw.partition(b"\r\n\r\n")[2]
        return raw.replace(b"%d", str(len(body)).encode(), 1)
    return raw


@pytest.fixture(scope="module")
def lb(pg):
    url = iu.make_db(pg, "smuggling_lb")
    s = iu.start_server(url)
    port, stats = support.free_port(), support.free_port()
    env = dict(os.environ, RATES_LB_BIND=f"127.0.0.1:{port}", RATES_LB_STATS=f"127.0.0.1:{stats}",
               RATES_BACKEND_1=f"127.0.0.1:{s.port}", RATES_BACKEND_2=f"127.0.0.1:{s.port}",
               RATES_BACKEND_3=f"127.0.0.1:{s.port}")
    log = open(os.path.join(s.logdir, "haproxy.log"), "wb")
    hp = subprocess.Popen(["haproxy", "-db", "-f", CFG], env=env, stdout=log,
                          stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert hp.poll() is None, "haproxy exited"
            try:
                if support.request("GET", "/healthz", port=port, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "haproxy did not pass /healthz in 15 s"
            time.sleep(0.1)
        yield s, port
    finally:
        hp.terminate()
        hp.wait(10)
        log.close()
        iu.stop_server(s)


def _victim(port, stop, wrong, served):
    """Keep-alive GETs whose answer names the victim's own request (the Request-Id echo)."""
    n = 0
    while not stop.is_set() and n < 400:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
                for _ in range(5):
                    n += 1
                    rid = f"victim-{threading.get_ident()}-{n}"
                    c.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: {rid}\r\n\r\n"
                              .encode())
                    head = b""
                    while b"\r\n\r\n" not in head:
                        got = c.recv(4096)
                        if not got:
                            raise ConnectionError("closed")
                        head += got
                    if not head.startswith(b"HTTP/1.1 200") or rid.encode() not in head:
                        wrong.append(head[:300])
                    served.append(1)
        except OSError:
            pass  # a closed keep-alive connection is not a wrong answer


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_attack_through_haproxy_reaches_no_other_client(lb, name):
    s, port = lb
    stop, wrong, served = threading.Event(), [], []
    victims = [threading.Thread(target=_victim, args=(port, stop, wrong, served))
               for _ in range(3)]
    for v in victims:
        v.start()
    try:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    c.sendall(_attack_bytes(name))
                    c.settimeout(0.3)
                    try:
                        while c.recv(65536):
                            pass
                    except OSError:
                        pass
            except OSError:
                pass
    finally:
        stop.set()
        for v in victims:
            v.join(10)
    assert served, "no victim request was answered"
    assert not wrong, f"{name}: a victim got another answer: {wrong[:2]}"
    assert MARK.decode() not in s.log_text(), f"{name}: ratesd served the smuggled request"
