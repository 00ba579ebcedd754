r"""Exact gradients by backpropagation through time, through a recorded Brian2 trajectory.

The forward update is :mod:`bioplastic.networks.rate_math`'s Euler step,
:math:`r_l[n+1] = (1-a) r_l[n] + a f(u_l[n])` with :math:`u_l[n] = W_l r_{l-1}[n] + p_l`.
Given :math:`\bar r_l[n+1] = \partial L / \partial r_l[n+1]`, one step back is

.. math::
    \bar u_l[n] = a f'(u_l[n]) \odot \bar r_l[n+1], \quad
    \bar r_l[n] = (1-a) \bar r_l[n+1] + W_{l+1}^\top \bar u_{l+1}[n], \\
    \partial L/\partial W_l \mathrel{+}= \bar u_l[n]\, r_{l-1}[n]^\top, \quad
    \partial L/\partial p_l \mathrel{+}= \bar u_l[n].

Because the trajectory is the one Brian2 recorded and the update is the one Brian2 integrates,
the result is exact to rounding; ``bioplastic gradcheck`` checks it against finite differences
of the simulation itself.
"""

from dataclasses import dataclass

import numpy as np

from ..networks.rate_math import activation_derivative


@dataclass
class Gradient:
    """A reference gradient: dL/dW per layer, and for rate networks dL/dpert per layer and
    example (batch, n_l); what it is (``name``) and whether it is exact for the trial at hand
    (``exact``; a Monte Carlo reference of the expected loss is not, and reports its standard
    error per weight, ``sem``, and the cosine between two halves of its samples,
    ``split_cosine``)."""

    weights: list
    nodes: list | None = None
    name: str = "bptt"
    exact: bool = True
    sem: list | None = None
    split_cosine: float | None = None


def bptt(weights, inputs, trajectory, output_grad, activation, a):
    """Backpropagate ``output_grad`` = dL/dr_L(T) through a recorded trajectory.

    Parameters
    ----------
    weights : list of ndarray (n_out, n_in)
    inputs : ndarray (batch, n_0)
        The constant input rates.
    trajectory : list of ndarray (steps, batch, n_l)
        Rates of layers 1..L at the start of every step (a StateMonitor's record).
    output_grad : ndarray (batch, n_L)
        Gradient of the loss with respect to the output rates after the last step.
    activation : str
    a : float
        dt / tau.
    """
    n_layers, steps = len(weights), trajectory[0].shape[0]
    rate_grads = [None] * n_layers
    rate_grads[-1] = np.asarray(output_grad, float)
    for l in range(n_layers - 1):
        rate_grads[l] = np.zeros_like(trajectory[l][0])
    weight_grads = [np.zeros_like(w) for w in weights]
    node_grads = [np.zeros_like(t[0]) for t in trajectory]
    for n in range(steps - 1, -1, -1):
        pre = [inputs] + [t[n] for t in trajectory[:-1]]
        new_rate_grads = [(1 - a) * g for g in rate_grads]
        for l in range(n_layers):
            u = pre[l] @ weights[l].T
            du = a * activation_derivative(activation, u) * rate_grads[l]
            weight_grads[l] += du.T @ pre[l]
            node_grads[l] += du
            if l > 0:
                new_rate_grads[l - 1] += du @ weights[l]
        rate_grads = new_rate_grads
    return Gradient(weight_grads, node_grads)
