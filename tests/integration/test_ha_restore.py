"""High availability (issue 7): a point-in-time restore from a base backup and the WAL archive
into a fresh cluster equals the state at the target time (scripts/ha/restore-drill.sh)."""
import os
import shutil
import subprocess
import tempfile

import pytest

import harness

pytestmark = pytest.mark.drill


def test_point_in_time_restore():
    # Not pytest's tmp_path: PostgreSQL runs as another user and must reach the directory.
    work = tempfile.mkdtemp(prefix="rates-restore-")
    os.chmod(work, 0o755)
    env = dict(os.environ, RATES_BIN=harness.RATES_BIN, RATES_HA_DIR=os.path.join(work, "ha"))
    r = subprocess.run(["sh", os.path.join(harness.ROOT, "scripts", "ha", "restore-drill.sh")],
                       env=env, capture_output=True, text=True, timeout=300)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "restore: OK" in r.stdout
    shutil.rmtree(work, ignore_errors=True)
