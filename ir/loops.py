"""The loop op: a body trace run `trip` times, its carried values, its invariants, its stacked outputs.

    %L = loop(*carry_inits, *invariants; body, trip, n_carry, exit)   a tuple (shape (), dtype TUPLE)
    %r = loop_result(%L; index)                                       one of its results

`body` is a closed Trace: inputs `[i, carry_0..carry_{C-1}, inv_0..]` (`i` the iteration number, a 0-d
intp counting 0..trip-1), outputs `[next_carry_0..next_carry_{C-1}, y_0..y_{K-1}]`; a carry's init, its
body input and its body output have one type.  Result k < C is the final carry k (its init when trip is
0); result C + j stacks y_j over the iterations: shape `(trip,) + y.shape`, row t from iteration t.
`trip` is a static int.

A loop with `exit` (an index e, C <= e, of a 0-d bool body output: the continue flag; None, the
default, for a counted loop) runs while the flag is true: the iteration t whose flag is false is
discarded as a whole (the results are the carries it started from) and ends the loop; `trip` is then
the most iterations it may take (a `for` with `break`: the range's length; a `while`: a capacity the
tracer chose, 1024x the iterations it saw, which a guard after the loop checks).  Result e
is the number of iterations taken, an intp counted at run time (never a key of the cache); stacked rows
from it on are zeros.  The body is evaluated once more than the count (the discarded iteration), so
its guards hold there too.

Guards inside a body hold on every iteration.  They are numbered in program order, descending into a
loop's body at the loop node (`Trace.guards`): that number is what GuardFailed and kernel exit codes
report.  This module holds the op's shape rules and meaning; the AD, passes and lowering of loops
live with their concerns.
"""
import numpy as np

from .errors import IRError
from .ops import TUPLE, owned_traces

COUNTER_DTYPE = np.dtype(np.intp)
RUNTIME_ROWS = 2 ** 40         # the static leading dimension of a stack of a run-time number of rows
UNBOUNDED = 2 ** 62            # the trip count of a loop ending on its flag only (a `while` loop)


def runtime_rows(v):
    """Whether Value `v` is a stack of a run-time number of rows (a loop's of trip None, or its cotangent
    or tangent)."""
    return v.shape[:1] == (RUNTIME_ROWS,)


def trip_count(loop):
    """The run-time trip count operand of `loop` (trip None), else None."""
    return loop.args[-1] if loop.params["trip"] is None else None


def _same_type(a, b):
    return a.shape == b.shape and a.dtype == b.dtype


def _type(v):
    return f"{v.dtype}{list(v.shape)}"


def _shape_loop(args, params):
    body, trip, n_carry, exit = params["body"], params["trip"], params["n_carry"], params["exit"]
    if trip is None:
        if not args or args[-1].shape != () or args[-1].dtype != COUNTER_DTYPE or len(args) <= n_carry:
            raise IRError("loop: trip=None takes its run-time trip count as its last operand, an intp[] "
                          "invariant")
    elif not isinstance(trip, int) or isinstance(trip, bool) or trip < 0:
        raise IRError(f"loop: trip must be an int >= 0 or None, got {trip!r}")
    if exit is not None:
        if not isinstance(exit, int) or not n_carry <= exit < len(body.outputs):
            raise IRError(f"loop: exit={exit!r} is not one of the body's {len(body.outputs)} outputs after "
                          f"its {n_carry} carries")
        flag = body.outputs[exit]
        if flag.shape != () or flag.dtype != np.bool_:
            raise IRError(f"loop: the continue flag (output {exit}) must be bool[], got {_type(flag)}")
    if not isinstance(n_carry, int) or not 0 <= n_carry <= len(args):
        raise IRError(f"loop: n_carry={n_carry!r} for {len(args)} operands")
    inputs, outputs = body.inputs, body.outputs
    if len(inputs) != 1 + len(args):
        raise IRError(f"loop: the body takes {len(inputs)} inputs, expected the counter and {len(args)} operands")
    counter = inputs[0]
    if counter.shape != () or counter.dtype != COUNTER_DTYPE:
        raise IRError(f"loop: the body's first input is the counter, intp[], got {_type(counter)}")
    for k, (a, v) in enumerate(zip(args, inputs[1:])):
        if not _same_type(a, v):
            raise IRError(f"loop: operand {k} is {_type(a)} but the body's input {k + 1} is {_type(v)}")
    if len(outputs) < n_carry:
        raise IRError(f"loop: the body returns {len(outputs)} values, fewer than its {n_carry} carries")
    for k in range(n_carry):
        if not _same_type(outputs[k], inputs[1 + k]):
            raise IRError(f"loop: carry {k} enters the body as {_type(inputs[1 + k])} and leaves it as "
                          f"{_type(outputs[k])}")
    return (), TUPLE


