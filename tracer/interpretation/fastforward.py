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
from ...ir.loop_ad import with_base
from ...ir.loops import COUNTER_DTYPE, run_loop
from .loopbody import with_exit


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


def fast_forward(body, carries, invariants, trip, runner=None, probe=0):
    """Run the loop body `body` for up to `trip` iterations from the concrete `carries`: the first
    `probe` with the reference evaluation (a loop that may be short: no compilation), the rest natively
    with `runner(trace, inputs)` when given and the loop is long, else (or when it declines) with the
    reference evaluation.  Returns (iterations completed, carries after them followed by the body's
    per-iteration outputs stacked over those iterations, the position in `body.nodes` of the guard that
    failed in the next iteration, or None)."""
    n_carry = len(carries)
    if runner is None or trip < NATIVE_MIN_TRIP:
        return run_iterations(body, carries, invariants, trip, n_carry)
    done, results, failed = run_iterations(body, carries, invariants, min(probe, trip), n_carry)
    if done < min(probe, trip) or done == trip:
        return done, results, failed
    pieces = [results[n_carry:]]
    native = _run_natively(body, results[:n_carry], invariants, trip - done, done, runner)
    if native is not None:
        more, results = native
        done += more
        pieces.append(results[n_carry:])
    if done < trip:                 # not lowered (the reference evaluation does it), or the reference
        more, results, failed = run_iterations(body, results[:n_carry], invariants, trip - done, n_carry, done)
        done += more                # evaluation says which guard failed there (or, where fast math
        pieces.append(results[n_carry:])     # decided otherwise, goes on)
    return done, results[:n_carry] + [np.concatenate(rows) for rows in zip(*pieces)], failed


def _run_natively(body, carries, invariants, trip, base, runner):
    """(iterations completed, carries after them and the stacked outputs of those iterations) of `body` run
    natively from counter `base` for up to `trip` iterations, stopping before the first whose top-level
    guard fails; None if `runner` declines.

    The guards become the loop's continue flag (it leaves where one fails).  A body writing rows of an
    array carry (`traj[i] = x`) is first run with its guards as guards instead (a failure raises): a
    loop with a flag copies its array carries every iteration (its last iteration may be discarded),
    which made a 100,000-step fill 6.5 s; only when a guard fails does the flagged form run."""
    n_carry, n_out = len(carries), len(body.outputs)
    guards = [k for k, n in enumerate(body.nodes) if n.op == "guard"]
    inputs = [np.asarray(x) for x in (*carries, *invariants, np.asarray(base, COUNTER_DTYPE))]
    if guards and _writes_rows(body, n_carry):
        try:
            return trip, [np.asarray(r) for r in runner(_loop_trace(body, inputs, trip, n_carry, False), inputs)]
        except Exception:           # a guard failed (or not lowered): the flagged form says where
            pass
    try:
        results = runner(_loop_trace(body, inputs, trip, n_carry, bool(guards)), inputs)
    except Exception:               # not lowered, a guard of an inner loop failed, ...
        return None
    done = int(results[n_out]) if guards else trip
    return done, list(results[:n_carry]) + [np.asarray(r)[:done] for r in results[n_carry:n_out]]


def _loop_trace(body, inputs, trip, n_carry, flagged):
    """A trace running `body` `trip` times on `inputs` (carries, invariants, base counter), returning
    its carries and stacked outputs (and with `flagged`, its guards made the continue flag, the
    iterations completed)."""
    n_out = len(body.outputs)
    guards = [k for k, n in enumerate(body.nodes) if n.op == "guard"] if flagged else []
    looped = with_base(with_exit(body, guards) if guards else body)
    b = Builder()
    loop = b.loop(*[b.input(x.shape, x.dtype) for x in inputs], body=looped, trip=trip, n_carry=n_carry,
                  exit=n_out if guards else None)
    return b.build([b.loop_result(loop, index=k) for k in range(n_out + bool(guards))])


def _writes_rows(body, n_carry):
    """Whether an array carry of loop body `body` is updated at some positions (index_set/index_add)."""
    return any(v.shape != () and v.op in ("index_set", "index_add") for v in body.outputs[:n_carry])


def run_iterations(body, carries, invariants, trip, n_carry, start=0):
    """Run `body` (a loop body, ir/loops.py) for up to `trip` iterations from the concrete `carries`, its
    counter counting from `start`.

    Returns (completed, carries after them followed by the per-iteration outputs of those iterations
    stacked, failed): iteration `completed` (when < trip) failed the guard at position `failed` of
    `body.nodes` (None: it raised), and is left to the interpreter."""
    plan = _Plan(body)
    carries = [np.asarray(c) for c in carries]
    invariants = [np.asarray(v) for v in invariants]
    steps, outputs = plan.steps, plan.outputs
    rows = [[] for _ in outputs[n_carry:]]
    done, failed = trip, None
    with np.errstate(all="ignore"):
        for t in range(trip):
            vals = [np.asarray(start + t, COUNTER_DTYPE), *carries, *invariants]
            try:
                for position, (rule, operands, params, is_guard) in enumerate(steps):
                    result = rule([vals[k] for k in operands], params)
                    if is_guard and not result:
                        raise _Failed(position)
                    vals.append(result)
            except _Failed as stop:
                done, failed = t, stop.position
                break
            except (GuardFailed, ArithmeticError, ValueError, np.linalg.LinAlgError):
                done = t
                break
            carries = [vals[k] for k in outputs[:n_carry]]
            for column, k in zip(rows, outputs[n_carry:]):
                column.append(vals[k])
    stacked = [np.asarray(np.stack(column), y.dtype) if column else np.zeros((0,) + y.shape, y.dtype)
               for column, y in zip(rows, body.outputs[n_carry:])]
    return done, carries + stacked, failed


class _Failed(Exception):
    """A guard of the body failed at `position` (run_iterations)."""

    def __init__(self, position):
        super().__init__(position)
        self.position = position
