"""Reverse mode through loops: the forward loops rewritten to tape (or checkpoint), and their backward
loops emitted by the reverse sweep of ir/autodiff.py (the pieces come from ir/loop_ad.py's LoopVJP).
This module fills autodiff.LOOP_TAPING and autodiff.LOOP_BACKWARD when imported.

`taping_form` is the pre-pass rule for one active loop: it returns the loop that replaces it in the
forward part and registers a record whose `backward(b, args, received)` emits the backward loop and
returns one cotangent per operand.

Memory bound: a loop whose tape would exceed TAPE_BUDGET_MB megabytes (module setting; the environment
variable JITGRAD_LOOP_TAPE_MB sets it at import) is checkpointed: the forward part runs it as M = trip
// S segments of S ~ sqrt(trip) iterations (an outer loop whose body is an inner loop) storing only the
carries at each segment's start, then a taped tail loop of the trip - M*S remaining iterations; the
backward pass runs the segments in reverse, each recomputing its tape from its checkpoint (a taping
inner loop, without the body's guards: they held in the forward pass) and running its backward inner
loop.  The body's guards appear twice in the forward part (segments, tail): in iteration order.  Tape memory:
about sqrt(trip) iterations' residuals
plus sqrt(trip) checkpoints of the carries, for one more forward evaluation of the body.

A loop ending on a flag (ir/loops.py's `exit`; `trip` its most iterations) without stacked outputs,
over the budget or of TAPED_EXIT_ROWS iterations at most or more (a `while` loop: the tracer gives it
room for TAPED_SHARE x 4x the iterations it saw, tracer/interpretation/whileloops.py), is `_continued`:
its first trip // TAPED_SHARE iterations (at least isqrt(trip); for a `while`: 4x the iterations seen)
run taped (the common case: no recomputation), and when it has not left by then, its continuation (the
same body from the counter it stopped at; taking no iteration otherwise) is checkpointed, so a call
running 50x the traced count needs no retrace and its memory stays about trip // TAPED_SHARE + 2
sqrt(trip) rows.  (Differentiated again, a checkpointed loop keeps every iteration's residuals: the
capacity is a bounded multiple of the traced count, not its square, so that grad of grad stays
within a bounded multiple of the first-order memory.)  The continuation is checkpointed as above: the
segment loop's flag says a segment ran all its S iterations, so it stops at the segment that leaves
(discarding it, its count the segments taken); a taped tail loop reruns that segment from its start
(at most S iterations, its flag also false from counter `trip` on); the count is S * segments taken +
the tail's.  The backward segment loop runs the segments taken, last first (its discarded iteration's
inner loops leave at once).  One with stacked outputs is taped (their rows would land at a run-time
offset).
"""
import math
import os

import numpy as np

from . import autodiff
from . import passes
from .builder import Builder
from .errors import IRError
from .loop_ad import AT_ROW, LoopVJP, with_base
from .loop_passes import restructure
from .loops import COUNTER_DTYPE
from .ops import LOOPS

TAPE_BUDGET_MB = float(os.environ.get("JITGRAD_LOOP_TAPE_MB", "64"))
TAPED_EXIT_ROWS = 2 ** 14     # a loop ending on a flag that may take this many iterations: `_continued`,
TAPED_SHARE = 16              # its first trip // TAPED_SHARE iterations (at least isqrt(trip)) taped


def _intp(b, value):
    return b.const(np.asarray(value, COUNTER_DTYPE))


