r"""Recurrent rate networks in Brian2 (``model.kind = "rate"``, ``recurrent = true``).

N leaky rate units with recurrent weights J of gain g, input weights from ``n_inputs``
time-varying input channels, a linear read-out z of ``n_outputs`` units and, optionally, fixed
random feedback of the read-out into the network (Sussillo & Abbott 2009; Hoerzer et al. 2014):

.. math::
    \tau \frac{dx}{dt} = -x + J r + W_\mathrm{in} u(t) + W_\mathrm{fb} z + p + k(t) + \xi(t),
    \qquad r = f(x), \qquad z = W_\mathrm{out} r + p_\mathrm{out} + k_\mathrm{out}(t).

:math:`\xi` is every neuron's private noise (a fresh Gaussian current of standard deviation
``noise`` every step), ``p`` node perturbation's constant current, and ``k`` the perturbations
an in-network rule draws (Miconi's sparse kicks, node perturbation through time). The exact
discrete update is restated in :mod:`bioplastic.networks.recurrent_rate_math`.

Initialisation (stream ``init`` of the run's seed): :math:`J_{ij} \sim N(0, g^2/N)` (g = 1.5 is
the chaotic regime), :math:`W_\mathrm{in} \sim U(-\mathrm{input\_gain}, \mathrm{input\_gain})`,
:math:`W_\mathrm{out} \sim N(0, \mathrm{readout\_gain}^2/N)` or, with ``readout =
"first_neuron"``, the read-out is the rate of neurons 0..n_out-1 (Miconi 2017; those neurons get
no direct input), :math:`W_\mathrm{fb} \sim U(-\mathrm{feedback\_gain}, \mathrm{feedback\_gain})`.
``plastic`` says which of the input, recurrent and read-out weights the rule trains; the others
stay at their initial values.

Copies are replicated inside one set of groups as for feed-forward networks, and every copy
reads its own columns of the ``stimulus`` TimedArray, so one build serves every trial.
"""

from dataclasses import dataclass, field

import numpy as np
from brian2 import ms

from .. import rng as rng_streams
from ..errors import SpecError
from ..spec import at_least, non_negative, param, positive, validate
from .block import at_trial_end
from .dense import dense_sum
from .layout import Layout, Projection, checked_array as _checked, matrix_order, synapse_order
from .rate_math import ACTIVATIONS
from .rate import _BRIAN_ACTIVATION
from .recipe import BuiltNetwork, Readout, Recipe, Regular

PLASTIC = {"recurrent": ("recurrent",), "readout": ("readout",), "input": ("input",),
           "recurrent+readout": ("recurrent", "readout"), "input+recurrent": ("input", "recurrent"),
           "all": ("input", "recurrent", "readout")}
# name -> (synapses, presynaptic group, postsynaptic group, summed target variable)
CONNECTIONS = {"input": ("input_weights", "input", "neurons", "I_in"),
               "recurrent": ("recurrent_weights", "neurons", "neurons", "I_rec"),
               "readout": ("readout_weights", "neurons", "readout", "z_syn"),
               "feedback": ("feedback_weights", "readout", "neurons", "I_fb")}
STIMULUS = "stimulus"
# Order within Brian2's 'groups' slot in every step: every unit's rate from its state at the step's
# start (once per neuron, not per synapse), the read-out and synaptic currents from those rates,
# then the feedback (it reads the read-out), then the per-unit factors of in-network rules, then
# what they accumulate per synapse, then their traces, then the Euler state update (order 0).
STEP = dict(rate=-7, summed=-6, feedback=-5, factor=-4, eligibility=-3, trace=-2)  # slot -> order


