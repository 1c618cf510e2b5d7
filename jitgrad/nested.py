"""Transforms inside a traced function: the inner function's transformed trace (jit_grad's value and
gradient, a jvp, a Jacobian...) is spliced into the outer trace, so transforms compose (grad of grad,
Hessians as Jacobians of gradients, gradients inside loss functions).

The inner function is traced on the concrete values of the outer traced arguments and transformed as
usual; its trace is then replayed into the outer builder with its inputs bound to the outer
Values.  Its guards and environment assumptions become the outer trace's, so they are checked whenever
the outer kernel runs.  Values of the outer trace that the inner function reads from its closure (or a
global, an attribute) are inputs of the inner trace whose environment entry keeps the outer value
(`EnvEntry.outer`): the splice binds them to it, so derivatives flow through the closure too.  Such a
trace is only ever spliced, never compiled or cached on its own.
"""
import numpy as np

from .ir import run_trace
from .ir.passes import replay
from .pytree import flatten
from .signature import as_input_array, leaf_key
from .tracer import TracedArray, current, lift, make


def call_in_trace(transformed, args, kwargs):
    """What `transformed(*args, **kwargs)` (an api.Transformed) returns, as traced values of the active
    (outer) trace."""
    leaves, treedef = flatten((args, kwargs))
    concrete = [leaf.value if type(leaf) is TracedArray else leaf for leaf in leaves]
    keys = tuple(leaf_key(c) for c in concrete)
    sig = transformed.signature(concrete, keys, treedef)
    return splice(sig, leaves, concrete, transformed.stage(sig, concrete, treedef))


def reads_enclosing_trace(ctx):
    """Whether the trace recorded in TraceContext `ctx` read a value of an enclosing trace from its
    environment (then it must be spliced into that trace, see `splice`)."""
    return any(e.outer is not None for e in ctx.env if e.kind == "array")


def splice(sig, leaves, concrete, staged):
    """Replay the trace of `staged` (an api.Staged of a call with argument leaves `concrete`) into the
    active trace, its inputs bound to `leaves` (traced or not) and to the environment arrays the inner
    trace read; return what the transform returns, as traced values."""
    inner = staged.ctx
    trace, kinds, package = staged.splice_form()
    outer = current()
    env_arrays = [e for e in inner.env if e.kind == "array"]
    bound = [lift(leaves[pos]) for pos in sig.dynamic] + [outer.adopt_env_array(e) for e in env_arrays]
    outer.env.extend(e for e in inner.env if e.kind != "array")
    values = [as_input_array(concrete[i]) for i in sig.dynamic] + [
        as_input_array(e.getter.get() if e.outer is None else e.outer.value) for e in env_arrays]
    return package(replay_traced(trace, bound, values, kinds))


def replay_traced(trace, bound, values, kinds):
    """Replay `trace` into the active trace with its inputs bound to the Values `bound` (whose concrete
    values are `values`); its outputs as traced values of the types `kinds`."""
    env = {id(v): b for v, b in zip(trace.inputs, bound)}
    replay(current().builder, trace.nodes, env)
    results = run_trace(trace, values)
    return [make(env[id(o)], _of_kind(kind, v)) for o, kind, v in zip(trace.outputs, kinds, results)]


def _of_kind(kind, value):
    if kind is float:
        return float(value)
    if issubclass(kind, np.generic):
        return kind(value)
    return np.asarray(value)