def taping_form(b, node, args, active_args, records, result_maps):
    """Emit into `b` the forward form of active loop `node` on `args`: the loop Value standing for
    it.  `records[id(loop)]` gets its reverse-mode record; when its results are no longer that loop's,
    `result_maps[id(loop)]` lists the Value of each old result."""
    p = node.params
    body, n_carry, trip, exit = p["body"], p["n_carry"], p["trip"], p["exit"]
    start = len(b.nodes)
    moved = restructure(b, body, args, n_carry) if trip else None     # invariant code hoisted before AD
    result_map = None
    if moved is not None:
        sources = [a for a, on in zip(args, active_args) if on]
        args, body, n_carry, result_map = moved
        exit = None if exit is None else result_map[exit]
        active = autodiff.active_ids(b.nodes[start:], sources)
        active_args = [id(a) in active for a in args]
    if not any(active_args):
        loop, results = b.loop(*args, body=body, trip=trip, n_carry=n_carry, exit=exit), None
    else:
        vjp = LoopVJP(body, n_carry, trip, active_args, exit)
        hoisted = vjp.hoist(b, args[n_carry:])
        tape_bytes = trip * sum(r.size * r.dtype.itemsize for r in vjp.taped)
        checkpointable = exit is None or len(body.outputs) == n_carry + 1      # a flag, no stacked output
        over = tape_bytes > TAPE_BUDGET_MB * 2 ** 20 and trip >= 4
        if exit is not None and checkpointable and (over or trip >= TAPED_EXIT_ROWS):
            loop, results = _continued(b, vjp, args, active_args, hoisted, records)
        elif over and checkpointable:
            loop, results = _checkpointed(b, vjp, args, hoisted, records)
        else:
            loop, results = _taped(b, vjp, args, hoisted, trip, None, records), None
    if result_map is not None:
        if results is None:
            results = [b.loop_result(loop, index=k) for k in range(len(body.outputs))]
        results = [results[r] if isinstance(r, int) else r for r in result_map]
    if results is not None:
        result_maps[id(loop)] = results
    return loop


def _taped(b, vjp, args, hoisted, trip, base, records, limit=None):
    """The taping loop (`base`: its counter offset; `limit`: a loop with exit stops at counter `limit`)."""
    body = vjp.taping_body(based=base is not None) if limit is None else _capped(vjp.taping_body(), vjp.exit, limit)
    loop = b.loop(*args, *([base] if base is not None else []), body=body,
                  trip=trip, n_carry=vjp.n_carry, exit=vjp.exit)
    tapes = [b.loop_result(loop, index=vjp.n_out + j) for j in range(len(vjp.taped))]
    count = b.loop_result(loop, index=vjp.exit) if vjp.exit is not None else None
    records[id(loop)] = _Taped(vjp, trip, tapes, hoisted, base, count, limit)
    return loop


class _Taped:
    def __init__(self, vjp, trip, tapes, hoisted, base, count, limit):
        self.vjp, self.trip, self.tapes, self.hoisted, self.base = vjp, trip, tapes, hoisted, base
        self.count = count            # the iterations the forward loop took (a loop with exit), or None
        self.limit = limit

    def backward(self, b, args, received):
        vjp = self.vjp
        invariants = args[vjp.n_carry:len(args) - (self.base is not None)]
        ct_carries, accs, ct_ys = vjp.zero_cotangents(b, args, received)
        ct_carries, accs = vjp.emit_backward(b, self.trip, ct_carries, accs, self.tapes, ct_ys, invariants,
                                             self.hoisted, self.base, self.count, self.limit)
        return vjp.operand_cotangents(len(args), ct_carries, accs)


def _capped(body, exit, limit):
    """`body` run from a `base` (a last input, as `with_base`) whose continue flag is also false from
    counter `limit` on (the iteration found there, discarded, sees counter limit - 1: in range)."""
    bb = Builder()
    env = passes.copy_inputs(bb, body.inputs)
    at = bb.add(bb.input((), COUNTER_DTYPE), env[id(body.inputs[0])])
    env[id(body.inputs[0])] = bb.minimum(at, _intp(bb, limit - 1))
    passes.replay(bb, body.nodes, env)
    outputs = [env[id(v)] for v in body.outputs]
    outputs[exit] = bb.logical_and(outputs[exit], bb.less(at, _intp(bb, limit)))
    return bb.build(outputs)


def _segment_body(vjp, size):
    """The checkpointing loop's body: segment s runs the loop's body `size` times from counter s*size;
    outputs the next carries, the stacked outputs (size, ...) and the carries it started from.  A loop
    with exit: its flag (output n_carry) says the segment ran its `size` iterations (the segment that
    leaves is discarded, then run by a taped tail loop)."""
    body, n_carry, exit = vjp.body, vjp.n_carry, vjp.exit
    bb = Builder()
    s = bb.input((), COUNTER_DTYPE)
    ins = [bb.input(v.shape, v.dtype) for v in body.inputs[1:]]
    base = bb.multiply(s, _intp(bb, size))
    inner = bb.loop(*ins, base, body=with_base(body), trip=size, n_carry=n_carry, exit=exit)
    results = [bb.loop_result(inner, index=k) for k in range(vjp.n_out)]
    if exit is not None:
        results[exit] = bb.equal(results[exit], _intp(bb, size))
    return bb.build(results + ins[:n_carry])