class ReadoutNetworkSpec:
    """What the recurrent families with a read-out share (the rate network and the LIF/ALIF one):
    which weights are plastic, their shapes, and the plastic ones out of :meth:`all_weights`."""

    weight_unit = 1.0  # weights (and node perturbation's currents) are dimensionless
    # A presynaptic unit's activity as node perturbation credits it: its mean over the trial
    # (r_sum, summed every step; what RecurrentRateNetwork.read reports), as block code.
    drive_code = "r_sum / trial_steps"

    @property
    def plastic_layers(self):
        return PLASTIC[self.plastic]

    @property
    def shapes(self):
        """(n_post, n_pre) of every plastic weight matrix, in ``plastic_layers`` order."""
        return [self.shape(name) for name in self.plastic_layers]

    def shape(self, name):
        n, n_in, n_out = self.n_neurons, self.n_inputs, self.n_outputs
        return {"input": (n, n_in), "recurrent": (n, n), "readout": (n_out, n), "feedback": (n, n_out)}[name]

    def init_weights(self, rng, seed=None):
        """The plastic weights (``plastic_layers`` order); ``rng`` is unused: every matrix comes
        from :meth:`all_weights` so the fixed ones agree."""
        weights = self.all_weights(seed)
        return [weights[name] for name in self.plastic_layers]

    def full_weights(self, plastic, seed):
        """Every weight by name, the plastic ones taken from ``plastic``."""
        weights = self.all_weights(seed)
        weights.update(zip(self.plastic_layers, plastic))
        return weights


@dataclass(frozen=True)
class RecurrentRateModelSpec(ReadoutNetworkSpec):
    """A recurrent network of leaky rate units with a linear read-out (see the module docstring)."""

    n_inputs: int = param(3, "input channels (the task's stimulus)", kind=int, check=at_least(1))
    n_neurons: int = param(200, "recurrent units N", kind=int, check=at_least(1))
    n_outputs: int = param(1, "read-out units", kind=int, check=at_least(1))
    g: float = param(1.5, "recurrent gain: J ~ N(0, g^2 / N) (1.5: chaotic)", check=non_negative)
    tau: object = param(30 * ms, "time constant of the units", unit=ms, check=positive)
    dt: object = param(1 * ms, "Euler integration step", unit=ms, check=positive)
    activation: str = param("tanh", "rate nonlinearity f", kind=str, choices=ACTIVATIONS)
    input_gain: float = param(1.0, "input weights ~ U(-input_gain, input_gain)", check=non_negative)
    readout: str = param("linear", "linear (W_out ~ N(0, readout_gain^2 / N)) or first_neuron (z = the rates of the "
                         "first n_outputs neurons, Miconi 2017)", kind=str, choices=("linear", "first_neuron"))
    readout_gain: float = param(1.0, "read-out weights ~ N(0, readout_gain^2 / N)", check=non_negative)
    feedback: bool = param(False, "feed the read-out back into the network through fixed random weights", kind=bool)
    feedback_gain: float = param(1.0, "feedback weights ~ U(-feedback_gain, feedback_gain)", check=non_negative)
    noise: float = param(0.0, "private noise: std of a fresh Gaussian input current every step", check=non_negative)
    x_init: float = param(0.0, "every trial starts from x ~ U(-x_init, x_init), drawn inside the run",
                          check=non_negative)
    plastic: str = param("recurrent", "which weights the rule trains", kind=str, choices=tuple(PLASTIC))
    recurrent: bool = param(True, "recurrent network (false: the feed-forward rate model)", kind=bool)

    family = "recurrent_rate"
    kind = "rate"

    def __post_init__(self):
        validate(self)
        if not self.recurrent:  # pragma: no cover - the loader picks the feed-forward spec instead
            raise SpecError("RecurrentRateModelSpec.recurrent", "must be true", False)
        if self.dt > self.tau:
            raise SpecError("RecurrentRateModelSpec.dt", f"must be <= tau ({self.tau}) for a stable Euler step",
                            str(self.dt))
        if self.readout == "first_neuron":
            if self.n_outputs > self.n_neurons:
                raise SpecError("RecurrentRateModelSpec.n_outputs", f"readout = \"first_neuron\" reads the first "
                                f"n_outputs neurons: must be <= n_neurons ({self.n_neurons})", self.n_outputs)
            if "readout" in PLASTIC[self.plastic]:
                raise SpecError("RecurrentRateModelSpec.plastic", "readout = \"first_neuron\" has no read-out "
                                "weights to train; use a linear read-out or leave the read-out fixed", self.plastic)

    @property
    def a(self):
        """dt / tau."""
        return float(self.dt / self.tau)

    def all_weights(self, seed):
        """Every weight matrix by name (``feedback`` None without feedback), from stream ``init``."""
        rng = rng_streams.stream(seed, "init")
        n, n_in, n_out = self.n_neurons, self.n_inputs, self.n_outputs
        weights = {"input": rng.uniform(-self.input_gain, self.input_gain, (n, n_in)),
                   "recurrent": rng.normal(0.0, self.g / np.sqrt(n), (n, n)),
                   "readout": rng.normal(0.0, self.readout_gain / np.sqrt(n), (n_out, n)),
                   "feedback": rng.uniform(-self.feedback_gain, self.feedback_gain, (n, n_out))}
        if self.readout == "first_neuron":
            weights["readout"] = np.eye(n_out, n)
            weights["input"][:n_out] = 0.0  # as Miconi's output neuron: no direct input
        if not self.feedback:
            weights["feedback"] = None
        return weights


