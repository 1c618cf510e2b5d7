"""Tracing one call: run the user's function under the interpreter with traced leaves, and turn what it
returns (a scalar loss, optionally with aux data) into the outputs of a trace."""
import numpy as np

from . import aliases, tracer
from .ir.errors import TraceError
from .pytree import flatten, unflatten
from .signature import as_input_array
from .tracer import TracedArray


def function_location(fn):
    """`file:line` of `fn`'s definition (of the function a jitgrad transform wraps), or None."""
    while getattr(fn, "__code__", None) is None and getattr(fn, "__wrapped__", None) is not None:
        fn = fn.__wrapped__
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else None


def run_traced(fn, leaves, treedef, dynamic, loop_runner=None, replay=False, sizes=(), bounded=False):
    """Interpret `fn` on the argument tree with the leaves at positions `dynamic` traced; rolled loops
    are fast-forwarded by `loop_runner` when given (backend.loop_runner).  With `replay` (the caller
    replays side effects on cached calls: `effect_outputs`), an outermost trace records them.

    The int leaves at positions `sizes` stand in as SizeInt (a loop's trip count may come from them at
    run time: tracer.size_positions(ctx) says which).  With `bounded`, `while` loops keep a capacity
    (tracer.trace).

    Returns (ctx, result): the TraceContext holding the recorded IR and environment reads, and what fn
    returned (TracedArrays where it depends on traced inputs).
    """
    return tracer.trace(fn, leaves, {pos: as_input_array(leaves[pos]) for pos in dynamic},
                        lambda traced: unflatten(treedef, traced), loop_runner=loop_runner,
                        check=lambda ctx: aliases.check_traced_call(ctx, fn, leaves, treedef, dynamic),
                        replay=replay, sizes=sizes, bounded=bounded)


class OutputLayout:
    """How the trace's outputs map back to what the user gets: the loss's type and the aux tree."""

    def __init__(self, loss_type, aux_treedef, aux_slots):
        self.loss_type = loss_type      # type of the concrete loss (float, np.float64, ndarray ...)
        self.aux_treedef = aux_treedef  # None when there is no aux
        self.aux_slots = aux_slots      # per aux leaf: ('out', k, type) or ('const', value)

    def loss(self, value):
        return _as_kind(self.loss_type, value)

    def aux(self, outputs):
        """The aux tree: traced leaves of their traced kind (a Python bool stays a bool, a NumPy scalar
        a NumPy scalar), constant arrays copied (the caller may modify what it gets)."""
        leaves = [_as_kind(s[2], outputs[s[1]]) if s[0] == "out" else
                  s[1].copy() if type(s[1]) is np.ndarray else s[1] for s in self.aux_slots]
        return unflatten(self.aux_treedef, leaves)


def _as_kind(kind, value):
    """Kernel output `value` as the kind of the traced value it stands for."""
    if type(value) is TracedArray:   # nested use: already of the right kind
        return value
    if kind is np.ndarray:
        return np.asarray(value)
    return kind(value)


def trace_outputs(ctx, result, has_aux, fn):
    """(output Values, OutputLayout) for the traced function's result."""
    loc = function_location(fn)
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TraceError(f"with has_aux=True, {fn.__name__} must return a pair (loss, aux); "
                             f"it returned {type(result).__name__}", loc)
        loss, aux = result
    else:
        loss, aux = result, None
    outputs = [_loss_value(ctx, loss, fn, loc)]
    loss_type = type(loss.value if isinstance(loss, TracedArray) else loss)
    if not has_aux:
        return outputs, OutputLayout(loss_type, None, [])
    aux_outputs, aux_layout = tree_outputs(aux, first=len(outputs))
    return outputs + aux_outputs, OutputLayout(loss_type, aux_layout.aux_treedef, aux_layout.aux_slots)


def tree_outputs(tree, first=0):
    """(output Values, OutputLayout) for a returned pytree whose every leaf is an output (read back with
    `layout.aux(outputs)`): a traced leaf is the trace output `first + k`, any other leaf a constant."""
    leaves, treedef = flatten(tree)
    outputs, slots = [], []
    for leaf in map(tracer.plain_size, leaves):    # (an int argument returned or stored: keyed)
        if isinstance(leaf, TracedArray):
            slots.append(("out", first + len(outputs), type(leaf.value)))
            outputs.append(leaf.ir)
        else:                # a loop counter left by a `break` is the int it stands for (pinned by a guard)
            if type(leaf) is tracer.LoopIndex:
                leaf.watch.pin()
            slots.append(("const", leaf.value if type(leaf) is tracer.LoopIndex else leaf))
    return outputs, OutputLayout(None, treedef, slots)


def effect_outputs(ctx, first):
    """(output Values, replay) for the side effects the trace recorded (tracer/interpretation/sideeffects.py): their
    traced values become the outputs `first`, `first + 1`...; `replay(outputs)` repeats the effects, in
    order, with a cached call's outputs.  ([], None) when there are none."""
    if ctx.replay is None or not ctx.replay.effects:
        return [], None
    outputs, steps = [], []
    for effect in ctx.replay.effects:
        values, layout = tree_outputs(effect.payload, first + len(outputs))
        outputs += values
        steps.append((effect.apply, layout.aux))

    def replay(results):
        for apply, payload in steps:
            apply(payload(results))
    return outputs, replay


def replaying(package, replay):
    """`package` (kernel outputs -> the user's result) that first replays the side effects."""
    def run(outputs):
        replay(outputs)
        return package(outputs)
    run.replays = True      # (jitgrad/persist.py: such traces are not restored in another process)
    return run


def _loss_value(ctx, loss, fn, loc):
    loss = tracer.plain_size(loss)
    if isinstance(loss, TracedArray):
        shape, dtype = loss.ir.shape, loss.ir.dtype
        ir_value = loss.ir
    elif isinstance(loss, (float, int, np.number, np.ndarray)) and not isinstance(loss, bool):
        arr = np.asarray(loss)
        shape, dtype = arr.shape, arr.dtype
        ir_value = None
    else:
        raise TraceError(f"{fn.__name__} must return a scalar float to be differentiated; "
                         f"it returned {type(loss).__name__}", loc)
    if shape != ():
        raise TraceError(f"{fn.__name__} must return a scalar to be differentiated; it returned an array of "
                         f"shape {shape} (reduce it, e.g. with .sum(), or use has_aux for extra outputs)", loc)
    if not np.issubdtype(dtype, np.floating):
        raise TraceError(f"{fn.__name__} must return a float scalar to be differentiated; it returned "
                         f"dtype {dtype}", loc)
    return ir_value if ir_value is not None else ctx.builder.const(np.asarray(loss))
