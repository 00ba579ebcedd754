"""The builder registry: how a rule declaration becomes Brian2 code, per model kind.

A builder is a function ``builder(rule, recipe, layout)`` that adds the rule's equations to a
network :class:`~bioplastic.networks.recipe.Recipe` before it is built. Builders are registered
per rule class and model kind (``"lif"``, ``"izhikevich"``, ``"rate"``) or model family
(``"spiking"``, ``"feedforward_rate"``), and looked up along the rule's class hierarchy, first by kind, then by
family (as Nengo's ``Builder.register``). So a subclass of a rule inherits its builder, and a
plugin can give an existing rule a builder for a new model kind, without editing the engine.
"""

BUILDERS = {}


def register_builder(rule_class, model, *, override=False):
    """Decorator: ``builder(rule, recipe, layout)`` realises ``rule_class`` on ``model`` networks.

    ``model`` is a model kind or family. Registering a pair that exists already is refused
    unless ``override=True``.
    """
    def register(builder):
        key = (rule_class, model)
        if key in BUILDERS and BUILDERS[key] is not builder and not override:
            raise ValueError(f"register_builder: {rule_class.__name__} on {model!r} models has a builder already "
                             f"({BUILDERS[key].__module__}.{BUILDERS[key].__name__}); pass override=True to replace it")
        BUILDERS[key] = builder
        return builder

    return register


def find_builder(rule, model_spec):
    """The builder for ``rule`` on ``model_spec``'s networks, or None when there is none."""
    for cls in type(rule).__mro__:
        for model in (model_spec.kind, model_spec.family):
            if (cls, model) in BUILDERS:
                return BUILDERS[(cls, model)]
    return None


def contributor(rule, model_spec):
    """The rule's builder bound to the rule: a contributor ``f(recipe, layout)`` for a blueprint."""
    builder = find_builder(rule, model_spec)
    if builder is None:
        raise ValueError(f"{type(rule).__name__}: no builder for model kind {model_spec.kind!r}")
    return lambda recipe, layout: builder(rule, recipe, layout)


def builder_models(rule_class):
    """The model kinds and families that ``rule_class`` (or a parent) has builders for."""
    return sorted({model for cls in rule_class.__mro__ for (owner, model) in BUILDERS if owner is cls})


# -- block forms: a rule's update at the trial boundary, in generated code ----------------------
BLOCK_BUILDERS = {}
# What a block form computes in the network in the rule's place: a subclass that overrides any of
# these does not inherit the form (its blocks would not be its trials).
MIRRORED = ("update", "perturb", "constrain", "observe")


class BlockBuilder:
    """A rule's block form on one model family: ``build(rule, recipe, layout)`` adds the rule's
    update at every trial boundary to the family's block network (a recipe of ``layout.trials``
    trials in one run, see the family adapter's ``block_blueprint``); ``values(rule, layout, noise)``
    gives a block's run values from the trials' perturbations (``noise``: per layer, the draws of
    every trial); ``finish(rule, state)`` takes back what the block kept in the network
    (``recipe.block_state``: ``{(owner, variable): values}``), e.g. a critic's baselines.
    ``supports_task(task_class)`` says whether the block network scores the task (None: every
    task); ``requires(rule_spec, model, task_class, task_spec)`` gives the reason the form cannot run a
    protocol (completing "its block form ...", e.g. "needs task.batch = 1") or None."""

    def __init__(self, build, values, supports_task=None, task_requirement="", finish=None, requires=None,
                 mirrors=()):
        self.build, self.values, self.finish, self.requires = build, values, finish, requires
        self.supports_task, self.task_requirement = supports_task, task_requirement
        self.mirrors = MIRRORED + tuple(mirrors)

    def contributor(self, rule):
        """The block form bound to ``rule``: a contributor ``f(recipe, layout)``."""
        return lambda recipe, layout: self.build(rule, recipe, layout)

    def unsupported_task(self, task_class):
        if self.supports_task is None or self.supports_task(task_class):
            return None
        return f"the task {task_class.kind!r} is not one its block form scores ({self.task_requirement})"


