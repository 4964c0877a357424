"""Each program links only the libraries it uses (readelf -d of the built binaries)."""
import os
import shutil
import subprocess

import pytest

from tests import support

BUILD = os.path.dirname(support.RATES_BIN)
# What each program may need (NEEDED entries, by prefix), and what it must never pull in.
ALLOWED = {
    "ratesd": ("libmicrohttpd", "libpq", "libyajl", "libcrypto", "libz", "libc", "libm", "libpthread",
               "libasan", "libubsan", "libtsan", "libgcc_s", "libstdc++", "ld-linux"),
    "rates-load": ("libcurl", "libcrypto", "libyajl", "libz", "libc", "libm", "libpthread", "libasan",
                   "libubsan", "libtsan", "libgcc_s", "libstdc++", "ld-linux"),
    "rates-gen": ("libc", "libm", "libasan", "libubsan", "libtsan", "libgcc_s", "libstdc++",
                  "ld-linux"),
}


def needed(path):
    if not shutil.which("readelf"):
        pytest.fail("readelf (binutils) is missing")
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return [ln.split("[", 1)[1].rstrip("]") for ln in out.splitlines() if "(NEEDED)" in ln]


@pytest.mark.parametrize("prog", sorted(ALLOWED))
def test_links_only_what_it_uses(prog):
    path = os.path.join(BUILD, prog)
    assert os.path.exists(path), f"{path} is not built"
    libs = needed(path)
    assert libs, "not a dynamic executable?"
    extra = [lib for lib in libs if not lib.startswith(ALLOWED[prog])]
    assert not extra, f"{prog} links {extra} it does not use"
    if prog == "ratesd":
        assert not any(lib.startswith(("libcurl", "libjansson")) for lib in libs), libs
