import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Standalone builds are cached inside the repository (ignored by git), never elsewhere.
os.environ.setdefault("BIOPLASTIC_CACHE", str(REPO / ".bioplastic_cache"))
# Every test process (each pytest-xdist worker) and what it starts get a temporary folder of their
# own, so that a test that checks what a command leaves there (Brian2's logs, scripts) sees only
# its own process's files, not those of a test running beside it. Removed at exit, after Brian2
# removed its own files (exit handlers run last-registered first; Brian2 is imported later).
TEST_TMP = Path(tempfile.mkdtemp(prefix=f"bioplastic-tests-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-"))
os.environ["TMPDIR"] = str(TEST_TMP)
tempfile.tempdir = None  # gettempdir() reads TMPDIR again
atexit.register(shutil.rmtree, TEST_TMP, ignore_errors=True)


@pytest.fixture(autouse=True)
def _run_from_repo_root(monkeypatch):
    """Protocols name models/ and protocols/ relative to the repository."""
    monkeypatch.chdir(REPO)


def protocol(name, *overrides, quick=False):
    from bioplastic.config import load_protocol
    return load_protocol(REPO / "protocols" / name, overrides, quick=quick)


def rule_protocol(name, kind, *overrides, quick=False):
    """The variant of a protocol's ``rule.kind`` sweep that uses ``kind``."""
    swept = protocol(name, *overrides, quick=quick)
    return next(v for _, _, v in swept.variants() if v.rule_kind == kind)
