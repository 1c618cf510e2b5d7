"""Reverse mode through loops: the forward loops rewritten to tape (or checkpoint), and their backward
loops emitted by the reverse sweep of ir/autodiff.py (the pieces come from ir/loop_ad.py's LoopVJP).
This module fills autodiff.LOOP_TAPING and autodiff.LOOP_BACKWARD when imported.

`taping_form` is the pre-pass rule for one active loop: it returns the loop that replaces it in the
forward part and registers a record whose `backward(b, args, received)` emits the backward loop and
returns one cotangent per operand.

Memory bound: a counted loop whose tape would exceed TAPE_BUDGET_MB megabytes (module setting; the
environment variable JITGRAD_LOOP_TAPE_MB sets it at import) is checkpointed: the forward part runs it
as M = trip // S segments of S ~ sqrt(trip) iterations (an outer loop whose body is an inner loop)
storing only the carries at each segment's start, then a taped tail loop of the trip - M*S remaining
iterations; the backward pass runs the segments in reverse, each recomputing its tape from its
checkpoint (a taping inner loop, without the body's guards: they held in the forward pass) and running
its backward inner loop.  Tape memory: about sqrt(trip) iterations' residuals plus sqrt(trip)
checkpoints of the carries, for one more forward evaluation of the body.

A loop ending on a flag (ir/loops.py's `exit`; `trip` its most iterations) over the budget or of
CONTINUED_ROWS iterations at most or more (a `while` loop inside a traced function: the tracer gives it
room for SEGMENTS x 4x the iterations it saw, tracer/interpretation/whileloops.py), is `_continued`:
its first max(trip // SEGMENTS, isqrt(trip)) iterations (isqrt(trip) when that many rows of tape
would exceed the budget; for a `while`: 4x the iterations seen) run taped (the common case: no
recomputation), and when it has not left by then, its continuation runs in segments of S =
isqrt(trip) iterations, stacking the carries each segment starts from (checkpoints).  A segment runs
from the counter the one before stopped at, only when that one ran all its iterations (a carried
flag), so the segment that leaves is kept, and the one after it, discarded, takes no iteration (its
inner loop's discarded iteration is the original loop's: same counter, same carries).  The backward
segment loop runs the segments taken, last first, each recomputing its tape from its checkpoint (S
iterations, the last one as many as it took; without guards) and running its backward loop.  So a
`while` loop running up to SEGMENTS x 4 (1,024) times its traced count needs no retrace; memory
stays about trip // SEGMENTS + 2 sqrt(trip) rows; the gradient compiles seven loop bodies (taping
and backward, segments and their inner loop, backward segments with their recomputation and backward
loop).  (Differentiated again, the segment loop, which stacks its checkpoints, is taped: about trip
rows unless over the budget, where it is continued in turn.)  Stacked outputs: the first part's
rows, then each segment's (at a static offset: a segment is `size` rows, zeros past the iteration
that left), up to `trip`.

A loop of a run-time trip count n (trip None, its last operand; no stacked outputs) is `_segmented`:
its first min(n, rows) iterations run taped, rows as many as the budget holds (a tape of that many
rows, allocated per call), and the rest, when n is larger, in segments of their square root (at least
MIN_SEGMENT) iterations, stacking the carries each starts from (a segment loop of ceil((n - rows) /
size) iterations, its inner loop of a run-time count: the last segment runs what is left); the
backward segment loop runs them last first, each recomputing its tape from its checkpoint.  Memory:
the budget, one segment's tape and a checkpoint per segment; below the budget, one taped loop as
before.  (With stacked outputs, one tape of n rows; with nothing to tape, one loop.)

A `while` loop of no bound (trip None: its count UNBOUNDED) is `_continued` too, with as many rows
taped first as the budget holds (a taping loop of that run-time count, its tape a stack growing with
the iterations taken: jit/loops.py) and segments of their square root (at least MIN_SEGMENT), the
segment loop of no bound either (its checkpoints a growing stack); the backward segment loop runs as
many segments as it took.  (Its stacked outputs, and differentiating it again, are not supported:
RuntimeTripUnsupported; the tracer keeps a capacity for loops of traces spliced into others.)
"""
import math
import os

import numpy as np

from . import autodiff
from . import passes
from .builder import Builder
from .errors import IRError, RuntimeTripUnsupported
from .loop_ad import AT_ROW, LoopVJP, with_base
from .loop_passes import restructure
from .loops import COUNTER_DTYPE
from .ops import LOOPS

