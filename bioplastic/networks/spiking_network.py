"""The recipe of a replicated spiking network, and the handle on it once it is built.

:class:`Layout` names the parts every contributor may extend (the input group, the layers or
the recurrent population, the plastic projections, the read-out). :func:`base_recipe` writes
the neuron models and connections into a :class:`~bioplastic.networks.recipe.Recipe`; tasks and
in-network rules then add their own equations (see :mod:`bioplastic.rules.builders`), and
:class:`SpikingNetwork` turns run values (weights, input spikes, perturbations, ...) into
Brian2 assignments and reads back what one run produced.
"""

from dataclasses import dataclass, field

import numpy as np
from brian2 import Function, Network, mV, ms, second

from .layout import Layout, Projection, checked_array as _checked
from .recipe import BuiltNetwork, Recipe, Regular
from .spiking import WEIGHT_UNIT, connectivity

INPUT_RASTER = "input_raster"


def make_layout(spec, copies, steps, blocks=1, seed=0, input_block=None):
    layout = Layout(spec, int(copies), int(steps), int(blocks), int(seed), input_block=input_block)
    if spec.recurrent:
        layout.groups["neurons"] = spec.n_exc + spec.n_inh
        layout.layers = ["neurons"]
        layout.projections = [Projection("exc", "neurons", "neurons", (connectivity(spec, seed).n_exc_synapses,))]
        layout.output = "neurons"
    else:
        layout.input = "input"
        layout.groups["input"] = spec.sizes[0]
        for l, (n_out, n_in) in enumerate(spec.shapes, start=1):
            layout.groups[f"layer{l}"] = n_out
            layout.layers.append(f"layer{l}")
            layout.projections.append(Projection(f"weights{l}", "input" if l == 1 else f"layer{l - 1}", f"layer{l}",
                                                 (n_out, n_in)))
        layout.output = layout.layers[-1]
    return layout


# -- the neuron models (each spec class builds its own, see SpikingModelSpec.neurons) -------------
def _neurons(spec, recipe, layout, name, roles):
    """The group ``name`` of ``spec``'s neurons in every copy; ``roles``: one copy's neurons'. Returns
    the code a presynaptic spike runs on its synapses."""
    group = recipe.group(name, layout.size(name), method="exact")
    return spec.neurons(group, np.tile(np.asarray(roles, object), layout.copies), bool(spec.noise > 0 * mV))


def base_recipe(layout):
    """The network of ``layout.spec`` as a recipe: neurons, connections, NP currents, credit traces."""
    spec = layout.spec
    recipe = Recipe(spec.dt)
    if spec.recurrent:
        transmit = _neurons(spec, recipe, layout, "neurons", ["exc"] * spec.n_exc + ["inh"] * spec.n_inh)
        conn, n = connectivity(spec, layout.seed), layout.groups["neurons"]

        def replicated(index):  # one copy's neuron indices, in every copy
            return (np.arange(layout.copies)[:, None] * n + index[None, :]).ravel()

        delay = spec.delay if spec.delay > 0 * ms else None
        for name, i, j in (("exc", conn.exc_i, conn.exc_j), ("inh", conn.inh_i, conn.inh_j)):
            syn = recipe.connect(name, "neurons", "neurons", replicated(i), replicated(j), delay=delay)
            syn.add("w : volt")
            syn.transmit = transmit
        recipe.synapses["inh"].initial["w"] = spec.w_inh
        recipe.synapses["exc"].initial["w"] = spec.w_exc
    else:
        recipe.timed_array(INPUT_RASTER, layout.run_steps, layout.blocks * spec.sizes[0])
        recipe.run_value(INPUT_RASTER, "values", 0.0)
        source = recipe.group("input", layout.size("input"), method="exact")
        source.threshold.append(f"{INPUT_RASTER}(t, i) > 0.5")
        for l, projection in enumerate(layout.projections):
            transmit = _neurons(spec, recipe, layout, projection.post, ["layer"] * spec.sizes[l + 1])
            n_out, n_in = projection.shape
            c, o, k = np.meshgrid(np.arange(layout.copies), np.arange(n_out), np.arange(n_in), indexing="ij")
            source = layout.input_block[c] if l == 0 else c
            syn = recipe.connect(projection.synapses, projection.pre, projection.post,
                                 (source * n_in + k).ravel(), (c * n_out + o).ravel())
            syn.add("w : volt")
            syn.transmit = transmit
        _credit_traces(spec, recipe, layout)
    _runaway_guard(recipe, layout)
    return recipe