def _checkpointed(b, vjp, args, hoisted, records):
    """(the checkpointing loop, the Values of the original loop's results)."""
    n_carry, n_out, trip, exit = vjp.n_carry, vjp.n_out, vjp.trip, vjp.exit
    size = math.isqrt(trip)
    segments = trip // size
    outer = b.loop(*args, body=_segment_body(vjp, size), trip=segments, n_carry=n_carry, exit=exit)
    results = [b.loop_result(outer, index=k) for k in range(n_out + n_carry)]
    checkpoints = results[n_out:]
    finals = results[:n_carry]
    if exit is not None:              # the segments taken, then a tail of at most one segment
        taken = results[exit]
        records[id(outer)] = _Checkpointed(vjp, size, segments, checkpoints, hoisted, taken)
        base = b.multiply(taken, _intp(b, size))
        loop = _taped(b, vjp, finals + list(args[n_carry:]), hoisted, size, base, records, limit=trip)
        count = b.add(base, b.loop_result(loop, index=exit))
        return outer, [b.loop_result(loop, index=k) for k in range(n_carry)] + [count]
    records[id(outer)] = _Checkpointed(vjp, size, segments, checkpoints, hoisted)
    body = vjp.body
    ys = [b.reshape(y, shape=(segments * size,) + v.shape) for y, v in zip(results[n_carry:n_out],
                                                                            body.outputs[n_carry:])]
    tail = trip - segments * size
    if tail:
        loop = _taped(b, vjp, finals + list(args[n_carry:]), hoisted, tail, _intp(b, segments * size), records)
        finals = [b.loop_result(loop, index=k) for k in range(n_carry)]
        ys = [b.concatenate(y, b.loop_result(loop, index=n_carry + j), axis=0) for j, y in enumerate(ys)]
    return outer, finals + ys


