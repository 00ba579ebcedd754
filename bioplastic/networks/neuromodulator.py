"""The neuromodulator: one group with one neuron per network copy, where reward meets the rule.

Tasks write the reward into it; in-network rules turn the reward into their third factor and
read that, per copy, through linked variables of their postsynaptic neurons (indexed by copy), so
nothing is integrated on every synapse. Its variables:

``reward_level``
    A reward *signal* r(t) held from step to step (written by the task every step).
``reward_pulse``
    A reward *event* of this step (0: none). Written by the task before the thresholds; the
    rule's code consumes it in the same step.
``final_reward``
    The reward of a trial, written by the task at the end of the trial's last step.
``n_rewards``
    Reward events so far.

The rule's builder adds what its third factor needs (a dopamine trace, a baseline, ...).
"""

import numpy as np

from .recipe import Regular

MODULATOR = "modulator"


def neuromodulator(recipe, layout):
    """The per-copy neuromodulator group of ``recipe`` (created on first use)."""
    if MODULATOR not in recipe.groups:
        group = recipe.group(MODULATOR, layout.copies, method="exact", order=-1)
        group.add("reward_level : 1", "reward_pulse : 1", "final_reward : 1", "n_rewards : 1")
    return recipe.groups[MODULATOR]


def final_step_clock(layout):
    """The ``dt`` of a ``run_regularly`` that ticks at the start and in the last step of every
    trial (in a block: at the end of the lead-in step and of every trial, see
    :class:`~bioplastic.networks.layout.Layout`).

    Code on this clock runs at t = 0 too; multiply it by :func:`final_flag`.
    """
    return layout.period if layout.block else max(layout.steps - 1, 1) * layout.dt


def final_flag(layout):
    """An expression that is 1 in the last step of a trial and 0 at the clock's tick before it."""
    last = layout.period if layout.block else (layout.steps - 1) * layout.dt
    return f"int(t >= {float(last)!r} * second - 0.5 * dt)"


def schedule(recipe, layout, levels=None, pulses=None):
    """Drive the reward from explicit arrays (steps, copies): a level r(t) and/or pulses.

    Both become run values (TimedArrays), so one build serves every schedule of this length.
    """
    group = neuromodulator(recipe, layout)
    code = []
    for name, variable, given in (("reward_levels", "reward_level", levels), ("reward_pulses", "reward_pulse", pulses)):
        if given:
            recipe.timed_array(name, layout.steps, layout.copies)
            recipe.run_value(name, "values", 0.0)
            code.append(f"{variable} = {name}(t, i)")
    if pulses:
        recipe.reward_pulses = True
    group.regular["schedule"] = Regular(code, when="before_thresholds", order=0)


def schedule_values(levels=None, pulses=None):
    """Run values for :func:`schedule`: arrays of shape (steps, copies)."""
    out = {}
    if levels is not None:
        out[("reward_levels", "values")] = np.asarray(levels, float)
    if pulses is not None:
        out[("reward_pulses", "values")] = np.asarray(pulses, float)
    return out
