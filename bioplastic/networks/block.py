"""Many trials in one run: what every family's block network shares (the block loop's network).

A block is a family's trial network (its base recipe with the task's and the in-network rule's
contributions, unchanged) run for ``layout.trials`` trials after one lead-in step, so that trial
n ends on a tick of a clock of one trial's period (see
:class:`~bioplastic.networks.layout.Layout`). At each tick, in the ``end`` slot after the task's
and the rule's end-of-trial code (orders up to 10), code runs in these slots:

``record`` (20)
    what the family reads of every trial (e.g. a spiking read-out, a reward);
``score``, ``loss`` (22, 24)
    where a block form asks for them (:func:`copy_losses`): each read-out neuron's error, every
    copy's loss;
``loss_change``, ``credit``, ``share``, ``update`` (26 to 30)
    the rule's block form: loss changes, their credit, what synapses read of their neurons, the
    trial's change applied, a critic updated;
``reset`` (40)
    every state variable back to its value at the start of a run (:func:`trial_boundary`);
``next_trial`` (45)
    the run values that the trial loop writes before every trial (the targets, node
    perturbation's currents, a rule's per-copy values) set to the next trial's, and a trial's
    random initial state drawn;
``trial_start`` (50)
    the rule's block form: what it keeps in the network for the next trial (a reward baseline).

So a trial inside a block starts from the state, and with the run values, of the same trial run
alone, and the two give the same numbers (tests/test_block_loop.py holds them to 1e-10). What a
block carries from trial to trial is declared: the plastic weights and what the family and the
block form add to ``recipe.carried``.
"""

from dataclasses import dataclass, field

import numpy as np
from brian2 import Equations
from brian2.equations.equations import DIFFERENTIAL_EQUATION, PARAMETER
from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity

from .clocks import NamedClock
from .layout import checked_array
from .recipe import Regular

SLOTS = dict(record=20, score=22, loss=24, loss_change=26, credit=27, share=28, update=30, reset=40,
             next_trial=45, trial_start=50)
ACTIVE = "block_active"  # per trial: 1, or 0 on the padding trials that fill a block's last build
_FIXED = {"constant", "shared", "linked"}


def at_trial_end(owner, slot, *lines, layout):
    """Run ``lines`` on ``owner`` (a group or synapse recipe) at the end of every trial of a block
    (and of the lead-in step), in ``slot`` (see :data:`SLOTS`); a second call appends."""
    regular = owner.regular.setdefault(f"block_{slot}", Regular([], dt=layout.period, when="end", order=SLOTS[slot]))
    regular.code.extend(lines)
    return regular


def copy_losses(recipe, layout):
    """Every copy's loss at each trial's end, in the group ``losses`` (variable ``L``, slot
    ``loss``): the mean over the copy's read-out neurons of the error the task declares
    (``recipe.readout.error``, computed in slot ``score``). A block form that scores copies calls it."""
    if "losses" in recipe.groups:
        return recipe.groups["losses"]
    readout = recipe.readout
    if readout is None or readout.error is None:
        raise ValueError("this block form needs the task's error inside the network (recipe.readout.error)")
    n, copies = layout.groups[readout.owner], layout.copies
    output = recipe.group(readout.owner)
    output.add("sqerr : 1")
    at_trial_end(output, "score", f"sqerr = {readout.error}", layout=layout)
    losses = recipe.group("losses", copies)
    losses.add("L : 1", *(f"error{o} : 1 (linked)" for o in range(n)))
    for o in range(n):
        losses.linked[f"error{o}"] = (readout.owner, "sqerr", np.arange(copies) * n + o)
    # summed in the neurons' order, then divided: the task's mean over its outputs, to the last bit
    at_trial_end(losses, "loss", f"L = ({' + '.join(f'error{o}' for o in range(n))}) / {n}", layout=layout)
    return losses


def condition_critic(recipe, group, suffix, conditions):
    """A reward baseline per task condition that a block form keeps in ``group`` (one neuron per
    copy): ``critic{c}_{suffix}``, the baseline, and ``seen{c}_{suffix}``, 1 once condition c had
    a reward. Both are run values (:func:`critic_values`), carried from trial to trial and read
    back after the block (:func:`take_critic`). Returns ``{c: (baseline, seen)}`` names."""
    owner, names = recipe.group(group), {}
    for c in conditions:
        names[c] = (f"critic{c}_{suffix}", f"seen{c}_{suffix}")
        owner.add(*(f"{name} : 1" for name in names[c]))
        for name in names[c]:
            recipe.run_value(group, name, 0.0)
            recipe.carried.add((group, name))
            recipe.block_state.append((group, name))
    return names


