#!/usr/bin/env python3
"""check_deb.py DEB: the package holds what `make deb` promises: ratesd with its migrations
compiled in, the systemd socket and service units, conffiles for /etc/rates/ratesd.conf and
/etc/default/ratesd, a postinst creating the system user, and a Depends line covering every
shared library ratesd needs (each NEEDED library's Debian package)."""
import os
import re
import subprocess
import sys
import tempfile

deb = sys.argv[1]
problems = []
d = tempfile.mkdtemp()
subprocess.run(["dpkg-deb", "-R", deb, d], check=True)
for f in ["usr/bin/ratesd", "lib/systemd/system/ratesd.socket", "lib/systemd/system/ratesd.service",
          "etc/rates/ratesd.conf", "etc/default/ratesd", "DEBIAN/postinst", "DEBIAN/conffiles"]:
    if not os.path.exists(os.path.join(d, f)):
        problems.append(f"missing {f}")
if oct(os.stat(d).st_mode & 0o777) != "0o755":
    problems.append("package root is not 0755 (dpkg would change / permissions)")
conff = open(os.path.join(d, "DEBIAN/conffiles")).read().split()
for c in ("/etc/rates/ratesd.conf", "/etc/default/ratesd"):
    if c not in conff:
        problems.append(f"{c} is not a conffile")
post = open(os.path.join(d, "DEBIAN/postinst")).read()
if "adduser --system" not in post:
    problems.append("postinst does not create a system user")
svc = open(os.path.join(d, "lib/systemd/system/ratesd.service")).read()
if not re.search(r"^ExecStart=\S*/usr/bin/ratesd", svc, re.M):
    problems.append("ratesd.service does not run /usr/bin/ratesd")
binary = os.path.join(d, "usr/bin/ratesd")
data = open(binary, "rb").read()
for mig in sorted(os.listdir("db/migrations")):
    if mig.endswith(".sql") and mig[:-4].encode() not in data:
        problems.append(f"migration {mig} is not compiled into ratesd")
control = open(os.path.join(d, "DEBIAN/control")).read()
depends = re.search(r"^Depends: (.*)$", control, re.M).group(1)
dep_pkgs = {p.strip().split()[0] for p in depends.split(",")}
needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", binary], capture_output=True, text=True).stdout)
for lib in needed:
    path = subprocess.run(["sh", "-c", f"ldconfig -p | awk '/{re.escape(lib)} .*x86-64/ {{print $NF; exit}}'"],
                          capture_output=True, text=True).stdout.strip()
    if not path:
        continue
    real = os.path.realpath(path)
    owner = ""
    for p in (path, real, "/usr" + path if not path.startswith("/usr") else path[4:]):
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            owner = r.stdout.split(":")[0]
            break
    if owner and owner not in dep_pkgs and not (owner.startswith("libc6") and "libc6" in dep_pkgs):
        problems.append(f"{lib} comes from {owner}, which Depends does not name")
    print(f"NEEDED {lib} -> {owner or '?'}")
print(control)
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
