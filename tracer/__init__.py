"""jitgrad.tracer: the CPython bytecode interpreter that records traces.

Layers, bottom up, each importing only those below it (tests/test_import_layers.py enforces it):
`recording` (the trace context, environment reads, registry, audit) -> `arrays` (the traced value type,
aliasing, indexing, in-place writes, the array API) -> `interpretation` (the interpreter and loop
rolling) -> `rules` (how C-level callables are traced).  This package sits on top: it loads the rules
into the registry when it is first consulted, and its names below are the tracer's one public entry:
`jitgrad/` imports nothing else of the tracer.
"""
import dataclasses

import numpy as np

from .arrays.escape import settle
from .arrays.values import TracedArray, contains_traced, lift, make
from .interpretation import interpreter, rolling, sideeffects, whileloops
from .interpretation.rolling import LoopIndex
from .interpretation.sizedloops import finish_sizes, runtime_trace
from .arrays.sizeint import SizeArg, SizeInt, plain as plain_size
from .recording import audit, errormode, hooks
from .recording.context import (
    AttrGetter, CellGetter, EnvEntry, GlobalGetter, HasAttrGetter, ItemGetter, MethodGetter, TraceContext, current)
from .recording.errormode import current_mode as current_error_mode, quiet_mode as quiet_error_mode
from .recording.errormode import mode_reader as error_mode_reader
from .recording.errormode import raising as error_mode_raises
from .recording.namespaces import MISSING, CodeGetter, NamespaceGetter
from .recording.registry import register, registered as registered_rules
from .recording.snapshots import _snapshot as snapshot, _snapshot_structure as snapshot_structure

__all__ = ["trace", "TraceContext", "TracedArray", "LoopIndex", "MISSING", "contains_traced", "current",
           "current_error_mode", "error_mode_raises", "error_mode_reader", "lift", "make", "quiet_error_mode",
           "register", "registered_rules", "size_positions", "plain_size", "primal",
           # the environment's getters and snapshots, which the persistent cache stores and re-validates
           "AttrGetter", "CellGetter", "CodeGetter", "EnvEntry", "GlobalGetter", "HasAttrGetter", "ItemGetter",
           "MethodGetter", "NamespaceGetter", "snapshot", "snapshot_structure"]


def trace(fn, leaves, inputs, rebuild, *, loop_runner=None, check=None, replay=False, sizes=(), bounded=False):
    """Record one call of `fn` on the argument leaves `leaves`: those at the positions of `inputs` (an
    ordered {position: array whose shape and dtype the trace input takes}) are traced, the others
    plain; `rebuild(leaves)` gives the call's `(args, kwargs)`.  Rolled loops are fast-forwarded by
    `loop_runner` when given (jitgrad/backend.py); `check(recording)`, when given, runs once the
    recording is finished, before the audit of its values.  With `replay` (the caller replays side
    effects on cached calls), an outermost recording notes them (interpretation/sideeffects.py); one
nested in such a recording warns about them.  With `bounded`, `while` loops keep a capacity (the trace's
tapes cross from one kernel to another: jitgrad.vjp; interpretation/whileloops.py).

    Returns (recording, result): the TraceContext holding the recorded IR, guards and environment
    reads, and what `fn` returned (TracedArrays where it depends on traced inputs).
    """
    ctx = TraceContext()
    outer = current()
    if outer is None:   # a call from outside any trace: the cache key and the fast path check fn's code
        ctx.code_checked.add(id(getattr(fn, "__func__", fn)))
        if replay:
            ctx.replay = sideeffects.Recorder(ctx)
    elif outer.replay is not None:   # nested in a call that replays: effects warn (and guard nothing written)
        ctx.replay = sideeffects.Recorder(ctx, nested=True)
    if errormode.raising():   # np.seterr(...) or np.errstate(...) of the caller
        ctx.uncacheable = f"NumPy's error mode {np.geterr()} raises, which compiled code does not"
    if rolling.enabled() and ctx.uncacheable is None:   # (fast-forwarding raises no floating-point errors)
        ctx.loops = whileloops.Rolling(ctx, loop_runner, bounded)
    traced = list(leaves)
    with ctx.active():
        for pos, arr in inputs.items():
            leaf = leaves[pos]
            concrete = leaf.copy() if isinstance(leaf, np.ndarray) else leaf
            traced[pos] = TracedArray(ctx.builder.input(arr.shape, arr.dtype), concrete)
            ctx.add_argument(traced[pos])
        if ctx.loops is not None and outer is None:   # int arguments that may be trip counts
            for pos in sizes:
                ctx.loops.sizes.append(SizeArg(pos, leaves[pos]))
                traced[pos] = SizeInt(ctx.loops.sizes[-1])
        args, kwargs = rebuild(traced)
        _mark_local(ctx, (args, kwargs))
        result = None
        try:
            result = interpreter.call(fn, args, kwargs)
        finally:
            settle(ctx, result)
    ctx.finish()
    if ctx.loops is not None and ctx.loops.sizes:
        finish_sizes(ctx.loops)
        ctx.loops.n_leaf_inputs = len(inputs)
    if check is not None:
        check(ctx)
    audit.check(ctx)
    return ctx, result


def size_positions(ctx):
    """The leaf positions of the int arguments used only as the bounds of loops over ranges rolled to
    their end (tracer/arrays/sizeint.py): `primal(ctx, outputs, runtime=True)` answers any value of them."""
    sizes = ctx.loops.sizes if ctx.loops is not None else ()
    return tuple(a.position for a in sizes if a.swaps and a.static is None)


def primal(ctx, outputs, runtime=False):
    """The recorded trace with these outputs; with `runtime`, in the form whose loop ops bounded by the
    arguments of `size_positions(ctx)` read their trip counts at run time, from 0-d intp inputs after
    the traced leaves (sizedloops.runtime_trace)."""
    if not runtime:
        return ctx.builder.build(outputs)
    args = [a for a in ctx.loops.sizes if a.swaps and a.static is None]
    return runtime_trace(ctx.builder, ctx.loops.n_leaf_inputs, args, outputs)


def _mark_local(ctx, tree):
    """Containers rebuilt from the arguments are new objects: reading them is not an environment read."""
    if isinstance(tree, (list, tuple, dict)) or dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        ctx.mark_local(tree)
        children = tree.values() if isinstance(tree, dict) else (
            tree if isinstance(tree, (list, tuple)) else [getattr(tree, f.name) for f in dataclasses.fields(tree)])
        for child in children:
            _mark_local(ctx, child)


def _load_rules():
    """Import the built-in rules (registering them) and return the loader of the library ones."""
    from . import rules
    return rules.load_library_rules


hooks.load_rules = _load_rules