def _credit_traces(spec, recipe, layout):
    r"""Every presynaptic group counts its spikes (and, for LIF, keeps the synaptic kernel ``psp``)
    so that :meth:`SpikingNetwork.read` can report ``drive``: the time average over the run of the
    input that one unit of weight gives (see :func:`presynaptic_drive`)."""
    for projection in layout.projections:
        group = recipe.group(projection.pre)
        group.add("n_spikes : 1")
        group.reset.append("n_spikes += 1")
        spec.credit_trace(group)


def presynaptic_drive(spec, n_spikes, traces, duration):
    r"""The time-averaged input per unit weight over a run of length T (the model's
    :meth:`~bioplastic.networks.spiking.SpikingModelSpec.drive`, exact for LIF and Izhikevich).

    Node perturbation credits synapse ij with :math:`\hat g_i\, \mathrm{drive}_j`, because a
    constant current p into neuron i acts like a weight change of :math:`p / \mathrm{drive}_j`
    on a synapse whose input is spread evenly over the run.
    """
    return spec.drive(n_spikes, traces, duration)


def clamp(recipe, layout, group):
    """Let a run value force spikes of ``group``: the raster ``clamp_<group>`` (steps, neurons)
    makes neuron i spike in every step where it holds a 1 (besides its own spikes)."""
    name = f"clamp_{group}"
    recipe.timed_array(name, layout.steps, layout.size(group))
    recipe.run_value(name, "values", 0.0)
    recipe.group(group).threshold.append(f"{name}(t, i) > 0.5")
    return name


# -- runaway activity ---------------------------------------------------------------------------
def _stop_numpy(condition):
    if np.any(np.asarray(condition) > 0):
        Network._globally_stopped = True  # the runtime loop checks it every step
    return condition


STOP_CPP = """
double bioplastic_stop(double condition) {
    if (condition > 0) Network::_globally_stopped = true;  // the standalone loop checks it every step
    return condition;
}"""
STOP = Function(_stop_numpy, arg_units=[1], return_unit=1, stateless=False)
STOP.implementations.add_implementation("cpp", code=STOP_CPP, name="bioplastic_stop",
                                        compiler_kwds={"headers": ['"network.h"']})

GUARD_WINDOW = 100 * ms


def _runaway_guard(recipe, layout):
    """Stop the run from inside when the population rate over the last 100 ms exceeds the
    run value ``guard.max_rate``; ``guard.stopped_at`` records when (or stays -1 s)."""
    neurons = sum(layout.size(g) for g in layout.layers)
    guard = recipe.group("guard", 1, method="exact")
    guard.add("spikes : 1", "max_rate : hertz (shared, constant)", "stopped_at : second", "halt : 1")
    guard.initial["stopped_at"] = -1 * second
    recipe.functions["bioplastic_stop"] = STOP
    guard.namespace.update(n_guarded=neurons, guard_window=GUARD_WINDOW)
    guard.regular["check"] = Regular([
        "halt = int(spikes / (n_guarded * guard_window) > max_rate)",
        "stopped_at = stopped_at * (1 - halt) + t * halt",
        "halt = bioplastic_stop(halt)",
        "spikes = 0"], dt=GUARD_WINDOW, when="end")
    recipe.run_value("guard", "max_rate", float("inf"))
    for g in layout.layers:
        syn = recipe.connect(f"guard_{g}", g, "guard", np.arange(layout.size(g)), np.zeros(layout.size(g), int))
        syn.on_pre["pre"] = ["spikes_post += 1"]


def raster_rows(inputs, layout, name="inputs"):
    """One trial's input spikes (blocks, steps, n_in) as the rows of the input raster (steps, blocks * n_in)."""
    raster = np.asarray(inputs, float)
    shape = (layout.blocks, layout.steps, layout.spec.sizes[0])
    if raster.shape != shape:
        raise ValueError(f"{name}: must have shape {shape} (got {raster.shape})")
    return raster.transpose(1, 0, 2).reshape(layout.steps, -1)


# -- the network once built ---------------------------------------------------------------------
@dataclass
class SpikingObservation:
    """What one run of a spiking network produced (weights in mV).

    final : list of ndarray (copies, n)
        Every weight layer's presynaptic ``drive`` (see :func:`_credit_traces`), then the task's
        read-out of the output group.
    deltas : dict rule kind -> list of ndarray (copies, *shape)
        The weight change each in-network rule accumulated (mV).
    rewards : ndarray (copies,) or None
        The reward each copy's neuromodulator received at the end of the run.
    monitors : dict name -> dict of arrays
        Raw records: ``t`` and, for a StateMonitor, every variable as (steps, recorded); for a
        spike or event monitor ``i``.
    weights : list of ndarray (copies, *shape)
        The plastic weights at the end of the run (mV).
    stopped_at : Quantity or None
        When the runaway guard stopped the run (None: it ran to the end).
    """

    final: list
    deltas: dict = field(default_factory=dict)
    rewards: object = None
    monitors: dict = field(default_factory=dict)
    weights: list = field(default_factory=list)
    stopped_at: object = None


