r"""Expected learning curves of WP and NP on the temporally extended linear task, in closed form.

The task (:mod:`bioplastic.tasks.temporal`): a one-layer linear rate network, read after n Euler
steps, gives :math:`c\,(W x_t + \zeta_t)` with :math:`c = 1 - (1 - dt/\tau)^n`; the teacher gives
:math:`c\,W^* x_t`; the inputs :math:`X = s F E^\top` span :math:`N_\mathrm{eff}` directions
with equal singular values s. The loss is :math:`L = \frac{c^2}{TM}\|(W - W^*) X^\top\|^2
= \lambda \|u\|^2` with :math:`\lambda = c^2 s^2/(TM)` and u the D = M N_eff coordinates of
:math:`W - W^*` along the inputs; the other directions of W never change the loss.

One update with K Gaussian perturbations and a clean copy, at :math:`h = \eta\lambda`. WP
perturbs the weights (σ in weight units); its loss change is :math:`\lambda(2u\cdot\xi +
|\xi|^2)` over the D relevant directions of ξ. NP with ``credit = "trial"`` perturbs every
output at every step (σ in input-current units, P = M T numbers); its loss change is
:math:`\lambda(2u\cdot z + |\zeta|^2/s^2)` where z is the projection of ζ on the inputs' time
modes, and its update moves u along z. Gaussian moments
(:math:`E[(u\cdot\xi)^2|\xi|^2] = \sigma^4(D+2)|u|^2`,
:math:`E[|\xi|^6] = \sigma^6 D(D+2)(D+4)`, :math:`E[|\zeta|^4 |z|^2] = \sigma^6 D(P+2)(P+4)`)
give, exactly for the mean,

.. math:: E[L_{n+1}] = q\, E[L_n] + \beta, \qquad
          q = 1 - 4h + 4h^2\Big(\frac{D+2}{K} + 1 - \frac1K\Big),

.. math:: \beta_\mathrm{WP} = \frac{\lambda h^2 \sigma^2 D(D+2)(D+4)}{K}, \qquad
          \beta_\mathrm{NP} = \frac{\lambda h^2 \sigma^2 D(P+2)(P+4)}{K s^2}.

Antithetic pairs remove β. So both rules approach the teacher at the same rate q, set by
D = M N_eff, and the time steps enter only through NP's floor β/(1-q), in which the second-order
term of all P = M T perturbations appears. With the same perturbation size in every output at
every step (:math:`\sigma_\mathrm{WP}\,\|x\|_\mathrm{rms} = \sigma_\mathrm{NP}`) the floors'
ratio is, at any learning rate,

.. math:: \frac{L_\infty^\mathrm{NP}}{L_\infty^\mathrm{WP}}
          = \frac{(P+2)(P+4)\,N_\mathrm{eff}}{(D+2)(D+4)\,T} \approx \frac{T}{N_\mathrm{eff}}
          \quad (D \gg 1):

WP does as well as NP when the inputs span all T steps, and better when they span fewer; since
N_eff <= T, NP never does better here (Züge, Klos & Memmesheimer 2023: "WP often performs
similarly or better"). The recursion is for the mean; the spread over seeds is not modelled.
"""

from pathlib import Path

import numpy as np
import pandas as pd


def readout_gain(model, duration):
    """c: the one-layer linear rate network's output after ``duration`` over its steady state."""
    steps = int(round(float(duration / model.dt)))
    return 1.0 - (1.0 - float(model.dt / model.tau)) ** steps


def task_geometry(model, task):
    """``dict(D, P, lam, s2)`` of a temporal_regression task on a one-layer linear rate network."""
    if len(model.sizes) != 2 or model.activation != "linear":
        raise ValueError("learning_curves: the closed form holds for a one-layer linear rate network "
                         f"(got sizes {list(model.sizes)}, activation {model.activation!r})")
    n_out, steps, dim = model.sizes[1], task.steps, task.input_dim
    s2 = task.input_norm ** 2 * steps / dim
    c = readout_gain(model, task.duration)
    return dict(D=n_out * dim, P=n_out * steps, lam=c ** 2 * s2 / (steps * n_out), s2=s2)


