"""The builder registry: how a rule declaration becomes Brian2 code, per model kind.

A builder is a function ``builder(rule, recipe, layout)`` that adds the rule's equations to a
network :class:`~bioplastic.networks.recipe.Recipe` before it is built. Builders are registered
per rule class and model kind (``"lif"``, ``"izhikevich"``, ``"rate"``) or model family
(``"spiking"``, ``"rate"``), and looked up along the rule's class hierarchy, first by kind, then by
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