TAPE_BUDGET_MB = float(os.environ.get("JITGRAD_LOOP_TAPE_MB", "64"))
MIN_SEGMENT = 16              # the fewest iterations of a segment of a `while` loop's continuation
CONTINUED_ROWS = 2 ** 14      # a loop ending on a flag that may take this many iterations is `_continued`:
SEGMENTS = 256                # its first trip // SEGMENTS iterations (at least isqrt(trip)) taped


def _intp(b, value):
    return b.const(np.asarray(value, COUNTER_DTYPE))


def taping_form(b, node, args, active_args, records, result_maps):
    """Emit into `b` the forward form of active loop `node` on `args`: the loop Value standing for
    it.  `records[id(loop)]` gets its reverse-mode record; when its results are no longer that loop's,
    `result_maps[id(loop)]` lists the Value of each old result."""
    p = node.params
    body, n_carry, trip, exit = p["body"], p["n_carry"], p["trip"], p["exit"]
    start = len(b.nodes)
    moved = restructure(b, body, args, n_carry, trip is None) if trip != 0 else None   # invariant code hoisted
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
        row_bytes = sum(r.size * r.dtype.itemsize for r in vjp.taped)
        over = trip is not None and trip * row_bytes > TAPE_BUDGET_MB * 2 ** 20 and trip >= 4
        if trip is None and exit is not None:     # a `while` loop: its first rows taped, then segments
            loop, results = _continued(b, vjp, args, hoisted, records, row_bytes)
        elif trip is None and (_stacked(vjp) or not vjp.taped):   # (a tape of as many rows, allocated per call)
            loop, results = _taped(b, vjp, args, hoisted, None, None, records), None
        elif trip is None:    # a run-time trip count: its first rows taped, then checkpointed segments
            loop, results = _segmented(b, vjp, args, hoisted, records, row_bytes)
        elif exit is not None and (over or trip >= CONTINUED_ROWS):
            loop, results = _continued(b, vjp, args, hoisted, records, row_bytes)
        elif over and exit is None:
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


def _taped(b, vjp, args, hoisted, trip, base, records):
    """The taping loop (`base`: its counter offset, or None)."""
    body = vjp.taping_body(based=base is not None)
    loop = b.loop(*args, *([base] if base is not None else []), body=body,
                  trip=trip, n_carry=vjp.n_carry, exit=vjp.exit)
    tapes = [b.loop_result(loop, index=vjp.n_out + j) for j in range(len(vjp.taped))]
    count = b.loop_result(loop, index=vjp.exit) if vjp.exit is not None else None
    records[id(loop)] = _Taped(vjp, trip, tapes, hoisted, base, count)
    return loop


class _Taped:
    def __init__(self, vjp, trip, tapes, hoisted, base, count):
        self.vjp, self.trip, self.tapes, self.hoisted, self.base = vjp, trip, tapes, hoisted, base
        self.count = count            # the iterations the forward loop took (a loop with exit), or None

    def backward(self, b, args, received):
        vjp = self.vjp
        invariants = args[vjp.n_carry:len(args) - (self.base is not None)]
        ct_carries, accs, ct_ys = vjp.zero_cotangents(b, args, received)
        ct_carries, accs = vjp.emit_backward(b, self.trip, ct_carries, accs, self.tapes, ct_ys, invariants,
                                             self.hoisted, self.base, self.count)
        return vjp.operand_cotangents(len(args), ct_carries, accs)


def _segment_body(vjp, size):
    """The checkpointing loop's body: segment s runs the loop's body `size` times from counter s*size;
    outputs the next carries, the stacked outputs (size, ...) and the carries it started from."""
    body, n_carry = vjp.body, vjp.n_carry
    bb = Builder()
    s = bb.input((), COUNTER_DTYPE)
    ins = [bb.input(v.shape, v.dtype) for v in body.inputs[1:]]
    base = bb.multiply(s, _intp(bb, size))
    inner = bb.loop(*ins, base, body=with_base(body), trip=size, n_carry=n_carry)
    results = [bb.loop_result(inner, index=k) for k in range(vjp.n_out)]
    return bb.build(results + ins[:n_carry])