def in_condition(variable, c):
    """Code that is 1 where ``variable`` (a copy's condition, a float) is ``c``, else 0."""
    return f"int(abs({variable} - {c}) < 0.5)"


def critic_values(group, suffix, conditions, baselines):
    """The run values that start a :func:`condition_critic` at ``baselines`` (condition -> baseline)."""
    values = {}
    for c in conditions:
        values[(group, f"critic{c}_{suffix}")] = baselines.get(c, 0.0)
        values[(group, f"seen{c}_{suffix}")] = float(c in baselines)
    return values


def take_critic(state, baselines):
    """Put the baselines of a block's :func:`condition_critic` (from ``recipe.block_state``, copy 0's:
    with one example per trial every copy has the same) into ``baselines``, where a reward came."""
    for (owner, name), value in state.items():
        if name.startswith("critic") and state[(owner, name.replace("critic", "seen", 1))][0] > 0:
            baselines[int(name[len("critic"):name.index("_")])] = float(value[0])


def state_variables(lines):
    """``(name, dimension)`` of every variable in equation ``lines`` that a run changes: the
    differential equations and parameters that are not constant, shared or linked."""
    return [(eq.varname, eq.dim) for eq in Equations("\n".join(lines)).ordered
            if eq.type in (DIFFERENTIAL_EQUATION, PARAMETER) and not _FIXED & set(eq.flags)]


@dataclass
class BlockTables:
    """The run values that the trial loop writes before every trial, as the block holds them:
    ``per_trial``: ``{(group, variable): (table, default)}``, one row of a group's values per
    trial; ``over_time``: the names of the time tables (TimedArrays of one row per step, such as a
    stimulus or a target), one trial's rows after another."""

    per_trial: dict = field(default_factory=dict)
    over_time: dict = field(default_factory=dict)  # name -> default


def trial_boundary(recipe, layout):
    """Turn a trial recipe into a block's: reset every state variable that ``recipe.carried`` does
    not name at each trial's end, make each run value of a group (one value per neuron, written
    before every trial) a table with one row per trial, and each time table of one trial a table
    of the block's steps. Returns the :class:`BlockTables`."""
    period, trials = layout.period, layout.trials
    recipe.timed_array(ACTIVE, trials + 1, None, dt=period)
    recipe.run_value(ACTIVE, "values", 0.0)
    recipe.carried |= {(p.synapses, "w") for p in layout.projections}
    tables = BlockTables()
    for name, array in recipe.timed_arrays.items():
        if array.steps == layout.steps and array.dt == recipe.dt and (name, "values") in recipe.run_values:
            array.steps = layout.run_steps
            tables.over_time[name] = recipe.run_values[(name, "values")]
    for owner in [*recipe.groups.values(), *recipe.synapses.values()]:
        if (owner.name, None) in recipe.carried:
            continue
        is_group = owner.name in recipe.groups
        lines = []
        for name, dim in state_variables(owner.equations if is_group else owner.model):
            key = (owner.name, name)
            if key in recipe.carried:
                continue
            if key in recipe.run_values:
                if is_group:  # the trial loop writes it before every trial: the block, before each of its trials
                    table = f"trial_{owner.name}_{name}"
                    tables.per_trial[key] = (table, recipe.run_values.pop(key))
                    recipe.timed_array(table, trials + 1, owner.n, dt=period)
                    recipe.run_value(table, "values", 0.0)
                    unit = ""
                    if dim is not DIMENSIONLESS:
                        unit, owner.namespace[f"unit_{name}"] = f" * unit_{name}", Quantity(1.0, dim=dim)
                    at_trial_end(owner, "next_trial", f"{name} = {table}(t, i){unit}", layout=layout)
                continue  # a synapse's run value (its weight) is the block's, not the trial's
            lines.append(_reset(owner, name, dim))
        if is_group and owner.refractory is not False:
            lines += ["lastspike = -1e4 * second", "not_refractory = True"]  # Brian2's values before any spike
        if lines:
            at_trial_end(owner, "reset", *lines, layout=layout)
    return tables


