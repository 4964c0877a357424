#!/usr/bin/env python3
"""check_compose.py RENDERED.yaml: the rules of compose.yaml on `docker-compose config` output.
No secret in any service's environment (passwords, tokens, URLs with credentials); every
*_FILE / __FILE variable names /run/secrets/NAME of a secret the service lists; every secret is
a file that exists with mode 0600 in a 0700 directory; every bind mount's source exists (no
dangling mounts). Roles: every ratesd server (RATES_LISTEN) connects as rates_app (the user of
its URL files) and lists none of the owner's secrets; the postgres exporter logs in as
rates_monitor with rates_monitor_password, which no other service lists, and holds none of the
owner's secrets either. Profile ha (when present): each Patroni node has its own name, DNS name and
data volume and lists Patroni's secrets; every server of its HAProxy config is an ha service;
the ha database URLs (secret files) go through HAProxy."""
import os
import re
import stat
import sys
from urllib.parse import urlsplit

import yaml

cfg = yaml.safe_load(open(sys.argv[1]))
problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)


SECRETISH = re.compile(r"PASSWORD|TOKEN|DATABASE_URL|DATA_SOURCE_NAME|DATA_SOURCE_PASS|SECRET|VERIFIER")
# The owner's credentials (a superuser in compose): for the database and the one-shot inits only.
OWNER_SECRETS = {"postgres_password", "owner_database_url", "ha_owner_database_url"}
MONITOR_SECRET = "rates_monitor_password"
secrets = cfg.get("secrets", {}) or {}
for name, s in secrets.items():
    f = s.get("file", "")
    need(f and os.path.isfile(f), f"secret {name}: file {f!r} missing")
    if f and os.path.isfile(f):
        mode = stat.S_IMODE(os.stat(f).st_mode)
        need(mode == 0o600, f"secret {name}: {f} has mode {oct(mode)}, not 0600")
        dmode = stat.S_IMODE(os.stat(os.path.dirname(f)).st_mode)
        need(dmode == 0o700, f"secret {name}: directory of {f} has mode {oct(dmode)}, not 0700")


def url_user(secret):
    """The user of the URL in secret's file, or None when the file is missing."""
    f = secrets.get(secret, {}).get("file", "")
    if not os.path.isfile(f):
        return None
    return urlsplit(open(f).read().strip()).username


def check_roles(sname, env, listed):
    """Who connects as what: servers as rates_app, the exporter as rates_monitor, neither as the owner."""
    exporter = any(k.startswith("DATA_SOURCE_") for k in env)
    if "RATES_LISTEN" in env or exporter:
        need(not listed & OWNER_SECRETS, f"{sname}: lists the owner's secrets {sorted(listed & OWNER_SECRETS)}")
    if "RATES_LISTEN" in env:
        for k in ("RATES_DATABASE_URL_FILE", "RATES_DATABASE_READ_URL_FILE"):
            if k in env:
                user = url_user(os.path.basename(str(env[k])))
                need(user in (None, "rates_app"), f"{sname}: {k} connects as {user}, not rates_app")
    if exporter:
        need(env.get("DATA_SOURCE_USER") == "rates_monitor", f"{sname}: the exporter logs in as "
             f"{env.get('DATA_SOURCE_USER')!r}, not rates_monitor (pg_monitor only)")
        need(env.get("DATA_SOURCE_PASS_FILE") == f"/run/secrets/{MONITOR_SECRET}",
             f"{sname}: DATA_SOURCE_PASS_FILE is not /run/secrets/{MONITOR_SECRET}")
    else:
        need(MONITOR_SECRET not in listed, f"{sname}: lists {MONITOR_SECRET} (the exporter's alone)")


for sname, svc in cfg.get("services", {}).items():
    env = svc.get("environment", {}) or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    listed = set()
    for s in svc.get("secrets", []) or []:
        listed.add(s if isinstance(s, str) else s.get("source"))
    for k, v in env.items():
        v = "" if v is None else str(v)
        if k.endswith("_FILE"):
            m = re.fullmatch(r"/run/secrets/([\w.-]+)", v)
            need(m and m.group(1) in listed, f"{sname}: {k}={v} is not a secret the service lists")
            continue
        need(not SECRETISH.search(k), f"{sname}: {k} in the environment (a secret: use {k}_FILE)")
        need(not re.search(r"://[^/@\s]*:[^/@\s]+@", v), f"{sname}: {k} holds a URL with a password")
    for s in listed:
        need(s in secrets, f"{sname}: secret {s} is not defined")
    for vol in svc.get("volumes", []) or []:
        src = vol.get("source") if isinstance(vol, dict) else vol.split(":")[0]
        typ = vol.get("type") if isinstance(vol, dict) else ("bind" if src.startswith(("/", ".")) else "volume")
        if typ == "bind":
            need(os.path.exists(src), f"{sname}: bind mount source {src} does not exist (dangling mount)")
    check_roles(sname, env, listed)
    print(f"{sname}: {len(env)} environment variables, secrets {sorted(listed)}")


def check_ha(services):
    """The ha profile's own rules (deploy/compose/ha)."""
    ha = {n: s for n, s in services.items() if "ha" in (s.get("profiles") or [])}
    if not ha:
        return
    nodes = {n: s for n, s in ha.items() if "PATRONI_NAME" in (s.get("environment") or {})}
    need(len(nodes) == 3, f"ha: {len(nodes)} Patroni nodes, not 3")
    names = [s["environment"]["PATRONI_NAME"] for s in nodes.values()]
    need(len(set(names)) == len(names), f"ha: Patroni names repeat: {names}")
    vols = {}
    for n, s in nodes.items():
        env = s["environment"]
        need(env.get("RATES_HA_HOST") == n == s.get("hostname"),
             f"{n}: RATES_HA_HOST and hostname must be the service name (its DNS name)")
        listed = {x if isinstance(x, str) else x.get("source") for x in s.get("secrets") or []}
        for want in ("ha_superuser_password", "ha_replication_password", "ha_rest_password"):
            need(want in listed, f"{n}: secret {want} not listed")
        for v in s.get("volumes") or []:
            src = v.get("source") if isinstance(v, dict) else v.split(":")[0]
            vols.setdefault(src, []).append(n)
    for src, users in vols.items():
        need(len(users) == 1, f"ha: volume {src} shared by {users} (each node needs its own data)")
    cfg_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compose", "ha", "haproxy", "haproxy.cfg")
    servers = re.findall(r"^\s*server\s+\S+\s+([\w.-]+):\d+", open(cfg_path).read(), re.M)
    need(servers, "ha: no server in haproxy.cfg")
    for host in servers:
        need(host in ha, f"ha: haproxy.cfg names {host}, which is not an ha service")
    for name, sec in secrets.items():
        f = sec.get("file", "")
        if name.startswith("ha_") and name.endswith("database_url") and os.path.isfile(f):
            m = re.search(r"@([\w.-]+):\d+/", open(f).read())
            need(m and m.group(1) in ha and "haproxy" in m.group(1),
                 f"secret {name}: the URL does not go through the ha HAProxy")


check_ha(cfg.get("services", {}))
for x in problems:
    print("PROBLEM:", x)
print(f"check_compose: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
