"""The two-phase build: collect every contribution to a network as plain data, then create it.

A Brian2 ``NeuronGroup`` or ``Synapses`` takes all of its equations when it is created, but the
equations of one group come from several owners: the neuron model, the task (a read-out, clamped
spikes), and each in-network rule (traces, eligibility, a neuromodulator). So the network is
first described as a :class:`Recipe` (strings, numbers and index arrays, no Brian2 objects), which
every owner extends, and only then built, each group once.

The recipe is also the build key: :meth:`Recipe.key` hashes every equation string, namespace,
object name, size, connectivity and clock, so two variants that differ anywhere (in their rule,
say) never share a compiled standalone binary by accident.

Values that change from run to run (weights, inputs, perturbations, rule constants that a sweep
varies) are not part of the recipe: they are ``run values`` (:meth:`Recipe.run_value`) written
before every run, so one build serves many runs and many variants.
"""

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from brian2.units.fundamentalunits import Quantity

from .clocks import SharedClocks


@dataclass
class Regular:
    """Code run on a clock of its own (``run_regularly``): ``dt`` None means every step."""

    code: list
    dt: object = None
    when: str = "start"
    order: int = 0


@dataclass
class GroupRecipe:
    """Everything a ``NeuronGroup`` is created with, gathered from all contributors."""

    name: str
    n: int
    equations: list = field(default_factory=list)
    threshold: list = field(default_factory=list)  # conditions joined by ``or``
    reset: list = field(default_factory=list)
    refractory: object = False
    method: str = "exact"
    events: dict = field(default_factory=dict)  # custom event -> condition
    event_code: dict = field(default_factory=dict)  # custom event -> code run on it
    namespace: dict = field(default_factory=dict)
    regular: dict = field(default_factory=dict)  # name -> Regular
    initial: dict = field(default_factory=dict)  # variable -> value set once at build
    linked: dict = field(default_factory=dict)  # variable -> (source group, source variable, index array)
    order: int = 0
    dt: object = None  # a clock of its own (e.g. one trial), else the network's

    def add(self, *lines):
        """Add equation lines, skipping any that is there already (two rules may need one trace)."""
        for line in lines:
            if line not in self.equations:
                self.equations.append(line)


@dataclass
class SynapseRecipe:
    """Everything a ``Synapses`` object is created with. ``i``/``j`` index the source/target."""

    name: str
    source: str
    target: str
    i: np.ndarray
    j: np.ndarray
    model: list = field(default_factory=list)
    on_pre: dict = field(default_factory=dict)  # pathway -> list of code lines
    on_post: dict = field(default_factory=dict)
    on_event: dict = field(default_factory=dict)  # pathway -> event of its source (pre) or target (post)
    delay: object = None  # of the "pre" pathway
    namespace: dict = field(default_factory=dict)
    regular: dict = field(default_factory=dict)
    pathway_order: dict = field(default_factory=dict)  # pathway -> order within the 'synapses' slot
    summed_order: dict = field(default_factory=dict)  # summed variable (e.g. "I_post") -> order in 'groups'
    initial: dict = field(default_factory=dict)
    method: str = "exact"
    transmit: str = ""  # the spike's effect on the target, run after every other line of the "pre" pathway
    linked: dict = field(default_factory=dict)  # variable -> (source group, source variable, index variable)
    dt: object = None  # a clock of its own (its summed variables update on it), else the network's

    def add(self, *lines):
        for line in lines:
            if line not in self.model:
                self.model.append(line)


@dataclass
class MonitorRecipe:
    """A StateMonitor (``variables``), SpikeMonitor (``event = "spike"``) or EventMonitor."""

    name: str
    source: str
    variables: tuple = ()
    record: object = True
    dt: object = None
    event: str | None = None
    when: str = "end"
    order: int = 0


@dataclass
class TimedArrayRecipe:
    """A ``TimedArray`` whose values are a run value of shape ``(steps, columns)``, or ``(steps,)``
    (a function of time alone) where ``columns`` is None."""

    name: str
    steps: int
    columns: int
    dt: object


