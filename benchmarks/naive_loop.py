"""What the naive Brian2 loops of the benchmarks share: writing a run's values onto the objects by
hand, as a user's script does."""

import numpy as np


def write_values(objects, values):
    """``{(owner, variable): value}`` onto the Brian2 objects (``"values"``: a TimedArray's table)."""
    for (owner, variable), value in values.items():
        target = objects[owner]
        if variable == "values":
            target.values[...] = np.reshape(value, target.values.shape)
        else:
            setattr(target, variable, value)


def runtime_network(protocol, blueprint_class):
    """The protocol's network with its task and rule built in, one copy, in Brian2's runtime mode
    with its default Cython target, stored at its start: ``(rule, task, blueprint, built network)``."""
    from brian2 import prefs, set_device
    from bioplastic.rules import RULES
    from bioplastic.rules.builders import contributor
    from bioplastic.tasks import TASKS
    model = protocol.model
    rule = RULES[protocol.rule_kind](protocol.rule)
    task = TASKS[protocol.task_kind](protocol.task, model, protocol.seed)
    steps = int(round(float(task.duration / model.dt)))
    set_device("runtime")
    prefs.codegen.target = "cython"
    if hasattr(blueprint_class, "dense"):  # a Brian2 user's network: summed variables, synapse by synapse
        blueprint_class = type(blueprint_class.__name__, (blueprint_class,), {"dense": False})
    blueprint = blueprint_class(model, 1, steps, seed=protocol.seed, contributors=[task.contribute,
                                                                                contributor(rule, model)])
    net = blueprint.build()
    net.network.store("start")
    return rule, task, blueprint, net
