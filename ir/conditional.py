"""The cond op: a branch on a traced predicate with both outcomes recorded, each a closed trace.

    %C = cond(%pred, *operands; branches=(if_true, if_false))      a tuple (shape (), dtype TUPLE)
    %r = cond_result(%C; index)                                     one of its results

`pred` is a 0-d bool; `if_true` and `if_false` are closed Traces taking inputs typed like `operands`
and returning outputs of one list of types (output k of both branches has one shape and dtype).
Only the branch `pred` selects is evaluated: the other may divide by zero or take the log of a
negative number on the operands it is not taken for, and neither its value nor its derivative reaches
the result (a `where` of both sides would let its NaN poison the gradient).  This is what the tracer
records for a branch on data inside a loop body whose outcome varies between iterations
(tracer/rolling.py): each branch is one path to the end of the iteration.

Guards inside the branches are checked only when their branch is taken; they are numbered (Trace.guards)
those of `if_true` first, then those of `if_false`.  The derivative of a cond is a cond on the same
predicate (ir/cond_ad.py); its passes (DCE inside branches, unused results dropped) are in
ir/cond_passes.py; its lowering is a native branch (jit/conditional.py).
"""
import numpy as np

from .errors import GuardFailed, IRError
from .loops import count_guards
from .ops import TUPLE


def _type(v):
    return f"{v.dtype}{list(v.shape)}"


def _shape_cond(args, params):
    branches = params["branches"]
    if not isinstance(branches, tuple) or len(branches) != 2:
        raise IRError("cond: branches must be a tuple of two traces (if true, if false)")
    if not args:
        raise IRError("cond takes a predicate")
    pred, operands = args[0], args[1:]
    if pred.shape != () or pred.dtype != np.bool_:
        raise IRError(f"cond: the predicate must be a 0-d bool, got {_type(pred)}")
    for side, branch in zip(("true", "false"), branches):
        if len(branch.inputs) != len(operands):
            raise IRError(f"cond: the {side} branch takes {len(branch.inputs)} inputs for {len(operands)} operands")
        for k, (a, v) in enumerate(zip(operands, branch.inputs)):
            if a.shape != v.shape or a.dtype != v.dtype:
                raise IRError(f"cond: operand {k} is {_type(a)} but the {side} branch's input {k} is {_type(v)}")
    if len(branches[0].outputs) != len(branches[1].outputs):
        raise IRError(f"cond: the branches return {len(branches[0].outputs)} and {len(branches[1].outputs)} values")
    for k, (a, b) in enumerate(zip(*(branch.outputs for branch in branches))):
        if a.shape != b.shape or a.dtype != b.dtype:
            raise IRError(f"cond: result {k} is {_type(a)} in the true branch, {_type(b)} in the false one")
    return (), TUPLE


def _shape_cond_result(args, params):
    if len(args) != 1 or args[0].op != "cond":
        raise IRError("cond_result takes one operand, a cond")
    outputs = args[0].params["branches"][0].outputs
    index = params["index"]
    if not isinstance(index, int) or not 0 <= index < len(outputs):
        raise IRError(f"cond_result: index {index!r} out of range for {len(outputs)} results")
    return outputs[index].shape, outputs[index].dtype


SHAPE_RULES = {"cond": _shape_cond, "cond_result": _shape_cond_result}


def run_cond(args, params, run_body):
    """The results of a cond on concrete operands (`run_body(trace, inputs) -> outputs`, the reference
    executor): only the selected branch runs.  A guard failing in the false branch is renumbered
    after the true branch's guards."""
    true, false = params["branches"]
    pred, operands = args[0], list(args[1:])
    if bool(pred):
        return tuple(np.asarray(v) for v in run_body(true, operands))
    try:
        return tuple(np.asarray(v) for v in run_body(false, operands))
    except GuardFailed as failed:
        raise GuardFailed(count_guards(true) + failed.index) from None


def result_values(b, node):
    """The cond_result Values of every result of cond `node`, emitted into builder `b`."""
    return [b.cond_result(node, index=k) for k in range(len(node.params["branches"][0].outputs))]
