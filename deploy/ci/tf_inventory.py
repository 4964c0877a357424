#!/usr/bin/env python3
"""tf_inventory.py: renders deploy/terraform/templates/inventory.yaml.tpl with `terraform
console` (templatefile() needs no provider) for a 3-member HA environment and a dev one with
no database VM, and checks the result as Ansible will read it: the groups rates_db, rates_lb
and rates, every host with ansible_host and rates_ha_address, the app hosts in rates_lb,
ratesd pointed at the local HAProxy as rates_app and the owner's URL as rates, every database
URL through HAProxy with sslmode=verify-full against the cluster's CA, and passwords only as
Vault references. Exit 1 on a problem."""
import json
import os
import subprocess
import sys
import tempfile
from urllib.parse import parse_qs, urlsplit

import yaml

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
tpl = os.path.join(root, "deploy/terraform/templates/inventory.yaml.tpl")


def hosts(prefix, n, net):
    return {f"{prefix}-{i + 1}": {"ssh": f"198.51.100.{net + i}", "address": f"10.42.{i}.{net}"}
            for i in range(n)}


def hcl(v):  # JSON is valid HCL for these literals
    return json.dumps(v).replace('": ', '" = ')


def render(env, app, db, bucket):
    expr = (f'templatefile("{tpl}", {{environment = "{env}", region = "eu-central-1", '
            f'pgbackrest_bucket = "{bucket}", app_hosts = {hcl(app)}, db_hosts = {hcl(db)}}})')
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(["terraform", "console"], input=expr, text=True, capture_output=True,
                           cwd=d, env=dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null"), timeout=60)
    if p.returncode != 0:
        sys.exit(f"terraform console failed: {p.stderr[-2000:]}")
    out = p.stdout.strip()
    if out.startswith("<<EOT"):
        out = out[len("<<EOT"):].rsplit("EOT", 1)[0]
    return yaml.safe_load(out)


problems = []
for env, napp, ndb in (("prod", 2, 3), ("dev", 1, 0)):
    app = hosts(f"rates-{env}", napp, 10)
    db = hosts(f"rates-{env}-db", ndb, 20)
    inv = render(env, app, db, f"rates-{env}-pgbackrest-x" if ndb else "")
    ch = inv["all"]["children"]
    got_db = (ch.get("rates_db") or {}).get("hosts") or {}
    got_app = (ch.get("rates") or {}).get("hosts") or {}
    if set(got_db) != set(db):
        problems.append(f"{env}: rates_db hosts {sorted(got_db)} != {sorted(db)}")
    if set(got_app) != set(app):
        problems.append(f"{env}: rates hosts {sorted(got_app)} != {sorted(app)}")
    if "rates" not in ((ch.get("rates_lb") or {}).get("children") or {}):
        problems.append(f"{env}: the app hosts are not in rates_lb (HAProxy beside ratesd)")
    for name, h in {**got_db, **got_app}.items():
        want = {**db, **app}[name]
        if h.get("ansible_host") != want["ssh"] or h.get("rates_ha_address") != want["address"]:
            problems.append(f"{env}: {name} has {h}, want ssh {want['ssh']} address {want['address']}")
    repo = inv["all"]["vars"].get("rates_pgbackrest_repo_type")
    if repo != ("s3" if ndb else "posix"):
        problems.append(f"{env}: pgBackRest repository type {repo}")
    # Secrets only by reference to Vault variables, never a value.
    urls = [(ch.get("rates") or {}).get("vars", {}).get(k, "") for k in ("rates_database_url", "rates_database_read_url")]
    rvars = (ch.get("rates") or {}).get("vars", {})
    if not ndb:
        if rvars.get("rates_install_postgresql") is not True or "{{ vault_" not in rvars.get("rates_db_password", ""):
            problems.append(f"{env}: no database VM but no local PostgreSQL either: {rvars}")
    elif not all(u.startswith("postgresql://rates_app:{{ vault_rates_app_db_password")
                 and "@127.0.0.1:500" in u for u in urls):
        problems.append(f"{env}: ratesd not pointed at the local HAProxy as rates_app with a Vault "
                        f"password: {urls}")
    elif "{{ vault_rates_db_password" not in rvars.get("rates_owner_database_url", ""):
        problems.append(f"{env}: no owner URL (with a Vault password) to migrate with: {rvars}")
    if ndb:
        # Who connects where: the owner migrates on the write port, rates_app serves on both;
        # HAProxy only forwards TCP, so each URL verifies the member's certificate itself.
        want_url = {"rates_owner_database_url": ("rates", 5000),
                    "rates_database_url": ("rates_app", 5000),
                    "rates_database_read_url": ("rates_app", 5001)}
        for k, (user, port) in want_url.items():
            u = urlsplit(rvars.get(k, ""))
            q = parse_qs(u.query)
            if (u.scheme, u.username, u.hostname, u.port, u.path) != ("postgresql", user, "127.0.0.1", port, "/rates"):
                problems.append(f"{env}: {k} is not postgresql://{user}:...@127.0.0.1:{port}/rates: {rvars.get(k)}")
            if q.get("sslmode") != ["verify-full"] or q.get("sslrootcert") != ["/etc/rates/db-ca.crt"]:
                problems.append(f"{env}: {k} does not verify the member's certificate "
                                f"(sslmode=verify-full, sslrootcert=/etc/rates/db-ca.crt): {rvars.get(k)}")
    if "{{ vault_rates_app_db_password" not in rvars.get("rates_app_db_password", ""):
        problems.append(f"{env}: rates_app's password is not a Vault reference: {rvars}")
    if "token" in yaml.safe_dump(inv).lower():
        problems.append(f"{env}: the inventory names a token")
    print(f"{env}: {len(got_db)} db hosts, {len(got_app)} app hosts, repository {repo}")
for p in problems:
    print("tf_inventory:", p)
sys.exit(1 if problems else 0)
