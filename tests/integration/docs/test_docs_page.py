"""The /docs reference page renders the /rates operation in headless Chromium, from ratesd alone.

The browser only ever talks to the test's ratesd on 127.0.0.1 (its own profile, no background
networking); the page's Content-Security-Policy blocks anything else (Redoc's logo link to its
CDN is refused, which the page tolerates). A screenshot goes to the test results directory."""
import os
import shutil
import subprocess
import tempfile

import pytest

from tests import support

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def results_dir():
    d = os.environ.get("RATES_TEST_RESULTS") or os.path.join(support.ROOT, "build", "test-results")
    d = os.path.join(d, "artifacts")
    os.makedirs(d, exist_ok=True)
    return d


def chromium(url, *extra, timeout=120):
    exe = shutil.which("chromium")
    if not exe:
        pytest.fail("chromium is not installed (scripts/packages-test.txt lists it)")
    profile = tempfile.mkdtemp(prefix="rates-chromium-")
    try:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               "--virtual-time-budget=20000", "--enable-logging=stderr", "--v=0",
                               *extra, url], capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_docs_page_headers(server):
    st, h, body = server.request("GET", "/docs")
    assert st == 200 and h["content-type"].startswith("text/html")
    csp = h["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "http" not in csp, "the page must allow only its own origin"
    assert b"/docs/redoc.standalone.js" in body and b"https://" not in body
    st, h, js = server.request("GET", "/docs/redoc.standalone.js")
    assert st == 200 and len(js) > 100_000, "the page was built without Redoc (npm missing?)"


def test_docs_page_renders_rates_operation(server):
    url = f"http://127.0.0.1:{server.port}/docs"
    r = chromium(url, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert "Average price per day on a route" in dom, dom[:2000]
    assert "date_from" in dom and "orig_code" in dom
    # Everything the page refused by CSP came from elsewhere: none of our own assets.
    refused = [ln for ln in r.stderr.splitlines() if "Content Security Policy" in ln]
    assert all(f"127.0.0.1:{server.port}/docs/" not in ln.split("violates")[0] for ln in refused), refused
    shot = os.path.join(results_dir(), "docs-page.png")
    r = chromium(url, "--window-size=1280,1600", f"--screenshot={shot}")
    assert r.returncode == 0 and os.path.getsize(shot) > 10_000, r.stderr[-2000:]