def register_block_builder(rule_class, family, *, values, supports_task=None, task_requirement="", finish=None,
                           requires=None, mirrors=(), override=False):
    """Decorator: ``build(rule, recipe, layout)`` is ``rule_class``'s block form on ``family``
    networks, ``values(rule, layout, noise)`` its run values, ``finish`` and ``requires`` as in
    :class:`BlockBuilder`. A subclass inherits it as long as it keeps the methods the block form
    computes in the network (:data:`MIRRORED`, and the rule's own ``mirrors``); one that overrides
    any needs a block form of its own. Registering a pair that exists already is refused unless
    ``override=True``."""
    def register(build):
        key = (rule_class, family)
        if key in BLOCK_BUILDERS and BLOCK_BUILDERS[key].build is not build and not override:
            raise ValueError(f"register_block_builder: {rule_class.__name__} on {family!r} models has a block form "
                             f"already; pass override=True to replace it")
        BLOCK_BUILDERS[key] = BlockBuilder(build, values, supports_task, task_requirement, finish, requires, mirrors)
        return build

    return register


def find_block_builder(rule, family):
    """The :class:`BlockBuilder` of ``rule`` on ``family`` networks, or None. Found along the class
    hierarchy, but only for a class whose mirrored methods the rule still uses."""
    return None if _overridden(rule, family) else _inherited(rule, family)[1]


def _inherited(rule, family):
    """``(class, BlockBuilder)`` of the nearest class of ``rule`` with a block form on ``family``."""
    rule_class = rule if isinstance(rule, type) else type(rule)
    for cls in rule_class.__mro__:
        if (cls, family) in BLOCK_BUILDERS:
            return cls, BLOCK_BUILDERS[(cls, family)]
    return None, None


def _overridden(rule, family):
    """The mirrored methods that ``rule`` overrides of the block form it would inherit on ``family``."""
    rule_class = rule if isinstance(rule, type) else type(rule)
    cls, builder = _inherited(rule_class, family)
    if builder is None:
        return []
    return [name for name in builder.mirrors if getattr(rule_class, name) is not getattr(cls, name)]


def one_example_per_trial(task_spec):
    """A block form's reason (completing "its block form ...") where ``task_spec`` runs several
    examples per trial and the form cannot sum their changes across copies in the network, or None."""
    if task_spec is not None and getattr(task_spec, "batch", 1) != 1:
        return "trains one example per trial (task.batch = 1): it sums no changes across examples yet"
    return None


def block_unsupported(rule, model, task_class, rule_spec=None, task_spec=None):
    """Why ``rule`` cannot train ``model`` on ``task_class`` in blocks (a sentence), or None if it
    can; with the rule's and the task's specs, the block form's own requirements are asked too."""
    rule_class = rule if isinstance(rule, type) else type(rule)
    builder = find_block_builder(rule_class, model.family)
    if builder is None:
        families = block_families(rule_class)
        if rule_class.needs_gradient:
            has = "it applies the reference gradient, computed in NumPy after every trial"
        elif families:
            has = f"it has one on {', '.join(families)} models"
        else:
            has = "none is registered for it; the trial loop runs it"
        overridden = _overridden(rule_class, model.family)
        if overridden:
            parent = _inherited(rule_class, model.family)[0]
            has = (f"it overrides {', '.join(overridden)} of {parent.kind!r}, whose block form computes them in the "
                   "network; it needs a block form of its own")
        return f"{rule_class.kind!r} has no block form on {model.family.replace('_', ' ')} models ({has})"
    reason = builder.unsupported_task(task_class)
    if reason is None and builder.requires is not None and rule_spec is not None:
        reason = builder.requires(rule_spec, model, task_class, task_spec)
        reason = reason and f"the block form of {rule_class.kind!r} {reason}"
    return reason


def block_families(rule_class):
    """The model families ``rule_class`` has a block form on."""
    return sorted({family for cls in rule_class.__mro__ for (owner, family) in BLOCK_BUILDERS
                   if owner is cls and find_block_builder(rule_class, family) is not None})
