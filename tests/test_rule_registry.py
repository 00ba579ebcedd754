"""Declarations apart from builders: the registries, and in-network rules of one's own."""

import pandas as pd
import pytest

from bioplastic.cli import main
from bioplastic.networks import IzhikevichModelSpec, LifModelSpec, RateModelSpec
from bioplastic.rules import RULES, find_builder, register_builder, register_rule
from bioplastic.rules.builders import BUILDERS
from bioplastic.rules.rstdp import RSTDP, RSTDPSpec, build_rstdp

IN_NETWORK_PLUGIN = '''
from dataclasses import dataclass
from brian2 import mV, ms, second
from bioplastic.rules import InNetworkRule, register_builder, register_rule
from bioplastic.spec import param, positive, validate

@dataclass(frozen=True)
class CoincidenceSpec:
    lr: object = param(0.1 * mV, "weight change per coincidence", unit=mV)
    window: object = param(10 * ms, "a post spike this soon after a pre spike counts", unit=ms, check=positive)
    def __post_init__(self):
        validate(self)

@register_rule
class Coincidence(InNetworkRule):
    """Potentiate a synapse each time its post neuron fires within a window after its pre spike."""
    kind = "coincidence"
    spec_class = CoincidenceSpec
    description = "potentiate a synapse whenever its post neuron fires soon after its pre neuron"

    def run_values(self, context):  # sweepable constants: shared variables written every run
        return {(p.synapses, "lr_coincidence"): float(self.spec.lr) for p in context.layout.projections}

@register_builder(Coincidence, "spiking")
def build_coincidence(rule, recipe, layout):
    for p in layout.projections:
        syn = recipe.synapses[p.synapses]
        syn.add("acc_coincidence : volt", "t_seen : second", "lr_coincidence : volt (shared, constant)")
        syn.initial["t_seen"] = -1 * second
        syn.namespace["window"] = rule.spec.window
        syn.on_pre.setdefault("pre", []).append("t_seen = t")
        syn.on_post.setdefault("post", []).append("acc_coincidence += lr_coincidence * int(t - t_seen < window)")
        recipe.run_value(p.synapses, "lr_coincidence", float(rule.spec.lr))
    recipe.declare_delta(rule.kind, "acc_coincidence")  # what the engine reads back
'''


def test_builders_are_found_along_the_class_hierarchy_by_kind_then_family():
    class Variant(RSTDP):  # not registered as a rule: only the lookup is tested
        kind = "rstdp_variant"

    rule = Variant(RSTDPSpec())
    assert find_builder(rule, LifModelSpec()) is build_rstdp
    assert find_builder(rule, IzhikevichModelSpec()) is build_rstdp
    assert find_builder(rule, RateModelSpec()) is None

    def special(rule, recipe, layout):  # a builder of the subclass for one model kind wins there
        pass

    try:
        register_builder(Variant, "lif")(special)
        assert find_builder(rule, LifModelSpec()) is special
        assert find_builder(rule, IzhikevichModelSpec()) is build_rstdp
    finally:
        del BUILDERS[(Variant, "lif")]


def test_registering_what_exists_is_refused_unless_overridden():
    with pytest.raises(ValueError, match="registered already"):
        register_rule(type("Clash", (RSTDP,), {"kind": "rstdp"}))
    with pytest.raises(ValueError, match="has a builder already"):
        register_builder(RSTDP, "spiking")(lambda rule, recipe, layout: None)
    replacement = type("Replacement", (RSTDP,), {"kind": "rstdp"})
    try:
        register_rule(replacement, override=True)
        assert RULES["rstdp"] is replacement
    finally:
        RULES["rstdp"] = RSTDP


def test_an_in_network_rule_of_ones_own_runs_from_a_plugin(tmp_path, capsys):
    (tmp_path / "coincidence.py").write_text(IN_NETWORK_PLUGIN)
    spec = tmp_path / "p.toml"
    spec.write_text('plugins = ["coincidence.py"]\nseed = 2\n[model]\nfile = "lif_two_choice.toml"\n'
                    '[task]\nkind = "spike_count"\n[rule]\nkind = "coincidence"\nlr = "0.05 mV"\n'
                    '[training]\ntrials = 5\nbackend = "runtime"\n[analysis]\nevery = 0\n')
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    assert main(["list", "rules"]) == 0
    listed = capsys.readouterr().out
    assert 'kind = "coincidence"' in listed and "potentiate a synapse whenever" in listed
    # the rule only ever potentiates: every applied update is >= 0, and some synapses grew
    from bioplastic.config import load_protocol
    from bioplastic.engine.trainer import Trainer
    trainer = Trainer(load_protocol(spec))
    before = trainer.weights[0].copy()
    trainer.train()
    grown = trainer.weights[0] - before
    assert grown.min() >= 0 and grown.max() > 0.04
    assert pd.read_csv(out / "metrics.csv").query("metric == 'loss'").shape[0] == 5


def test_a_plugin_that_takes_an_existing_kind_is_one_line(tmp_path, capsys):
    (tmp_path / "clash.py").write_text(
        "from bioplastic.rules import register_rule\nfrom bioplastic.rules.rstdp import RSTDP\n"
        "register_rule(type('Clash', (RSTDP,), {'kind': 'rstdp'}))\n")
    spec = tmp_path / "p.toml"
    spec.write_text('plugins = ["clash.py"]\n[model]\nfile = "lif_two_choice.toml"\n[task]\nkind = "spike_count"\n'
                    '[rule]\nkind = "rstdp"\n')
    assert main(["validate", str(spec)]) == 2
    loading, *err = capsys.readouterr().err.strip().splitlines()
    assert loading == f"loading plugin code: {tmp_path / 'clash.py'}"
    assert len(err) == 1 and "registered already" in err[0] and "override=True" in err[0]


def test_an_in_network_rule_without_a_builder_for_the_model_is_refused(capsys):
    assert main(["validate", "protocols/quickstart.toml", "--set", 'rule.kind="rstdp"', "--set", 'rule.lr="1 mV"']) == 2
    err = capsys.readouterr().err
    assert "rule.kind" in err and "trains spiking models" in err