@dataclass
class Readout:
    """What a task scores of every copy: the variables ``plus`` of group ``owner``, less ``minus``
    (one value per neuron, read at the run's end). ``error``, where the task gives it, is each
    neuron's error as code: the mean over a copy's neurons is the copy's loss, the number the
    task's ``losses`` gives (a block form that needs the loss inside the run reads it)."""

    owner: str
    plus: tuple
    minus: tuple = ()
    error: str | None = None

    def value(self, get):
        """The read-out from the backend's reader ``get(owner, variable)``."""
        total = sum(np.asarray(get(self.owner, v), float) for v in self.plus)
        return total - sum(np.asarray(get(self.owner, v), float) for v in self.minus)


class Recipe:
    """A network described as data. Owners add groups, synapses, monitors and run values.

    Besides the Brian2 objects, owners declare to each other (and to the engine), in typed fields:
    what each in-network rule accumulates (:meth:`declare_delta`), what the task scores
    (``readout``), how rewards reach the network (``final_reward``, ``reward_pulses``), how often
    an experiment records (``record_every``), the rule that was built in with the quantities a
    task may record (``rule``, ``rule_variables``, ``weight_cap``), and what a block of trials
    carries from trial to trial and reads back at its end (``carried``, ``block_state``).
    """

    def __init__(self, dt):
        self.dt = dt
        self.groups = {}
        self.synapses = {}
        self.monitors = {}
        self.timed_arrays = {}
        self.functions = {}  # name -> brian2 Function (its C++ code is part of the key)
        self.run_values = {}  # (object name, variable) -> default value (written before every run)
        self.deltas = {}  # rule kind -> the synaptic variable it accumulates, read back after every run
        self.readout = None  # Readout: what the task scores (spiking networks)
        self.final_reward = False  # the task hands the neuromodulator R = -L in each trial's last step
        self.reward_pulses = False  # rewards reach the neuromodulator as events during the run
        self.record_every = None  # an experiment records every this long: rules bring their state up to date
        self.rule = None  # the in-network rule built in (a task may compare with its closed forms)
        self.rule_variables = {}  # meaning -> (object, variable) of the rule's quantities a task may record
        self.weight_cap = None  # the rule's upper weight bound (mV), where it has one
        # A block of trials (see networks/block.py) resets every state variable at each
        # trial's end, except these (owner, variable; variable None: the whole object) ...
        self.carried = set()
        # ... and reads these (owner, variable) back after the block (e.g. a rule's critic).
        self.block_state = []
        # Whether builders may run dense per-step loops as matrix code (networks/dense.py; False:
        # Brian2's synapse-by-synapse loops, any code-generation target), the synapses whose loops
        # do, and what binds that code's NumPy form to the built objects (called with them once built).
        self.matrix_code = True
        self.dense = set()
        self.bindings = []

    # -- adding -------------------------------------------------------------------------------
    def group(self, name, n=None, **kwargs):
        """The group ``name``, created on first use (then ``n`` is required)."""
        if name not in self.groups:
            if n is None:
                raise KeyError(f"recipe: no group {name!r}; known: {', '.join(self.groups)}")
            self.groups[name] = GroupRecipe(name, int(n), **kwargs)
        return self.groups[name]

    def connect(self, name, source, target, i, j, **kwargs):
        if name in self.synapses:
            raise ValueError(f"recipe: synapses {name!r} exist already")
        for end in (source, target):
            if end not in self.groups:
                raise KeyError(f"recipe: synapses {name!r} connect the unknown group {end!r}")
        self.synapses[name] = SynapseRecipe(name, source, target, np.asarray(i, np.int32),
                                            np.asarray(j, np.int32), **kwargs)
        return self.synapses[name]

    def monitor(self, name, source, **kwargs):
        self.monitors[name] = MonitorRecipe(name, source, **kwargs)
        return self.monitors[name]

    def timed_array(self, name, steps, columns, dt=None):
        """A TimedArray of ``steps`` rows of ``dt`` (default: the network's step); ``columns`` None
        makes it a function of time alone."""
        self.timed_arrays[name] = TimedArrayRecipe(name, int(steps), None if columns is None else int(columns),
                                                   self.dt if dt is None else dt)
        return self.timed_arrays[name]

    def declare_delta(self, rule_kind, variable):
        """The in-network rule ``rule_kind`` accumulates its change in the synaptic ``variable``."""
        self.deltas[rule_kind] = variable

    def run_value(self, owner, variable, default):
        """Declare ``owner.variable`` as written before every run (default used when not given)."""
        self.run_values[(owner, variable)] = default

    # -- the key ------------------------------------------------------------------------------
    def describe(self):
        """A JSON-ready description of everything that ends up in generated code."""
        def value(x):
            if isinstance(x, Quantity):
                return repr(x)
            if isinstance(x, np.ndarray):
                return hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest() + str(x.shape)
            if isinstance(x, Regular):
                return [x.code, value(x.dt), x.when, x.order]
            if isinstance(x, dict):
                return {str(k): value(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
            if isinstance(x, (list, tuple)):
                return [value(v) for v in x]
            if isinstance(x, (str, int, float, bool)) or x is None:
                return x
            return repr(x)

        def record(obj):
            return {k: value(v) for k, v in sorted(vars(obj).items())}

        return dict(dt=repr(self.dt), groups=[record(g) for g in self.groups.values()],
                    synapses=[record(s) for s in self.synapses.values()],
                    monitors=[record(m) for m in self.monitors.values()],
                    timed_arrays=[record(t) for t in self.timed_arrays.values()],
                    functions={name: _function_code(f) for name, f in sorted(self.functions.items())},
                    run_values=sorted(f"{o}.{v}" for o, v in self.run_values))

    def key(self, extra=()):
        import brian2
        text = json.dumps([self.describe(), brian2.__version__, extra], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    # -- building -----------------------------------------------------------------------------
    def build(self, clock):
        """Create the Brian2 objects on the active device. Returns ``(objects by name, Network)``."""
        from brian2 import (BrianLogger, EventMonitor, Network, NeuronGroup, SpikeMonitor, StateMonitor,
                            Synapses, TimedArray, linked_var)
        # Synapses that write into one neuron per copy (a reward detector, a tally) are fine in any
        # order; Brian2 cannot see that and warns about every one of them.
        BrianLogger.suppress_hierarchy("brian2.codegen.generators.base")
        objects = {}
        clock_for = SharedClocks()  # code on one period shares one clock
        namespace = dict(self.functions)
        for ta in self.timed_arrays.values():
            values = np.zeros(ta.steps if ta.columns is None else (ta.steps, ta.columns))
            objects[ta.name] = namespace[ta.name] = TimedArray(values, dt=ta.dt, name=ta.name)
        for g in sorted(self.groups.values(), key=lambda g: g.order):
            objects[g.name] = NeuronGroup(
                g.n, "\n".join(g.equations) or "dummy : 1", threshold=" or ".join(f"({c})" for c in g.threshold) or None,
                reset="\n".join(g.reset) or None, refractory=g.refractory, method=g.method, events=dict(g.events) or None,
                namespace={**namespace, **g.namespace}, clock=clock_for(g.dt) or clock, name=g.name,
                order=g.order)
        for g in self.groups.values():
            group = objects[g.name]
            for event, code in g.event_code.items():
                group.run_on_event(event, "\n".join(code))
            for name, r in g.regular.items():
                group.run_regularly("\n".join(r.code), clock=clock_for(r.dt), when=r.when,
                                    order=r.order, name=f"{g.name}_{name}")
            for variable, (source, source_variable, index) in g.linked.items():
                setattr(group, variable, linked_var(objects[source], source_variable, index=np.asarray(index)))
            for variable, initial in g.initial.items():
                setattr(group, variable, initial)
        for s in self.synapses.values():
            on_pre = {k: list(v) for k, v in s.on_pre.items()}
            if s.transmit:
                on_pre.setdefault("pre", []).append(s.transmit)
            syn = Synapses(objects[s.source], objects[s.target], "\n".join(s.model) or "",
                           on_pre={k: "\n".join(v) for k, v in on_pre.items()} or None,
                           on_post={k: "\n".join(v) for k, v in s.on_post.items()} or None,
                           on_event=s.on_event or "spike", delay=s.delay if s.delay is not None else None,
                           namespace={**namespace, **s.namespace}, clock=clock_for(s.dt) or clock, name=s.name,
                           method=s.method)
            syn.connect(i=s.i, j=s.j)
            for pathway, order in s.pathway_order.items():
                getattr(syn, pathway).order = order
            for variable, order in s.summed_order.items():
                syn.summed_updaters[variable].order = order
            for name, r in s.regular.items():
                syn.run_regularly("\n".join(r.code), clock=clock_for(r.dt), when=r.when,
                                  order=r.order, name=f"{s.name}_{name}")
            for variable, initial in s.initial.items():
                setattr(syn, variable, initial)
            for variable, (source, source_variable, index) in s.linked.items():
                setattr(syn, variable, linked_var(objects[source], source_variable, index=index))
            objects[s.name] = syn
        for m in self.monitors.values():
            source = objects[m.source]
            if m.variables:
                objects[m.name] = StateMonitor(source, list(m.variables), record=m.record,
                                               clock=clock_for(m.dt), when=m.when, order=m.order, name=m.name)
            elif m.event in (None, "spike"):
                objects[m.name] = SpikeMonitor(source, record=m.record, name=m.name)
            else:
                objects[m.name] = EventMonitor(source, m.event, record=m.record, name=m.name)
        brian_objects = [o for o in objects.values() if not isinstance(o, TimedArray)]
        for bind in self.bindings:
            bind(objects)
        return objects, Network(*brian_objects, name="network")


class BuiltNetwork:
    """The Brian2 objects of a built recipe: run values in (:meth:`run_value_assignments`);
    subclasses read what a run produced."""

    def __init__(self, layout, recipe, objects, network):
        self.layout, self.recipe, self.objects, self.network = layout, recipe, objects, network
        self.duration = layout.duration

    def target(self, owner, variable):
        obj = self.objects[owner]
        return obj if variable == "values" else getattr(obj, variable)

    def size(self, owner, variable):
        """How many values ``owner.variable`` holds."""
        recipe = self.recipe
        if owner in recipe.timed_arrays:
            return recipe.timed_arrays[owner].steps * (recipe.timed_arrays[owner].columns or 1)
        if self.objects[owner].variables[variable].scalar:
            return 1
        return recipe.groups[owner].n if owner in recipe.groups else len(recipe.synapses[owner].i)

    def run_value_assignments(self, given):
        """``{brian2 variable or TimedArray: flat SI array}`` for every declared run value (its
        default where ``given`` has none, so nothing leaks from the previous run). ``given`` is
        consumed; a value that no contributor declared is an error."""
        out = {}
        for (owner, variable), default in self.recipe.run_values.items():
            value = np.asarray(given.pop((owner, variable), default), float)
            size = self.size(owner, variable)
            if value.size == 1 and size > 1:
                value = np.full(size, float(value.ravel()[0]))
            elif value.size != size:
                raise ValueError(f"run value {owner}.{variable}: must have {size} values (got {value.size})")
            out[self.target(owner, variable)] = value
        if given:
            raise KeyError(f"run values: not declared by any contributor: {sorted(given)}")
        return out


def _function_code(function):
    """The implementations of a user Function, for the key (its C++ code ends up in the binary)."""
    out = {}
    for target, impl in getattr(function, "implementations", {}).items():
        code = getattr(impl, "_code", None) or getattr(impl, "code", None)
        out[str(target)] = code if isinstance(code, (str, dict)) else repr(code)
    return out
