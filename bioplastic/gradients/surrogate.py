r"""Surrogate-gradient BPTT and e-prop for recurrent networks of LIF and ALIF neurons, in NumPy.

The discrete dynamics (Bellec et al. 2020, Methods), per neuron j and step t, with input x[t]:

.. math::
    v_j[t+1] &= \alpha v_j[t] + \sum_i W^\mathrm{rec}_{ji} z_i[t] + \sum_i W^\mathrm{in}_{ji} x_i[t+1]
               - v_\mathrm{th}\, z_j[t], \\
    a_j[t+1] &= \rho a_j[t] + z_j[t], \qquad A_j[t] = v_\mathrm{th} + \beta_j a_j[t], \qquad
    z_j[t] = H(v_j[t] - A_j[t]), \\
    y_k[t+1] &= \kappa y_k[t] + \sum_j W^\mathrm{out}_{kj} z_j[t],

from zero states; β_j = 0 makes neuron j a plain LIF neuron. The loss is
:math:`E = \tfrac12 \sum_{t,k} (y_k[t] - y^*_k[t])^2` over the steps given. The spike's
derivative is replaced by the pseudo-derivative
:math:`\psi_j[t] = \frac{\gamma}{v_\mathrm{th}} \max(0, 1 - |v_j[t] - A_j[t]| / v_\mathrm{th})`,
and, as in Bellec et al.'s code, no gradient flows through the reset term.

* :func:`bptt`: backpropagation through time of this model (the surrogate gradient).
* :func:`eprop`: the e-prop factorisation :math:`dE/dW_{ji} = \sum_t L_j[t]\, e_{ji}[t]`, with the
  eligibility traces of the neuron's own hidden state,

  .. math::
      \epsilon^v_{ji}[t+1] &= \alpha\, \epsilon^v_{ji}[t] + \mathrm{pre}_i[t], \\
      \epsilon^a_{ji}[t+1] &= \psi_j[t]\, \epsilon^v_{ji}[t] + (\rho - \psi_j[t] \beta_j)\, \epsilon^a_{ji}[t], \\
      e_{ji}[t] &= \psi_j[t] \big(\epsilon^v_{ji}[t] - \beta_j\, \epsilon^a_{ji}[t]\big),

  (``pre`` is z[t] for recurrent weights, x[t+1] for input weights), and a learning signal
  :math:`L_j[t]`. With the *true* learning signal (:func:`true_learning_signal`: the derivative of
  E with respect to z_j[t] through everything but the neuron's own hidden state, i.e. through
  the read-out and the recurrent synapses) the factorisation is exact, and equals :func:`bptt`
  to rounding. Bellec et al.'s approximation keeps only the read-out's immediate term,
  :math:`L_j[t] = \sum_k B_{jk} (y_k[t+1] - y^*_k[t+1])` (:func:`local_learning_signal`), with
  B the read-out weights transposed (symmetric feedback) or random.

The Brian2 network that steps these equations is :mod:`bioplastic.networks.alif` (a test holds
the two to rounding). Every function takes the loss through its derivative ``y_grad`` =
dE/dy[t] (steps, n_out), so any loss of the read-out works; for the squared error above it is
``y - target``.

References
----------
Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020), A solution to the learning
dilemma for recurrent networks of spiking neurons. Nat. Commun. 11:3625.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AlifParams:
    """Constants of the discrete model: decays α (membrane), ρ (adaptation), κ (read-out), the
    threshold v_th, the adaptation strength β per neuron (0: LIF), the pseudo-derivative's
    dampening γ and its shape (``triangle`` or ``fast_sigmoid``)."""

    alpha: float
    rho: float
    kappa: float
    v_th: float
    beta: np.ndarray
    gamma: float = 0.3
    surrogate: str = "triangle"

    def pseudo_derivative(self, v, threshold):
        """ψ = γ / v_th · shape((v - A) / v_th)."""
        u = (v - threshold) / self.v_th
        shape = np.maximum(0.0, 1.0 - np.abs(u)) if self.surrogate == "triangle" else 1.0 / (1.0 + np.abs(u)) ** 2
        return self.gamma / self.v_th * shape


@dataclass
class Trajectory:
    """States of every step, (steps, n) each; ``y`` is the read-out after each step."""

    v: np.ndarray
    a: np.ndarray
    z: np.ndarray
    psi: np.ndarray
    y: np.ndarray


def forward(params, w_in, w_rec, w_out, x, pert=None, pert_out=None):
    """Simulate from zero states; ``x`` is (steps, n_in); ``pert``/``pert_out`` are constant
    currents into the neurons' membrane and the read-out. Returns the :class:`Trajectory`:
    ``v[t], a[t], z[t]`` at step t, and ``y[t]`` after step t (it reads z[t])."""
    steps, n = x.shape[0], w_rec.shape[0]
    v, a, y = np.zeros(n), np.zeros(n), np.zeros(w_out.shape[0])
    pert = np.zeros(n) if pert is None else pert
    pert_out = np.zeros(w_out.shape[0]) if pert_out is None else pert_out
    out = Trajectory(*(np.zeros((steps, n)) for _ in range(4)), np.zeros((steps, w_out.shape[0])))
    x_next = _inputs_next(x)
    for t in range(steps):
        threshold = params.v_th + params.beta * a
        z = (v >= threshold).astype(float)
        out.v[t], out.a[t], out.z[t] = v, a, z
        out.psi[t] = params.pseudo_derivative(v, threshold)
        y = params.kappa * y + w_out @ z + pert_out
        out.y[t] = y
        v = params.alpha * v + w_rec @ z + w_in @ x_next[t] + pert - params.v_th * z
        a = params.rho * a + z
    return out


def recorded(params, v, a, y):
    """The :class:`Trajectory` of recorded states v, a (steps, n) and read-out y (steps, n_out)."""
    threshold = params.v_th + params.beta * a
    return Trajectory(v, a, (v >= threshold).astype(float), params.pseudo_derivative(v, threshold), y)


def _inputs_next(x):
    """x[t+1] for every step t (zero after the last)."""
    return np.concatenate([x[1:], np.zeros((1, x.shape[1]))])


def bptt(params, w_in, w_rec, w_out, x, y_grad, trajectory):
    """Surrogate-gradient BPTT of a loss E with dE/dy[t] = ``y_grad``; returns ``(dE/dW_in,
    dE/dW_rec, dE/dW_out, dE/dp, dE/dp_out)`` (the last two: the constant currents' gradients,
    what node perturbation estimates)."""
    tr = trajectory
    steps, n = tr.z.shape
    x_next = _inputs_next(x)
    g_in, g_rec, g_out = np.zeros_like(w_in), np.zeros_like(w_rec), np.zeros_like(w_out)
    g_pert, g_pert_out = np.zeros(n), np.zeros(w_out.shape[0])
    dy = np.zeros(w_out.shape[0])  # dE/dy[t] total, carried backwards through y[t+1] = κ y[t] + ...
    dv_next, da_next = np.zeros(n), np.zeros(n)  # dE/dv[t+1], dE/da[t+1]
    for t in range(steps - 1, -1, -1):
        dy = y_grad[t] + params.kappa * dy
        g_out += np.outer(dy, tr.z[t])
        g_rec += np.outer(dv_next, tr.z[t])
        g_in += np.outer(dv_next, x_next[t])
        g_pert += dv_next
        g_pert_out += dy
        dz = w_out.T @ dy + w_rec.T @ dv_next + da_next  # the reset path carries no gradient
        dv = params.alpha * dv_next + tr.psi[t] * dz
        da = params.rho * da_next - params.beta * tr.psi[t] * dz
        dv_next, da_next = dv, da
    return g_in, g_rec, g_out, g_pert, g_pert_out


def true_learning_signal(params, w_rec, w_out, y_grad, trajectory):
    """L_j[t] = dE/dz_j[t] through the read-out and the recurrent synapses (not through the
    neuron's own adaptation, which its eligibility carries): the signal with which e-prop is exact."""
    tr = trajectory
    steps, n = tr.z.shape
    signal = np.zeros((steps, n))
    dy = np.zeros(w_out.shape[0])
    dv_next, da_next = np.zeros(n), np.zeros(n)
    for t in range(steps - 1, -1, -1):
        dy = y_grad[t] + params.kappa * dy
        signal[t] = w_out.T @ dy + w_rec.T @ dv_next
        dz = signal[t] + da_next
        dv_next, da_next = params.alpha * dv_next + tr.psi[t] * dz, params.rho * da_next - params.beta * tr.psi[t] * dz
    return signal


def local_learning_signal(feedback, y_grad):
    """Bellec et al.'s online approximation: L_j[t] = Σ_k B_jk dE/dy_k[t], the read-out error of
    the same step sent back through ``feedback`` B (n, n_out)."""
    return np.asarray(y_grad) @ feedback.T


def eprop(params, x, trajectory, signal):
    """The e-prop gradient Σ_t L_j[t] e_ji[t] of the input and recurrent weights, from the
    eligibility traces (module docstring) and a learning signal (steps, n)."""
    tr = trajectory
    steps, n = tr.z.shape
    x_next = _inputs_next(x)
    grads = []
    for pre in (x_next, tr.z):
        eps_v, eps_a = np.zeros((n, pre.shape[1])), np.zeros((n, pre.shape[1]))
        grad = np.zeros((n, pre.shape[1]))
        for t in range(steps):
            psi = tr.psi[t][:, None]
            grad += signal[t][:, None] * psi * (eps_v - params.beta[:, None] * eps_a)
            eps_v, eps_a = params.alpha * eps_v + pre[t][None, :], psi * eps_v + (params.rho - psi * params.beta[:, None]) * eps_a
        grads.append(grad)
    return tuple(grads)


def readout_eprop(params, y_grad, trajectory):
    """dE/dW_out online: Σ_t dE/dy[t] ẑ[t]ᵀ with ẑ[t] = κ ẑ[t-1] + z[t] (exact: the read-out is linear)."""
    z_hat = np.zeros(trajectory.z.shape[1])
    grad = np.zeros((y_grad.shape[1], z_hat.size))
    for t in range(len(y_grad)):
        z_hat = params.kappa * z_hat + trajectory.z[t]
        grad += np.outer(y_grad[t], z_hat)
    return grad
