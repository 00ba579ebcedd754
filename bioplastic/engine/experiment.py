"""Continuous experiments: one long simulation in which an in-network rule learns online.

The classic three-factor experiments are not a loop of trials but one run: Izhikevich's hour of
a 1000-neuron network with one rewarded synapse, Florian's single synapse under a reward signal,
a set of pre/post pairings. The task adds its reward logic and monitors to the network's recipe,
the rule adds its plasticity, and the whole run happens inside one simulation (one standalone
binary run). The task then turns what was recorded into tidy metrics and tables.
"""

import numpy as np

from .. import rng as rng_streams
from ..errors import RunawayError
from ..registry import FAMILIES
from ..rules import RULES, RunContext, rule_code
from ..rules.builders import contributor
from ..tasks import TASKS
from .backends import get_backend


class Experiment:
    """One continuous run of a protocol whose task has ``mode = "continuous"``."""

    def __init__(self, protocol):
        self.protocol = protocol
        model = protocol.model
        self.rule = RULES[protocol.rule_kind](protocol.rule)
        self.task = TASKS[protocol.task_kind](protocol.task, model, protocol.seed)
        self.steps = int(round(float(self.task.duration / model.dt)))
        self.adapter = FAMILIES[model.family]
        contributors = [self.task.contribute, contributor(self.rule, model), self.task.contribute_after_rule]
        self.blueprint = self.adapter.experiment_blueprint(model, self.steps, self.task.copies, self.task.blocks,
                                                           seed=protocol.seed, contributors=contributors)
        self.backend = get_backend(protocol.training.backend, self.blueprint, protocol.training.threads)

    def run(self):
        """Simulate; return ``(metrics, tables, summary)``.

        Raises
        ------
        RunawayError
            When the population rate exceeded ``training.max_rate``; its ``metrics`` hold what
            was recorded up to the stop.
        """
        protocol, layout = self.protocol, self.blueprint.layout
        seed = protocol.seed
        with rule_code(self.rule, "constrain"):  # as the trainer does: the rule's range from the start
            initial = self.rule.constrain(protocol.model.init_weights(rng_streams.stream(seed, "init"), seed))
        weights = self.task.initial_weights(initial, layout)
        weights = [np.broadcast_to(w, (layout.copies,) + w.shape[-len(p.shape):])
                   for w, p in zip(weights, layout.projections)]
        context = RunContext(layout.copies, np.zeros(layout.copies, int), dry_run=False, continuous=True, layout=layout)
        inputs, values = self.task.experiment_values(layout, rng_streams.stream(seed, "inputs"))
        with rule_code(self.rule, "run_values"):
            values = {**values, **self.rule.run_values(context)}
        values.update(self.adapter.model_values(protocol, layout.copies))
        observed = self.backend.run(weights=weights, inputs=inputs, values=values,
                                    seed=int(rng_streams.stream(seed, "run_seeds").integers(2 ** 31)))
        metrics = self.task.metrics(observed, layout)
        if observed.stopped_at is not None:
            raise RunawayError(observed.stopped_at, protocol.training.max_rate, file=protocol.file, metrics=metrics)
        return metrics, self.task.tables(observed, layout), self.task.summary(metrics, observed, layout, self.blueprint.recipe)
