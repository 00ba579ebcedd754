r"""The recurrent rate model's discrete dynamics in NumPy, exactly as Brian2 integrates them.

Per copy, with :math:`a = dt/\tau`, rates :math:`r = f(x)`, inputs :math:`u[n]` (the stimulus of
step n), a linear read-out and optional feedback of the read-out into the network:

.. math::
    z[n] &= W_\mathrm{out}\, r[n] + p_\mathrm{out} + k_\mathrm{out}[n], \\
    x[n+1] &= (1 - a)\, x[n] + a\,\big(J\, r[n] + W_\mathrm{in}\, u[n] + W_\mathrm{fb}\, z[n]
              + p + k[n] + \xi[n]\big),

from :math:`x[0] = 0`. ``p`` is node perturbation's constant current, ``k[n]`` the sparse
perturbations an in-network rule draws, :math:`\xi[n]` the model's private noise. Brian2's
schedule gives exactly this: every summed variable (the synaptic currents and the read-out,
then the feedback, which reads the read-out) is computed from the rates at the start of the
step, before the Euler state update (see :mod:`bioplastic.networks.recurrent_rate`).

The BPTT reference runs backwards through this map along the trajectory Brian2 recorded; a test
checks that :func:`forward` reproduces Brian2's trajectory to rounding.
"""

import numpy as np

from .rate_math import activation, activation_derivative

LAYERS = ("input", "recurrent", "readout")


def forward(weights, inputs, activation_name, a, perts=None, kicks=None):
    """Simulate a batch of trials.

    Parameters
    ----------
    weights : dict
        ``input`` (N, n_in), ``recurrent`` (N, N), ``readout`` (n_out, N) and optionally
        ``feedback`` (N, n_out).
    inputs : ndarray (batch, steps, n_in)
    perts : dict, optional
        Constant currents ``neurons`` (batch, N) and ``readout`` (batch, n_out).
    kicks : dict, optional
        Per-step currents ``neurons`` (steps, batch, N) and ``readout`` (steps, batch, n_out).

    Returns
    -------
    x : ndarray (steps, batch, N)
        The state at the start of every step (what a StateMonitor records).
    z : ndarray (steps, batch, n_out)
        The read-out of every step.
    """
    inputs = np.asarray(inputs, float)
    batch, steps, _ = inputs.shape
    n, n_out = weights["recurrent"].shape[0], weights["readout"].shape[0]
    perts, kicks = perts or {}, kicks or {}
    x = np.zeros((batch, n))
    xs, zs = np.empty((steps, batch, n)), np.empty((steps, batch, n_out))
    for step in range(steps):
        r = activation(activation_name, x)
        z = r @ weights["readout"].T + perts.get("readout", 0.0)
        if "readout" in kicks:
            z = z + kicks["readout"][step]
        drive = r @ weights["recurrent"].T + inputs[:, step] @ weights["input"].T + perts.get("neurons", 0.0)
        if weights.get("feedback") is not None:
            drive = drive + z @ weights["feedback"].T
        if "neurons" in kicks:
            drive = drive + kicks["neurons"][step]
        xs[step], zs[step] = x, z
        x = (1 - a) * x + a * drive
    return xs, zs


def bptt(weights, inputs, x, z_grad, activation_name, a):
    r"""Backpropagate ``z_grad`` = dL/dz[n] (steps, batch, n_out) through a recorded trajectory.

    With :math:`\delta[n] = \partial L/\partial x[n]` and :math:`\delta[\mathrm{steps}] = 0`, going
    back one step:

    .. math::
        \bar z[n] &= \partial L/\partial z[n] + a\, W_\mathrm{fb}^\top \delta[n+1], \\
        \bar r[n] &= W_\mathrm{out}^\top \bar z[n] + a\, J^\top \delta[n+1], \qquad
        \delta[n] = (1-a)\,\delta[n+1] + f'(x[n]) \odot \bar r[n], \\
        \partial L/\partial J &\mathrel{+}= a\, \delta[n+1]\, r[n]^\top, \quad
        \partial L/\partial W_\mathrm{in} \mathrel{+}= a\, \delta[n+1]\, u[n]^\top, \quad
        \partial L/\partial W_\mathrm{out} \mathrel{+}= \bar z[n]\, r[n]^\top .

    Returns ``(weight gradients by name, node gradients)``: the gradients are summed over the
    batch; the node gradients (dL/dp per example: ``neurons`` (batch, N), ``readout`` (batch,
    n_out)) are what node perturbation estimates.
    """
    inputs = np.asarray(inputs, float)
    steps = x.shape[0]
    w_rec, w_out = weights["recurrent"], weights["readout"]
    w_fb = weights.get("feedback")
    grads = {name: np.zeros_like(weights[name]) for name in weights if weights[name] is not None}
    nodes = {"neurons": np.zeros(x.shape[1:]), "readout": np.zeros(z_grad.shape[1:])}
    delta = np.zeros(x.shape[1:])  # dL/dx[n+1]
    for step in range(steps - 1, -1, -1):
        r = activation(activation_name, x[step])
        z_bar = z_grad[step] + (a * delta @ w_fb if w_fb is not None else 0.0)
        r_bar = z_bar @ w_out + a * delta @ w_rec
        grads["recurrent"] += a * delta.T @ r
        grads["input"] += a * delta.T @ inputs[:, step]
        grads["readout"] += z_bar.T @ r
        if w_fb is not None:
            grads["feedback"] += a * delta.T @ (r @ w_out.T)
        nodes["neurons"] += a * delta
        nodes["readout"] += z_bar
        delta = (1 - a) * delta + activation_derivative(activation_name, x[step]) * r_bar
    return grads, nodes
