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

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from brian2 import Network, NeuronGroup, StateMonitor, Synapses, ms

from ..errors import SpecError
from ..spec import layer_sizes, param, positive, validate
from .clocks import NamedClock
from .rate_math import ACTIVATIONS

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

    family = "rate"
    kind = "rate"

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


class RateNetwork:
    """The Brian2 objects of ``copies`` replicated rate networks, for one trial duration.

    The first ``record`` copies have every layer's rate recorded at every step (these are the
    clean copies whose trajectory the BPTT reference runs through).
    """

    def __init__(self, spec, copies, steps, record=0):
        self.spec, self.copies, self.steps, self.record = spec, copies, steps, record
        self.duration = steps * spec.dt
        # Explicit names keep the generated code identical between builds, so a cached
        # standalone build is reused.
        self.clock = NamedClock(spec.dt, name="trial_clock")
        self.input = NeuronGroup(copies * spec.sizes[0], "r : 1", clock=self.clock, name="layer0")
        f = _BRIAN_ACTIVATION[spec.activation].format(u="I + pert")
        eqs = f"dr/dt = (-r + {f}) / tau : 1\nI : 1\npert : 1"
        self.layers, self.synapses, self.monitors = [], [], []
        pre = self.input
        for l, (n_out, n_in) in enumerate(spec.shapes, start=1):
            group = NeuronGroup(copies * n_out, eqs, method="euler", clock=self.clock, name=f"layer{l}",
                                namespace={"tau": spec.tau}, order=0)
            syn = Synapses(pre, group, "w : 1\nI_post = w * r_pre : 1 (summed)", clock=self.clock,
                           name=f"weights{l}")
            c, o, i = np.meshgrid(np.arange(copies), np.arange(n_out), np.arange(n_in), indexing="ij")
            syn.connect(i=(c * n_in + i).ravel(), j=(c * n_out + o).ravel())
            self.layers.append(group)
            self.synapses.append(syn)
            if record:
                self.monitors.append(StateMonitor(group, "r", record=np.arange(record * n_out),
                                                  clock=self.clock, name=f"rates{l}"))
            pre = group
        self.network = Network(self.input, *self.layers, *self.synapses, *self.monitors, name="rate_network")
        self.objects = {obj.name: obj for obj in (self.input, *self.layers, *self.synapses, *self.monitors)}

    def assignments(self, weights, inputs, perts=None):
        """The trial's values as ``{brian2 variable: flat array}`` (run_args in standalone).

        ``weights``: per layer, (copies, n_out, n_in); ``inputs``: (copies, n_0);
        ``perts``: per layer, (copies, n_l), or None for no perturbation.
        """
        def checked(name, array, shape):
            array = np.asarray(array, float)
            if array.shape != shape:
                raise ValueError(f"{name}: must have shape {shape} (got {array.shape})")
            return np.ascontiguousarray(array).ravel()

        values = {self.input.r: checked("inputs", inputs, (self.copies, self.spec.sizes[0]))}
        for l, (syn, w) in enumerate(zip(self.synapses, weights)):
            values[syn.w] = checked(f"weights[{l}]", w, (self.copies,) + self.spec.shapes[l])
        if perts is not None:
            for l, (group, p) in enumerate(zip(self.layers, perts)):
                values[group.pert] = checked(f"perts[{l}]", p, (self.copies, self.spec.sizes[l + 1]))
        return values

    def read(self, get):
        """Final rates per layer (input first), each (copies, n_l), and the recorded trajectories,
        each (steps, record, n_l), or None when nothing is recorded.

        ``get(object name, variable)`` returns a variable's raw values (the backend's reader).
        """
        final = [get(g.name, "r").reshape(self.copies, -1) for g in (self.input, *self.layers)]
        trajectory = None
        if self.record:
            trajectory = [get(m.name, "r").reshape(-1, self.record, n) for m, n in
                          zip(self.monitors, self.spec.sizes[1:])]
        return Observation(final, trajectory)


def build_rate_network(spec, copies, steps, record=0):
    """Create the Brian2 objects of ``copies`` replicated networks on the active device."""
    if copies < 1:
        raise ValueError(f"copies: must be >= 1 (got {copies})")
    return RateNetwork(spec, copies, steps, record)


class RateBlueprint:
    """``copies`` rate networks for trials of ``steps`` steps, as a backend builds them.

    The key covers every field that reaches the generated code (the equations are fixed by the
    activation; ``tau`` is a namespace constant)."""

    def __init__(self, spec, copies, steps, record=0):
        self.spec, self.copies, self.steps, self.record = spec, copies, steps, record
        fields = dict(kind="rate", sizes=spec.sizes, activation=spec.activation, tau=repr(spec.tau),
                      dt=repr(spec.dt), copies=copies, steps=steps, record=record)
        import brian2
        fields["brian2"] = brian2.__version__
        self.key = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def build(self):
        return build_rate_network(self.spec, self.copies, self.steps, self.record)
