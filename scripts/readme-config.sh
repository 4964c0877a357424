#!/bin/sh
# Rewrites the configuration table in README.md from the option table (`ratesd config-table`).
# `make readme` runs it; tests/integration/docs/test_readme.py fails when the README is stale.
set -eu
cd "$(dirname "$0")/.."
bin=${RATES_BIN:-build/ratesd}
table=$(mktemp)
"$bin" config-table >"$table"
/usr/bin/python3 - "$table" <<'PY'
import re, sys
table = open(sys.argv[1]).read()
readme = open("README.md").read()
new = re.sub(r"(<!-- config-table:start -->\n).*?(<!-- config-table:end -->)",
             lambda m: m.group(1) + table + m.group(2), readme, flags=re.S)
open("README.md", "w").write(new)
PY
rm -f "$table"
