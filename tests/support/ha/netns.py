"""tests/support/ha/netns.py: a private network of Linux network namespaces for the partition drill.

One namespace per node (rha-<pid>-n1..n3), one holding a bridge (rha-<pid>-br) and one for
the clients and the observer (rha-<pid>-app). Each node and app namespace has an `eth0`, a
veth whose peer is a port of the bridge; addresses are 10.213.0.0/24 and exist only inside
these namespaces. Nothing is created in, or routed from, the root namespace: the veth pairs
are created directly between two of our namespaces (`ip -n A link add ... netns B`).

partition(node) takes the node's eth0 down inside its namespace: its processes still reach
each other on the node's own address (local routes stay), nothing crosses to the others.
heal(node) brings it up again.

enter(ns) switches the CALLING THREAD into a namespace (setns(2) is per thread) and back:
sockets opened meanwhile, processes forked meanwhile and threads started meanwhile live there.

Namespaces are named with the owning process's pid; leftovers of a dead owner are deleted by
cleanup_leftovers() (never those of a live one: another drill may be running). Needs root.
"""
import contextlib
import ctypes
import os
import re
import subprocess
import time

PREFIX = "rha-"
SUBNET = "10.213.0.0/24"
APP_ADDR = "10.213.0.2"
NODE_ADDRS = {"n1": "10.213.0.11", "n2": "10.213.0.12", "n3": "10.213.0.13"}
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def available():
    """'' when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
        return "iproute2 (ip) is missing"
    return ""


def cleanup_leftovers():
    """Deletes rha-<pid>-* namespaces whose pid no longer runs; returns their names."""
    gone = []
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(rf"^{PREFIX}(\d+)-", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            _ip("netns", "del", name, check=False)
            gone.append(name)
    return gone


class Net:
    """The namespaces of one drill; create() builds them, destroy() deletes them."""

    def __init__(self, nodes=("n1", "n2", "n3")):
        self.id = f"{PREFIX}{os.getpid()}"
        self.nodes = tuple(nodes)
        self.created = []

    def ns(self, who):
        """Namespace name of a node, 'app' or 'br'."""
        return f"{self.id}-{who}"

    def addr(self, who):
        return APP_ADDR if who == "app" else NODE_ADDRS[who]

    def create(self):
        cleanup_leftovers()
        br = self.ns("br")
        for who in ("br", "app") + self.nodes:
            _ip("netns", "add", self.ns(who))
            self.created.append(self.ns(who))
            _ip("-n", self.ns(who), "link", "set", "lo", "up")
        _ip("-n", br, "link", "add", "br0", "type", "bridge")
        _ip("-n", br, "link", "set", "br0", "up")
        for who in ("app",) + self.nodes:
            ns, port = self.ns(who), f"v-{who}"
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                "netns", br)
            _ip("-n", br, "link", "set", port, "master", "br0")
            _ip("-n", br, "link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{self.addr(who)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return self

    def partition(self, node):
        _ip("-n", self.ns(node), "link", "set", "eth0", "down")

    def heal(self, node):
        _ip("-n", self.ns(node), "link", "set", "eth0", "up")

    def pids(self):
        """Processes still inside our namespaces (ip netns pids)."""
        out = []
        for ns in self.created:
            out += [int(p) for p in _ip("netns", "pids", ns, check=False).split()]
        return out

    def destroy(self, wait_s=10):
        """Deletes the namespaces; returns the pids still found in them first (which a
        correct teardown leaves empty). The names go in any case."""
        deadline = time.monotonic() + wait_s
        left = self.pids()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = self.pids()
        for ns in reversed(self.created):
            _ip("netns", "del", ns, check=False)
        self.created = []
        return left

    @contextlib.contextmanager
    def enter(self, who):
        """The calling thread inside a namespace for the block (sockets, forks, threads)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/run/netns/{self.ns(who)}", os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)
