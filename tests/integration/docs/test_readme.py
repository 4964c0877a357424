"""The README's configuration table matches the option table, and --help lists every option."""
import os
import re
import subprocess

from tests import support

README = os.path.join(support.ROOT, "README.md")


def test_readme_config_table_current():
    table = subprocess.run([support.RATES_BIN, "config-table"], capture_output=True, text=True,
                           check=True).stdout
    readme = open(README).read()
    m = re.search(r"<!-- config-table:start -->\n(.*?)<!-- config-table:end -->", readme, re.S)
    assert m, "README has no configuration table markers"
    assert m.group(1) == table, "README configuration table is stale: run `make readme`"


def test_help_lists_every_env_var():
    table = subprocess.run([support.RATES_BIN, "config-table"], capture_output=True, text=True,
                           check=True).stdout
    names = re.findall(r"^\| `(RATES_[A-Z0-9_]+)`", table, re.M)
    assert len(names) > 10
    out = subprocess.run([support.RATES_BIN, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for n in names:
        assert n in out.stdout, n


def test_invalid_value_exits_2_naming_source():
    env = support.server_env({"RATES_POOL_SIZE": "zero"})
    r = subprocess.run([support.RATES_BIN], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "RATES_POOL_SIZE" in r.stderr and "pool_size" in r.stderr
    r = subprocess.run([support.RATES_BIN, "--workers", "-1"], env=support.server_env({}),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "--workers" in r.stderr


def test_secret_flag_refused():
    r = subprocess.run([support.RATES_BIN, "--database-url=postgresql://x"],
                       env=support.server_env({}), capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "secret" in r.stderr