def make_layout(spec, copies, steps, seed=0):
    layout = Layout(spec, int(copies), int(steps), blocks=int(copies), seed=int(seed))
    layout.input = "input"
    layout.groups.update(input=spec.n_inputs, neurons=spec.n_neurons, readout=spec.n_outputs)
    layout.layers = ["neurons", "readout"]
    for name in spec.plastic_layers:
        synapses, pre, post, _ = CONNECTIONS[name]
        layout.projections.append(Projection(synapses, pre, post, spec.shape(name)))
    layout.output = "readout"
    return layout


def base_recipe(layout, record=0, dense=True):
    """The network as a recipe; ``record`` clean copies have their state x recorded every step.
    With ``dense`` the recurrent current is a matrix product once a step (:mod:`.dense`; the
    C++ and numpy targets have it), else Brian2's summed variable (any target)."""
    spec, copies = layout.spec, layout.copies
    recipe = Recipe(spec.dt)
    recipe.matrix_code = dense
    recipe.timed_array(STIMULUS, layout.steps, copies * spec.n_inputs)
    recipe.run_value(STIMULUS, "values", 0.0)
    source = recipe.group("input", layout.size("input"), method="exact")
    source.add("r : 1")
    source.regular["rate"] = Regular([f"r = {STIMULUS}(t, i)"], when="groups", order=STEP["rate"])
    neurons = recipe.group("neurons", layout.size("neurons"), method="euler")
    f = _BRIAN_ACTIVATION[spec.activation].format(u="x")
    neurons.add("dx/dt = (-x + I_rec + I_in + I_fb + pert + kick + I_noise) / tau : 1", "r : 1",
                "I_rec : 1", "I_in : 1", "I_fb : 1", "pert : 1", "kick : 1", "I_noise : 1",
                "noise_std : 1 (shared, constant)", "x_init : 1 (shared, constant)")
    neurons.namespace["tau"] = spec.tau
    neurons.regular["rate"] = Regular([f"r = {f}"], when="groups", order=STEP["rate"])
    if spec.noise > 0:  # a Gaussian draw per unit and step costs a tenth of a 200-unit trial: none without noise
        neurons.regular["noise"] = Regular(["I_noise = noise_std * randn()"], when="start")
    initial = "x = x_init * (2 * rand() - 1)"
    if layout.block:  # each trial's initial state, drawn at the boundary before it
        at_trial_end(neurons, "next_trial", initial, layout=layout)
    else:  # code on a clock of the run's length runs once, at t = 0: the trial's initial state
        neurons.regular["initial"] = Regular([initial], dt=layout.duration, when="start", order=-1)
    # Values of the model spec and seed, not of the build (one build serves many): no default, so
    # that a run without model_values() fails loudly instead of using another protocol's.
    recipe.run_value("neurons", "noise_std", np.nan)
    recipe.run_value("neurons", "x_init", np.nan)
    readout = recipe.group("readout", layout.size("readout"), method="exact")
    readout.add("z = z_syn + pert + kick : 1", "z_syn : 1", "pert : 1", "kick : 1")
    for name, (synapses, pre, post, target) in CONNECTIONS.items():
        if name == "feedback" and not spec.feedback:
            continue
        n_post, n_pre = spec.shape(name)
        # Synapses are stored presynaptic-major (see synapse_order): consecutive synapses then add
        # into different targets, and the summed variable's loop has no chain of dependent adds
        # (4x faster than postsynaptic-major for a dense 200 x 200 matrix).
        c, k, o = np.meshgrid(np.arange(copies), np.arange(n_pre), np.arange(n_post), indexing="ij")
        syn = recipe.connect(synapses, pre, post, (c * n_pre + k).ravel(), (c * n_post + o).ravel())
        if dense and name == "recurrent":
            syn.add("w : 1")
            dense_sum(recipe, synapses, "r", target, copies=copies, shape=(n_post, n_pre), order=STEP["summed"])
        else:
            syn.add("w : 1", f"{target}_post = w * {'z' if name == 'feedback' else 'r'}_pre : 1 (summed)")
            syn.summed_order[f"{target}_post"] = STEP["feedback"] if name == "feedback" else STEP["summed"]
        if name not in spec.plastic_layers:  # fixed weights: written every run (model_values)
            recipe.run_value(synapses, "w", np.nan)
    if record:
        recipe.monitor("trace_x", "neurons", variables=("x",), record=np.arange(record * spec.n_neurons),
                       when="start", order=1)
    declare_readout(recipe, "z")
    _credit_traces(recipe, layout)
    return recipe


