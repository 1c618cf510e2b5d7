"""Running the remaining iterations of a rolled loop on concrete values, instead of interpreting them.

`concrete_values` recovers the concrete value of IR Values made earlier in the trace (a loop's
invariants): from the traced values the tracer still holds, else by evaluating the few nodes they come
from.  `run_iterations` runs a loop body iteration by iteration with the reference evaluation (EVAL)
and stops before the first iteration whose guard fails or whose evaluation raises: the interpreter
resumes there and takes the other path.
"""
import numpy as np

from ...ir import Builder
from ...ir.errors import GuardFailed
from ...ir.evaluate import EVAL, run_trace
from ...ir.loops import COUNTER_DTYPE, run_loop


def concrete_values(values, known):
    """The concrete value of each IR Value in `values`; `known` maps id(Value) -> concrete value (and
    is extended).  None when one depends on an input whose value is not known."""
    for target in values:
        work = [target]
        while work:
            v = work[-1]
            if id(v) in known:
                work.pop()
                continue
            if v.op == "input":
                return None
            missing = [a for a in v.args if id(a) not in known]
            if missing:
                work.extend(missing)
                continue
            work.pop()
            args = [known[id(a)] for a in v.args]
            with np.errstate(all="ignore"):
                known[id(v)] = run_loop(args, v.params, run_trace) if v.op == "loop" else EVAL[v.op](args, v.params)
    return [known[id(v)] for v in values]


class _Plan:
    """A body trace laid out for repeated evaluation: one step per node, operands as slot numbers."""

    __slots__ = ("steps", "n_inputs", "outputs")

    def __init__(self, body):
        slot = {id(v): k for k, v in enumerate(body.inputs)}
        self.steps = []
        for node in body.nodes:
            slot[id(node)] = len(slot)
            rule = _loop_rule if node.op == "loop" else EVAL[node.op]
            self.steps.append((rule, tuple(slot[id(a)] for a in node.args), node.params, node.op == "guard"))
        self.n_inputs = len(body.inputs)
        self.outputs = tuple(slot[id(v)] for v in body.outputs)


def _loop_rule(args, params):
    return run_loop(args, params, run_trace)


# Loops shorter than this are run by the reference evaluation (compiling costs more than it saves).
NATIVE_MIN_TRIP = 2000


def fast_forward(body, carries, invariants, trip, runner=None):
    """Run the loop body `body` for up to `trip` iterations from the concrete `carries`: natively with
    `runner(trace, inputs)` when given and the loop is long, else (or when it declines or a guard fails)
    with the reference evaluation.  Returns (iterations completed, carries after them)."""
    n_carry = len(carries)
    if runner is not None and trip >= NATIVE_MIN_TRIP:
        b = Builder()
        inputs = [b.input(np.shape(x), np.asarray(x).dtype) for x in (*carries, *invariants)]
        loop = b.emit("loop", *inputs, body=body, trip=trip, n_carry=n_carry)
        trace = b.build([b.loop_result(loop, index=k) for k in range(n_carry)])
        try:
            return trip, runner(trace, [np.asarray(x) for x in (*carries, *invariants)])
        except Exception:           # not lowered, a guard failed, ...: the reference evaluation says where
            pass
    return run_iterations(body, carries, invariants, trip, n_carry)


def run_iterations(body, carries, invariants, trip, n_carry):
    """Run `body` (a loop body, ir/loops.py) for up to `trip` iterations from the concrete `carries`.

    Returns (completed, carries after them): iteration `completed` (when < trip) failed a guard or raised,
    and is left to the interpreter."""
    plan = _Plan(body)
    carries = [np.asarray(c) for c in carries]
    invariants = [np.asarray(v) for v in invariants]
    steps, outputs = plan.steps, plan.outputs
    with np.errstate(all="ignore"):
        for t in range(trip):
            vals = [np.asarray(t, COUNTER_DTYPE), *carries, *invariants]
            try:
                for rule, operands, params, is_guard in steps:
                    result = rule([vals[k] for k in operands], params)
                    if is_guard and not result:
                        return t, carries
                    vals.append(result)
            except (GuardFailed, ArithmeticError, ValueError, np.linalg.LinAlgError):
                return t, carries
            carries = [vals[k] for k in outputs[:n_carry]]
    return trip, carries
