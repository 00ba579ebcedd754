import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Standalone builds are cached inside the repository (ignored by git), never elsewhere.
os.environ.setdefault("BIOPLASTIC_CACHE", str(REPO / ".bioplastic_cache"))


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
