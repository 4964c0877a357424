"""Docs name only things that exist: every `src/` file, `make` target, `rates_*` metric or
database object, `RATES_*` variable and `ratesd --option` named in the README, docs/, deploy/
and the man pages must exist in the tree (or in `ratesd config-table`). History that names a
thing on purpose goes into doc_names_allow.txt with the reason."""
import glob
import os
import re
import subprocess

import pytest

from tests import support

ROOT = support.ROOT
HERE = os.path.dirname(os.path.abspath(__file__))
ALLOW = os.path.join(HERE, "doc_names_allow.txt")


def doc_files():
    files = [os.path.join(ROOT, "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files += sorted(glob.glob(os.path.join(ROOT, "deploy", "**", "*.md"), recursive=True))
    files += sorted(glob.glob(os.path.join(ROOT, "man", "*.in")))
    return files


def allowlist():
    out = set()
    with open(ALLOW) as f:
        for line in f:
            name = line.split("#", 1)[0].strip()
            if name:
                assert "#" in line, f"{ALLOW}: '{name}' needs a reason after '#'"
                out.add(name)
    return out


def source_text():
    """Everything a doc may name, outside the docs themselves: code, SQL, scripts, config."""
    parts = []
    for pat in ("src/*.[ch]", "db/migrations/*.sql", "db/*.sql", "scripts/**/*", "mk/*.mk",
                "Makefile", "deploy/**/*", "tests/**/*.py", "tests/**/*.sh", "tests/**/*.c",
                ".ci/*"):
        for p in glob.glob(os.path.join(ROOT, pat), recursive=True):
            if os.path.isfile(p) and not p.endswith(".md") and \
                    os.path.dirname(os.path.abspath(p)) != HERE:
                try:
                    with open(p, errors="replace") as f:
                        parts.append(f.read())
                except OSError:
                    pass
    return "\n".join(parts)


def make_targets():
    names = set()
    for p in [os.path.join(ROOT, "Makefile")] + glob.glob(os.path.join(ROOT, "mk", "*.mk")):
        with open(p) as f:
            for line in f:
                m = re.match(r"^([A-Za-z0-9_.%/-]+(?:\s+[A-Za-z0-9_.%/-]+)*)\s*::?(?!=)", line)
                if m:
                    names.update(m.group(1).split())
    return names


def mentions():
    """(kind, name, where) for every checked name in the docs."""
    out = []
    for path in doc_files():
        rel = os.path.relpath(path, ROOT)
        with open(path, errors="replace") as f:
            text = f.read()
        for n, line in enumerate(text.splitlines(), 1):
            where = f"{rel}:{n}"
            for m in re.finditer(r"(?<![\w/.-])src/([a-z0-9_]+\.[ch])\b", line):
                out.append(("src", m.group(1), where))
            for m in re.finditer(r"`make ([a-z][a-z0-9_.-]*)", line):
                out.append(("make", m.group(1), where))
            for m in re.finditer(r"(?<![\w$])(rates_[a-z0-9_]*[a-z0-9])(?![\w.(-]*\.(?:sql|py|sh|ya?ml|conf|j2)\b)", line):
                # rates_env_NAME, rates_template_synthetic_<prices>: a prefix the code extends
                prefix = re.match(r"_[A-Z<{$*]", line[m.end():m.end() + 2])
                out.append(("rates_prefix" if prefix else "rates", m.group(1), where))
            for m in re.finditer(r"(?<![\w$])(RATES_[A-Z0-9_]*[A-Z0-9])\b", line):
                out.append(("env", m.group(1), where))
            for m in re.finditer(r"`(?:build/)?ratesd(?: [a-z-]+)*((?: --[a-z][a-z0-9-]*(?:[= ][^ `-][^ `]*)?)+)", line):
                for opt in re.findall(r"--[a-z][a-z0-9-]*", m.group(1)):
                    out.append(("option", opt, where))
    return out


@pytest.fixture(scope="module")
def known():
    table = subprocess.run([support.RATES_BIN, "config-table"], capture_output=True, text=True,
                           check=True).stdout
    helptext = subprocess.run([support.RATES_BIN, "--help"], capture_output=True,
                              text=True).stdout
    code = source_text()
    return {"src": set(os.listdir(os.path.join(ROOT, "src"))), "make": make_targets(),
            "rates": set(re.findall(r"rates_\w+", code)),
            "env": set(re.findall(r"RATES_\w+", code + table)),
            "options": set(re.findall(r"--[a-z][a-z0-9-]*", helptext)) | {"--help", "--version"}}


def missing(kind, name, k):
    if kind == "src":
        return name not in k["src"]
    if kind == "make":
        return name not in k["make"]
    if kind == "rates":  # a histogram's series carry a suffix the code never spells out
        return not {name, re.sub(r"_(bucket|sum|count)$", "", name)} & k["rates"]
    if kind == "rates_prefix":
        return not any(t.startswith(name + "_") for t in k["rates"])
    if kind == "env":
        return name not in k["env"]
    if kind == "option":
        return name not in k["options"]
    raise AssertionError(kind)


def test_docs_name_only_what_exists(known):
    allow = allowlist()
    found = mentions()
    assert len({(k, n) for k, n, _ in found}) > 100, "the scanner found too little to be working"
    stale = sorted({f"{where}: {kind} {name}" for kind, name, where in found
                    if name not in allow and missing(kind, name, known)})
    assert stale == [], "docs name things that do not exist (fix the doc, or allowlist " \
        "history in tests/integration/docs/doc_names_allow.txt):\n" + "\n".join(stale)


def test_allowlist_has_no_dead_entries(known):
    """An allowlisted name that the docs no longer mention, or that exists after all, goes."""
    named = {n for _, n, _ in mentions()}
    dead = sorted(a for a in allowlist() if a not in named)
    assert dead == [], f"allowlisted but no doc names them: {dead}"


def test_scanner_catches_a_stale_name(known):
    """The check can fail: a made-up file, target, metric, variable and option are caught."""
    for kind, name in (("src", "gone_module.c"), ("make", "no-such-target"),
                       ("rates", "rates_no_such_metric_total"), ("env", "RATES_NO_SUCH_VAR"),
                       ("option", "--no-such-option")):
        assert missing(kind, name, known), (kind, name)
    for kind, name in (("src", "http.c"), ("make", "test"), ("rates", "rates_daily"),
                       ("env", "RATES_POOL_SIZE"), ("option", "--pool-size")):
        assert not missing(kind, name, known), (kind, name)
