"""Load TOML protocols and models, apply ``--set`` overrides, validate, resolve model files.

Every error is a :class:`~bioplastic.errors.SpecError` that prints as
``FILE: key.path: what is wrong (got X)``.
"""

import copy
import dataclasses
import hashlib
import importlib
import importlib.util
import itertools
import os
import re
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from brian2 import Hz

from . import resources
from .errors import SpecError
from .networks import MODEL_KINDS, model_spec_class
from .registry import BACKENDS, FAMILIES
from .rules import RULES, find_builder
from .rules.builders import block_unsupported, builder_models
from .spec import at_least, from_table, non_negative, param, params, positive, to_table, toml_literal, validate
from .tasks import TASKS

SECTIONS = ("model", "task", "rule", "training", "analysis", "sweep")
TOP_KEYS = ("name", "seed", "description", "plugins") + SECTIONS
PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "models"  # the repository's models/
LOOPS = ("auto", "trial", "block")


@dataclass(frozen=True)
class TrainingSpec:
    """How long to train and on which backend."""

    trials: int = param(300, "number of trials (updates)", kind=int, check=at_least(1))
    eval_every: int = param(1, "log the loss every n trials", kind=int, check=at_least(1))
    backend: str = param("standalone", "standalone (C++, fast) or runtime (numpy, for tests)", kind=str,
                         choices=BACKENDS)
    loop: str = param("auto", "block: many trials per simulation, the updates in generated code (WP and NP on "
                      "feed-forward rate networks with a squared-error task); trial: one simulation per trial; auto: "
                      "block where it applies on the standalone backend", kind=str, choices=LOOPS)
    threads: int = param(1, "standalone: OpenMP threads of the simulation (a build of its own when > 1)", kind=int,
                         check=at_least(1))
    max_loss: float = param(1e6, "a loss above this counts as divergence", check=positive)
    max_rate: object = param(200 * Hz, "spiking: a population rate above this (over 100 ms) stops the run as runaway "
                             "activity", unit=Hz, check=positive)

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class AnalysisSpec:
    """How the rule's updates are compared with the reference gradient."""

    every: int = param(10, "compare the update with the gradient every n trials (0: never)", kind=int,
                       check=non_negative)
    samples: int = param(200, "dry-run samples drawn by `bioplastic align`", kind=int, check=at_least(1))
    fd_samples: int = param(64, "spiking: input samples averaged by the finite-difference reference", kind=int,
                            check=at_least(2))
    fd_eps: float = param(0.25, "spiking: finite-difference step of the reference (mV)", check=positive)

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class Protocol:
    """A validated protocol: specs with units, plus where it came from."""

    file: str
    name: str
    seed: int
    description: str
    model_kind: str
    model: object
    task_kind: str
    task: object
    rule_kind: str
    rule: object
    training: TrainingSpec
    analysis: AnalysisSpec
    sweep: dict | None = None
    plugins: tuple = ()
    source: dict = dataclasses.field(default=None, repr=False)  # the table as read (model merged)

    def to_table(self):
        """The fully resolved protocol as a TOML-ready dict (it runs again as it is)."""
        if self.sweep:  # a sweep's variants may take keys of several rules: keep the table as given
            return copy.deepcopy(self.source)
        table = dict(name=self.name, seed=self.seed, description=self.description,
                     model=dict(kind=self.model_kind, **to_table(self.model)),
                     task=dict(kind=self.task_kind, **to_table(self.task)),
                     rule=dict(kind=self.rule_kind, **to_table(self.rule)),
                     training=to_table(self.training), analysis=to_table(self.analysis))
        if self.plugins:
            table["plugins"] = list(self.plugins)
        return table

    @property
    def reference(self):
        """The reference gradient the cosines are measured against: the model family's own (bptt for
        rate networks, surrogate for LIF/ALIF networks, finite_difference of the expected loss for the
        other spiking ones)."""
        return FAMILIES[self.model.family].reference

    def with_seed(self, seed):
        return dataclasses.replace(self, seed=seed)

    def variants(self):
        """``(label, {key: value}, Protocol)`` for each combination of the sweep grid."""
        return _variants(self.source, self.file)


