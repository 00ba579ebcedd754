r"""Feed-forward rate networks in Brian2, replicated into independent copies.

Every layer :math:`l \ge 1` is a group of rate neurons

.. math:: \tau \frac{dr}{dt} = -r + f(I + \mathrm{pert}), \qquad I_i = \sum_j W_{ij} r_j^{\mathrm{pre}},

integrated with forward Euler (see :mod:`bioplastic.networks.rate_math` for the exact
discrete update). ``pert`` is a constant per-neuron input that node perturbation writes.

``copies`` independent networks live inside one set of Brian2 groups: copy ``c`` owns neurons
``c*n .. (c+1)*n - 1`` of each layer, and the synapses are block diagonal, so K perturbed
trials cost one run. Weights are an array of shape ``(copies, n_out, n_in)`` per layer, written
to the synapses in that order.
"""

from dataclasses import dataclass

import numpy as np
from brian2 import ms

from ..errors import SpecError
from ..spec import layer_sizes, param, positive, validate
from .clocks import NamedClock
from .dense import dense_sum
from .layout import Layout, Projection, checked_array, matrix_order, synapse_order
from .rate_math import ACTIVATIONS
from .recipe import BuiltNetwork, Recipe, Regular

_BRIAN_ACTIVATION = {
    "linear": "{u}",
    "tanh": "tanh({u})",
    "sigmoid": "1.0 / (1.0 + exp(-({u})))",
    "relu": "clip({u}, 0, inf)",
}


