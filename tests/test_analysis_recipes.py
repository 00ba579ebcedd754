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
    """Result folders made once for this module: the quickstart rule sweep (--quick), its
    alignment (3 samples), a K sweep (scaling_samples --quick), a small Werfel sweep and the Züge
    sweep (--quick)."""
    tmp = tmp_path_factory.mktemp("recipes")
    werfel_sweep = ('sweep={ grid = { "model.sizes" = [[8, 1], [8, 2], [2, 2], [4, 2]] }, seeds = 1, cases = ['
                    '{ label = "GD", "rule.kind" = "backprop", "rule.lr" = 0.3 }, '
                    '{ label = "NP", "rule.kind" = "node_perturbation", "rule.lr" = 0.1 }] }')
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        assert main(["run", "protocols/quickstart.toml", "--quick", "--out", str(tmp / "run"),
                     "--set", RUNTIME]) == 0
        assert main(["align", "protocols/quickstart.toml", "--samples", "3", "--out", str(tmp / "align"),
                     "--set", RUNTIME]) == 0
        assert main(["run", "protocols/scaling_samples.toml", "--quick", "--out", str(tmp / "samples"),
                     "--set", RUNTIME]) == 0
        assert main(["sweep", "protocols/werfel2005.toml", "--out", str(tmp / "werfel"), "--set", RUNTIME,
                     "--set", "training.trials=40", "--set", werfel_sweep]) == 0
        assert main(["run", "protocols/zuege2023.toml", "--quick", "--out", str(tmp / "zuege"), "--set", RUNTIME]) == 0
    return tmp


def invocation(script, folders, out):
    """The command line of each recipe, and the PNG it must write."""
    return {"compare_rules.py": ([str(folders / "run"), "--align", str(folders / "align"), "--out", str(out)], out),
            "scaling.py": ([str(folders / "samples"), "--out", str(out.with_suffix(""))],
                           out.with_name(f"{out.stem}_rule_samples.png")),
            "werfel.py": ([str(folders / "werfel"), "--out", str(out.with_suffix("")), "--resamples", "20"], out),
            "zuege.py": ([str(folders / "zuege"), "--out", str(out.with_suffix(""))], out),
            "theory_accuracy.py": (["--instances", "2", "--draws", "500", "--out", str(out.with_suffix(".csv"))],
                                   None)}[script.name]


def test_there_are_recipes():
    assert RECIPES, "analysis/ holds no *.py recipes"


@pytest.mark.parametrize("script", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_draws_its_figure(script, folders, tmp_path):
    out = tmp_path / "figures" / f"{script.stem}.png"
    out.parent.mkdir()
    arguments, figure = invocation(script, folders, out)
    proc = subprocess.run([sys.executable, str(script), *arguments], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    if figure is None:  # a study that prints a table
        assert out.with_suffix(".csv").is_file() and "wp_all" in proc.stdout
        return
    assert figure.is_file() and figure.stat().st_size > 0, f"{script.name} wrote no figure at {figure}"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{script.name}: {figure} is not a PNG"
