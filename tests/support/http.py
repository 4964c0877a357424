"""HTTP on loopback: one request on a new connection (checked against the API document), and
raw bytes on a socket for what http.client cannot send."""
import http.client
import re
import socket
import time

from tests.support import contract


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


def raw_request(port, data, timeout=5):
    """Sends raw bytes on a new connection; returns (status or None, the response bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline and len(out) < 1 << 20:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                if m and len(body) >= int(m.group(1)):
                    break
        m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
        return (int(m.group(1)) if m else None), out
    finally:
        s.close()
