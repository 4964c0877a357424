#!/usr/bin/env python3
"""check_image.py DOCKER IMAGE VERSION COMMIT SIZE_FILE: checks the runtime image's contract
(non-root user, HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM, exec-form ratesd entrypoint, OCI
labels with version and commit, no compiler, no secrets in env) and records its size."""
import json
import subprocess
import sys

docker, image, version, commit, size_file = sys.argv[1:6]
cfg = json.loads(subprocess.run([docker, "inspect", image], capture_output=True, text=True, check=True).stdout)[0]
c = cfg["Config"]
problems = []
user = c.get("User", "")
if not user or user.split(":")[0] in ("", "0", "root"):
    problems.append(f"runs as root (User={user!r})")
hc = " ".join((c.get("Healthcheck") or {}).get("Test") or [])
if "/healthz" not in hc:
    problems.append(f"no HEALTHCHECK on /healthz ({hc!r})")
if c.get("StopSignal") != "SIGTERM":
    problems.append(f"StopSignal is {c.get('StopSignal')!r}")
if c.get("Entrypoint") != ["/usr/local/bin/ratesd"]:
    problems.append(f"entrypoint is {c.get('Entrypoint')!r}, not ratesd in exec form")
labels = c.get("Labels") or {}
if labels.get("org.opencontainers.image.version") != version:
    problems.append(f"label version {labels.get('org.opencontainers.image.version')!r} != {version}")
if labels.get("org.opencontainers.image.revision") != commit:
    problems.append(f"label revision {labels.get('org.opencontainers.image.revision')!r} != {commit}")
for e in c.get("Env") or []:
    k = e.split("=", 1)[0]
    if any(s in k for s in ("PASSWORD", "TOKEN", "DATABASE_URL", "SECRET")):
        problems.append(f"secret-looking variable baked into the image: {k}")
r = subprocess.run([docker, "run", "--rm", "--entrypoint", "sh", image, "-c",
                    "command -v gcc cc make; id -u; ls /usr/include 2>/dev/null | wc -l"],
                   capture_output=True, text=True)
lines = r.stdout.split()
if any(x.endswith(("gcc", "/cc", "make")) for x in lines):
    problems.append(f"build tools in the runtime image: {lines}")
size = cfg["Size"]
base = json.loads(subprocess.run([docker, "inspect", "debian:bookworm-slim"], capture_output=True, text=True).stdout or "[{}]")[0].get("Size", 0)
msg = (f"image {image}: {size / 1e6:.0f} MB ({size} bytes); base debian:bookworm-slim stand-in "
       f"(debootstrap minbase) {base / 1e6:.0f} MB, so ratesd + runtime libraries add {(size - base) / 1e6:.0f} MB")
print(msg)
with open(size_file, "w") as f:
    f.write(msg + "\n")
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