def _checkpointed(b, vjp, args, hoisted, records):
    """A counted loop over the budget: (the checkpointing loop, the Values of the original loop's
    results)."""
    n_carry, n_out, trip = vjp.n_carry, vjp.n_out, vjp.trip
    size = math.isqrt(trip)
    segments = trip // size
    outer = b.loop(*args, body=_segment_body(vjp, size), trip=segments, n_carry=n_carry)
    results = [b.loop_result(outer, index=k) for k in range(n_out + n_carry)]
    checkpoints = results[n_out:]
    finals = results[:n_carry]
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


class _Checkpointed:
    def __init__(self, vjp, size, segments, checkpoints, hoisted):
        self.vjp, self.size, self.segments = vjp, size, segments
        self.checkpoints, self.hoisted = checkpoints, hoisted

    def backward(self, b, args, received):
        vjp, size = self.vjp, self.size
        n_carry = vjp.n_carry
        ct_carries, accs, ct_ys = vjp.zero_cotangents(b, args, received)
        present = [y for y in ct_ys if y is not None]
        invariants = list(args[n_carry:])
        bb = Builder()
        j = bb.input((), COUNTER_DTYPE)
        carry_ins = [bb.input(v.shape, v.dtype) for v in ct_carries + accs]
        outer_ins = [bb.input(v.shape, v.dtype) for v in self.checkpoints + present + invariants + self.hoisted]
        n_cp, n_y = len(self.checkpoints), len(present)
        cp_ins, y_ins = outer_ins[:n_cp], iter(outer_ins[n_cp:n_cp + n_y])
        inv_ins = outer_ins[n_cp + n_y:n_cp + n_y + len(invariants)]
        hoisted_ins = outer_ins[n_cp + n_y + len(invariants):]
        s = bb.subtract(_intp(bb, self.segments - 1), j)
        base = bb.multiply(s, _intp(bb, size))
        starts = [bb.index(cp, s, spec=AT_ROW) for cp in cp_ins]
        taping = bb.loop(*starts, *inv_ins, base, body=vjp.taping_body(based=True, guards=False), trip=size,
                         n_carry=n_carry)
        tapes = [bb.loop_result(taping, index=vjp.n_out + r) for r in range(len(vjp.taped))]
        rows = [bb.index(next(y_ins), s, spec=AT_ROW) if y is not None else None for y in ct_ys]
        n = len(ct_carries)
        cc, aa = vjp.emit_backward(bb, size, carry_ins[:n], carry_ins[n:], tapes, rows, inv_ins, hoisted_ins, base)
        loop = b.loop(*ct_carries, *accs, *self.checkpoints, *present, *invariants, *self.hoisted,
                      body=bb.build(cc + aa), trip=self.segments, n_carry=n + len(accs))
        finals = [b.loop_result(loop, index=k) for k in range(n + len(accs))]
        return vjp.operand_cotangents(len(args), finals[:n], finals[n:])


# ---- a loop of a run-time trip count, over the budget in segments ---------------------------------------

def _span(b, s, n, rows, size):
    """(base, count) of segment `s` (intp Values) of a loop of `n` iterations whose first `rows` are
    taped: iterations base .. base + count - 1, `size` of them but the last segment's."""
    base = b.add(_intp(b, rows), b.multiply(s, _intp(b, size)))
    return base, b.minimum(_intp(b, size), b.subtract(n, base))


def _segmented(b, vjp, args, hoisted, records, row_bytes):
    """A loop of a run-time trip count n (its last operand), no stacked outputs: its first min(n, rows)
    iterations taped (as many rows as the budget holds), the rest in segments of `size` iterations
    from checkpoints (their square root, at least MIN_SEGMENT).  Returns (the segment loop, the Values
    of the original loop's results)."""
    n_carry, n = vjp.n_carry, args[-1]
    rows, size = _first_rows(None, row_bytes)
    first = _taped(b, vjp, list(args[:-1]) + [b.minimum(n, _intp(b, rows))], hoisted, None, None, records)
    rest = b.maximum(b.subtract(n, _intp(b, rows)), _intp(b, 0))
    segments = b.floor_divide(b.add(rest, _intp(b, size - 1)), _intp(b, size))
    bb = Builder()
    s = bb.input((), COUNTER_DTYPE)
    ins = [bb.input(v.shape, v.dtype) for v in vjp.body.inputs[1:]]     # carries, invariants: the count n last
    bb.input((), COUNTER_DTYPE)                                          # (the number of segments)
    inner = bb.loop(*ins, *_span(bb, s, ins[-1], rows, size), body=with_base(vjp.body, count=True), trip=None,
                    n_carry=n_carry)
    body = bb.build([bb.loop_result(inner, index=k) for k in range(n_carry)] + ins[:n_carry])
    outer = b.loop(*[b.loop_result(first, index=k) for k in range(n_carry)], *args[n_carry:], segments, body=body,
                   trip=None, n_carry=n_carry)
    results = [b.loop_result(outer, index=k) for k in range(2 * n_carry)]
    records[id(outer)] = _Segmented(vjp, rows, size, results[n_carry:], hoisted)
    return outer, results[:n_carry]