def load_protocol(path, overrides=(), quick=False, grid=(), seeds=None, plugins=()):
    """Read, override, shrink (``quick``) and validate a protocol file; ``grid`` (``KEY=V1,V2``
    items) and ``seeds`` extend its ``[sweep]`` table (``bioplastic sweep``); ``plugins``: the
    plugins trusted beyond the protocol's folder (see :func:`load_plugins`)."""
    path = Path(path)
    file = str(path)
    table = _read_toml(path, file)
    try:
        for item in overrides:
            apply_override(table, item)
        if grid or seeds is not None:
            extend_sweep(table, grid, seeds)
        table = load_plugins(table, path.parent, trusted=plugins)
        table = resolve_model_file(table, path.parent)
        if quick:
            shrink(table)
        return resolve(table, file)
    except SpecError as exc:
        raise exc.located(file=file) from None


MAX_FILE_MB = 4  # a protocol or model file is text of a few kB; more is a mistake


def _read_toml(path, file):
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would hang, /dev/zero fill the memory
            raise SpecError("", "is not a regular file (a folder, a FIFO or a device); give a TOML file", file=file)
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_MB * 2**20 + 1)
        if len(data) > MAX_FILE_MB * 2**20:
            raise SpecError("", f"is larger than {MAX_FILE_MB} MB: not a protocol or model file", file=file)
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise SpecError("", "no such file", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("", f"cannot read the file: {exc}", file=file) from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("", f"invalid TOML: {exc}", file=file) from None


def apply_override(table, item):
    """Apply one ``KEY=VALUE``: the value is read as TOML, else taken as a string ("20 ms")."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise SpecError("--set", "must be KEY=VALUE, like rule.sigma=0.05", item)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    parts = key.strip().split(".")
    if parts[0] not in TOP_KEYS:
        raise SpecError(key.strip(), f"unknown key; valid top-level keys: {', '.join(TOP_KEYS)}")
    node = table
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(key.strip(), "cannot set a key inside a value that is not a table")
    node[parts[-1]] = value


def extend_sweep(table, grid, seeds):
    """Add ``--grid KEY=V1,V2`` axes and ``--seeds N`` to the table's ``[sweep]``. A protocol
    without a sweep becomes one case of its own (its seeds are the sweep)."""
    sweep = table.setdefault("sweep", {})
    if not isinstance(sweep, dict):
        raise SpecError("sweep", "must be a table with grid and seeds", sweep)
    for item in grid:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--grid", "must be KEY=V1,V2,..., like rule.sigma=0.01,0.1", item)
        values = _grid_values(text)
        if not values:
            raise SpecError("--grid", f"{key}: needs at least one value", item)
        if key.split(".")[0] not in SECTIONS[:5] or "." not in key:
            raise SpecError("--grid", f"{key}: must be a dotted key of model, task, rule, training or analysis", item)
        grid_table = sweep.setdefault("grid", {})
        if not isinstance(grid_table, dict):
            raise SpecError("sweep.grid", "must be a table of dotted keys to lists of values", grid_table)
        grid_table[key] = values
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise SpecError("--seeds", "must be an integer >= 1", seeds)
        sweep["seeds"] = seeds
    if "grid" not in sweep and "cases" not in sweep:
        sweep["cases"] = [{"label": str(table.get("name", "protocol"))}]


def _grid_values(text):
    """``0.1,0.2`` or ``"a","b"`` or ``a,b`` or ``10 ms,20 ms``: each value read as TOML, else
    taken as a string (as ``--set`` does)."""
    if not text.strip():
        return []
    try:
        return tomllib.loads(f"v = [{text}]")["v"]
    except tomllib.TOMLDecodeError:
        pass
    values = []
    for part in text.split(","):
        try:
            values.append(tomllib.loads(f"v = {part}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(part.strip())
    return values


LOADED_PLUGINS = {}  # file of every plugin loaded in this process -> the name a user knows it by
PLUGINS_VARIABLE = "BIOPLASTIC_PLUGINS"  # plugins the user trusts beyond the protocol's folder (os.pathsep)


def load_plugins(table, base, trusted=(), announce=True):
    """Import ``plugins = [...]`` (Python files beside the protocol, or module names) so that the
    rules, tasks or models they register can be named in the protocol. File paths are made
    absolute, so that the resolved protocol runs from anywhere.

    Plugins are code, run as they load. A file must lie in the protocol's folder (``base``) or
    below it; a module name, or a file elsewhere, must also be ``trusted`` (``--plugin``) or
    listed in ``$BIOPLASTIC_PLUGINS``. ``announce``: name each newly loaded one on stderr."""
    plugins = table.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p for p in plugins):
        raise SpecError("plugins", "must be a list of Python files or module names", plugins)
    resolved = []
    for plugin in plugins:
        path = (base / plugin) if not Path(plugin).is_absolute() else Path(plugin)
        _check_trusted(plugin, path, base, trusted)
        try:
            if plugin.endswith(".py"):
                if not path.is_file():
                    raise FileNotFoundError(f"no such file {path}")
                name = f"bioplastic_plugin_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
                if name not in sys.modules:
                    _announce(path.resolve(), announce)
                    spec = importlib.util.spec_from_file_location(name, path)
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[name] = module
                    try:
                        spec.loader.exec_module(module)
                    except BaseException:
                        del sys.modules[name]
                        raise
                resolved.append(str(path.resolve()))
                LOADED_PLUGINS[str(path.resolve())] = str(path.resolve())
            else:
                if plugin not in sys.modules:
                    _announce(plugin, announce)
                module = importlib.import_module(plugin)
                resolved.append(plugin)
                if getattr(module, "__file__", None):
                    LOADED_PLUGINS[str(Path(module.__file__).resolve())] = plugin
        except (Exception, SystemExit) as exc:  # a plugin's own error, whatever it is, is reported on one line
            raise SpecError("plugins", f"cannot load {plugin!r}: {type(exc).__name__}: {exc}") from None
    return {**table, "plugins": resolved} if plugins else table


def _announce(what, announce):
    if announce:
        print(f"loading plugin code: {what}", file=sys.stderr, flush=True)


def _check_trusted(plugin, path, base, trusted):
    """Refuse a plugin outside the protocol's folder that the user did not name (see load_plugins)."""
    allowed = [*trusted, *(p for p in os.environ.get(PLUGINS_VARIABLE, "").split(os.pathsep) if p)]
    if plugin.endswith(".py"):
        where = path.resolve()
        if where.is_relative_to(Path(base).resolve()) or any(where == Path(a).resolve() for a in allowed
                                                              if a.endswith(".py")):
            return
        raise SpecError("plugins", f"{plugin!r} lies outside the protocol's folder {str(base)!r}; plugins are code: "
                        f"to run it, give --plugin {where} (or list it in ${PLUGINS_VARIABLE})")
    if plugin not in allowed:
        raise SpecError("plugins", f"{plugin!r} is a module, not a file beside the protocol; plugins are code: to run "
                        f"it, give --plugin {plugin} (or list it in ${PLUGINS_VARIABLE})")


def resolve_model_file(table, base):
    """Merge ``[model] file = ...`` into the model table (the protocol's own keys win)."""
    model = table.get("model", {})
    if not isinstance(model, dict) or "file" not in model:
        return table
    name = model["file"]
    if not isinstance(name, str) or not name:
        raise SpecError("model.file", "must be the name of a model file, like \"rate_mlp.toml\"", name)
    candidates = [base / name, base.parent / "models" / name, Path("models") / name, PACKAGE_MODELS / name]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise SpecError("model.file", f"no such model file; looked in {', '.join(str(c.parent) for c in candidates)}",
                        name)
    merged = _read_toml(found, str(found))
    merged.pop("name", None)
    merged.pop("description", None)
    try:  # a model file's own mistakes are reported against that file
        kind = _kind(merged, "kind", MODEL_KINDS, default="rate")
        from_table(model_spec_class(kind, merged), merged, "")
    except SpecError as exc:
        raise exc.located(file=str(found)) from None
    merged.update({k: v for k, v in model.items() if k != "file"})
    return {**table, "model": merged}


def shrink(table):
    """``--quick``: few trials, few samples, one seed, at most three values per grid axis; same
    structure otherwise."""
    def cap(section, key, default, limit):
        value = section.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            section[key] = limit  # anything else is left for validation to report

    training, analysis, sweep = (table.get(name) for name in ("training", "analysis", "sweep"))
    if training is None:
        training = table["training"] = {}
    if analysis is None:
        analysis = table["analysis"] = {}
    if isinstance(training, dict):
        cap(training, "trials", 300, 12)
    if isinstance(analysis, dict):
        cap(analysis, "every", 10, 4)
        cap(analysis, "samples", 200, 10)
        cap(analysis, "fd_samples", 64, 8)
    if isinstance(sweep, dict):
        cap(sweep, "seeds", 1, 1)
        grid = sweep.get("grid")
        if isinstance(grid, dict):  # at most three values per axis: the first, the middle, the last
            for key, values in grid.items():
                grid[key] = _first_middle_last(values)
        if "cases" in sweep:  # and at most three cases
            sweep["cases"] = _first_middle_last(sweep["cases"])
    task = table.get("task")
    if isinstance(task, dict) and task.get("kind") in TASKS:
        TASKS[task["kind"]].quick(task)


def _first_middle_last(values):
    """At most three of a list: its first, middle and last items (anything else as it is)."""
    if isinstance(values, list) and len(values) > 3:
        return [values[0], values[len(values) // 2], values[-1]]
    return values


def _section(table, name):
    section = table.get(name, {})
    if not isinstance(section, dict):
        raise SpecError(name, "must be a table", section)
    return section


def _kind(section, path, registry, default=None):
    kind = section.get("kind", default)
    if kind is None:
        raise SpecError(f"{path}.kind", f"is required; valid: {', '.join(registry)}")
    if not isinstance(kind, str) or kind not in registry:
        raise SpecError(f"{path}.kind", f"must be one of {', '.join(registry)}", kind)
    return kind


def _grid_rule_kinds(table):
    """Every ``rule.kind`` that a sweep's grid or cases name."""
    sweep = table.get("sweep")
    if not isinstance(sweep, dict):
        return []
    grid = sweep.get("grid")
    kinds = grid.get("rule.kind", []) if isinstance(grid, dict) else []
    kinds = list(kinds) if isinstance(kinds, list) else []
    cases = sweep.get("cases")
    for case in cases if isinstance(cases, list) else []:
        if isinstance(case, dict) and case.get("rule.kind") not in (None, *kinds):
            kinds.append(case["rule.kind"])
    return kinds


def resolve(table, file, swept_rule_kinds=None):
    """Validate a protocol table (model file already merged) into a :class:`Protocol`.

    In a protocol that sweeps ``rule.kind``, ``[rule]`` may hold the parameters of any swept rule;
    each variant keeps the ones its rule takes.
    """
    for key in table:
        if key not in TOP_KEYS:
            raise SpecError(key, f"unknown key; valid keys: {', '.join(TOP_KEYS)}")
    name = table.get("name", Path(file).stem)
    seed = table.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError("seed", "must be an integer >= 0", seed)
    if not isinstance(name, str) or not name:
        raise SpecError("name", "must be a non-empty string", name)
    if "/" in name or "\\" in name or name in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise SpecError("name", "must be a plain folder name (it names results/<name>/): no '/', no '..', no control "
                        "characters", name)
    sweep = _check_sweep(table.get("sweep"))
    model_section, task_section, rule_section = (_section(table, s) for s in ("model", "task", "rule"))
    model_kind = _kind(model_section, "model", MODEL_KINDS, default="rate")
    model = from_table(model_spec_class(model_kind, model_section), model_section, "model")
    task_kind = _kind(task_section, "task", TASKS, default="teacher_regression")
    task = from_table(TASKS[task_kind].spec_class, task_section, "task")
    swept_kinds = _grid_rule_kinds(table) if swept_rule_kinds is None else swept_rule_kinds
    swept_kinds = [k for k in swept_kinds if isinstance(k, str)]
    rule_kind = _kind(rule_section, "rule", RULES, default=swept_kinds[0] if swept_kinds else None)
    rule_class = RULES[rule_kind]
    own = {f.name for f in params(rule_class.spec_class)}
    swept = {f.name for kind in swept_kinds if kind in RULES for f in params(RULES[kind].spec_class)}
    rule_section = {k: v for k, v in rule_section.items() if k in own or k == "kind" or k not in swept}
    rule = from_table(rule_class.spec_class, rule_section, "rule")
    training = from_table(TrainingSpec, _section(table, "training"), "training", ignore=())
    analysis_section = _section(table, "analysis")
    if "reference" in analysis_section:  # removed: it could only name the family's own reference
        raise SpecError("analysis.reference", "was removed: the reference gradient is always the model family's own "
                        "(bptt for rate networks, surrogate for LIF/ALIF, finite_difference for other spiking "
                        "networks); delete the key", analysis_section["reference"])
    analysis = from_table(AnalysisSpec, analysis_section, "analysis", ignore=())
    _check_combination(model, model_kind, task, task_kind, rule, rule_kind, seed, training, analysis)
    protocol = Protocol(file=file, name=name, seed=seed, description=str(table.get("description", "")),
                        model_kind=model_kind, model=model, task_kind=task_kind, task=task,
                        rule_kind=rule_kind, rule=rule, training=training, analysis=analysis, sweep=sweep,
                        plugins=tuple(table.get("plugins", ())), source=copy.deepcopy(table))
    if sweep:
        protocol.variants()  # every variant must validate too
    return protocol


def _check_combination(model, model_kind, task, task_kind, rule, rule_kind, seed, training, analysis):
    """Checks across sections: the model family the task and rule work on, steps, the loop."""
    family = model.family
    if family not in FAMILIES:  # a plugin's model kind whose family nobody registered an adapter for
        raise SpecError("model.kind", f"{model_kind!r} is a model of the family {family!r}, which has no adapter "
                        f"(registered: {', '.join(FAMILIES)}; see bioplastic.engine.families.register_family)",
                        model_kind)
    task_class, rule_class = TASKS[task_kind], RULES[rule_kind]
    if family not in task_class.families:
        raise SpecError("task.kind", f"{task_kind!r} works on {' or '.join(task_class.families)} models, not on "
                        f"{_model_words(family, model_kind)}", task_kind)
    if family not in rule_class.model_families:
        raise SpecError("rule.kind", f"{rule_kind!r} trains {' or '.join(rule_class.model_families)} models, not "
                        f"{_model_words(family, model_kind)}", rule_kind)
    if task_class.mode == "continuous" and rule_class.realisation != "in_network":
        raise SpecError("rule.kind", f"the task {task_kind!r} is one continuous run; it needs a rule that learns inside "
                        f"the network ({', '.join(k for k, r in RULES.items() if r.realisation == 'in_network')})",
                        rule_kind)
    declared = rule_class(rule)
    if rule_class.realisation == "in_network" and find_builder(declared, model) is None:
        raise SpecError("rule.kind", f"{rule_kind!r} has no builder for model.kind = {model_kind!r} (it has: "
                        f"{', '.join(builder_models(rule_class)) or 'none'})", rule_kind)
    steps = float(task.duration / model.dt)
    if abs(steps - round(steps)) > 1e-9:
        raise SpecError("task.duration", f"must be a whole number of model.dt steps (dt = {model.dt})",
                        str(task.duration))
    least, why = FAMILIES[family].min_steps(model)
    if round(steps) < least:
        raise SpecError("task.duration", f"must be at least {least} steps of model.dt = {model.dt} ({why})",
                        str(task.duration))
    declared.check(model, task_class)
    if training.loop == "block":
        reason = FAMILIES[family].block_refusal(model) or block_unsupported(rule_class, model, task_class, rule, task)
        if reason:
            raise SpecError("training.loop", f"\"block\" is not available here: {reason}; use \"trial\" (or \"auto\")",
                            "block")
    resources.check(model, task_class, task, declared, analysis, training.backend)  # before anything big is made
    task_class(task, model, seed)  # the task's own checks against the model (e.g. a recurrent network)


def _model_words(family, kind):
    """How an error names the protocol's model: its family and the keys that chose it."""
    return FAMILIES[family].words(kind)


def _grid_value(value):
    """What makes two grid values the same run: a number's value (1 and 1.0), else the value as written."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


def _check_sweep(sweep):
    if sweep is None:
        return None
    if not isinstance(sweep, dict):
        raise SpecError("sweep", "must be a table with grid and seeds", sweep)
    for key in sweep:
        if key not in ("grid", "seeds", "cases"):
            raise SpecError(f"sweep.{key}", "unknown key; valid keys: cases, grid, seeds")
    if "grid" not in sweep and "cases" not in sweep:
        raise SpecError("sweep", "needs a grid, cases, or both")
    cases = _check_cases(sweep.get("cases"))
    grid = sweep.get("grid", {})
    if not isinstance(grid, dict) or ("grid" in sweep and not grid):
        raise SpecError("sweep.grid", 'must be a non-empty table like { "rule.kind" = ["backprop"] }', grid)
    for key, values in grid.items():
        if key.split(".")[0] not in SECTIONS[:-1] or "." not in key:
            raise SpecError(f"sweep.grid.{key}", f"must be a dotted key into {', '.join(SECTIONS[:-1])}")
        if not isinstance(values, list) or not values:
            raise SpecError(f"sweep.grid.{key}", "must be a non-empty list of values", values)
        if len({_grid_value(v) for v in values}) < len(values):  # 1 and 1.0 too: two variants of one run
            raise SpecError(f"sweep.grid.{key}", "lists a value twice", values)
    seeds = sweep.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise SpecError("sweep.seeds", "must be an integer >= 1", seeds)
    return {"grid": grid, "seeds": seeds, "cases": cases}


def _check_cases(cases):
    """``cases``: named variants, each a table of a ``label`` and dotted keys to set."""
    if cases is None:
        return []
    if not isinstance(cases, list) or not cases or not all(isinstance(c, dict) for c in cases):
        raise SpecError("sweep.cases", 'must be a list of tables like { label = "MSTDP", "rule.tau_e" = "0 ms" }',
                        cases)
    labels = []
    for n, case in enumerate(cases):
        label = case.get("label")
        if not isinstance(label, str) or not label.strip():
            raise SpecError(f"sweep.cases[{n}].label", "must name the case (a non-empty string)", label)
        for key in case:
            if key != "label" and (key.split(".")[0] not in SECTIONS[:-1] or "." not in key):
                raise SpecError(f"sweep.cases[{n}].{key}", f"must be a dotted key into {', '.join(SECTIONS[:-1])}")
        labels.append(label)
    if len(set(labels)) < len(labels):
        raise SpecError("sweep.cases", "two cases share a label", labels)
    return cases


def _variants(table, file):
    """Every case of the sweep combined with every point of its grid. A swept ``rule.*`` key that
    a variant's rule does not take (``rule.sigma`` for backprop) neither names the variant nor
    multiplies it: the variants it would tell apart are one."""
    grid = table["sweep"].get("grid", {})
    cases = table["sweep"].get("cases") or [{}]
    base = {k: v for k, v in table.items() if k != "sweep"}
    out = []
    for case, combo in itertools.product(cases, itertools.product(*grid.values())):
        point = dict(zip(grid, combo))
        values = {**{k: v for k, v in case.items() if k != "label"}, **point}
        variant = copy.deepcopy(base)
        if "model.file" in values:  # a swept model file replaces the model; swept model keys apply on top
            variant["model"] = {"file": values["model.file"]}
        for key, value in values.items():
            if key != "model.file":
                apply_override(variant, f"{key}={toml_literal(value)}")
        label = _variant_label(case, point, len(grid))
        try:
            variant = resolve_model_file(variant, Path(file).parent)
            protocol = resolve(variant, file, swept_rule_kinds=_grid_rule_kinds(table))
        except SpecError as exc:
            raise SpecError(exc.key, f"{exc.message} (in the sweep variant {label})", exc.got) from None
        taken = {f"rule.{f.name}" for f in params(RULES[protocol.rule_kind].spec_class)} | {"rule.kind"}
        ignored = {k for k in point if k.startswith("rule.") and k not in taken}
        if ignored:
            point = {k: v for k, v in point.items() if k not in ignored}
            values = {k: v for k, v in values.items() if k not in ignored}
            label = _variant_label(case, point, len(grid))
        if any(label == other and values == their for other, their, _ in out):
            continue  # the same run as one listed already, but for keys its rule ignores
        if any(label == other for other, _, _ in out):
            raise SpecError("sweep", f"two variants share the folder name {label!r}; use distinct values and labels")
        out.append((label, values, protocol))
    return out


def _variant_label(case, point, grid_size):
    """A variant's folder name: its case's label and its grid values."""
    parts = [case["label"]] if case else []
    parts += [str(v) if grid_size == 1 and not case else f"{k.split('.')[-1]}-{v}" for k, v in point.items()]
    label = re.sub(r"[^\w.=+-]+", "_", "__".join(parts)).strip("_")
    if not label or label.startswith("."):  # "..": outside the sweep's folder; ".x": hidden, or temporary
        raise SpecError("sweep.cases", f"the variant's folder name {label!r} would leave or hide in the sweep's "
                        "folder; give the case a label that starts with a letter or digit", label)
    return label
