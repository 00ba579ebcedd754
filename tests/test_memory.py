"""The memory estimate against measured peaks: at least the peak, at most twice it.

A protocol is run in a process of its own (after a first run that builds it), and the peak of
its whole process tree's resident memory plus its files in /dev/shm is sampled every 10 ms
(``memory_probe``). The estimate (``bioplastic.resources``) counts the command's baseline, the
network copies of training and of a finite-difference reference, what is recorded per step and
the task's arrays. One family runs in CI; every family and an experiment run in ``make test-slow``.
"""

import sys
import tomllib

import pytest
import tomli_w

from bioplastic.config import load_protocol
from bioplastic.resources import for_protocol
from bioplastic.rules import RULES
from bioplastic.spec import params
from conftest import REPO
from memory_probe import peak

# (family, shipped protocol, its rule, overrides): sizes where the network, not Python, dominates.
CASES = [
    ("feedforward_rate", "quickstart", "weight_perturbation", {"model": {"sizes": [100, 300, 10]}}),
    ("recurrent_rate", "recurrent_rules_dnms", "backprop", {"model": {"n_neurons": 800}}),
    ("spiking", "reward_learning", "weight_perturbation", {"model": {"sizes": [800, 100], "init_mean": "0.2 mV"},
                                                                "rule": {"lr": 200.0}, "analysis": {"every": 0}}),
    # the finite-difference reference: 4096 copies of a small network, at the first trial
    ("spiking_reference", "reward_learning", "weight_perturbation", {"model": {"sizes": [40, 4], "init_mean": "4 mV"},
                                                                       "rule": {"lr": 200.0}}),
    ("alif", "eprop_pattern", "eprop", {"model": {"n_neurons": 800}}),
    ("experiment", "izhikevich2007_distal_reward", None,
     {"task": {"duration": "4 s", "record_every": "1 s", "snapshot_every": "2 s", "raster": "0.5 s"}}),
    # the tidy records of a long experiment: 400 000 records of 7 metrics
    ("experiment_records", "oua_single_parameter", None, {"task": {"duration": "20000 s", "record_every": "50 ms"}}),
]


def one_run(tmp_path, name, rule, overrides):
    """The shipped protocol as one run of ``rule`` (its sweep dropped) with two trials."""
    table = tomllib.loads((REPO / "protocols" / f"{name}.toml").read_text())
    table.pop("sweep", None)
    if rule is not None:
        taken = {f.name for f in params(RULES[rule].spec_class)}
        table["rule"] = {k: v for k, v in table.get("rule", {}).items() if k in taken} | {"kind": rule}
        table.setdefault("training", {})["trials"] = 2
    for section, values in overrides.items():
        table.setdefault(section, {}).update(values)
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(table))
    return path


def measure(tmp_path, name, rule, overrides):
    path = one_run(tmp_path, name, rule, overrides)
    estimate = for_protocol(load_protocol(path))
    for attempt in ("build", "measure"):
        argv = [sys.executable, "-m", "bioplastic.cli", "run", str(path), "--out", str(tmp_path / attempt)]
        code, highest, err = peak(argv, REPO)
        assert code == 0, err
    return estimate["memory"], highest  # the memory counts the files in /dev/shm (tmpfs is memory)


def check(tmp_path, case):
    family, name, rule, overrides = case
    estimated, measured = measure(tmp_path, name, rule, overrides)
    ratio = estimated / measured
    print(f"{family}: estimate {estimated / 2**20:.0f} MiB, peak {measured / 2**20:.0f} MiB, ratio {ratio:.2f}")
    assert 1 <= ratio <= 2, f"{family}: the estimate is {ratio:.2f}x the measured peak"


def test_the_estimate_holds_for_a_feedforward_rate_network(tmp_path):
    check(tmp_path, CASES[0])


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES[1:], ids=[c[0] for c in CASES[1:]])
def test_the_estimate_holds_for_every_family(tmp_path, case):
    check(tmp_path, case)
