"""SSA values and traces: the data structures every other part of jitgrad reads and writes.

A `Value` is one SSA value: `op` applied to `args` (other Values) with static `params`.  It records its
`shape` (tuple of ints) and `dtype` (a numpy dtype).  Values are immutable by convention and named only
by the printer.  Sources are `input` (params: index), `const` (params: value, a read-only ndarray) and
`fill` (params: shape, dtype, value).  A `guard` Value asserts `args[0] == params['expected']` at run time.
A `loop` Value is a tuple (dtype ops.TUPLE), read only by its `loop_result` nodes (ir/loops.py); so is a
`cond` Value, read by its `cond_result` nodes (ir/conditional.py).  Both own closed traces (`owned_traces`).

A `Trace` is a linear program: `inputs` (the `input` Values, in order), `nodes` (every other Value, in
program order, guards included) and `outputs` (Values, possibly inputs or repeated).
"""
import numpy as np

from .ops import owned_traces


class Value:
    """One SSA value of a trace."""

    __slots__ = ("op", "args", "params", "shape", "dtype")

    def __init__(self, op, args, params, shape, dtype):
        self.op = op
        self.args = args
        self.params = params
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self):
        return f"<Value {self.op} {self.dtype}{list(self.shape)}>"


class Trace:
    """A linear SSA program: inputs, nodes in program order (guards included), outputs."""

    __slots__ = ("inputs", "nodes", "outputs")

    def __init__(self, inputs, nodes, outputs):
        self.inputs = list(inputs)
        self.nodes = list(nodes)
        self.outputs = list(outputs)

    @property
    def guards(self):
        """The guard nodes, in the order they are checked (their index is what GuardFailed reports):
        program order, descending into the traces a node owns (a loop's body, a cond's branches in
        order) at that node."""
        found = []
        for node in self.nodes:
            if node.op == "guard":
                found.append(node)
            for owned in owned_traces(node):
                found.extend(owned.guards)
        return found

    def __str__(self):
        from .printer import format_trace
        return format_trace(self)

    def __repr__(self):
        return f"<Trace {len(self.inputs)} inputs, {len(self.nodes)} nodes, {len(self.outputs)} outputs>"


def as_dtype(dtype):
    """Normalise anything numpy accepts as a dtype to a numpy dtype object."""
    return np.dtype(dtype)
