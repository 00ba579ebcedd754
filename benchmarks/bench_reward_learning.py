"""Trials per second of the reward_learning protocol (LIF 20-2, spike_count, 200 ms trials), its
R-STDP case three ways, and its WP and NP cases two ways (b, c), in one process:

a. a naive Brian2 loop: the same network, task and rule equations built once in Brian2's runtime
   mode with its default Cython target, ``gc.freeze()`` after the build (the fairest naive
   baseline), and per trial ``restore``, the run values written onto the objects, one
   ``Network.run``, the trial's change read back and applied in NumPy, the baseline updated;
b. bioplastic's trial loop (``training.loop = "trial"``): the standalone binary re-run once per trial;
c. bioplastic's block loop (``training.loop = "block"``): one run of the binary trains a block of
   trials, the change applied and the critic updated in generated code at every trial's end.

Run from the repository root::

    .venv/bin/python benchmarks/bench_reward_learning.py [--trials N] [--naive-trials N] [--repeats R]
        [--cases rstdp weight_perturbation node_perturbation] [--out FILE.json]

(b) and (c) are timed on a second trainer, after a first one built the binary; (b) and (c)
alternate ``--repeats`` times and the median is kept, since the machine is shared. No analysis
trials (``analysis.every = 0``). All start from the same seed and draw the same inputs; the script
reports for how many trials (b) and (c) give equal losses.
"""

import argparse
import gc
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def protocol(trials, loop, case="rstdp", backend="standalone"):
    """The protocol's sweep case ``case`` (its label) in the given loop, without analysis trials."""
    from bioplastic.config import load_protocol
    swept = load_protocol(ROOT / "protocols" / "reward_learning.toml",
                          [f'training.loop="{loop}"', f"training.trials={trials}", "analysis.every=0",
                           f'training.backend="{backend}"'])
    return next(p for label, _, p in swept.variants() if label == case)


def bioplastic_loop(trials, loop, case):
    """Seconds per trial of ``Trainer.train`` (after a trainer that built the binary) and its table."""
    from bioplastic.engine.trainer import Trainer
    Trainer(protocol(trials, loop, case)).train()  # builds the binary (a block's length is part of its build)
    trainer = Trainer(protocol(trials, loop, case))
    start = time.perf_counter()
    table = trainer.train()
    return (time.perf_counter() - start) / trials, table


def naive(trials):
    """One runtime ``run()`` per trial, written out as a Brian2 user would."""
    import brian2
    from bioplastic import rng as streams
    from bioplastic.networks.spiking_network import SpikingBlueprint
    from bioplastic.rules import RULES, TrialData
    from bioplastic.rules.base import RunContext
    from bioplastic.rules.builders import contributor
    from bioplastic.tasks import TASKS
    p = protocol(trials, "trial", backend="runtime")  # the rstdp case
    model = p.model
    rule = RULES[p.rule_kind](p.rule)
    task = TASKS[p.task_kind](p.task, model, p.seed)
    steps = int(round(float(task.duration / model.dt)))
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "cython"
    blueprint = SpikingBlueprint(model, 1, steps, seed=p.seed, contributors=[
        task.contribute, contributor(rule, model), task.contribute_after_rule])
    for name in [n for n in blueprint.recipe.synapses if n.startswith("guard_")]:  # a user's script has no
        del blueprint.recipe.synapses[name]  # runaway guard (and its stop function has no Cython form)
    del blueprint.recipe.groups["guard"]
    net = blueprint.build()
    net.network.store("start")
    gc.freeze()  # the built objects are never collected: the collector need not walk them every trial
    weights = rule.constrain(model.init_weights(streams.stream(p.seed, "init"), p.seed))
    inputs_rng = streams.stream(p.seed, "inputs")
    times = []
    for trial in range(trials + 1):
        start = time.perf_counter()
        batch = task.sample(inputs_rng)
        net.network.restore("start")
        layout = blueprint.layout
        values = {**task.run_values(batch, layout),
                  **rule.run_values(RunContext(1, batch.conditions, layout=layout, weights=weights))}
        for (owner, variable), value in values.items():
            setattr(net.objects[owner], f"{variable}_", value)  # SI values without units
        net.objects["input_raster"].values[...] = batch.inputs[0]
        net.objects["weights1"].w_ = weights[0].ravel() * 1e-3
        net.network.run(net.duration, namespace={})
        dw = np.asarray(net.objects["weights1"].dw_rstdp[:]).reshape(weights[0].shape) / 1e-3
        readout = np.asarray(net.objects["layer1"].count[:] - net.objects["layer1"].ftrace[:])
        data = TrialData(weights, task.losses(readout[None], batch.targets), [readout[None]], deltas=[dw[None]],
                         rewards=np.asarray(net.objects["modulator"].final_reward[:]), conditions=batch.conditions)
        weights = rule.constrain([w + u for w, u in zip(weights, rule.update(data, None))])
        rule.observe(data)
        if trial:  # the first trial compiles the Cython code
            times.append(time.perf_counter() - start)
    gc.unfreeze()
    return float(np.mean(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--naive-trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["rstdp", "weight_perturbation", "node_perturbation"],
                        help="the protocol's sweep cases to time (the naive loop: rstdp only)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    naive_per_trial = naive(args.naive_trials) if "rstdp" in args.cases else None
    result = dict(trials=args.trials, naive_cython_freeze_trials_per_s=naive_per_trial and 1 / naive_per_trial)
    print(f"reward_learning, {args.trials} trials of 200 ms (medians of {args.repeats}):")
    if naive_per_trial:
        print(f"  rstdp, naive Cython loop + gc.freeze: {1 / naive_per_trial:8.1f} trials/s")
    for case in args.cases:
        times, tables = {"trial": [], "block": []}, {}
        for _ in range(args.repeats):
            for loop in times:
                per_trial, tables[loop] = bioplastic_loop(args.trials, loop, case)
                times[loop].append(per_trial)
        a, b = tables["trial"], tables["block"]
        losses = [t[t.metric == "loss"].value.to_numpy() for t in (a, b)]
        same = int(np.argmax(losses[0] != losses[1])) if np.any(losses[0] != losses[1]) else len(losses[0])
        trial, block = (float(np.median(times[k])) for k in ("trial", "block"))
        result[case] = dict(trial_loop_trials_per_s=1 / trial, block_loop_trials_per_s=1 / block,
                            block_over_trial_loop=trial / block, trials_with_equal_losses=same,
                            repeats={k: [1 / t for t in v] for k, v in times.items()})
        line = f"  {case}: trial loop {1 / trial:7.1f}, block loop {1 / block:7.1f} trials/s: {trial / block:4.1f}x"
        if case == "rstdp" and naive_per_trial:
            result[case]["block_over_naive"] = naive_per_trial / block
            line += f" ({naive_per_trial / block:5.1f}x naive)"
        print(line + f"; the first {same} of {args.trials} losses equal in both loops")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
