"""tests/support/ha/alerts.py: the alert rules fire during the drills (issue 7).

  python3 -m tests.support.ha.alerts   (make ha-alerts-drill, from the repository root)

Runs on loopback: the Patroni stack (tests/support/ha/stack.py) with its ratesd, one postgres exporter per node
(Debian prometheus-postgres-exporter), Prometheus and Alertmanager (Debian packages) with the
deploy engineer's deploy/monitoring/alerts.yml and alertmanager.yml, and a tiny webhook
receiver (http.server). Then: replay paused on a replica (replication lag grows) and the
leader's Patroni and postmaster killed with kill -9 (not restarted: its exporter reports it down). Waits until Alertmanager has delivered RatesReplicationLag and
RatesDatabaseDown to the webhook; prints a JSON report.

The rule expressions are used as written; only `for:` durations of 2m or more are shortened
to 15s in the drill's copy (a drill cannot wait five minutes). RatesDatabaseDown keeps its 30s.
"""
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from tests.support.ha import drills
from tests.support.paths import ROOT
from tests.support.ports import free_port

MON = os.path.join(ROOT, "deploy", "monitoring")
WANT = ("RatesReplicationLag", "RatesDatabaseDown", "PatroniLeaderChanged")


class Webhook(http.server.BaseHTTPRequestHandler):
    received = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Webhook.lock:
            Webhook.received.append((time.monotonic(), json.loads(body or b"{}")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def firing():
    """{alertname: first time the webhook got it firing}."""
    out = {}
    with Webhook.lock:
        for t, msg in Webhook.received:
            for a in msg.get("alerts", []):
                name = a.get("labels", {}).get("alertname")
                if a.get("status") == "firing" and name not in out:
                    out[name] = t
    return out


def get_json(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.loads(r.read())


def alerts_drill(timeout_s=int(os.environ.get("RATES_ALERTS_TIMEOUT_S", "150"))):
    for tool in ("prometheus", "prometheus-alertmanager", "prometheus-postgres-exporter"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} is not installed (scripts/packages-test.txt)")
    work = tempfile.mkdtemp(prefix="rates-alerts-")
    report = {"drill": "alerts"}
    procs, srv = [], None
    os.chmod(work, 0o755)
    st = drills.up_stack(os.path.join(work, "ha"))
    lead = st.leader()
    # The asynchronous replica: synchronous mode never promotes it, so its lag stays visible.
    rep = [m["name"] for m in st.cluster()["members"] if m.get("role") == "replica"][0]
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        srv_port = st.ports["r1"]
        p = {k: free_port() for k in ("prom", "am", "exp1", "exp2")}
        # Copies of the deploy engineer's files, pointed at loopback.
        with open(os.path.join(MON, "alerts.yml")) as f:
            rules = re.sub(r"for: (\d+m)", "for: 15s", f.read())
        with open(os.path.join(work, "alerts.yml"), "w") as f:
            f.write(rules)
        with open(os.path.join(MON, "alertmanager.yml")) as f:
            am = re.sub(r'url: "http://[^"]*"',
                        f'url: "http://127.0.0.1:{hook.server_address[1]}/alerts"', f.read())
        am = re.sub(r"group_wait: \d+s", "group_wait: 1s", am)
        with open(os.path.join(work, "alertmanager.yml"), "w") as f:
            f.write(am)
        patroni_targets = ", ".join(f'"127.0.0.1:{st.ports[n + "_rest"]}"'
                                    for n in ("n1", "n2", "n3"))
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 3s
  scrape_timeout: 3s
  evaluation_interval: 1s
rule_files: [alerts.yml]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{p['am']}"]}}]
scrape_configs:
  - job_name: rates
    static_configs: [{{targets: ["127.0.0.1:{srv_port}"]}}]
  - job_name: postgres
    static_configs: [{{targets: ["127.0.0.1:{p['exp1']}", "127.0.0.1:{p['exp2']}"]}}]
  - job_name: patroni
    static_configs: [{{targets: [{patroni_targets}]}}]
""")

        def spawn(name, argv, env=None):
            lf = open(os.path.join(work, f"{name}.log"), "wb")
            procs.append((name, subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT,
                                                 env=env or os.environ.copy())))

        # pg_replication_lag (RatesReplicationLag) is not a built-in metric of the Debian
        # exporter (0.11): it comes from the query of its examples/queries.yaml.
        with open(os.path.join(work, "queries.yaml"), "w") as f:
            f.write('pg_replication:\n  query: "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 '
                    'ELSE GREATEST (0, EXTRACT(EPOCH FROM (now() - '
                    'pg_last_xact_replay_timestamp()))) END AS lag"\n  master: true\n'
                    '  metrics:\n    - lag:\n        usage: "GAUGE"\n'
                    '        description: "Replication lag behind the primary in seconds"\n')
        for i, node in ((1, lead), (2, rep)):
            dsn = st.node_url(node, "postgres") + "?sslmode=disable"
            spawn(f"exporter{i}", ["prometheus-postgres-exporter",
                                   f"--web.listen-address=127.0.0.1:{p[f'exp{i}']}",
                                   f"--extend.query-path={work}/queries.yaml"],
                  dict(os.environ, DATA_SOURCE_NAME=dsn))
        spawn("alertmanager", ["prometheus-alertmanager",
                               f"--config.file={work}/alertmanager.yml",
                               f"--storage.path={work}/am",
                               f"--web.listen-address=127.0.0.1:{p['am']}",
                               "--cluster.listen-address="])
        spawn("prometheus", ["prometheus", f"--config.file={work}/prometheus.yml",
                             f"--storage.tsdb.path={work}/prom",
                             f"--web.listen-address=127.0.0.1:{p['prom']}"])
        prom = f"http://127.0.0.1:{p['prom']}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ups = get_json(f"{prom}/api/v1/query?query=up")["data"]["result"]
                if len(ups) == 6 and all(r["value"][1] == "1" for r in ups):
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("Prometheus does not scrape all targets")
        quiet = firing()
        report["firing_before_faults"] = sorted(quiet)
        # The faults: replay paused on the standby while the primary commits; then kill -9.
        # The lag query measures from the last replayed commit: one must exist first.
        st.psql("CREATE TABLE IF NOT EXISTS ha_alert_drill (t timestamptz); "
                "INSERT INTO ha_alert_drill VALUES (now())")
        for _ in range(100):
            if st.psql("SELECT pg_last_xact_replay_timestamp() IS NOT NULL",
                       url=st.node_url(rep)) == "t":
                break
            time.sleep(0.1)
        st.psql("SELECT pg_wal_replay_pause()", url=st.node_url(rep))
        st.psql("INSERT INTO ha_alert_drill VALUES (now())")
        t0 = time.monotonic()
        st.kill_node(lead)
        report["primary_killed"] = True
        while time.monotonic() < t0 + timeout_s:
            got = firing()
            if all(w in got for w in WANT):
                break
            time.sleep(1)
        got = firing()
        report["fired_after_s"] = {k: round(v - t0, 1) for k, v in sorted(got.items())}
        report["expected_fired"] = all(w in got for w in WANT)
        try:
            report["prometheus_alerts"] = {
                a["labels"]["alertname"]: a["state"]
                for a in get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]}
            report["rule_errors"] = [
                r.get("lastError") for g in get_json(f"{prom}/api/v1/rules")["data"]["groups"]
                for r in g["rules"] if r.get("lastError")]
        except (OSError, ValueError, KeyError):
            pass
        try:
            lag = get_json(f"{prom}/api/v1/query?query=max(pg_replication_lag)")
            report["pg_replication_lag_s"] = lag["data"]["result"][0]["value"][1]
        except (OSError, ValueError, KeyError, IndexError):
            pass
    finally:
        for _, pr in procs:
            pr.terminate()
        for _, pr in procs:
            try:
                pr.wait(10)
            except subprocess.TimeoutExpired:
                pr.kill()
        hook.shutdown()
        left = st.down()
        if left:
            report["left_behind"] = left
        if report.get("expected_fired"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            report["kept"] = work
    return report


if __name__ == "__main__":
    rep = alerts_drill()
    print(json.dumps(rep, indent=2, sort_keys=True))
    sys.exit(0 if rep.get("expected_fired") else 1)