class _Segmented:
    """The record of a segment loop of a run-time trip count: the backward loop runs the segments, last
    first, each recomputing its tape from its checkpoint (without guards) and running its backward
    loop."""

    def __init__(self, vjp, rows, size, checkpoints, hoisted):
        self.vjp, self.rows, self.size, self.checkpoints, self.hoisted = vjp, rows, size, checkpoints, hoisted

    def backward(self, b, args, received):
        vjp, n_carry = self.vjp, self.vjp.n_carry
        own = list(args[:-1])                 # carries and invariants (the count n last), not the segments'
        if any(k >= n_carry for k in received):
            raise IRError("internal: a cotangent reached the checkpoints of a segment loop")
        ct_carries, accs, _ = vjp.zero_cotangents(b, own, received)
        invariants = own[n_carry:]
        outer = self.checkpoints + invariants + self.hoisted
        bb = Builder()
        j = bb.input((), COUNTER_DTYPE)
        carry_ins = [bb.input(v.shape, v.dtype) for v in ct_carries + accs]
        ins = [bb.input(v.shape, v.dtype) for v in outer]
        segments = bb.input((), COUNTER_DTYPE)
        n_cp, n_inv = len(self.checkpoints), len(invariants)
        inv_ins, hoisted_ins = ins[n_cp:n_cp + n_inv], ins[n_cp + n_inv:]
        s = bb.subtract(bb.subtract(segments, _intp(bb, 1)), j)
        base, count = _span(bb, s, inv_ins[-1], self.rows, self.size)
        again = bb.loop(*[bb.index(cp, s, spec=AT_ROW) for cp in ins[:n_cp]], *inv_ins, base, count,
                        body=vjp.taping_body(based=True, guards=False, count=True), trip=None, n_carry=n_carry)
        tapes = [bb.loop_result(again, index=vjp.n_out + r) for r in range(len(vjp.taped))]
        n = len(ct_carries)
        cc, aa = vjp.emit_backward(bb, None, carry_ins[:n], carry_ins[n:], tapes, [], inv_ins, hoisted_ins, base,
                                   count)
        loop = b.loop(*ct_carries, *accs, *outer, args[-1], body=bb.build(cc + aa), trip=None, n_carry=n + len(accs))
        finals = [b.loop_result(loop, index=m) for m in range(n + len(accs))]
        return vjp.operand_cotangents(len(own), finals[:n], finals[n:]) + [None]


# ---- a loop ending on a flag, continued in segments ----------------------------------------------------

