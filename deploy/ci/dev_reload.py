#!/usr/bin/env python3
"""dev_reload.py WORK PORT: the compose dev profile. Starts api-dev (source tree mounted),
waits for it on 127.0.0.1:PORT, touches src/main.c and checks that the watcher rebuilt and
restarted ratesd (a second start in its log, a new process start time), then stops it."""
import os
import subprocess
import sys
import time
import urllib.request

work, port = sys.argv[1], int(sys.argv[2])
compose = ["/usr/bin/docker-compose", "-p", "rdci", "-f", "compose.yaml", "-f", "deploy/ci/compose.ci.yaml",
           "--env-file", os.path.join(work, "ci.env"), "--profile", "dev"]


def start_time():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("process_start_time_seconds"):
                    return float(line.split()[1])
    except OSError:
        return None


def wait_start(after, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = start_time()
        if t is not None and (after is None or t > after):
            return t
        time.sleep(1)
    return None


def logs():
    return subprocess.run(compose + ["logs", "--no-color", "api-dev"], capture_output=True, text=True).stdout


try:
    subprocess.run(compose + ["up", "-d", "--no-build", "--no-deps", "api-dev"], check=True)
    t1 = wait_start(None, 240)
    if t1 is None:
        print("api-dev never answered:\n" + logs()[-3000:])
        sys.exit(1)
    print(f"api-dev serving from the mounted source (start {t1})")
    time.sleep(1.5)
    os.utime("src/main.c")
    t2 = wait_start(t1, 180)
    n = logs().count("dev-watch: ratesd running")
    print(f"after touching src/main.c: new start {t2}, starts in log {n}")
    if t2 is None or n < 2:
        print(logs()[-3000:])
        sys.exit(1)
finally:
    subprocess.run(compose + ["rm", "-s", "-f", "api-dev"], capture_output=True)
