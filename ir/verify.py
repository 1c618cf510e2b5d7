"""The verifier: `verify(trace)` checks a trace's structural invariants and raises IRError naming the
first broken one (values are named as the printer names them: inputs, then nodes, from %0)."""
import numpy as np

from .errors import IRError
from .ops import PARAMS, SPECS
from .shapes import SHAPE
from .value import Value


def _check_inputs(trace, names):
    for i, v in enumerate(trace.inputs):
        if not isinstance(v, Value) or v.op != "input" or v.args:
            raise IRError(f"input {i} is not an input value: {v!r}")
        if v.params != {"index": i}:
            raise IRError(f"input {names[id(v)]} has params {v.params}, expected {{'index': {i}}}")


def _check_node(node, name, defined):
    if not isinstance(node, Value):
        raise IRError(f"{name} is not a Value: {node!r}")
    if node.op == "input" or node.op not in PARAMS:
        raise IRError(f"{name}: op {node.op!r} is not allowed in the nodes of a trace")
    if set(node.params) != set(PARAMS[node.op]):
        raise IRError(f"{name} = {node.op}: params {sorted(node.params)}, expected {sorted(PARAMS[node.op])}")
    arity = SPECS[node.op].arity
    if arity is not None and len(node.args) != arity:
        raise IRError(f"{name} = {node.op}: {len(node.args)} operands, the op takes {arity}")
    for a in node.args:
        if id(a) not in defined:
            raise IRError(f"{name} = {node.op}: operand {a!r} is not defined before it")
    try:
        shape, dtype = SHAPE[node.op](node.args, node.params)
    except IRError as e:
        raise IRError(f"{name} = {node.op}: {e.message}") from e
    if tuple(shape) != node.shape or np.dtype(dtype) != node.dtype:
        raise IRError(f"{name} = {node.op}: recorded {node.dtype}{list(node.shape)}, "
                      f"shape rule gives {np.dtype(dtype)}{list(shape)}")
    if "body" in node.params:
        try:
            verify(node.params["body"])
        except IRError as e:
            raise IRError(f"{name} = {node.op}, in its body: {e.message}") from e


def verify(trace):
    """Raise IRError unless `trace` is well formed: inputs numbered in order, every operand defined
    before its use, params exactly those of `ops.PARAMS`, as many operands as the op's spec says
    (`arity`), every shape and dtype as the SHAPE rule says, loop bodies well formed (and closed: they
    use only their own values), and outputs among the trace's values.  Returns None."""
    names = {id(v): f"%{i}" for i, v in enumerate(list(trace.inputs) + list(trace.nodes))}
    _check_inputs(trace, names)
    defined = {id(v) for v in trace.inputs}
    for node in trace.nodes:
        if id(node) in defined:
            raise IRError(f"{names[id(node)]} appears twice in the trace")
        _check_node(node, names[id(node)], defined)
        defined.add(id(node))
    for k, v in enumerate(trace.outputs):
        if id(v) not in defined:
            raise IRError(f"output {k} ({v!r}) is not a value of the trace")
