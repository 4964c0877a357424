"""The three programs follow one convention: --help, --version (NAME VERSION (COMMIT)), both
--opt=value and --opt value, usage errors exit 2 (docs/exit-codes.md)."""
import os
import re
import subprocess

import pytest

from tests import support

BUILD = os.path.dirname(support.RATES_BIN)
PROGS = ["ratesd", "rates-load", "rates-gen"]


def run(prog, *args, env=None):
    e = support.server_env(env or {})
    return subprocess.run([os.path.join(BUILD, prog), *args], capture_output=True, text=True,
                          timeout=60, env=e)


@pytest.mark.parametrize("prog", PROGS)
def test_help_version_and_usage_exit(prog):
    with open(os.path.join(support.ROOT, "VERSION")) as f:
        version = f.read().strip()
    r = run(prog, "--help")
    assert r.returncode == 0 and "usage" in r.stdout.lower(), r.stderr
    r = run(prog, "--version")
    assert r.returncode == 0 and re.fullmatch(rf"{prog} {re.escape(version)} \([0-9a-f]+\)\n",
                                               r.stdout), r.stdout
    r = run(prog, "--no-such-option")
    assert r.returncode == 2 and r.stderr and not r.stdout, (r.returncode, r.stderr)


def test_rates_gen_value_forms_agree():
    a = run("rates-gen", "--prices=50", "--seed=9", "--start=2020-02-02")
    b = run("rates-gen", "--prices", "50", "--seed", "9", "--start", "2020-02-02")
    c = run("rates-gen", "-n", "50", "-s", "9", "-d", "2020-02-02")
    assert a.returncode == b.returncode == c.returncode == 0
    assert a.stdout == b.stdout == c.stdout and "2020-02-02" in a.stdout
    assert run("rates-gen", "--prices=0").returncode == 2
    assert run("rates-gen", "--prices").returncode == 2
    assert run("rates-gen", "stray").returncode == 2


def test_rates_load_value_forms_agree(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("a")
    # Both forms reach the same check (an unknown format), which is a usage error.
    for args in (["--format=xml"], ["--format", "xml"]):
        r = run("rates-load", *args, str(f), "http://127.0.0.1:9")
        assert r.returncode == 2 and "unknown format xml" in r.stderr, r.stderr
    assert run("rates-load", "only-one-arg").returncode == 2
    r = run("rates-load", str(tmp_path / "missing.csv"), "http://127.0.0.1:9",
            env={"RATES_INGEST_TOKEN": "t"})
    assert r.returncode == 1, r.stderr


def test_ratesd_value_forms_agree():
    for args in (["--max-span-days=0"], ["--max-span-days", "0"]):
        r = run("ratesd", *args)
        assert r.returncode == 2 and "max" in r.stderr.lower(), r.stderr