@dataclass(frozen=True)
class RateModelSpec:
    """A feed-forward network of rate neurons.

    Parameters
    ----------
    sizes : list of int
        Layer sizes, input first.
    activation : str
        The nonlinearity f: linear, tanh, sigmoid or relu.
    tau : Quantity (time)
        Membrane time constant.
    dt : Quantity (time)
        Integration step (forward Euler).
    init_gain : float
        Initial weights are drawn from N(0, init_gain^2 / n_in).
    recurrent : bool
        False; ``recurrent = true`` selects the recurrent model
        (:class:`~bioplastic.networks.recurrent_rate.RecurrentRateModelSpec`) and its keys.
    """

    sizes: list = param([10, 20, 2], "layer sizes, input first", kind=list, check=layer_sizes)
    activation: str = param("tanh", "nonlinearity f", kind=str, choices=ACTIVATIONS)
    tau: object = param(10 * ms, "membrane time constant", unit=ms, check=positive)
    dt: object = param(1 * ms, "Euler integration step", unit=ms, check=positive)
    init_gain: float = param(1.0, "initial weights ~ N(0, init_gain^2 / n_in)", check=positive)
    recurrent: bool = param(False, "true: a recurrent network (the recurrent rate model's keys apply)", kind=bool)

    def __post_init__(self):
        validate(self)
        if self.recurrent:  # pragma: no cover - the loader picks RecurrentRateModelSpec instead
            raise SpecError("RateModelSpec.recurrent", "must be false for a feed-forward network", True)
        if self.dt > self.tau:
            raise SpecError("RateModelSpec.dt", f"must be <= tau ({self.tau}) for a stable Euler step", str(self.dt))

    @property
    def a(self):
        """dt / tau, the Euler step as a fraction of the time constant."""
        return float(self.dt / self.tau)

    family = "feedforward_rate"
    kind = "rate"

    @classmethod
    def variant(cls, table):
        """``recurrent = true`` selects the recurrent rate model and its keys."""
        if table.get("recurrent") is True:
            from .recurrent_rate import RecurrentRateModelSpec
            return RecurrentRateModelSpec
        return cls

    @property
    def shapes(self):
        """(n_out, n_in) of every weight matrix."""
        return [(n_out, n_in) for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    def init_weights(self, rng, seed=None):
        return init_weights(self, rng)


def init_weights(spec, rng):
    """Initial weights, one (n_out, n_in) matrix per layer, N(0, init_gain^2 / n_in)."""
    return [rng.normal(0.0, spec.init_gain / np.sqrt(n_in), (n_out, n_in)) for n_out, n_in in spec.shapes]


@dataclass
class Observation:
    """What one run of a rate network produced.

    final : list of ndarray (copies, n_l)
        Rates of every layer, input first, at the end of the trial.
    trajectory : list of ndarray (steps, record, n_l) or None
        Rates of layers 1..L at the start of every step, for the recorded copies.
    """

    final: list
    trajectory: list | None
    stopped_at: object = None  # a rate network never stops early


def make_layout(spec, copies, steps):
    """The groups and plastic projections of ``copies`` feed-forward networks (``layer0`` the input)."""
    layout = Layout(spec, int(copies), int(steps), blocks=int(copies), input="layer0",
                    output=f"layer{len(spec.sizes) - 1}")  # every copy reads its own input row
    for l, n in enumerate(spec.sizes):
        layout.groups[f"layer{l}"] = n
    layout.layers = [f"layer{l}" for l in range(1, len(spec.sizes))]
    layout.projections = [Projection(f"weights{l}", f"layer{l - 1}", f"layer{l}", shape)
                          for l, shape in enumerate(spec.shapes, start=1)]
    return layout


def connect_dense(recipe, projection, copies):
    """The block-diagonal dense synapses of ``projection`` with ``I_post = w * r_pre``, stored
    presynaptic-major (:func:`~bioplastic.networks.layout.synapse_order`), the sum computed as a
    matrix loop once a step (:func:`~bioplastic.networks.dense.dense_sum`) where Brian2's summed
    variable would run: before the groups' state updates (order -1). Each target sums its inputs
    in the order of their presynaptic index, as the NumPy maths does."""
    n_out, n_in = projection.shape
    c, i, o = np.meshgrid(np.arange(copies), np.arange(n_in), np.arange(n_out), indexing="ij")
    syn = recipe.connect(projection.synapses, projection.pre, projection.post, (c * n_in + i).ravel(),
                         (c * n_out + o).ravel())
    syn.add("w : 1")
    dense_sum(recipe, projection.synapses, "r", "I", copies=copies, shape=projection.shape, order=-1)
    return syn


def base_recipe(layout, record):
    """The network of ``layout`` as a recipe: rate neurons, block-diagonal dense weights, and the
    rates of the first ``record`` copies recorded at the start of every step (for BPTT)."""
    spec, copies = layout.spec, layout.copies
    recipe = Recipe(spec.dt)
    recipe.group("layer0", layout.size("layer0")).add("r : 1")
    f = _BRIAN_ACTIVATION[spec.activation].format(u="I + pert")
    for projection in layout.projections:
        n_out, post = projection.shape[0], projection.post
        group = recipe.group(post, layout.size(post), method="euler")
        group.add(f"dr/dt = (-r + {f}) / tau : 1", "I : 1", "pert : 1")
        group.namespace["tau"] = spec.tau
        connect_dense(recipe, projection, copies)
        if record:
            recipe.monitor(f"rates{post[len('layer'):]}", post, variables=("r",), record=np.arange(record * n_out),
                           when="start")
    return recipe


class RateNetwork(BuiltNetwork):
    """The Brian2 objects of ``copies`` replicated rate networks, for one trial duration.

    The first ``record`` copies have every layer's rate recorded at every step (these are the
    clean copies whose trajectory the BPTT reference runs through).
    """

    def __init__(self, layout, recipe, objects, network, record):
        super().__init__(layout, recipe, objects, network)
        self.spec, self.copies, self.record = layout.spec, layout.copies, record

    def assignments(self, weights, inputs, perts=None, values=None):
        """The trial's values as ``{brian2 variable: flat array}`` (run_args in standalone).

        ``weights``: per layer, (copies, n_out, n_in); ``inputs``: (copies, n_0);
        ``perts``: per layer, (copies, n_l), or None for no perturbation; ``values``:
        ``{(owner, variable): value}`` for the run values that contributors declared.
        """
        layout = self.layout
        out = self.run_value_assignments(dict(values or {}))
        out[self.objects["layer0"].r] = checked_array("inputs", inputs, (self.copies, self.spec.sizes[0]))
        for l, (projection, w) in enumerate(zip(layout.projections, weights)):
            checked_array(f"weights[{l}]", w, (self.copies,) + projection.shape)
            out[self.objects[projection.synapses].w] = synapse_order(w)
        if perts is not None:
            for l, (group, p) in enumerate(zip(layout.layers, perts)):
                out[self.objects[group].pert] = checked_array(f"perts[{l}]", p, (self.copies, layout.groups[group]))
        return out

    def read(self, get):
        """Final rates per layer (input first), each (copies, n_l), and the recorded trajectories,
        each (steps, record, n_l), or None when nothing is recorded.

        ``get(object name, variable)`` returns a variable's raw values (the backend's reader).
        """
        layout = self.layout
        final = [get(name, "r").reshape(self.copies, -1) for name in ("layer0", *layout.layers)]
        trajectory = None
        if self.record:
            trajectory = [get(f"rates{l}", "r").reshape(-1, self.record, n) for l, n in
                          enumerate(self.spec.sizes[1:], start=1)]
        return Observation(final, trajectory)


class RateBlueprint:
    """``copies`` rate networks for trials of ``steps`` steps, with every contribution
    (``contributors``: ``f(recipe, layout)``, the task's and an in-network rule's builders)
    folded in; its key is the recipe's."""

    def __init__(self, spec, copies, steps, record=0, contributors=()):
        if copies < 1:
            raise ValueError(f"copies: must be >= 1 (got {copies})")
        self.layout = make_layout(spec, copies, steps)
        self.recipe = base_recipe(self.layout, record)
        for contribute in contributors:
            contribute(self.recipe, self.layout)
        self.spec, self.copies, self.steps, self.record = spec, copies, steps, record
        self.with_rule = False
        self.key = self.recipe.key(self.layout.run_length)

    def build(self):
        objects, network = self.recipe.build(NamedClock(self.layout.dt, name="trial_clock"))
        return RateNetwork(self.layout, self.recipe, objects, network, self.record)


# -- many trials in one run (the block loop) --------------------------------------------------------
# The trial boundary: at the first step of every trial (and one step after the last), in the
# ``groups`` slot before the rates' summed input and state update, code runs once per trial in
# these named slots (``order``). The base network fills the read-out, the scores and the next
# trial; a rule's block form (rules/perturbation.py) fills the rest.
BOUNDARY = dict(read_out=-100, share_read_out=-95, score=-90, record=-85, loss_change=-80, credit=-75,
                node_gradient=-70, share_node_gradient=-65, update=-55, next_trial=-50)
INPUTS, TARGETS, ACTIVE = "loop_inputs", "loop_targets", "loop_active"


def every_trial(owner, name, *lines, layout):
    """Run ``lines`` on ``owner`` (a group or synapse recipe) once per trial, in the boundary slot
    ``name``; a second call for the same slot appends its lines."""
    regular = owner.regular.setdefault(name, Regular([], dt=layout.period, when="groups", order=BOUNDARY[name]))
    regular.code.extend(lines)
    return regular


def update_master_weight(synapses, estimate, layout):
    """A rule's update at the boundary: the master weight steps by ``-lrk * estimate`` (not on padding trials)."""
    every_trial(synapses, "update", f"wm = wm - lrk * {ACTIVE}(t) * ({estimate})", layout=layout)


def block_recipe(layout):
    r"""A block of ``layout.trials`` trials of ``layout.copies`` feed-forward networks as a recipe.

    Trial n occupies steps ``n*steps .. (n+1)*steps - 1``. At every trial boundary, generated
    code reads out every layer's rate ``rT`` and each output's squared error ``sqerr`` against the
    trial's target (``read_out``); sums every copy's loss ``L`` into the group ``losses``
    (``score``) and records it (``record``); steps every synapse's master weight ``wm`` by the
    rule's estimate (``update``, the rule's); and starts the next trial (``next_trial``): inputs,
    ``r = 0`` and the copy's weight (the rule's). Inputs, targets and ``active`` (0 on padding
    trials) are tables with a row per trial; targets and ``active`` are shifted by one row, since
    at the boundary after trial n, row n + 1 is trial n's.
    """
    spec, copies, batch = layout.spec, layout.copies, layout.batch
    trials, period, sizes = layout.trials, layout.period, spec.sizes
    recipe = Recipe(spec.dt)
    recipe.timed_array(INPUTS, trials, batch * sizes[0], dt=period)
    recipe.timed_array(TARGETS, trials + 1, batch * sizes[-1], dt=period)
    recipe.timed_array(ACTIVE, trials + 1, None, dt=period)
    for name in (INPUTS, TARGETS, ACTIVE):
        recipe.run_value(name, "values", 0.0)
    example = np.arange(copies) % batch
    f = _BRIAN_ACTIVATION[spec.activation].format(u="I + pert")
    for l, n in enumerate(sizes):
        name, unit = f"layer{l}", np.tile(np.arange(n), copies)
        group = recipe.group(name, copies * n, method="euler")
        if l == 0:
            group.add("r : 1", "rT : 1", "idx : integer (constant)")
            group.initial["idx"] = np.repeat(example, n) * n + unit
            every_trial(group, "next_trial", f"r = {INPUTS}(t, idx)", layout=layout)
        else:
            group.add(f"dr/dt = (-r + {f}) / tau : 1", "I : 1", "pert : 1", "rT : 1")
            group.namespace["tau"] = spec.tau
            every_trial(group, "next_trial", "r = 0", layout=layout)
        every_trial(group, "read_out", "rT = r", layout=layout)
    output = recipe.group(layout.output)
    output.add("sqerr : 1", "tidx : integer (constant)")
    output.initial["tidx"] = np.repeat(example, sizes[-1]) * sizes[-1] + np.tile(np.arange(sizes[-1]), copies)
    every_trial(output, "read_out", f"sqerr = (r - {TARGETS}(t, tidx))**2", layout=layout)
    # Every copy's loss, summed from its outputs once per trial (the group's order puts the sum at "score").
    recipe.group("losses", copies, dt=period, order=BOUNDARY["score"] + 1).add("L : 1")
    score = recipe.connect("score", layout.output, "losses", np.arange(copies * sizes[-1]),
                           np.repeat(np.arange(copies), sizes[-1]), dt=period)
    score.add(f"L_post = sqerr_pre / {sizes[-1]} : 1 (summed)")
    recipe.monitor("loss_monitor", "losses", variables=("L",), record=True, dt=period, when="groups",
                   order=BOUNDARY["record"])
    for projection in layout.projections:
        connect_dense(recipe, projection, copies).add("wm : 1", "lrk : 1 (shared)")
        recipe.run_value(projection.synapses, "wm", 0.0)
        recipe.run_value(projection.synapses, "lrk", 0.0)
    return recipe


class RateBlockNetwork(BuiltNetwork):
    """The Brian2 objects of a block: the block's values in, every trial's losses and the weights out."""

    def __init__(self, layout, recipe, objects, network):
        super().__init__(layout, recipe, objects, network)
        self.duration = layout.trials * layout.period + layout.dt  # one more step: the last trial's update

    def assignments(self, weights, inputs, targets, active, values=None):
        """``weights``: per layer (n_out, n_in), the master weights at the block's start; ``inputs``
        (trials, batch, n_0) and ``targets`` (trials, batch, n_L); ``active`` (trials,): 0 for
        padding trials, whose update is not applied; ``values``: the rule's own run values (its
        noise tables, ``lrk``: the master weight's step per unit of its estimate)."""
        layout, spec = self.layout, self.layout.spec
        trials, batch = layout.trials, layout.batch

        def rows(array, shape, lead=0):
            flat = np.asarray(checked_array("block values", array, shape)).reshape(shape[0], -1)
            return np.concatenate([np.zeros((lead, flat.shape[1])), flat]) if lead else flat

        given = dict(values or {})
        given[(INPUTS, "values")] = rows(inputs, (trials, batch, spec.sizes[0]))
        given[(TARGETS, "values")] = rows(targets, (trials, batch, spec.sizes[-1]), lead=1)
        given[(ACTIVE, "values")] = np.concatenate([[0.0], np.asarray(active, float).reshape(trials)])
        for projection, w in zip(layout.projections, weights):
            checked_array("weights", w, projection.shape)
            given[(projection.synapses, "wm")] = np.tile(synapse_order(w), layout.copies)
        return self.run_value_assignments(given)

    def read(self, get):
        """``(weights, losses)``: the master weights after the block, per layer (n_out, n_in), and every
        copy's loss in every trial (trials, copies)."""
        layout = self.layout
        weights = [matrix_order(get(p.synapses, "wm")[:p.size], 1, p.shape)[0] for p in layout.projections]
        losses = get("loss_monitor", "L").reshape(-1, layout.copies)[1:layout.trials + 1]
        return weights, losses


class RateBlockBlueprint:
    """A block of ``trials`` trials of ``copies`` feed-forward networks (``batch`` examples per
    variant), with a rule's block form (``contributors``: ``f(recipe, layout)``) folded in."""

    def __init__(self, spec, copies, batch, steps, trials, contributors=()):
        self.layout = make_layout(spec, copies, steps)
        self.layout.trials, self.layout.batch = int(trials), int(batch)
        self.recipe = block_recipe(self.layout)
        for contribute in contributors:
            contribute(self.recipe, self.layout)
        self.copies = copies
        self.key = self.recipe.key(self.layout.run_length)

    def build(self):
        objects, network = self.recipe.build(NamedClock(self.layout.dt, name="loop_clock"))
        return RateBlockNetwork(self.layout, self.recipe, objects, network)
