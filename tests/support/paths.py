"""Where things are: the repository, the ratesd binary under test, the sanitizer settings."""
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RATES_BIN = os.environ.get("RATES_BIN", os.path.join(ROOT, "build", "ratesd"))
# RATES_TSAN=1: the ThreadSanitizer pass (scripts/test.sh). Everything runs several times
# slower there, so tests skip their timing assertions: `assert support.TSAN or took < 1`.
TSAN = os.environ.get("RATES_TSAN") == "1"
TSAN_SUPP = os.path.join(ROOT, "tests", "tsan.supp")
