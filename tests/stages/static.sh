#!/bin/sh
# tests/stages/static.sh: static analysis of src/ with cppcheck (warning, style, portability,
# performance). A finding not listed in tests/static-baseline.txt, or a baseline entry without
# its explaining comment, fails; JUnit XML (one testcase per finding, plus the run itself) goes
# to $RATES_TEST_RESULTS/static.xml. Takes a few seconds.
set -u
cd "$(dirname "$0")/../.." || exit 1
out=${RATES_TEST_RESULTS:-build/test-results}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! command -v cppcheck >/dev/null 2>&1; then
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="static" tests="1" failures="1"><testcase classname="static" name="cppcheck"><failure message="cppcheck is not installed (scripts/packages-test.txt)"/></testcase></testsuite>\n' \
        >"$out/static.xml"
    echo "  FAILED cppcheck: not installed"
    exit 1
fi
# The generated migrations table is not needed: cppcheck reads src/ only (-Isrc for our
# headers; system headers are not analysed). --inline-suppr is not used: every accepted
# finding is in the baseline, with its reason.
timeout 300 cppcheck -q --std=c11 --enable=warning,style,portability,performance \
    -D_GNU_SOURCE -Isrc --suppress=missingIncludeSystem -j2 \
    --template='{file}:{line}:{severity}:{id}:{message}' src/ 2>"$tmp/findings.txt"
rc=$?
/usr/bin/python3 - "$tmp/findings.txt" tests/static-baseline.txt "$out/static.xml" "$rc" <<'PY'
import sys
from xml.sax.saxutils import quoteattr

findings_path, baseline_path, xml_path, rc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
baseline, cases, failures = [], [], 0
explained = False
for n, line in enumerate(open(baseline_path, encoding="utf-8"), 1):
    line = line.rstrip("\n")
    if line.startswith("#"):
        explained = True
        continue
    if not line.strip():
        explained = False
        continue
    parts = line.split(":", 2)
    if len(parts) != 3:
        cases.append((f"baseline line {n}", f"not FILE:ID:MESSAGE: {line}"))
        continue
    if not explained:
        cases.append((f"baseline line {n}", f"entry without an explaining comment: {line}"))
    baseline.append(parts)
    explained = False  # one comment explains the entry right below it
used = set()
count = 0
for line in open(findings_path, encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    if not line.strip():
        continue
    parts = line.split(":", 4)
    if len(parts) < 5:
        cases.append((f"output: {line[:80]}", f"unexpected cppcheck output: {line}"))
        continue
    f, ln, sev, fid, msg = parts
    count += 1
    hit = [i for i, (bf, bid, bmsg) in enumerate(baseline)
           if bf == f and bid == fid and msg.startswith(bmsg)]
    if hit:
        used.update(hit)
        cases.append((f"{f}:{fid} (baseline)", None))
    else:
        cases.append((f"{f}:{ln}:{fid}", f"{sev}: {msg} (new finding: fix it, or add it to "
                      "tests/static-baseline.txt with the reason)"))
if rc != 0:
    cases.append(("cppcheck", f"cppcheck exited {rc}"))
else:
    cases.append(("cppcheck", None))
for i, (bf, bid, bmsg) in enumerate(baseline):
    if i not in used:
        print(f"  note: baseline entry no longer found (remove it): {bf}:{bid}:{bmsg}")
with open(xml_path, "w", encoding="utf-8") as x:
    failures = sum(1 for _, m in cases if m)
    x.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    x.write(f'<testsuite name="static" tests="{len(cases)}" failures="{failures}">\n')
    for name, msg in cases:
        x.write(f'  <testcase classname="static" name={quoteattr(name)}>')
        if msg:
            x.write(f"<failure message={quoteattr(msg)}/>")
            print(f"  FAILED {name}: {msg}")
        x.write("</testcase>\n")
    x.write("</testsuite>\n")
print(f"  static: {count} cppcheck findings, {failures} not accepted")
sys.exit(1 if failures else 0)
PY
