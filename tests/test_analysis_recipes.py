"""Every figure recipe in analysis/ runs on a small result folder and writes a PNG.

The folders are made with the real command line (``bioplastic run --quick`` of the quickstart
rule sweep, and ``bioplastic align`` with 3 samples), on the runtime backend so that no C++
build is needed.
"""

import subprocess
import sys

import pytest

from bioplastic.cli import main
from conftest import REPO

RECIPES = sorted((REPO / "analysis").glob("*.py"))
RUNTIME = 'training.backend="runtime"'


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(sweep folder, alignment folder) of the quickstart protocol, made once for this module."""
    tmp = tmp_path_factory.mktemp("recipes")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        assert main(["run", "protocols/quickstart.toml", "--quick", "--out", str(tmp / "run"),
                     "--set", RUNTIME]) == 0
        assert main(["align", "protocols/quickstart.toml", "--samples", "3", "--out", str(tmp / "align"),
                     "--set", RUNTIME]) == 0
    return tmp / "run", tmp / "align"


def test_there_are_recipes():
    assert RECIPES, "analysis/ holds no *.py recipes"


@pytest.mark.parametrize("script", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_draws_a_png(script, folders, tmp_path):
    sweep, align = folders
    out = tmp_path / "figures" / f"{script.stem}.png"
    proc = subprocess.run([sys.executable, str(script), str(sweep), "--align", str(align), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert out.is_file() and out.stat().st_size > 0, f"{script.name} wrote no figure at {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{script.name}: {out} is not a PNG"