def _first_rows(trip, row_bytes):
    """(the iterations a continued loop of at most `trip` iterations tapes first, the iterations of its
    segments); trip None (a `while` loop): as many rows as the budget holds, segments of their square
    root (at least MIN_SEGMENT)."""
    if trip is None:
        rows = max(1, int(TAPE_BUDGET_MB * 2 ** 20) // max(row_bytes, 1))
        return rows, max(MIN_SEGMENT, math.isqrt(rows))
    rows = max(math.isqrt(trip), trip // SEGMENTS)
    size = max(1, math.isqrt(trip))
    return (rows if rows * row_bytes <= TAPE_BUDGET_MB * 2 ** 20 else max(1, math.isqrt(trip))), size


def _continued(b, vjp, args, hoisted, records, row_bytes):
    """A loop ending on a flag, of at most `trip` iterations: its first iterations taped, then its
    continuation in segments (the module docstring).  Returns (the segment loop, the Values of the
    original loop's results)."""
    n_carry, exit, trip = vjp.n_carry, vjp.exit, vjp.trip
    rows, size = _first_rows(trip, row_bytes)
    if trip is None:          # (its last operand, the count UNBOUNDED: the first part's is `rows`)
        if _stacked(vjp):
            raise RuntimeTripUnsupported("reverse mode of a `while` loop with stacked outputs")
        segments = None
        first = _taped(b, vjp, list(args[:-1]) + [_intp(b, rows)], hoisted, None, None, records)
    else:
        segments = -(-(trip - rows) // size)
        first = _taped(b, vjp, args, hoisted, rows, None, records)
    taken = b.loop_result(first, index=exit)
    state = [taken, b.equal(taken, _intp(b, rows))]                 # at, more
    outer = b.loop(*[b.loop_result(first, index=k) for k in range(n_carry)], *state, *args[n_carry:],
                   body=_segments_body(vjp, size), trip=segments, n_carry=n_carry + 2, exit=n_carry + 2)
    stacked = _stacked(vjp)
    results = [b.loop_result(outer, index=j) for j in range(2 * n_carry + 3 + len(stacked))]
    records[id(outer)] = _Continued(vjp, rows, size, segments, results[n_carry], results[n_carry + 2],
                                    results[n_carry + 3:2 * n_carry + 3], hoisted)
    finals = results[:n_carry] + [None] * (vjp.n_out - n_carry)
    finals[exit] = results[n_carry]
    for m, k in enumerate(stacked):             # the first part's rows, then the segments', to `trip`
        y, row = results[2 * n_carry + 3 + m], vjp.body.outputs[k]
        whole = b.concatenate(b.loop_result(first, index=k), b.reshape(y, shape=(segments * size,) + row.shape),
                              axis=0)
        finals[k] = b.index(whole, spec=tuple(("slice", 0, d, 1) for d in (trip,) + row.shape))
    return outer, finals


def _stacked(vjp):
    """The body outputs of `vjp`'s loop stacked over the iterations (not carries, not the flag)."""
    return [k for k in range(vjp.n_carry, vjp.n_out) if k != vjp.exit]


def _segments_body(vjp, size):
    """The segment loop's body.  Inputs: the segment number, the carries, `at` (the counter the segment
    before stopped at), `more` (it ran all its iterations), the invariants.  The segment runs the body
    from counter `at` while `more` (so a segment after one that left takes no iteration: its discarded
    iteration is the original's), `size` iterations at most, to counter trip at most; outputs the next
    carries, at + its count, whether it ran all `size`, the flag (the `more` it started with), the
    carries it started from (the checkpoints) and its stacked outputs."""
    body, n_carry, exit = vjp.body, vjp.n_carry, vjp.exit
    bb = Builder()
    bb.input((), COUNTER_DTYPE)
    carries = [bb.input(v.shape, v.dtype) for v in body.inputs[1:1 + n_carry]]
    at, more = bb.input((), COUNTER_DTYPE), bb.input((), np.bool_)
    invariants = [bb.input(v.shape, v.dtype) for v in body.inputs[1 + n_carry:]]
    inner = bb.loop(*carries, *invariants, at, more, body=_capped(body, exit, vjp.trip), trip=size,
                    n_carry=n_carry, exit=exit)
    count = bb.loop_result(inner, index=exit)
    outputs = [bb.loop_result(inner, index=j) for j in range(n_carry)]
    outputs += [bb.add(at, count), bb.equal(count, _intp(bb, size)), more]
    return bb.build(outputs + carries + [bb.loop_result(inner, index=k) for k in _stacked(vjp)])


def _capped(body, exit, limit):
    """`body` run from a `base` (an intp input after its own) while a bool `live` (the last input) holds:
    its continue flag (output `exit`) and-ed with `live` and with counter < `limit` (the iteration
    found there, discarded, sees counter limit - 1: in range; None: no limit)."""
    bb = Builder()
    env = passes.copy_inputs(bb, body.inputs)
    at = bb.add(bb.input((), COUNTER_DTYPE), env[id(body.inputs[0])])
    live = bb.input((), np.bool_)
    env[id(body.inputs[0])] = at if limit is None else bb.minimum(at, _intp(bb, limit - 1))
    passes.replay(bb, body.nodes, env)
    outputs = [env[id(v)] for v in body.outputs]
    go = bb.logical_and(outputs[exit], live)
    outputs[exit] = go if limit is None else bb.logical_and(go, bb.less(at, _intp(bb, limit)))
    return bb.build(outputs)


class _Continued:
    """The record of a continuation's segment loop: the backward loop runs the segments taken, last
    first, each from its tape recomputed from its checkpoint (its count of iterations, without guards)."""

    def __init__(self, vjp, rows, size, segments, count, taken, checkpoints, hoisted):
        self.vjp, self.rows, self.size, self.segments, self.hoisted = vjp, rows, size, segments, hoisted
        self.count, self.taken, self.checkpoints = count, taken, checkpoints

    def backward(self, b, args, received):
        vjp, size, n_carry = self.vjp, self.size, self.vjp.n_carry
        own = list(args[:n_carry]) + list(args[n_carry + 2:])      # carries and invariants
        first_y = 2 * n_carry + 3             # the segment loop's stacked outputs: (segments, size, ...)
        if any(n_carry <= k < first_y for k in received):
            raise IRError("internal: a cotangent reached the state or checkpoints of a segment loop")
        received = {(k if k < n_carry else _stacked(vjp)[k - first_y]): ct for k, ct in received.items()}
        ct_carries, accs, ct_ys = vjp.zero_cotangents(b, own, received)
        present = [y for y in ct_ys if y is not None]
        invariants = own[n_carry:]
        outer = self.checkpoints + [self.count, self.taken] + invariants + self.hoisted + present
        bb = Builder()
        j = bb.input((), COUNTER_DTYPE)
        carry_ins = [bb.input(v.shape, v.dtype) for v in ct_carries + accs]
        ins = [bb.input(v.shape, v.dtype) for v in outer]
        n_cp = len(self.checkpoints)
        cp_ins, (count, taken) = ins[:n_cp], ins[n_cp:n_cp + 2]
        inv_ins = ins[n_cp + 2:n_cp + 2 + len(invariants)]
        hoisted_ins = ins[n_cp + 2 + len(invariants):len(ins) - len(present)]
        y_ins = iter(ins[len(ins) - len(present):])
        zero = _intp(bb, 0)
        s = bb.maximum(bb.subtract(bb.subtract(taken, _intp(bb, 1)), j), zero)    # the discarded j = taken: 0
        # a segment not taken (the loop left in the taped first part or an earlier segment) recomputes
        # no iteration, but its discarded one runs: at the counter the loop left at, which the forward
        # ran too (not past it, where the body's index reads and writes may be out of bounds)
        base = bb.minimum(bb.add(_intp(bb, self.rows), bb.multiply(s, _intp(bb, size))), count)
        ran = bb.where(bb.equal(j, zero), bb.subtract(count, base), _intp(bb, size))   # the last: to `count`
        ran = bb.where(bb.less(j, taken), ran, zero)
        taping_body = vjp.taping_body(based=True, guards=False)
        again = bb.loop(*[bb.index(cp, s, spec=AT_ROW) for cp in cp_ins], *inv_ins, base, ran,
                        body=_counted(taping_body), trip=size, n_carry=n_carry, exit=len(taping_body.outputs))
        tapes = [bb.loop_result(again, index=vjp.n_out + r) for r in range(len(vjp.taped))]
        n = len(ct_carries)
        rows = [bb.index(next(y_ins), s, spec=AT_ROW) if y is not None else None for y in ct_ys]
        cc, aa = vjp.emit_backward(bb, size, carry_ins[:n], carry_ins[n:], tapes, rows, inv_ins, hoisted_ins, base,
                                   ran)
        if self.segments is None:         # (a `while` loop's: as many segments as it took, a run-time count)
            bb.input((), COUNTER_DTYPE)
            loop = b.loop(*ct_carries, *accs, *outer, self.taken, body=bb.build(cc + aa), trip=None,
                          n_carry=n + len(accs))
        else:
            loop = b.loop(*ct_carries, *accs, *outer, body=bb.build(cc + aa + [bb.less(j, taken)]),
                          trip=self.segments, n_carry=n + len(accs), exit=n + len(accs))
        finals = [b.loop_result(loop, index=m) for m in range(n + len(accs))]
        cts = vjp.operand_cotangents(len(own), finals[:n], finals[n:])
        return cts[:n_carry] + [None, None] + cts[n_carry:]


def _counted(body):
    """`body` with one more invariant input, last, an intp `n`: a continue flag, counter < n, returned
    as a last output (a loop of it takes n iterations)."""
    bb = Builder()
    env = passes.copy_inputs(bb, body.inputs)
    n = bb.input((), COUNTER_DTYPE)
    passes.replay(bb, body.nodes, env)
    return bb.build([env[id(v)] for v in body.outputs] + [bb.less(env[id(body.inputs[0])], n)])


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
