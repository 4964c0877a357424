"""Reading a drill's verdict like a careful client: from a stable leader, never once through a
load balancer right after a fault.

After a failover, a partition or a restart, the write endpoint (HAProxy) may still point at a
node that is going away, a replica that is not promoted yet, or nothing: one query then fails
with "server closed the connection unexpectedly", a refused connection or a read-only
transaction, and a verdict read that way is a flake, not a finding. LeaderReader.psql(sql)
asks who the leader is, checks on that node itself that it is out of recovery, runs the SQL
there, and returns only when the same leader has answered twice in a row; connection errors
are retried until a bound (60 s by default, 90 s on the Patroni stack). Every drill's ledger
and verdict reads go through it (drill.ledger_check's cluster argument).
"""
import time

# What a client retries: the server went away, is starting or stopping, or is not the primary.
RETRYABLE = ("server closed the connection", "connection refused", "could not connect",
             "connection to server", "terminating connection", "the database system is",
             "read-only", "recovery", "no leader", "timeout", "timed out", "ssl syscall",
             "no route to host", "network is unreachable", "could not receive data",
             "not running")


class NotStable(RuntimeError):
    pass


class LeaderReader:
    """.psql(sql) answered by a stable leader.

    leader() -> the leader's name, or None while there is none (Patroni's view);
    run(name, sql) -> psql's unaligned output of sql on that node, raising on an error;
    in_recovery(name) -> True when that node is still (or again) a replica."""

    def __init__(self, leader, run, in_recovery=None, timeout=60.0, interval=0.5, log=None):
        self.leader, self.run, self.in_recovery = leader, run, in_recovery
        self.timeout, self.interval, self.log = timeout, interval, log

    def _once(self, who, sql):
        if self.in_recovery is not None and self.in_recovery(who):
            raise RuntimeError(f"{who} is in recovery")
        return self.run(who, sql)

    def psql(self, sql, check=True):
        """sql's answer from the leader that answered it twice in a row (the second answer).
        NotStable after the timeout, with the last errors. check is accepted for the callers'
        signature; a non-retryable SQL error is raised at once either way."""
        deadline = time.monotonic() + self.timeout
        prev, errors = None, []
        while time.monotonic() < deadline:
            who = None
            try:
                who = self.leader()
                if who is None:
                    raise RuntimeError("no leader")
                got = self._once(who, sql)
            except Exception as e:  # noqa: BLE001 - classified below
                text = str(e).lower()
                if not any(r in text for r in RETRYABLE):
                    raise
                errors.append(f"{who}: {str(e).strip()[:160]}")
                prev = None
                time.sleep(self.interval)
                continue
            if prev == who:
                if len(errors) and self.log:
                    self.log(f"verdict read from {who} after {len(errors)} retried errors")
                return got
            prev = who
        raise NotStable(f"no leader answered twice in a row within {self.timeout} s: "
                        f"{errors[-5:]}")


def primary_node(s, timeout=3.0):
    """The one node whose Patroni answers GET /primary with 200, else None. Each node answers
    from its own state (it holds the leader key, its PostgreSQL runs as primary); GET /cluster
    reads the DCS and times out while etcd is slow or a member is cut off."""
    from tests.support.ha.stack import NODES, http_get
    up = [n for n in NODES if http_get(s.rest_url(n) + "/primary", timeout=timeout)[0] == 200]
    return up[0] if len(up) == 1 else None


def stack_reader(s, timeout=90.0):
    """A LeaderReader on a tests.support.ha.stack.Stack (or its netns variant): the node that
    alone answers GET /primary, psql to that node's own address. 90 s: wait_healthy's bound."""
    def in_recovery(n):
        return s.psql("SELECT pg_is_in_recovery()", url=s.node_url(n), timeout=10) != "f"

    def run(n, sql):
        return s.psql(sql, url=s.node_url(n), timeout=30)

    return LeaderReader(lambda: primary_node(s), run, in_recovery, timeout=timeout)
