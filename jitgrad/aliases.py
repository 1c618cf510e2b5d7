"""Arguments written in place that share memory with other inputs: refused.

A trace writes into copies of its arguments (arguments are never modified), so when an argument written
in place shares memory with another argument or with an array the function reads from its environment,
the trace would not see the write through the other name as NumPy does.  The tracer notes which inputs
a trace writes into (`TraceContext.written_inputs`); such a trace is refused when traced on aliased
arrays (`check_traced_call`), and a cached one declines calls whose arrays alias (`aliased_write`).
"""
import numpy as np

from .ir.errors import UnsupportedError
from .signature import as_input_array


def aliased_write(arrays, written):
    """(w, j) for the first input `w` in `written` whose array shares memory with another of the
    ndarrays `arrays` (the trace's inputs, environment arrays last), else None.  Exactly: interleaved
    views such as x[::2] and x[1::2] share none.  (This runs on cached calls of such traces.)"""
    for w in written:
        a = arrays[w]
        for j, b in enumerate(arrays):
            if j != w and np.may_share_memory(a, b) and np.shares_memory(a, b):
                return w, j
    return None


def check_traced_call(ctx, fn, leaves, treedef, dynamic):
    """Refuse (UnsupportedError at the write) a trace recorded in `ctx` that wrote into an argument
    sharing memory with another argument or an environment array it read."""
    if not ctx.written_inputs:
        return
    env = ctx.env_arrays()
    arrays = [as_input_array(leaves[pos]) for pos in dynamic] + [value for _, value in env]
    found = aliased_write(arrays, ctx.written_inputs)
    if found is None:
        return
    names = _leaf_names(fn, treedef)
    w, j = found
    written = names[dynamic[w]]
    other = f"arguments {written} and {names[dynamic[j]]}" if j < len(dynamic) else \
        f"argument {written} and {env[j - len(dynamic)][0].getter.describe()}"
    raise UnsupportedError(f"{other} share memory and {written} is written in place, which jitgrad does not "
                           "trace (it writes into a copy of the argument): pass copies",
                           loc=ctx.written_inputs[w])


def _leaf_names(fn, treedef):
    """The name of every leaf of the call's argument tree `treedef`: `a`, `xs[1]`, `p.w`, `d['k']`."""
    code = getattr(fn, "__code__", None)
    params = code.co_varnames[:code.co_argcount] if code is not None else ()
    args_def, kwargs_def = treedef[2]
    names = []
    for i, child in enumerate(args_def[2]):
        _paths(child, params[i] if i < len(params) else f"#{i}", names)
    for key, child in zip(kwargs_def[1], kwargs_def[2]):
        _paths(child, key, names)
    return names


def _paths(treedef, prefix, names):
    if treedef is None:
        names.append(prefix)
        return
    kind, aux, children = treedef
    for i, child in enumerate(children):
        if kind is dict:
            _paths(child, f"{prefix}[{aux[i]!r}]", names)
        elif aux is not None:          # a dataclass: fields by name
            _paths(child, f"{prefix}.{aux[i]}", names)
        else:
            _paths(child, f"{prefix}[{i}]", names)
