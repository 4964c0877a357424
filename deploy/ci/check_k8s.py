#!/usr/bin/env python3
"""check_k8s.py DIR: the rules of deploy/k8s on the rendered overlays DIR/{dev,staging,prod}.yaml
(probes on the real endpoints, preStop and a grace period covering the drain, maxUnavailable 0,
resources, restrictive securityContext, migrations in an init container, config from a
ConfigMap and Secrets mounted as files (the _FILE forms; no secret in any environment), ServiceMonitor + PrometheusRule equal to deploy/monitoring/alerts.yml,
and per overlay: replicas, HPA 3-20, PDB, zone spread, CloudNativePG Cluster of 3 with the
read-only service). Also the CRD objects no schema package covers (Cluster).
Roles, in every overlay: the migrate init container reads its URL from a Secret that ratesd does
not mount, and ratesd mounts no Secret of the PostgreSQL StatefulSet (the owner's password is
out of its reach). In dev, whose Secrets are rendered: ratesd's URL names rates_app, migrate's
the StatefulSet's POSTGRES_USER, the PostgreSQL container has both passwords, and no credential
of a Secret (a URL's password, a token of NAME:TOKEN, any other value whole) is shorter than 16
characters or found in a file committed to git (deploy/k8s/overlays/dev/make-secrets.sh makes
them); values are never printed."""
import base64
import os
import re
import subprocess
import sys
from urllib.parse import unquote, urlsplit

import yaml

d = sys.argv[1]
root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
alerts = yaml.safe_load(open(os.path.join(root, "deploy/monitoring/alerts.yml")))
problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)


# Variables that hold a secret: they must never be set in a manifest (value or secretKeyRef);
# their _FILE forms name a file of a Secret volume instead.
SECRET_VARS = ("RATES_DATABASE_URL", "RATES_DATABASE_READ_URL", "RATES_INGEST_TOKENS",
               "POSTGRES_PASSWORD", "DB_PASSWORD", "PGPASSWORD", "DATA_SOURCE_NAME", "DATA_SOURCE_PASS")


def no_secret_env(n, c):
    """No secret reaches container c through its environment."""
    for e in c.get("env", []):
        need(e["name"] not in SECRET_VARS, f"{n}: {e['name']} in the environment (use {e['name']}_FILE)")
        need("secretKeyRef" not in e.get("valueFrom", {}), f"{n}: {e['name']} from secretKeyRef (mount the Secret)")
    for ef in c.get("envFrom", []):
        need("secretRef" not in ef, f"{n}: envFrom a Secret (mount it as files)")


def secret_file(n, pod, c, var):
    """Container c reads var from a file of a mounted Secret volume; returns the Secret's name."""
    env = {e["name"]: e for e in c.get("env", [])}
    path = env.get(var, {}).get("value", "")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(mp):
            continue
        sec = vols.get(m["name"], {}).get("secret")
        need(sec is not None, f"{n}: {var} {path} is not on a Secret volume")
        if sec is None:
            return None
        need(m.get("readOnly") is True, f"{n}: Secret volume {m['name']} mounted read-only")
        mode = sec.get("defaultMode", 0o644)
        need(mode & 0o007 == 0,
             f"{n}: Secret volume {m['name']} defaultMode {oct(mode)} leaves the files world-readable")
        items = [i["path"] for i in sec.get("items", [])]
        need(not items or path[len(mp):] in items, f"{n}: {var} {path}: no such key in Secret {sec['secretName']}")
        return sec["secretName"]
    need(False, f"{n}: {var} = {path!r} is not a file under a Secret volume mount")
    return None


def secret_key(pod, c, var):
    """(Secret name, key) that container c reads var's file from, or None."""
    path = {e["name"]: e for e in c.get("env", [])}.get(var, {}).get("value", "")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/") + "/"
        sec = vols.get(m["name"], {}).get("secret")
        if path.startswith(mp) and sec:
            rel = path[len(mp):]
            keys = {i["path"]: i["key"] for i in sec.get("items", [])}
            return sec["secretName"], keys.get(rel, rel)
    return None


def mounted_secrets(pod, c):
    """Names of the Secrets whose volumes container c mounts."""
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    return {vols[m["name"]]["secret"]["secretName"] for m in c.get("volumeMounts", [])
            if "secret" in vols.get(m["name"], {})}


