r"""The rate model's discretised dynamics in NumPy, exactly as Brian2 integrates them.

Each layer :math:`l \ge 1` obeys :math:`\tau\, dr_l/dt = -r_l + f(I_l + p_l)` with
:math:`I_l = W_l r_{l-1}`. Brian2's ``euler`` method and its schedule (summed variables are
updated before any state update, see ``SummedVariableUpdater``) give, with :math:`a = dt/\tau`,

.. math:: r_l[n+1] = (1-a)\, r_l[n] + a\, f(W_l r_{l-1}[n] + p_l),

so every layer sees the previous layer's rate from the *start* of the step. The input layer
:math:`r_0` is held constant for the trial, and every layer starts at :math:`r_l[0] = 0`.

The teacher network, the BPTT reference and the tests use these functions; a test checks that
they agree with the Brian2 simulation to rounding error.
"""

import numpy as np

ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu")


def activation(name, u):
    """:math:`f(u)` for the activation ``name``."""
    if name == "linear":
        return u
    elif name == "tanh":
        return np.tanh(u)
    elif name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-u))
    elif name == "relu":
        return np.maximum(u, 0.0)
    else:
        raise ValueError(f"activation: must be one of {', '.join(ACTIVATIONS)} (got {name!r})")


def activation_derivative(name, u):
    """:math:`f'(u)`; for relu, 0 at u = 0 as in the Brian2 expression ``clip(u, 0, inf)``'s subgradient."""
    if name == "linear":
        return np.ones_like(u)
    elif name == "tanh":
        return 1.0 - np.tanh(u) ** 2
    elif name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-u))
        return s * (1.0 - s)
    elif name == "relu":
        return (u > 0).astype(float)
    else:
        raise ValueError(f"activation: must be one of {', '.join(ACTIVATIONS)} (got {name!r})")


def forward(weights, inputs, activation_name, a, steps, perts=None, record=False):
    """Simulate a batch of trials.

    Parameters
    ----------
    weights : list of ndarray, shape (n_out, n_in) or (batch, n_out, n_in)
        One matrix per layer (shared, or one per batch element).
    inputs : ndarray, shape (batch, n_0)
    activation_name : str
    a : float
        dt / tau (dimensionless).
    steps : int
        Number of Euler steps in the trial.
    perts : list of ndarray, shape (batch, n_l), optional
        Constant perturbation currents of layers 1..L.
    record : bool
        Also return the trajectories.

    Returns
    -------
    final : list of ndarray, shape (batch, n_l)
        Rates of every layer (input first) after the last step.
    trajectory : list of ndarray, shape (steps, batch, n_l), only if ``record``
        Rates of layers 1..L at the start of each step (what a Brian2 StateMonitor records).
    """
    batch = inputs.shape[0]
    rates = [np.asarray(inputs, float)] + [np.zeros((batch, w.shape[-2])) for w in weights]
    trajectory = [np.empty((steps, batch, w.shape[-2])) for w in weights] if record else None
    for n in range(steps):
        if record:
            for l in range(len(weights)):
                trajectory[l][n] = rates[l + 1]
        currents = [_matvec(w, r) for w, r in zip(weights, rates[:-1])]
        for l, current in enumerate(currents):
            if perts is not None:
                current = current + perts[l]
            rates[l + 1] = (1 - a) * rates[l + 1] + a * activation(activation_name, current)
    return (rates, trajectory) if record else rates


def _matvec(w, r):
    """``W r`` for a shared (n_out, n_in) or per-batch (batch, n_out, n_in) weight."""
    return r @ w.T if w.ndim == 2 else np.einsum("boi,bi->bo", w, r)


def flatten(arrays, lead=0):
    """Concatenate per-layer arrays into one vector per leading index.

    The first ``lead`` axes (e.g. K samples) are kept; the rest of each array is raveled.
    """
    return np.concatenate([a.reshape(a.shape[:lead] + (-1,)) for a in arrays], axis=-1)


def unflatten(flat, shapes):
    """Inverse of :func:`flatten`: split the last axis into arrays of the given layer shapes."""
    splits = np.cumsum([int(np.prod(shape)) for shape in shapes])[:-1]
    return [part.reshape(flat.shape[:-1] + tuple(shape))
            for part, shape in zip(np.split(flat, splits, axis=-1), shapes)]