def block_run_values(network, trial_values, active, values=None):
    """The run values of a block from its trials' (``trial_values``: per trial what the trial loop
    would write, ``{(owner, variable): value}``): what stays the same from ``trial_values[0]``,
    the per-trial tables and time tables filled row by row (the padding trials repeat the last
    trial's rows, their time rows are zero), ``active`` (per trial, 0 on padding trials) and the
    block form's own ``values``."""
    layout, tables = network.layout, network.tables
    trials, steps, count = layout.trials, layout.steps, len(trial_values)
    varying = set(tables.per_trial) | {(name, "values") for name in tables.over_time}
    given = {key: value for key, value in trial_values[0].items() if key not in varying}
    given.update(values or {})
    given[(ACTIVE, "values")] = np.concatenate([[0.0], checked_array("active", active, (trials,))])
    for key, (table, default) in tables.per_trial.items():
        size, rows = network.size(*key), []
        for trial in trial_values:
            value = np.asarray(trial.get(key, default), float).ravel()
            if value.size not in (1, size):
                raise ValueError(f"run value {key[0]}.{key[1]}: must have {size} values (got {value.size})")
            rows.append(np.broadcast_to(value, (size,)))
        rows += [rows[-1]] * (trials + 1 - count)  # padding trials, and the tick after the last trial
        given[(table, "values")] = np.stack(rows)
    for name, default in tables.over_time.items():
        columns = network.recipe.timed_arrays[name].columns or 1
        rows = np.zeros((layout.run_steps, columns))  # row 0: the lead-in step
        for n, trial in enumerate(trial_values):
            value = np.asarray(trial.get((name, "values"), default), float).ravel()
            rows[1 + n * steps:1 + (n + 1) * steps] = np.broadcast_to(value, (steps * columns,)).reshape(steps, columns)
        given[(name, "values")] = rows
    return given


def _reset(owner, name, dim):
    """The line that sets ``name`` back to its value at the start of a run (its initial value)."""
    initial = owner.initial.get(name, 0.0)
    if np.ndim(initial) > 0:  # a value per neuron or synapse: kept in a constant of its own
        owner.add(f"{name}_at_start : {unit_name(dim)} (constant)")
        owner.initial[f"{name}_at_start"] = initial
        return f"{name} = {name}_at_start"
    owner.namespace[f"{name}_at_start"] = initial if isinstance(initial, Quantity) else Quantity(float(initial), dim=dim)
    return f"{name} = {name}_at_start"


def unit_name(dim):
    """The name of the unit of dimension ``dim`` in an equation (``1``, ``volt``, ...)."""
    from brian2 import get_unit
    return "1" if dim is DIMENSIONLESS else repr(get_unit(dim))


def weight_variable(recipe, projection):
    """The variable that holds ``projection``'s weights from trial to trial in a block: the master
    weight ``wm`` where the block form keeps one (each copy's ``w`` is then perturbed), else ``w``."""
    return "wm" if (projection.synapses, "wm") in recipe.run_values else "w"


@dataclass
class BlockObservation:
    """What a block produced: every trial's read-out (trials, copies, n) and reward (trials,
    copies) or None, the plastic weights at its end (per projection (copies, *shape), in the
    model's weight unit), the ``recipe.block_state`` variables, and when a runaway guard stopped
    it (or None)."""

    readouts: np.ndarray
    rewards: object
    weights: list
    state: dict = field(default_factory=dict)
    stopped_at: object = None


class BlockBlueprint:
    """A block of ``trials`` trials of ``copies`` networks of a family (``batch`` examples per
    variant). ``contributors`` are the trial network's (the task's and the in-network rule's
    builders), ``block_form`` the rule's block form. Subclasses give the family's layout
    (:meth:`make_layout`), its trial recipe (:meth:`base_recipe`), what it records of each trial
    (:meth:`record_trials`) and its ``network_class``."""

    network_class = None

    def __init__(self, spec, copies, batch, steps, trials, *, seed, conditions, contributors, block_form):
        self.layout = self.make_layout(spec, copies, batch, steps, seed)
        self.layout.trials, self.layout.batch, self.layout.block = int(trials), int(batch), True
        self.layout.conditions = int(conditions)
        self.recipe = self.base_recipe(self.layout)
        for contribute in contributors:
            contribute(self.recipe, self.layout)
        block_form(self.recipe, self.layout)
        self.record_trials(self.recipe, self.layout)
        self.tables = trial_boundary(self.recipe, self.layout)
        self.copies, self.with_rule = copies, True
        self.key = self.recipe.key(self.layout.run_length)

    def make_layout(self, spec, copies, batch, steps, seed):
        raise NotImplementedError

    def base_recipe(self, layout):
        raise NotImplementedError

    def record_trials(self, recipe, layout):
        """Add what the family reads of every trial (monitors); nothing by default."""

    def build(self):
        objects, network = self.recipe.build(NamedClock(self.layout.dt, name="block_clock"))
        return self.network_class(self.layout, self.recipe, objects, network, self.tables)


__all__ = ["SLOTS", "ACTIVE", "at_trial_end", "copy_losses", "condition_critic", "in_condition", "critic_values",
           "take_critic", "state_variables", "BlockTables", "trial_boundary", "block_run_values", "unit_name",
           "weight_variable", "BlockObservation", "BlockBlueprint"]
