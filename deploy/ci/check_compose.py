#!/usr/bin/env python3
"""check_compose.py RENDERED.yaml: the rules of compose.yaml on `docker-compose config` output.
No secret in any service's environment (passwords, tokens, URLs with credentials); every
*_FILE / __FILE variable names /run/secrets/NAME of a secret the service lists; every secret is
a file that exists with mode 0600 in a 0700 directory; every bind mount's source exists (no
dangling mounts)."""
import os
import re
import stat
import sys

import yaml

cfg = yaml.safe_load(open(sys.argv[1]))
problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)


SECRETISH = re.compile(r"PASSWORD|TOKEN|DATABASE_URL|DATA_SOURCE_NAME|DATA_SOURCE_PASS|SECRET")
secrets = cfg.get("secrets", {}) or {}
for name, s in secrets.items():
    f = s.get("file", "")
    need(f and os.path.isfile(f), f"secret {name}: file {f!r} missing")
    if f and os.path.isfile(f):
        mode = stat.S_IMODE(os.stat(f).st_mode)
        need(mode == 0o600, f"secret {name}: {f} has mode {oct(mode)}, not 0600")
        dmode = stat.S_IMODE(os.stat(os.path.dirname(f)).st_mode)
        need(dmode == 0o700, f"secret {name}: directory of {f} has mode {oct(dmode)}, not 0700")
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
    print(f"{sname}: {len(env)} environment variables, secrets {sorted(listed)}")
for x in problems:
    print("PROBLEM:", x)
print(f"check_compose: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