class SpikingNetwork(BuiltNetwork):
    """Built Brian2 objects of a spiking recipe, with run values in and observations out."""

    def assignments(self, weights=None, inputs=None, perts=None, values=None):
        """``{brian2 variable or TimedArray: flat SI array}`` for one run; every declared run value
        is written (its default where not given), so nothing leaks from the previous run.

        ``weights``: per projection (copies, *shape) in mV; ``inputs``: (blocks, steps, n_in)
        spike raster; ``perts``: per layer (copies, n) in mV; ``values``: ``{(owner, variable):
        value}`` for the run values that contributors declared.
        """
        layout = self.layout
        given = dict(values or {})
        if inputs is not None:
            given[(INPUT_RASTER, "values")] = raster_rows(inputs, layout)
        out = self.run_value_assignments(given)
        if weights is not None:
            for projection, w in zip(layout.projections, weights):
                out[getattr(self.objects[projection.synapses], "w")] = _checked(
                    f"weights[{projection.synapses}]", w, (layout.copies,) + projection.shape) * float(WEIGHT_UNIT)
        if perts is not None:
            for group, p in zip(layout.layers, perts):
                out[self.objects[group].pert] = _checked(f"perts[{group}]", p, (layout.copies, layout.groups[group])) \
                    * float(WEIGHT_UNIT)
        return out

    def read(self, get):
        """What the run produced; ``get(object name, variable)`` returns raw values (SI units;
        a StateMonitor's record as (steps, recorded))."""
        layout = self.layout
        final = []
        for projection in layout.projections if not layout.spec.recurrent else []:
            traces = {name: get(projection.pre, name) for name in layout.spec.drive_variables}
            drive = presynaptic_drive(layout.spec, get(projection.pre, "n_spikes"), traces, layout.duration)
            drive = drive.reshape(-1, layout.groups[projection.pre])
            if projection.pre == layout.input:
                drive = drive[layout.input_block]
            final.append(drive)
        if self.recipe.readout is not None:
            final.append(self.recipe.readout.value(get).reshape(layout.copies, -1))
        deltas = {}
        for rule, variable in self.recipe.deltas.items():
            deltas[rule] = [get(p.synapses, variable).reshape((layout.copies,) + p.shape) / float(WEIGHT_UNIT)
                            for p in layout.projections]
        rewards = get("modulator", "final_reward") if self.recipe.final_reward and \
            "modulator" in self.objects else None
        monitors = {}
        for name, monitor in self.recipe.monitors.items():
            fields = ("t",) + tuple(monitor.variables) if monitor.variables else ("t", "i")
            monitors[name] = {field: get(name, field) for field in fields}
        stopped = float(get("guard", "stopped_at")[0])
        return SpikingObservation(final=final, deltas=deltas, rewards=rewards, monitors=monitors,
                                  weights=[get(p.synapses, "w").reshape((layout.copies,) + p.shape) / float(WEIGHT_UNIT)
                                           for p in layout.projections],
                                  stopped_at=stopped * second if stopped >= 0 else None)


class SpikingBlueprint:
    """A spiking network with every contribution folded in: its key, and how to build it.

    ``contributors`` are callables ``f(recipe, layout)`` (the task's and the rules' builders).
    """

    def __init__(self, spec, copies, steps, blocks=1, seed=0, contributors=(), input_block=None):
        self.layout = make_layout(spec, copies, steps, blocks, seed, input_block)
        self.recipe = base_recipe(self.layout)
        for contribute in contributors:
            contribute(self.recipe, self.layout)
        self.copies = copies
        self.key = self.recipe.key(self.layout.run_length)

    def build(self):
        from .clocks import NamedClock
        objects, network = self.recipe.build(NamedClock(self.layout.dt, name="clock"))
        return SpikingNetwork(self.layout, self.recipe, objects, network)


__all__ = ["Layout", "Projection", "SpikingBlueprint", "SpikingNetwork", "SpikingObservation", "base_recipe",
           "make_layout", "INPUT_RASTER"]
