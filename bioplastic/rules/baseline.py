r"""The reward baseline: one running average of the reward, for every rule that has one.

R-STDP's reward prediction error and the reward-modulated Hebbian family's modulation both
subtract a baseline :math:`\bar R` from the reward, kept per key (a task condition, or one key
for all). After each reward :math:`R` of its key,

.. math:: \bar R \leftarrow (1 - \beta) \bar R + \beta R,

with the rule's ``baseline_rate`` :math:`\beta \in (0, 1]`; the first reward of a key sets
:math:`\bar R = R`. The trial loop keeps the baselines in Python (:func:`observe_reward`); a block
form keeps them in the network (:func:`critic_update`), written term for term as the Python
update, so that the two loops agree bit for bit.
"""

from ..spec import param


def baseline_rate_param(default):
    """The ``baseline_rate`` parameter of a rule's spec."""
    return param(default, "β of the reward baseline R̄ <- (1 - β) R̄ + β R (the first reward sets R̄)",
                 check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]")


def running_average(mean, value, rate):
    """The running average moved towards ``value``; numbers, or Brian2 code when given strings."""
    if isinstance(mean, str):
        return f"(1 - {rate}) * {mean} + {rate} * {value}"
    return (1 - rate) * mean + rate * value


def observe_reward(baselines, key, reward, rate):
    """Move ``baselines[key]`` (a dict: key -> R̄) towards ``reward``; the first reward sets it."""
    old = baselines.get(key)
    baselines[key] = reward if old is None else running_average(old, reward, rate)


def critic_update(mean, seen, here, rate, reward):
    """Brian2 code of :func:`observe_reward` for a block's critic (one variable pair per key,
    :func:`~bioplastic.networks.block.condition_critic`): ``here`` is 1 where the key had a reward
    this trial, else 0, ``seen`` 1 once it had one."""
    moved = f"{seen} * ({running_average(mean, reward, rate)}) + (1 - {seen}) * {reward}"
    return [f"{mean} = {here} * ({moved}) + (1 - {here}) * {mean}", f"{seen} = {seen} + {here} * (1 - {seen})"]


__all__ = ["baseline_rate_param", "critic_update", "observe_reward", "running_average"]
