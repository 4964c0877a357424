"""Loopback ports: the one free-port picker of the tests, the scripts and the HA stack.

`python3 -m tests.support.ports` (from the repository root) prints one free port, as
scripts/lib.sh's free_port does (-W ignore::RuntimeWarning:runpy: quiet)."""
import socket


def free_ports(n, host="127.0.0.1"):
    """n distinct free ports on host (held open together, so that they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host="127.0.0.1"):
    return free_ports(1, host)[0]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    print(free_port())
