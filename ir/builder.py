"""Builder: the one way to create Values and Traces.

`b.emit(op, *args, **params)` checks the op and its params, computes shape and dtype with the SHAPE
table, appends the node and returns it.  `b.<op>(...)` is shorthand for `b.emit('<op>', ...)`, which
keeps derivative rules readable: `b.multiply(g, b.cos(x))`.
"""
import numpy as np

from .errors import IRError
from .ops import DEFAULT_PARAMS, PARAMS
from .shapes import SHAPE
from .value import Trace, Value

_PARAM_NAMES = {op: frozenset(names) for op, names in PARAMS.items()}   # built once, not per emit


class Builder:
    """Accumulates inputs and nodes in program order, then `build(outputs)` makes a Trace."""

    def __init__(self):
        self.inputs = []
        self.nodes = []
        self.pending = {}          # id -> Value made by `rows`, recorded when first used

    def rows(self, stacked, count):
        """Values for rows 0..count-1 of `stacked` (`index(stacked, int t)`), each appended to the nodes
        only when first used as an operand or output: rows nothing reads (a list a rolled loop appended
        to, then stacked whole by slicing `stacked`) cost no node."""
        shape, dtype = stacked.shape[1:], stacked.dtype
        made = [Value("index", (stacked,), {"spec": (("int", t),)}, shape, dtype) for t in range(count)]
        self.pending.update((id(v), v) for v in made)
        return made

    def _record_pending(self, values):
        for a in values:
            v = self.pending.pop(id(a), None)
            if v is a:
                self.nodes.append(v)

    def input(self, shape, dtype):
        v = Value("input", (), {"index": len(self.inputs)}, tuple(shape), np.dtype(dtype))
        self.inputs.append(v)
        return v

    def const(self, value):
        """A constant; the array is copied and made read-only so later mutation cannot leak in."""
        arr = np.array(value, copy=True)
        arr.flags.writeable = False
        return self.emit("const", value=arr)

    def fill(self, shape, dtype, value):
        return self.emit("fill", shape=tuple(shape), dtype=np.dtype(dtype), value=value)

    def guard(self, pred, expected, loc=None, why=""):
        return self.emit("guard", pred, expected=expected, loc=loc, why=why)

    def emit(self, op, *args, **params):
        names = _PARAM_NAMES.get(op)
        if names is None:
            raise IRError(f"unknown op {op!r}")
        if params.keys() != names:
            params = {**DEFAULT_PARAMS.get(op, {}), **params}
        if params.keys() != names:
            raise IRError(f"op {op!r} takes params {PARAMS[op]}, got {tuple(params)}")
        for a in args:
            if not isinstance(a, Value):
                raise IRError(f"op {op!r}: operand {a!r} is not a Value")
        if self.pending:
            self._record_pending(args)
        shape, dtype = SHAPE[op](args, params)
        v = Value(op, tuple(args), params, tuple(shape), np.dtype(dtype))
        self.nodes.append(v)
        return v

    def build(self, outputs):
        if self.pending:
            self._record_pending(outputs)
        return Trace(self.inputs, self.nodes, outputs)


def _shorthand(op):
    """The method `b.<op>(*args, **params)` = `b.emit(op, *args, **params)`."""
    def emit_op(self, *args, **params):
        return self.emit(op, *args, **params)
    emit_op.__name__ = emit_op.__qualname__ = op
    return emit_op


# One method per op, made once (a __getattr__ would build a function on every call: +60% per emit).
for _op in PARAMS:
    if not hasattr(Builder, _op):          # input, const, fill and guard have their own methods
        setattr(Builder, _op, _shorthand(_op))
