"""jit_grad inside a traced function: the inner function's value-and-gradient trace is spliced into
the outer trace, so gradients compose (grad of grad, gradients inside loss functions).

The inner function is traced on the concrete values of the outer traced arguments and differentiated
as usual; its joint trace is then replayed into the outer builder with its inputs bound to the outer
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
from .tracer import context
from .tracer.traced import TracedArray
from .tracer.values import lift, make


def call_in_trace(grad_fn, args, kwargs):
    """What `grad_fn(*args, **kwargs)` returns, as traced values of the active (outer) trace."""
    from .api import Signature
    leaves, treedef = flatten((args, kwargs))
    concrete = [leaf.value if type(leaf) is TracedArray else leaf for leaf in leaves]
    keys = tuple(leaf_key(c) for c in concrete)
    sig = Signature(grad_fn.fn, concrete, keys, treedef, grad_fn.argnums)
    return splice(grad_fn, sig, leaves, concrete, grad_fn.differentiate(sig, concrete, treedef))


def reads_enclosing_trace(ctx):
    """Whether the trace recorded in TraceContext `ctx` read a value of an enclosing trace from its
    environment (then it must be spliced into that trace, see `splice`)."""
    return any(e.outer is not None for e in ctx.env if e.kind == "array")


def splice(grad_fn, sig, leaves, concrete, differentiated):
    """Replay the joint trace of `grad_fn.differentiate(sig, concrete, ...)` (the tuple `differentiated`)
    into the active trace, its inputs bound to `leaves` (traced or not) and to the environment arrays
    the inner trace read; return what grad_fn returns, as traced values."""
    inner, joint, layout, n_primal = differentiated
    outer = context.current()
    env_arrays = [e for e in inner.env if e.kind == "array"]
    bound = {id(v): lift(leaves[pos]) for v, pos in zip(joint.inputs, sig.dynamic)}
    for v, e in zip(joint.inputs[len(sig.dynamic):], env_arrays):
        bound[id(v)] = outer.adopt_env_array(e)
    outer.env.extend(e for e in inner.env if e.kind != "array")
    replay(outer.builder, joint.nodes, bound)

    values = run_trace(joint, [as_input_array(concrete[i]) for i in sig.dynamic]
                       + [as_input_array(e.getter.get() if e.outer is None else e.outer.value)
                          for e in env_arrays])
    kinds = [layout.loss_type] + [np.ndarray] * (n_primal - 1) + [
        type(t) for _, templates in sig.grad_trees for t in templates]
    traced = [make(bound[id(o)], _of_kind(kind, v)) for o, kind, v in zip(joint.outputs, kinds, values)]
    return grad_fn._package(sig, layout, n_primal, traced)


def _of_kind(kind, value):
    if kind is float:
        return float(value)
    if issubclass(kind, np.generic):
        return kind(value)
    return np.asarray(value)