def stimulus_rows(inputs, layout, name="inputs"):
    """The copies' ``inputs`` (copies, steps, n_inputs) as the rows of the ``stimulus`` TimedArray
    (steps, copies * n_inputs)."""
    stimulus = _checked(name, inputs, (layout.copies, layout.steps, layout.spec.n_inputs))
    return stimulus.reshape(layout.copies, layout.steps, -1).transpose(1, 0, 2).reshape(layout.steps, -1)


def draw_kicks(recipe, group_name):
    """Let a rule perturb the units of ``group_name`` (neurons or read-out): in every step each unit
    receives, with the run value ``kick_probability``, an input current ``kick`` ~ U(-A, A) with
    A the run value ``kick_amplitude`` (both 0 unless the rule writes them)."""
    group = recipe.group(group_name)
    group.add("kick_probability : 1 (shared, constant)", "kick_amplitude : 1 (shared, constant)")
    group.regular["kick"] = Regular(["kick = kick_amplitude * (2 * rand() - 1)",
                                     "kick = kick * int(rand() < kick_probability)"], when="start")
    for variable in ("kick_probability", "kick_amplitude"):
        recipe.run_value(group_name, variable, 0.0)


def _credit_traces(recipe, layout):
    """Every presynaptic group of a plastic projection sums its rates over the run, so that
    :meth:`RecurrentRateNetwork.read` reports the time-averaged presynaptic rate (what node
    perturbation with a constant current credits)."""
    for projection in layout.projections:
        group = recipe.group(projection.pre)
        group.add("r_sum : 1")
        group.regular["r_sum"] = Regular(["r_sum += r"], when="groups", order=STEP["eligibility"])


@dataclass
class RecurrentObservation:
    """What one run of a recurrent rate network produced.

    final : list of ndarray (copies, n)
        Every plastic projection's time-averaged presynaptic rate, then the read-out of every
        step, (copies, steps * n_out) (step-major), which the task scores.
    trajectory : ndarray (steps, record, N), a tuple of them, or None
        The state of the recorded clean copies at the start of every step: x for rate networks,
        (v, a) for LIF/ALIF ones.
    deltas : dict rule kind -> list of ndarray (copies, *shape)
        What each in-network rule accumulated, per plastic projection.
    monitors : dict name -> dict of arrays
    """

    final: list
    trajectory: object = None
    deltas: dict = field(default_factory=dict)
    monitors: dict = field(default_factory=dict)
    stopped_at: object = None  # a rate network never runs away; read by the continuous experiment


def declare_readout(recipe, variable):
    """The read-out's ``variable`` is what the task scores, every step (the task adds its error);
    the monitor ``trace_<variable>`` records it."""
    recipe.monitor(f"trace_{variable}", "readout", variables=(variable,), record=True, when="end")
    recipe.readout = Readout("readout", (variable,))