def decay_and_floor_step(rule_kind, rule, geometry):
    """(q, β) of one update of ``rule`` (a WP or trial-credit NP spec) on ``geometry``."""
    D, P, lam, s2 = (geometry[k] for k in ("D", "P", "lam", "s2"))
    h, k, sigma2 = rule.lr * lam, rule.samples, rule.sigma ** 2
    q = 1 - 4 * h + 4 * h ** 2 * ((D + 2) / k + 1 - 1 / k)
    if rule.antithetic:
        return q, 0.0
    if rule_kind == "weight_perturbation":
        return q, lam * h ** 2 * sigma2 * D * (D + 2) * (D + 4) / k
    if rule_kind == "node_perturbation" and getattr(rule, "credit", "example") == "trial":
        return q, lam * h ** 2 * sigma2 * D * (P + 2) * (P + 4) / (k * s2)
    raise ValueError(f"learning_curves: no closed form for {rule_kind!r}"
                     + (" with credit = 'example'" if rule_kind == "node_perturbation" else ""))


def expected_loss(rule_kind, rule, geometry, initial_loss, trials):
    """E[L_n] for n = 0 .. trials-1 from the measured L_0: :math:`q^n (L_0 - L_\\infty) + L_\\infty`."""
    q, beta = decay_and_floor_step(rule_kind, rule, geometry)
    n = np.arange(trials)
    if q == 1:
        return initial_loss + beta * n
    floor = beta / (1 - q)  # for q > 1 (too large a rate) the same sum grows without bound
    return q ** n * (initial_loss - floor) + floor


def _line_name(rule_kind, rule):
    name = {"weight_perturbation": "WP", "node_perturbation": "NP"}.get(rule_kind, rule_kind)
    if rule_kind == "node_perturbation":
        name += ", one reward per trial" if rule.credit == "trial" else ", a reward per step"
    return name


def sweep_learning_curves(folder, late=(2 / 3, 1.0)):
    """The mean learning curves of a temporal_regression sweep beside their closed form.

    Returns ``(curves, late_loss)``:

    * ``curves``: per line (rule) and ``input_dim``, at every trial, the loss's ``mean`` and
      ``sem`` over seeds and the ``theory`` from the mean initial loss (NaN where the rule has no
      closed form);
    * ``late_loss``: the mean loss over the ``late`` fraction of the trials (the learning
      curve's tail, where the floors differ), mean and sem over seeds, beside the theory's
      mean over the same trials, and their ratio.
    """
    from ..config import load_protocol
    from ..results import finished_runs, read_metrics

    folder = Path(folder)
    curves, tails = [], []
    for run in finished_runs(folder).itertuples():
        protocol = load_protocol(folder / run.path / "protocol.toml")
        metrics = read_metrics(folder / run.path)
        loss = metrics[metrics.metric == "loss"].sort_values("trial")
        curves.append(pd.DataFrame(dict(line=_line_name(protocol.rule_kind, protocol.rule),
                                        input_dim=protocol.task.input_dim, seed=run.seed,
                                        trial=loss.trial.to_numpy(), loss=loss.value.to_numpy())))
        tails.append(protocol)
    runs = pd.concat(curves, ignore_index=True)
    protocols = {(_line_name(p.rule_kind, p.rule), p.task.input_dim): p for p in tails}
    out, late_rows = [], []
    for (line, dim), rows in runs.groupby(["line", "input_dim"], sort=False):
        table = rows.groupby("trial").loss.agg(["mean", "sem"]).reset_index()
        protocol = protocols[(line, dim)]
        try:
            theory = expected_loss(protocol.rule_kind, protocol.rule, task_geometry(protocol.model, protocol.task),
                                   float(table["mean"].iloc[0]), int(table.trial.max()) + 1)[table.trial]
        except ValueError:
            theory = np.full(len(table), np.nan)
        out.append(table.assign(line=line, input_dim=dim, theory=theory))
        start, stop = (int(round(f * (table.trial.max() + 1))) for f in late)
        window = rows[(rows.trial >= start) & (rows.trial < stop)].groupby("seed").loss.mean()
        expected = float(np.mean(theory[(table.trial >= start) & (table.trial < stop)]))
        late_rows.append(dict(line=line, input_dim=dim, trials=f"{start}-{stop - 1}", mean=window.mean(),
                              sem=window.sem(), seeds=len(window), theory=expected, ratio=window.mean() / expected))
    return pd.concat(out, ignore_index=True), pd.DataFrame(late_rows).sort_values(["line", "input_dim"])
