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
