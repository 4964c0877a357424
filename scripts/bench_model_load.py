"""The read model's load from PostgreSQL and a zero-downtime upgrade at size (issue 26):
BENCH_MODEL_LOAD_PRICES random prices (10,000,000 by default; routes among the dump's ports,
days over one year) are inserted on a throwaway cluster with triggers off (the model loads from
`prices`, not from the change log), then one ratesd starts: the time to healthy, the model's
own load time, keys and bytes, and the process's RSS. Then SIGUSR2: the new process loads its
own model while the old one serves, so the peak RSS of both together is printed with the time
the hand-over took. Bounded: each wait at most BENCH_MODEL_LOAD_TIMEOUT_S (600)."""
import os
import signal
import subprocess
import sys
import time

from tests import support
from tests.support import ops

PRICES = int(os.environ.get("BENCH_MODEL_LOAD_PRICES", "10000000"))
TIMEOUT_S = int(os.environ.get("BENCH_MODEL_LOAD_TIMEOUT_S", "600"))


def status_mib(pid, key):
    return ops.status_kb(pid, key) / 1024


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def main():
    pg = support.PgCluster(extra_conf="max_wal_size = 8GB\nwork_mem = '256MB'\n")
    server = None
    new_pid = None
    try:
        support.create_rates_db(pg, "bench_model")
        t0 = time.monotonic()
        pg.psql("SET session_replication_role = replica; "
                "WITH c AS (SELECT array_agg(code) a, count(*) n FROM ports) "
                "INSERT INTO prices (orig_code, dest_code, day, price) "
                "SELECT a[1 + floor(random() * n)::int], a[1 + floor(random() * n)::int], "
                "date '2017-01-01' + floor(random() * 365)::int, floor(random() * 3000)::int "
                f"FROM c, generate_series(1, {PRICES})", db="bench_model")
        pg.psql("VACUUM ANALYZE prices", db="bench_model")
        total = pg.psql("SELECT count(*) FROM prices", db="bench_model")
        print(f"prices: {int(total):,} ({PRICES:,} inserted in {time.monotonic() - t0:.1f} s)")
        server = support.Server(pg.url("bench_model", user="rates_app"), wait=False,
                                env={"RATES_LOG_LEVEL": "warn",
                                     "RATES_MODEL_MAX_BYTES": str(4 << 30),
                                     "RATES_UPGRADE_TIMEOUT_S": str(TIMEOUT_S)})
        t0 = time.monotonic()
        server.wait_healthy(timeout=TIMEOUT_S)
        current = int(server.metric('rates_model_state{state="current"}'))
        print(f"start: healthy after {time.monotonic() - t0:.1f} s; model load "
              f"{server.metric('rates_model_load_seconds'):.1f} s, "
              f"{int(server.metric('rates_model_keys')):,} keys, "
              f"{server.metric('rates_model_bytes') / 1e6:.1f} MB; state current {current}; "
              f"RSS {status_mib(server.proc.pid, 'VmRSS'):.1f} MiB, "
              f"peak {status_mib(server.proc.pid, 'VmHWM'):.1f} MiB")
        old = server.proc.pid
        t0 = time.monotonic()
        server.signal(signal.SIGUSR2)
        peak = 0.0
        while time.monotonic() - t0 < TIMEOUT_S and server.proc.poll() is None:
            kids = children(old)
            if kids:
                new_pid = kids[0]
            peak = max(peak, status_mib(old, "VmRSS") + sum(status_mib(k, "VmRSS") for k in kids))
            time.sleep(0.05)
        took = time.monotonic() - t0
        if server.proc.poll() is None or not new_pid:
            print(f"upgrade: not handed over in {took:.0f} s", file=sys.stderr)
            return 1
        print(f"upgrade (SIGUSR2): the old process exited {server.proc.returncode} after "
              f"{took:.1f} s; peak RSS of both together {peak:.1f} MiB; the new process's "
              f"peak {status_mib(new_pid, 'VmHWM'):.1f} MiB")
        return 0
    finally:
        if new_pid:
            try:
                os.kill(new_pid, signal.SIGTERM)
                for _ in range(200):
                    if status_mib(new_pid, "VmRSS") == 0:
                        break
                    time.sleep(0.05)
            except OSError:
                pass
        if server:
            server.stop()
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