class RecurrentRateNetwork(BuiltNetwork):
    """Built Brian2 objects of a recurrent rate recipe."""

    states = ("trace_x", ("x",))  # the monitor and variables of the recorded trajectory

    @property
    def output(self):
        """The monitor and variable of the read-out that the task scores (:func:`declare_readout`)."""
        variable = self.recipe.readout.plus[0]
        return f"trace_{variable}", variable

    def __init__(self, layout, recipe, objects, network, record):
        super().__init__(layout, recipe, objects, network)
        self.record = record

    @staticmethod
    def stimulus_inputs(inputs):
        """The copies' inputs x[t] (copies, steps, n_inputs) as the stimulus table holds them."""
        return inputs

    def assignments(self, weights=None, inputs=None, perts=None, values=None):
        """``weights``: per plastic projection (copies, n_post, n_pre); ``inputs``: (copies,
        steps, n_inputs); ``perts``: per plastic projection, its target's constant current
        (copies, n_post); ``values``: ``{(owner, variable): value}`` for declared run values,
        which must include :func:`model_values`."""
        layout = self.layout
        given = dict(values or {})
        if inputs is not None:
            given[(STIMULUS, "values")] = stimulus_rows(self.stimulus_inputs(inputs), layout)
        out = self.run_value_assignments(given)
        for projection, w in zip(layout.projections, weights or []):
            w = np.asarray(w, float)
            _checked(f"weights[{projection.synapses}]", w, (layout.copies,) + projection.shape)
            out[self.objects[projection.synapses].w] = synapse_order(w)
        currents = {group: np.zeros(layout.size(group)) for group in layout.layers}
        for projection, p in zip(layout.projections, perts or []):
            currents[projection.post] = _checked(f"perts[{projection.post}]", p,
                                                 (layout.copies, layout.groups[projection.post]))
        for group, current in currents.items():  # every run writes them: nothing leaks from the last
            out[self.objects[group].pert] = current
        return out

    def read(self, get):
        layout, spec = self.layout, self.layout.spec
        final = [get(p.pre, "r_sum").reshape(layout.copies, -1) / layout.steps for p in layout.projections]
        output = get(*self.output)  # (steps, copies * n_out)
        final.append(output.reshape(layout.steps, layout.copies, spec.n_outputs).transpose(1, 0, 2)
                     .reshape(layout.copies, -1))
        trajectory = None
        if self.record:
            monitor, variables = self.states
            states = tuple(get(monitor, v).reshape(layout.steps, self.record, spec.n_neurons) for v in variables)
            trajectory = states[0] if len(states) == 1 else states
        deltas = {rule: [matrix_order(get(p.synapses, variable), layout.copies, p.shape) for p in layout.projections]
                  for rule, variable in self.recipe.deltas.items()}
        monitors = {name: {f: get(name, f) for f in ("t",) + tuple(m.variables)}
                    for name, m in self.recipe.monitors.items() if name not in (self.output[0], self.states[0])}
        return RecurrentObservation(final=final, trajectory=trajectory, deltas=deltas, monitors=monitors)


def model_values(spec, seed, copies):
    """The run values that come from the protocol's model and seed rather than from the build: the
    private noise, the initial-state spread and the fixed (non-plastic) weights. One build serves
    every protocol with the same structure (the build key ignores them), so every run writes them."""
    values = {("neurons", "noise_std"): spec.noise, ("neurons", "x_init"): spec.x_init}
    weights = spec.all_weights(seed)
    for name, (synapses, *_) in CONNECTIONS.items():
        if name not in spec.plastic_layers and weights[name] is not None:
            values[(synapses, "w")] = np.tile(synapse_order(weights[name]), copies)
    return values


class RecurrentRateBlueprint:
    """``copies`` recurrent rate networks for trials of ``steps`` steps, with every contribution
    (``contributors``: ``f(recipe, layout)``, the task's and the rule's builders) folded in.
    Subclasses for other recurrent families name their own recipe and network class."""

    network_class = RecurrentRateNetwork
    dense = True  # the recurrent current as a matrix product (False: Brian2's summed variable)

    def base_recipe(self, layout, record):
        return base_recipe(layout, record, dense=self.dense)

    def __init__(self, spec, copies, steps, record=0, seed=0, contributors=()):
        if copies < 1:
            raise ValueError(f"copies: must be >= 1 (got {copies})")
        self.layout = make_layout(spec, copies, steps, seed)
        self.recipe = self.base_recipe(self.layout, record)
        for contribute in contributors:
            contribute(self.recipe, self.layout)
        self.copies, self.record = copies, record
        self.with_rule = False
        self.key = self.recipe.key(self.layout.run_length)

    def build(self):
        from .clocks import NamedClock
        objects, network = self.recipe.build(NamedClock(self.layout.dt, name="clock"))
        return self.network_class(self.layout, self.recipe, objects, network, self.record)
