"""Dense all-to-all projections computed as matrices, once a step, instead of synapse by synapse.

Brian2 computes a summed variable (``I_post = w * r_pre : 1 (summed)``) and a synaptic update
(``e += a_pre * b_post``) synapse by synapse, through index arrays: the compiler cannot
vectorise those loops. For a dense projection between two groups whose synapses are stored
presynaptic-major per copy (synapse ``c*n_pre*n_post + k*n_post + o``, see
:func:`~bioplastic.networks.layout.synapse_order`), both are plain matrix loops. Here they are
Brian2 ``Function`` objects called once a step from a group's ``run_regularly``: in C++ (the
standalone backend) tight loops over the synapses' own arrays, which ``-O3 -ffast-math
-march=native`` vectorises; for the numpy target the same arithmetic in NumPy on the runtime
objects. Each output sums its inputs in presynaptic order, as Brian2's summed variable does.

The synapses stay: they hold the weights and what a rule accumulates, which the engine writes and
reads as before. Only the loops move. Used for the feed-forward rate network's layers, the
recurrent rate network's recurrent current, the Hebbian family's eligibility and e-prop's on LIF
neurons (the last three unless ``Recipe.matrix_code`` is off, as in the benchmarks' naive loops).
"""

from brian2 import Function, second

from .recipe import Regular


def _function(recipe, name, cpp, numpy):
    """A Brian2 Function ``name(t)`` with C++ code ``cpp`` and, for the numpy target, ``numpy(objects)``
    called once the recipe's objects exist (bound when the recipe is built)."""
    bound = {}

    def on_numpy(t):
        numpy(bound["objects"])
        return 0.0

    function = Function(on_numpy, arg_units=[second], return_unit=1, stateless=False)
    function.implementations.add_implementation("cpp", code=cpp, name=name)
    recipe.functions[name] = function
    recipe.bindings.append(lambda objects: bound.update(objects=objects))
    return function


def _array(owner, variable, is_synapses):
    return f"&brian::_dynamic_array_{owner}_{variable}[0]" if is_synapses else f"brian::_array_{owner}_{variable}"


def dense_sum(recipe, synapses, pre_variable, target, *, copies, shape, order):
    """``target`` of the postsynaptic group = Σ_k w[c, k, o] · ``pre_variable``[c, k] of the
    presynaptic group, every step in the ``groups`` slot at ``order`` (replaces the summed variable
    ``{target}_post = w * {pre_variable}_pre``)."""
    syn = recipe.synapses[synapses]
    n_post, n_pre = shape
    name = f"dense_sum_{synapses}"
    cpp = f"""
static double {name}(const double t)
{{
    const double* w = {_array(synapses, "w", True)};
    const double* r = {_array(syn.source, pre_variable, False)};
    double* out = {_array(syn.target, target, False)};
    for (int c = 0; c < {copies}; ++c)
    {{
        double* o_c = out + c * {n_post};
        const double* r_c = r + c * {n_pre};
        for (int o = 0; o < {n_post}; ++o) o_c[o] = 0.0;
        for (int k = 0; k < {n_pre}; ++k)
        {{
            const double rk = r_c[k];
            const double* w_k = w + ((size_t)c * {n_pre} + k) * {n_post};
            for (int o = 0; o < {n_post}; ++o) o_c[o] += w_k[o] * rk;
        }}
    }}
    return 0.0;
}}
"""

    def numpy(objects):
        w = objects[synapses].variables["w"].get_value().reshape(copies, n_pre, n_post)
        r = objects[syn.source].variables[pre_variable].get_value().reshape(copies, n_pre, 1)
        objects[syn.target].variables[target].get_value()[:] = (w * r).sum(axis=1).ravel()

    _function(recipe, name, cpp, numpy)
    recipe.dense.add(synapses)
    group = recipe.group(syn.target)
    group.add(f"{name}_done : 1 (shared)")
    group.regular[name] = Regular([f"{name}_done = {name}(t)"], when="groups", order=order)


def dense_accumulate(recipe, synapses, variable, pre_variable, post_variables, *, copies, shape, order):
    """The synaptic ``variable`` += ``pre_variable``[c, k] · Π ``post_variables``[c, o] (of the pre-
    and postsynaptic groups; one name or several, multiplied left to right), every step in the
    ``groups`` slot at ``order``."""
    syn = recipe.synapses[synapses]
    n_post, n_pre = shape
    post_variables = (post_variables,) if isinstance(post_variables, str) else tuple(post_variables)
    name = f"dense_accumulate_{synapses}_{variable}"
    factors = "\n".join(f"    const double* b{f} = {_array(syn.target, v, False)};" for f, v in enumerate(post_variables))
    product = " * ".join(f"b{f}[c * {n_post} + o]" for f in range(len(post_variables)))
    cpp = f"""
static double {name}(const double t)
{{
    static double b_c[{n_post}];
    double* __restrict e = {_array(synapses, variable, True)};
    const double* __restrict a = {_array(syn.source, pre_variable, False)};
{factors}
    for (int c = 0; c < {copies}; ++c)
    {{
        for (int o = 0; o < {n_post}; ++o) b_c[o] = {product};
        for (int k = 0; k < {n_pre}; ++k)
        {{
            const double ak = a[c * {n_pre} + k];
            double* __restrict e_k = e + ((size_t)c * {n_pre} + k) * {n_post};
            for (int o = 0; o < {n_post}; ++o) e_k[o] += ak * b_c[o];
        }}
    }}
    return 0.0;
}}
"""

    def numpy(objects):
        e = objects[synapses].variables[variable].get_value()
        a = objects[syn.source].variables[pre_variable].get_value().reshape(copies, n_pre, 1)
        b = objects[syn.target].variables[post_variables[0]].get_value()
        for other in post_variables[1:]:
            b = b * objects[syn.target].variables[other].get_value()
        e[:] = e + (a * b.reshape(copies, 1, n_post)).ravel()

    _function(recipe, name, cpp, numpy)
    group = recipe.group(syn.target)
    group.add(f"{name}_done : 1 (shared)")
    group.regular[name] = Regular([f"{name}_done = {name}(t)"], when="groups", order=order)


__all__ = ["dense_sum", "dense_accumulate"]