def result_type(loop, index):
    """(shape, dtype) of result `index` of loop node `loop`."""
    body, n_carry, trip = loop.params["body"], loop.params["n_carry"], loop.params["trip"]
    if not isinstance(index, int) or not 0 <= index < len(body.outputs):
        raise IRError(f"loop_result: index {index!r} out of range for {len(body.outputs)} results")
    if index == loop.params["exit"]:
        return (), COUNTER_DTYPE
    out = body.outputs[index]
    rows = RUNTIME_ROWS if trip is None else trip
    return (out.shape if index < n_carry else (rows,) + out.shape), out.dtype


def _shape_loop_result(args, params):
    if len(args) != 1 or args[0].op != "loop":
        raise IRError("loop_result takes one operand, a loop")
    return result_type(args[0], params["index"])


SHAPE_RULES = {"loop": _shape_loop, "loop_result": _shape_loop_result}


def run_loop(args, params, run_body):
    """The results of a loop on concrete operands: `run_body(body, inputs) -> outputs` runs one
    iteration (the reference executor); returns the tuple of final carries then stacked outputs (the
    count in place of the continue flag's)."""
    body, trip, n_carry, exit = params["body"], params["trip"], params["n_carry"], params["exit"]
    carries, invariants = list(args[:n_carry]), list(args[n_carry:])
    runtime = trip is None
    trip = max(0, int(args[-1])) if runtime else trip
    rows = [[] for _ in body.outputs[n_carry:]]
    count = trip
    for t in range(trip):
        outs = run_body(body, [np.asarray(t, COUNTER_DTYPE), *carries, *invariants])
        if exit is not None and not outs[exit]:
            count = t
            break
        carries = outs[:n_carry]
        for kept, y in zip(rows, outs[n_carry:]):
            kept.append(y)
    rows_out = count if runtime else trip
    stacked = [np.asarray(count, COUNTER_DTYPE) if n_carry + j == exit else _stack(kept, y, rows_out)  # (flag: count)
               for j, (kept, y) in enumerate(zip(rows, body.outputs[n_carry:]))]
    return tuple(np.asarray(c) for c in carries) + tuple(stacked)


def _stack(kept, y, rows):
    """The rows `kept` of a stacked output like body output `y`, zeros after them to `rows` rows."""
    stacked = np.zeros((rows,) + y.shape, y.dtype)
    if kept:
        stacked[:len(kept)] = kept
    return stacked



def count_guards(trace):
    """How many guards `trace` checks, those of the traces its nodes own (loop bodies, cond branches)
    included (Trace.guards gives their order)."""
    return sum(node_guards(n) for n in trace.nodes)


def node_guards(node):
    """How many guards node `node` checks: 1 for a guard, those of the traces it owns."""
    return 1 if node.op == "guard" else sum(count_guards(t) for t in owned_traces(node))


def loops_in(trace):
    """The loop nodes of `trace`, nested ones included (outer before inner)."""
    found = []
    for node in trace.nodes:
        if node.op == "loop":
            found.append(node)
            found.extend(loops_in(node.params["body"]))
    return found


def has_loops(trace):
    """Whether `trace` has a node owning traces (a loop or a cond): passes and AD see through them."""
    return any(owned_traces(n) for n in trace.nodes)
