"""What every task is: inputs, targets, a loss and a reward, for one family of models.

Two kinds of task:

* **trials** (``mode = "trials"``): the training loop draws a :class:`Batch` per trial, runs the
  network on it and scores each copy's output with :meth:`Task.losses` (the reward is minus the
  loss unless a task says otherwise). Spiking tasks also add their read-out to the network's
  recipe (:meth:`Task.contribute`) and, after the rule's builder, the code that delivers the
  reward inside the run when an in-network rule needs it (:meth:`Task.contribute_after_rule`).
* **continuous** (``mode = "continuous"``): one long run (an experiment, such as Izhikevich's
  distal reward). The task adds what it needs to the recipe (reward logic, monitors), gives the
  run values, and turns what the run recorded into tidy metrics (:meth:`Task.metrics`) and
  tables for its figures.
"""

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """One trial's examples.

    inputs : ndarray
        Rate networks: (batch, n_0) input rates. Spiking networks: (batch, steps, n_0) spike
        rasters (1 where an input spikes in a step).
    targets : ndarray (batch, n_out)
    conditions : ndarray (batch,) of int
        Which condition (input pattern, trial type) each example belongs to.
    """

    inputs: object
    targets: object
    conditions: object


class Task:
    """Base class; subclasses set ``kind``, ``spec_class``, ``description``, ``families``, ``mode``."""

    kind = None
    spec_class = None
    description = ""
    families = ("feedforward_rate",)
    mode = "trials"
    # What the task offers the engine and the rules (declared here, so that none is a guess):
    reward_pulses = False  # the reward reaches the network as events during the run
    final_reward = False  # the network hands R = -L to the neuromodulator at each trial's end
    error_in_network = False  # its read-out declares each neuron's error as code (a spiking block form scores it)
    squared_error_readout = False  # the loss is the read-out's squared error (the WP/NP block form computes it)
    target_in_network = False  # the target and error weights are run values the network reads (e-prop, Hoerzer)
    error = None  # "squared" or "absolute": the error a recurrent task scores

    def __init__(self, spec, model, seed):
        self.spec, self.model, self.seed = spec, model, seed

    @property
    def duration(self):
        return self.spec.duration

    @classmethod
    def n_conditions(cls, spec):
        """How many conditions (input patterns, trial types) the trials draw from, numbered from 0;
        None where the task does not say (a critic per condition cannot be kept in the network)."""
        return None

    @classmethod
    def quick(cls, table):
        """Shrink the task's protocol table for ``--quick`` (a smoke test), in place."""

    # -- trials ----------------------------------------------------------------------------------
    def sample(self, rng, batch=None):
        raise NotImplementedError

    def losses(self, outputs, targets):
        raise NotImplementedError

    def output_gradient(self, outputs, targets):
        """dL/d(outputs) of the batch loss, for the reference gradients that backpropagate (BPTT)."""
        raise NotImplementedError(f"the task {self.kind!r} has no output gradient (no BPTT reference)")

    def trial_metrics(self, trial):
        """Extra ``(metric, value)`` pairs logged with a trial's loss (e.g. the error per trial type)."""
        return []

    def training_summary(self, metrics):
        """Headline numbers of a finished training run for summary.json (e.g. trials to criterion)."""
        return {}

    def contribute(self, recipe, layout):
        """Add the task's read-out (and anything else it needs) to a spiking network's recipe."""

    def contribute_after_rule(self, recipe, layout):
        """Add what needs the rule's equations: delivering the reward to the neuromodulator inside
        the run (when the rule made one), monitors of the rule's variables."""

    def run_values(self, batch, layout):
        """``{(object, variable): value}`` the task writes before a run on ``batch``."""
        return {}

    # -- continuous ------------------------------------------------------------------------------
    def metrics(self, observation, layout):
        """The tidy metrics table (trial, t_s, layer, metric, value) of a continuous run."""
        raise NotImplementedError

    def tables(self, observation, layout):
        """``{file name: DataFrame}``: extra tables a continuous task writes for its figures."""
        return {}


def poisson_raster(rates_hz, steps, dt_s, rng):
    """Spike rasters (batch, steps, n) of independent Poisson trains, at most one spike a step."""
    rates = np.asarray(rates_hz, float)
    p = np.clip(rates * dt_s, 0.0, 1.0)
    return (rng.random((rates.shape[0], steps, rates.shape[1])) < p[:, None, :]).astype(float)


class ContinuousTask(Task):
    """A task that is one long run (an experiment) with an in-network rule learning online.

    Subclasses give ``copies`` and ``blocks`` (independent networks and input blocks in the
    run), and implement :meth:`contribute`, :meth:`experiment_values`, :meth:`metrics`,
    :meth:`summary` and, for their figures, :meth:`tables`.
    """

    families = ("spiking",)
    mode = "continuous"
    copies = 1
    blocks = 1

    @classmethod
    def copies_for(cls, spec):
        """Network copies a run of ``spec`` holds (before the task is built; for resources)."""
        return 1

    recorded_metrics = 8  # tidy metric rows per ``record_every`` (for resources)

    @classmethod
    def recorded_bytes(cls, spec, model):
        """Memory of what the run records beyond a few variables per step (for resources): by
        default its tidy metrics, ``recorded_metrics`` rows every ``record_every`` (each row a
        Python tuple, then a DataFrame row)."""
        every = getattr(spec, "record_every", None)
        if every is None:
            return 0
        return int(float(spec.duration / every) * cls.recorded_metrics * TIDY_ROW_BYTES)

    def initial_weights(self, weights, layout):
        """The plastic weights the run starts from (mV), per projection."""
        return weights

    def experiment_values(self, layout, rng):
        """``(input rasters or None, {(object, variable): value})`` for the run."""
        return None, {}

    def summary(self, metrics, observation, layout, recipe=None):
        """Headline numbers of the run for summary.json (``recipe``: the network's, e.g. its ``weight_cap``)."""
        return {}


TIDY_ROW_BYTES = 500  # one tidy row as a Python tuple and in a DataFrame, at the peak both at once


def record_rows(t, metric, values, layer=""):
    """Tidy rows ``(trial, t_s, layer, metric, value)`` of a time series recorded at times ``t``."""
    return [(n, float(tn), layer, metric, float(v)) for n, (tn, v) in enumerate(zip(t, values))]


CONTINUOUS_COLUMNS = ["trial", "t_s", "layer", "metric", "value"]
