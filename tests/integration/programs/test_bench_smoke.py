"""The benchmarks of issue 15 run and print every figure they promise, at a tiny size (the
figures themselves are read from `make bench-ingest` / `make bench-aggregates`, not asserted:
timing belongs to the benchmark commands, not to tests)."""
import os
import subprocess
import sys

import pytest

from tests import support

pytestmark = pytest.mark.drill


def run_script(name, env):
    full = dict(os.environ, RATES_BIN=support.RATES_BIN, **env)
    # scripts/NAME.py runs as a module from the repository root, as make runs it.
    module = "scripts." + name.removesuffix(".py")
    r = subprocess.run([sys.executable, "-m", module], env=full, cwd=support.ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


def test_bench_aggregates_prints_sizes_and_times():
    # rates-gen beside RATES_BIN: the script's default (drills run with the normal build).
    out = run_script("bench_aggregates.py", {"BENCH_AGG_PRICES": "20000"})
    assert "bench-aggregates: 20,000 prices" in out, out
    for label in ("prices heap", "route index (0002", "rates_daily heap + primary key",
                  "ratesd aggregates check", "ratesd aggregates rebuild"):
        line = next((x for x in out.splitlines() if x.startswith(label)), None)
        assert line and " s" in line, f"{label!r} missing or without a time:\n{out}"
    assert "check" in out and "(exit 0)" in out, out


@pytest.mark.skipif(not support.dump_path(), reason="needs the dump (RATES_DUMP)")
def test_bench_ingest_prints_every_column_and_goal():
    out = run_script("bench_ingest.py", {"BENCH_SIZES": "2000", "BENCH_SHAPES": "spread",
                                         "BENCH_ROUNDS": "1"})
    header = next(x for x in out.splitlines() if x.lstrip().startswith("shape"))
    for col in ("(a) POST /batches", "(b) copy+FKs", "(c) copy bare", "(d) bare+index",
                "(e) no aggregate", "(f) copy+trigs", "(g) a, no model", "a/c", "f/c", "g/c"):
        assert col in header, header
    row = next(x for x in out.splitlines() if x.lstrip().startswith("spread"))
    assert row.count("r/s") == 7, row
    assert "goal spread 2000: (a) >= 0.5x (c) (issue 15)" in out, out


def test_bench_model_load_prints_load_and_upgrade_figures():
    out = run_script("bench_model_load.py", {"BENCH_MODEL_LOAD_PRICES": "20000",
                                             "BENCH_MODEL_LOAD_TIMEOUT_S": "120"})
    for what in ("prices:", "start: healthy after", "model load", "keys", "peak RSS of both"):
        assert what in out, (what, out)


@pytest.mark.skipif(not support.dump_path(), reason="needs the dump (RATES_DUMP)")
def test_bench_staleness_prints_both_instances_figures():
    out = run_script("bench_staleness.py", {"BENCH_STALENESS_ROWS": "2000", "BENCH_ROUNDS": "3"})
    assert "second instance's staleness after a 2,000-row batch, 3 rounds: median" in out, out
    assert "p99" in out and "the writing instance's own first read" in out, out
    assert "model loads 1 (1: no reload)" in out, out
