#!/usr/bin/env python3
"""wait_healthy.py DOCKER CONTAINER TIMEOUT_S: waits for the container's HEALTHCHECK to report
healthy; fails early when it exits or turns unhealthy."""
import subprocess
import sys
import time

docker, name, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.time() + timeout
state = ""
while time.time() < deadline:
    r = subprocess.run([docker, "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", name],
                       capture_output=True, text=True)
    state = r.stdout.strip()
    if state == "running healthy":
        print(f"{name}: healthy")
        sys.exit(0)
    if state.startswith("exited") or state.endswith("unhealthy"):
        break
    time.sleep(1)
print(f"{name}: not healthy ({state or r.stderr.strip()})")
subprocess.run([docker, "logs", "--tail", "30", name])
sys.exit(1)
