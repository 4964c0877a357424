#!/usr/bin/env python3
"""Checks the PromQL of the Grafana dashboard with promtool, and every metric name used by the
dashboard and the alert rules against the names ratesd exports (src/metrics.c).

  check_promql.py DASHBOARD.json ALERTS.yml METRICS.c OUT_RULES.yml
Writes OUT_RULES.yml: one recording rule per panel query (Grafana's $variables replaced by
values promtool can parse), then runs `promtool check rules` on it. Exit 1 on any problem."""
import json
import re
import subprocess
import sys

dash_path, alerts_path, metrics_c, out = sys.argv[1:5]
with open(dash_path) as f:
    dash = json.load(f)
exprs = []
for panel in dash["panels"]:
    for t in panel.get("targets", []):
        e = t["expr"]
        e = e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        e = re.sub(r"=~\"\$\w+\"", '=~".+"', e)
        e = re.sub(r"\$\w+", "x", e)
        exprs.append((panel["title"], e))
with open(out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        f.write(f"      # {title}\n      - record: dashboard:q{i}\n        expr: {json.dumps(e)}\n")
problems = []
r = subprocess.run(["promtool", "check", "rules", out], capture_output=True, text=True)
if r.returncode != 0:
    problems.append("promtool: " + r.stdout + r.stderr)
with open(metrics_c) as f:
    src = f.read()
exported = set(re.findall(r'"(rates_[a-z_]+|process_[a-z_]+)', src))
hist = {m for m in exported if m.endswith("_seconds")}
with open(alerts_path) as f:
    alert_text = f.read()
used = set(re.findall(r"\b(rates_[a-z_]+|process_[a-z_]+)\b", alert_text + " ".join(e for _, e in exprs)))
for m in sorted(used):
    base = re.sub(r"_(bucket|sum|count)$", "", m)
    if m in exported or (base in hist and base != m):
        continue
    problems.append(f"metric {m} is not exported by ratesd ({metrics_c})")
for p in problems:
    print(p)
print(f"check_promql: {len(exprs)} dashboard queries, {len(used)} metric names, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