def _continued(b, vjp, args, active_args, hoisted, records):
    """A loop ending on a flag, of at most `trip` iterations: its first trip // TAPED_SHARE iterations
    (at least isqrt(trip)) taped, then (when it has not left by then) its continuation checkpointed
    (`_checkpointed`), from the counter the taped loop stopped at.  Returns (the continuation's loop,
    the original's results)."""
    n_carry, exit, trip = vjp.n_carry, vjp.exit, vjp.trip
    rows = max(math.isqrt(trip), trip // TAPED_SHARE)
    first = _taped(b, vjp, args, hoisted, rows, None, records)
    taken = b.loop_result(first, index=exit)
    full = b.equal(taken, _intp(b, rows))
    rest = list(args[n_carry:]) + [taken, full]
    more = LoopVJP(_continuation(vjp.body, exit), n_carry, trip - rows, list(active_args) + [False, False], exit)
    outer, results = _checkpointed(b, more, [b.loop_result(first, index=k) for k in range(n_carry)] + rest,
                                   more.hoist(b, rest), records)
    results[exit] = b.add(taken, results[exit])
    return outer, results


def _continuation(body, exit):
    """`body` with two more invariant inputs, last: an intp `base` its counter is offset by, and a bool
    `full` and-ed into its continue flag (output `exit`): a loop of it takes no iteration unless `full`,
    and its discarded iteration is then the one a loop of `body` stopped at (same counter, carries)."""
    bb = Builder()
    env = passes.copy_inputs(bb, body.inputs)
    base, full = bb.input((), COUNTER_DTYPE), bb.input((), np.bool_)
    env[id(body.inputs[0])] = bb.add(base, env[id(body.inputs[0])])
    passes.replay(bb, body.nodes, env)
    outputs = [env[id(v)] for v in body.outputs]
    outputs[exit] = bb.logical_and(outputs[exit], full)
    return bb.build(outputs)


class _Checkpointed:
    def __init__(self, vjp, size, segments, checkpoints, hoisted, taken=None):
        self.vjp, self.size, self.segments = vjp, size, segments
        self.checkpoints, self.hoisted = checkpoints, hoisted
        self.taken = taken            # a loop with exit: the segments the forward loop completed

    def backward(self, b, args, received):
        vjp, size = self.vjp, self.size
        n_carry = vjp.n_carry
        ct_carries, accs, ct_ys = vjp.zero_cotangents(b, args, received)
        present = [y for y in ct_ys if y is not None]
        invariants = list(args[n_carry:])
        bb = Builder()
        j = bb.input((), COUNTER_DTYPE)
        carry_ins = [bb.input(v.shape, v.dtype) for v in ct_carries + accs]
        taken = [self.taken] if self.taken is not None else []
        outer_ins = [bb.input(v.shape, v.dtype)
                     for v in self.checkpoints + present + invariants + self.hoisted + taken]
        n_cp, n_y = len(self.checkpoints), len(present)
        cp_ins, y_ins = outer_ins[:n_cp], iter(outer_ins[n_cp:n_cp + n_y])
        inv_ins = outer_ins[n_cp + n_y:n_cp + n_y + len(invariants)]
        hoisted_ins = outer_ins[n_cp + n_y + len(invariants):len(outer_ins) - len(taken)]
        if taken:                     # segments taken-1 .. 0; the discarded iteration j = taken redoes 0
            s = bb.maximum(bb.subtract(bb.subtract(outer_ins[-1], _intp(bb, 1)), j), _intp(bb, 0))
        else:
            s = bb.subtract(_intp(bb, self.segments - 1), j)
        base = bb.multiply(s, _intp(bb, size))
        starts = [bb.index(cp, s, spec=AT_ROW) for cp in cp_ins]
        flag = [bb.less(j, outer_ins[-1])] if taken else []
        taping_body = vjp.taping_body(based=True, guards=False)
        # the discarded iteration j = taken: its inner loops leave at once (not `size` iterations for nothing)
        taping = bb.loop(*starts, *inv_ins, base, *flag, body=_flagged(taping_body) if taken else taping_body,
                         trip=size, n_carry=n_carry, exit=len(taping_body.outputs) if taken else None)
        tapes = [bb.loop_result(taping, index=vjp.n_out + r) for r in range(len(vjp.taped))]
        rows = [bb.index(next(y_ins), s, spec=AT_ROW) if y is not None else None for y in ct_ys]
        n = len(ct_carries)
        count = bb.loop_result(taping, index=len(taping_body.outputs)) if taken else None
        cc, aa = vjp.emit_backward(bb, size, carry_ins[:n], carry_ins[n:], tapes, rows, inv_ins, hoisted_ins, base,
                                   count)
        loop = b.loop(*ct_carries, *accs, *self.checkpoints, *present, *invariants, *self.hoisted, *taken,
                      body=bb.build(cc + aa + flag), trip=self.segments, n_carry=n + len(accs),
                      exit=n + len(accs) if taken else None)
        finals = [b.loop_result(loop, index=k) for k in range(n + len(accs))]
        return vjp.operand_cotangents(len(args), finals[:n], finals[n:])


def _flagged(body):
    """`body` with one more invariant input, last, a bool returned as a last output (a continue flag)."""
    bb = Builder()
    env = passes.copy_inputs(bb, body.inputs)
    live = bb.input((), np.bool_)
    passes.replay(bb, body.nodes, env)
    return bb.build([env[id(v)] for v in body.outputs] + [live])


def backward_node(b, node, cts, received, records, accumulate, add):
    """The reverse sweep at a loop or cond op: a loop_result (cond_result) hands its cotangent to its
    loop (cond) (`received`, per result index, summed with `add`); a loop (cond) with a record emits
    its backward loop (cond) and `accumulate`s the cotangents of its operands."""
    if node.op in ("loop_result", "cond_result"):
        g = cts.pop(id(node), None)
        if g is not None:
            got = received.setdefault(id(node.args[0]), {})
            k = node.params["index"]
            got[k] = add(b, got[k], g) if k in got else g
        return
    got = received.pop(id(node), None)
    if not got:
        return
    record = records.get(id(node))
    if record is None:
        raise IRError("internal: cotangents reached a loop that was not put in taping form")
    for arg, ct in zip(node.args, record.backward(b, node.args, got)):
        if ct is not None:
            accumulate(arg, ct)

autodiff.LOOP_TAPING["loop"] = taping_form
autodiff.LOOP_BACKWARD.update({op: backward_node for op in LOOPS})