def credentials(key, value):
    """The secret parts of a Secret value: a URL's password, the TOKEN of NAME:TOKEN lines, else the value."""
    value = value.strip()
    if re.match(r"[a-z][a-z0-9+.-]*://", value):
        pw = urlsplit(value).password
        return [unquote(pw)] if pw else []
    if key == "tokens":
        return [ln.split(":", 1)[1].strip() for ln in value.splitlines() if ":" in ln]
    return [value] if value else []


_committed = None


def committed_files():
    """(path, bytes) of every file committed to git; without .git (a `make dist` tarball), every
    file but the git-ignored kinds."""
    global _committed
    if _committed is not None:
        return _committed
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True, check=True).stdout
        paths = [p for p in out.decode(errors="replace").split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        skip = re.compile(r"^(build[^/]*|\.git|var|\.run|\.secrets|deploy/k8s/overlays/dev/secrets)(/|$)|(^|/)(__pycache__|"
                          r"\.pytest_cache|node_modules)(/|$)")
        paths = []
        for top, dirs, files in os.walk(root):
            rel = os.path.relpath(top, root)
            rel = "" if rel == "." else rel + "/"
            dirs[:] = [x for x in dirs if not skip.search(rel + x)
                       and os.path.abspath(os.path.join(top, x)) != os.path.abspath(d)]
            paths += [rel + f for f in files]
    _committed = []
    for rel in paths:
        full = os.path.join(root, rel)
        if os.path.isfile(full) and not os.path.islink(full):
            with open(full, "rb") as f:
                _committed.append((rel, f.read()))
    return _committed


def check_roles(p, by, pod, main, mig):
    """Who connects as what (see the module's docstring)."""
    owner = secret_key(pod, mig, "RATES_DATABASE_URL_FILE") if mig else None
    served = mounted_secrets(pod, main)
    if owner:  # without one, the checks of the init container have said so
        need(owner[0] not in served, f"{p} ratesd mounts the Secret the migrations read the owner's URL from ({owner[0]})")
    pg = [o for o in by.get("StatefulSet", []) if any("POSTGRES_PASSWORD_FILE" in {e["name"] for e in c.get("env", [])}
                                                       for c in o["spec"]["template"]["spec"]["containers"])]
    for o in pg:
        opod = o["spec"]["template"]["spec"]
        for c in opod["containers"]:
            both = served & mounted_secrets(opod, c)
            need(not both, f"{p} ratesd mounts {sorted(both)}, a Secret of the PostgreSQL {o['metadata']['name']}")
    if not by.get("Secret"):
        return  # staging, prod: the Secrets come from CloudNativePG and a secret manager
    data = {}
    for o in by["Secret"]:
        vals = {k: base64.b64decode(v).decode(errors="replace") for k, v in (o.get("data") or {}).items()}
        vals.update(o.get("stringData") or {})
        data[o["metadata"]["name"]] = vals

    def url(ref):
        return urlsplit(data.get(ref[0], {}).get(ref[1], "").strip()) if ref else urlsplit("")

    app = url(secret_key(pod, main, "RATES_DATABASE_URL_FILE"))
    need(app.username == "rates_app", f"{p} ratesd connects as {app.username!r}, not rates_app (the least-privilege role)")
    read = secret_key(pod, main, "RATES_DATABASE_READ_URL_FILE")
    need(read is None or url(read).username == "rates_app", f"{p} ratesd reads as {url(read).username!r}, not rates_app")
    own = url(owner)
    need(len(pg) == 1, f"{p} one PostgreSQL StatefulSet with POSTGRES_PASSWORD_FILE")
    if len(pg) == 1:
        opod = pg[0]["spec"]["template"]["spec"]
        c = next(c for c in opod["containers"] if "POSTGRES_PASSWORD_FILE" in {e["name"] for e in c.get("env", [])})
        user = {e["name"]: e.get("value") for e in c.get("env", [])}.get("POSTGRES_USER", "postgres")
        need(own.username == user and user != "rates_app", f"{p} migrate connects as {own.username!r}, not the owner {user!r}")
        pw = secret_key(opod, c, "POSTGRES_PASSWORD_FILE")
        need(pw and data.get(pw[0], {}).get(pw[1], "").strip() == unquote(own.password or ""),
             f"{p} the owner's URL and the PostgreSQL's POSTGRES_PASSWORD_FILE differ")
        held = {v.strip() for n in mounted_secrets(opod, c) for v in data.get(n, {}).values()}
        need(unquote(app.password or "") in held,
             f"{p} the PostgreSQL container has no Secret with rates_app's password (its init script creates the role)")
    for name, vals in sorted(data.items()):
        for key, value in sorted(vals.items()):
            for cred in credentials(key, value):
                need(len(cred) >= 16, f"{p} Secret {name} key {key}: a credential of {len(cred)} characters "
                     "(generated ones are 32: deploy/k8s/overlays/dev/make-secrets.sh)")
                hit = next((rel for rel, blob in committed_files() if cred.encode() in blob), None)
                need(hit is None, f"{p} Secret {name} key {key}: a credential committed to git, in {hit}")


for env in ("dev", "staging", "prod"):
    objs = [o for o in yaml.safe_load_all(open(os.path.join(d, env + ".yaml"))) if o]
    by = {}
    for o in objs:
        by.setdefault(o["kind"], []).append(o)
    p = f"[{env}]"
    deps = [o for o in by.get("Deployment", []) if o["metadata"]["name"] == "rates"]
    need(len(deps) == 1, f"{p} one Deployment rates")
    if not deps:
        continue
    dep = deps[0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    cms = {o["metadata"]["name"]: o.get("data", {}) for o in by.get("ConfigMap", [])}
    cfg = {}
    for c in pod["containers"]:
        for ef in c.get("envFrom", []):
            cfg.update(cms.get(ef.get("configMapRef", {}).get("name"), {}))
    need(cfg, f"{p} ratesd takes its configuration from a ConfigMap")
    need(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") == 0, f"{p} maxUnavailable 0")
    main = next((c for c in pod["containers"] if c["name"] == "ratesd"), None)
    need(main is not None, f"{p} container ratesd")
    if main is None:
        continue
    need(main.get("startupProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{p} startupProbe on /healthz")
    need(main.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{p} readinessProbe on /readyz")
    need(main.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{p} livenessProbe on /healthz")
    pre = main.get("lifecycle", {}).get("preStop", {})
    need(pre, f"{p} preStop hook")
    pre_s = 0
    cmd = pre.get("exec", {}).get("command", [])
    if cmd[:1] == ["sleep"]:
        pre_s = int(cmd[1])
    elif "sleep" in pre:
        pre_s = int(pre["sleep"]["seconds"])
    drain = int(cfg.get("RATES_DRAIN_DELAY_S", 0))
    shut = int(cfg.get("RATES_SHUTDOWN_TIMEOUT_S", 60))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    need(grace >= pre_s + drain + shut, f"{p} terminationGracePeriodSeconds {grace} < preStop {pre_s} + drain {drain} + shutdown {shut}")
    need(drain > 0, f"{p} RATES_DRAIN_DELAY_S > 0 so load balancers stop sending before the listener closes")
    psc = pod.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, f"{p} pod runs as non-root")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{p} seccomp RuntimeDefault")
    need(pod.get("automountServiceAccountToken") is False, f"{p} no service account token")
    for c in pod["containers"] + pod.get("initContainers", []):
        n = f"{p} container {c['name']}"
        sc = c.get("securityContext", {})
        need(sc.get("readOnlyRootFilesystem") is True, f"{n}: readOnlyRootFilesystem")
        need(sc.get("allowPrivilegeEscalation") is False, f"{n}: allowPrivilegeEscalation false")
        need("ALL" in sc.get("capabilities", {}).get("drop", []), f"{n}: drop ALL capabilities")
        need(not sc.get("privileged"), f"{n}: not privileged")
        r = c.get("resources", {})
        need(r.get("requests", {}).get("cpu") and r.get("requests", {}).get("memory") and r.get("limits", {}).get("memory"),
             f"{n}: cpu/memory requests and a memory limit")
        no_secret_env(n, c)
        need(secret_file(n, pod, c, "RATES_DATABASE_URL_FILE"), f"{n}: RATES_DATABASE_URL_FILE from a Secret volume")
        if c["name"] == "ratesd":
            need(secret_file(n, pod, c, "RATES_INGEST_TOKENS_FILE"), f"{n}: RATES_INGEST_TOKENS_FILE from a Secret volume")
    for o in by.get("StatefulSet", []) + by.get("Deployment", []):
        opod = o["spec"]["template"]["spec"]
        for c in opod["containers"] + opod.get("initContainers", []):
            no_secret_env(f"{p} {o['kind']} {o['metadata']['name']} container {c['name']}", c)
    mig = [c for c in pod.get("initContainers", []) if c.get("args", [])[:1] == ["migrate"]]
    need(len(mig) == 1, f"{p} one init container running `ratesd migrate` (advisory lock: once per rollout)")
    check_roles(p, by, pod, main, mig[0] if len(mig) == 1 else None)
    sms = by.get("ServiceMonitor", [])
    need(sms and sms[0]["spec"]["endpoints"][0].get("path") == "/metrics", f"{p} ServiceMonitor on /metrics")
    prs = by.get("PrometheusRule", [])
    need(prs and prs[0]["spec"] == alerts, f"{p} PrometheusRule equals deploy/monitoring/alerts.yml (regenerate it)")
    svc_sel = [o["spec"]["selector"] for o in by.get("Service", []) if o["metadata"]["name"] == "rates"]
    labels = spec["template"]["metadata"]["labels"]
    need(svc_sel and all(labels.get(k) == v for k, v in svc_sel[0].items()), f"{p} Service rates selects the pods")
    if env == "dev":
        need(spec.get("replicas") == 1, f"{p} 1 replica")
        need(main["resources"]["requests"]["cpu"] in ("50m", "100m"), f"{p} small requests")
        sts = by.get("StatefulSet", [])
        need(len(sts) == 1 and sts[0]["spec"]["replicas"] == 1, f"{p} a single in-cluster PostgreSQL")
        need("Cluster" not in by, f"{p} no CloudNativePG in dev")
    if env == "staging":
        need(spec.get("replicas") == 2, f"{p} 2 replicas")
    if env == "prod":
        need("replicas" not in spec, f"{p} no fixed replicas (the HPA owns them)")
        hpa = by.get("HorizontalPodAutoscaler", [])
        need(hpa and hpa[0]["spec"]["minReplicas"] == 3 and hpa[0]["spec"]["maxReplicas"] == 20
             and hpa[0]["spec"]["scaleTargetRef"]["name"] == "rates", f"{p} HPA 3-20 on Deployment rates")
        pdb = by.get("PodDisruptionBudget", [])
        need(pdb and all(labels.get(k) == v for k, v in pdb[0]["spec"]["selector"]["matchLabels"].items()),
             f"{p} PDB selecting the pods")
        tsc = pod.get("topologySpreadConstraints", [])
        need(any(t["topologyKey"] == "topology.kubernetes.io/zone" for t in tsc), f"{p} spread across zones")
        cl = by.get("Cluster", [])
        need(cl and cl[0]["apiVersion"] == "postgresql.cnpg.io/v1" and cl[0]["spec"]["instances"] == 3,
             f"{p} CloudNativePG Cluster of 3 instances")
        if cl:
            cs = cl[0]["spec"]
            need(cs.get("storage", {}).get("size"), f"{p} Cluster storage size")
            need("pg_stat_statements" in cs.get("postgresql", {}).get("shared_preload_libraries", []), f"{p} pg_stat_statements")
            # The read URL (rates-pg-ro, documented in the component) is a key of rates-app.
            need(secret_file(f"{p} ratesd", pod, main, "RATES_DATABASE_READ_URL_FILE") == "rates-app",
                 f"{p} reads through the Cluster's read-only service (read-uri of Secret rates-app)")
            roles = [r["name"] for r in cs.get("managed", {}).get("roles", [])]
            pw = next((r.get("passwordSecret", {}).get("name") for r in cs.get("managed", {}).get("roles", [])
                       if r["name"] == "rates_app"), None)
            need("rates_app" in roles and pw == "rates-app",
                 f"{p} CloudNativePG manages rates_app (its password from the Secret rates-app, not the manifest)")
            need(secret_file(f"{p} ratesd", pod, main, "RATES_DATABASE_URL_FILE") == "rates-app",
                 f"{p} ratesd connects as the least-privilege role (Secret rates-app)")
            migc = mig[0] if len(mig) == 1 else {}
            need(secret_file(f"{p} migrate", pod, migc, "RATES_DATABASE_URL_FILE") == "rates-pg-app",
                 f"{p} migrations run as the owner (CloudNativePG's Secret rates-pg-app)")
    print(f"{p} {len(objs)} objects checked")
for x in problems:
    print("PROBLEM:", x)
print(f"check_k8s: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
