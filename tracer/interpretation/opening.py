"""A rolled loop's first iteration taken into its loop op (tracer/interpretation/rolling.py).

The first iteration of a `for` loop often differs from the next ones only because a value it changes
starts as a plain Python number (`s = 0.0` before `for i in range(n): s = s + f(x[i])`): the first
iteration records `add(const 0.0, ...)` where the others record `add(carry, ...)`, so the loop op used
to start at the second iteration, with the first one's guards recorded as it ran (a later call deciding
one of them otherwise, or leaving the loop in it, then needed a trace of its own).

When the iterations that matched are the second and third, `opening` checks whether the first did what
one of the body's paths does, with those numbers as the carries' values: the frame's state at its header
is the second header's with numbers where the carries are (each promoted to a constant of the carry's
type), its recorded operations are the path's (op by op, operands of the same class, a carry's read
being a read of its promoted constant), it reads no value made in it through the frame, and the body
run once from that state (the reference evaluation) passes its guards and gives the second header's
values bit for bit.  The loop op then starts at the first iteration: its guards are the body's, so every
count and every branch from the first iteration on uses one trace.
"""
import numpy as np

from ..arrays.loopindex import LoopIndex
from ..arrays.values import TracedArray, const
from .fastforward import run_iterations
from .loopbody import emits_key, params_key

_CONSTANTS = ("const", "fill")
_NUMBERS = (float, int)


class Opening:
    """The state at a loop's first header with its carried numbers promoted (what rolling.Header has
    and the loop op needs: node count, flattened items, their IR, aliases, the counter before it)."""

    __slots__ = ("n", "items", "irs", "aliases", "env", "last", "promoted", "lengths")

    def __init__(self, header, items, promoted):
        self.n, self.env, self.last, self.items, self.promoted = header.n, header.env, header.last, items, promoted
        self.lengths = header.lengths
        self.irs = [x.ir if type(x) is TracedArray else None for x in items]
        first = {}
        self.aliases = [first.setdefault(id(x), k) if type(x) is TracedArray else None for k, x in enumerate(items)]


def _promoted(x0, x1):
    """A TracedArray constant standing for number `x0` where the next header holds traced `x1` (0-d,
    the value converts exactly), else None."""
    if type(x0) not in _NUMBERS or type(x1) is not TracedArray or x1.ir.shape != ():
        return None
    array = np.asarray(x0, dtype=x1.ir.dtype)
    if array[()] != x0:
        return None
    value = array if type(x1.value) is np.ndarray else type(x1.value)(array[()])
    if type(value) is not type(x1.value):
        return None
    return TracedArray(const(array), value)


def _key(nodes, carry_inits, carry_outs, counters, promoted=None, emits=()):
    """What `nodes` compute (as loopbody.Iteration's fingerprint, constants not counted as nodes): a read
    of carry j in `promoted` (j -> its constant's Value) is keyed as a read of that constant."""
    carry = {}
    for j, v in enumerate(carry_inits):
        carry.setdefault(id(v), j)
    local, key = {}, []

    def cls(v):
        if id(v) in counters:
            return ("i",)
        if v.op in _CONSTANTS:
            return ("k", v.op, params_key(v), v.shape, v.dtype.str)
        if id(v) in local:
            return ("l", local[id(v)])
        j = carry.get(id(v))
        if j is not None:
            return cls(promoted[j]) if promoted and j in promoted else ("c", j)
        return ("v", id(v))
    for node in nodes:
        if node.op in _CONSTANTS:
            continue
        key.append((node.op, params_key(node), node.shape, node.dtype.str, tuple(cls(a) for a in node.args)))
        local[id(node)] = len(local)
    key.append(tuple(cls(v) for v in carry_outs))
    if emits:
        key.append(emits_key(emits, cls))
    return tuple(key)


def _path_matched(path, nodes, start, after, counters, emits):
    """The promoted carries {j: constant Value} under which the first iteration (`nodes`, from items
    `start` to header `after`) computes what `path` computes; None when it does not."""
    carry_of = {}
    for m, j in enumerate(path.positions):
        if j is not None:
            carry_of.setdefault(j, m)
    if sorted(carry_of) != list(range(len(path.carry_inits))):
        return None
    promoted, inits = {}, []
    for j in range(len(path.carry_inits)):
        x = start[carry_of[j]]
        if type(x) is not TracedArray:
            return None
        inits.append(x.ir)
        if x.ir.op == "const":
            promoted[j] = x.ir
    outs = [after.irs[carry_of[j]] for j in range(len(path.carry_inits))]
    if any(v is None for v in outs):
        return None
    mine = _key(nodes, [v if j not in promoted else None for j, v in enumerate(inits)], outs, counters,
                emits=emits)
    theirs = _key(path.nodes, path.carry_inits, path.carry_outs, path.counters, promoted, path.emits)
    return promoted if mine == theirs else None


def opening(watch, opening_header, counters, paths, joined, invariants, same_state):
    """The Opening to start the loop op of `joined` (its counter counting from the first iteration)
    from, when the first iteration (from `opening_header` to the watch's oldest header, `counters` its
    counter Values) can be its first one (see the module docstring); else None.  `invariants`: the
    concrete values of joined.invariants."""
    after = watch.headers[0]
    if len(opening_header.items) != len(after.items) or opening_header.env > after.env:
        return None               # (environment read first in the first iteration: checked per call anyway)
    items = list(opening_header.items)
    step = after.last - opening_header.last
    for m, (x0, x1) in enumerate(zip(items, after.items)):
        if type(x1) is LoopIndex and x1.watch is watch:       # the loop variable (any other use of a
            items[m] = LoopIndex(watch, x1.base - step, x1.a, x1.b)    # counter records IR, compared below)
        elif joined.positions[m] is not None and type(x0) is not TracedArray:
            items[m] = _promoted(x0, x1)
            if items[m] is None:
                return None
    start = Opening(opening_header, items, None)
    if not same_state(start, after, watch):
        return None
    b = watch.rolling.ctx.builder
    nodes = b.nodes[opening_header.n:after.n]
    made = {id(n) for n in nodes}
    if any(id(v) in made for v in joined.invariants):
        return None
    for m, (x0, x1) in enumerate(zip(items, after.items)):     # slots the body does not carry: unchanged
        if joined.positions[m] is None and type(x0) is TracedArray and x0.ir is not x1.ir:
            return None
    if not any(_path_matched(p, nodes, items, after, counters, watch.appends.first) is not None for p in paths):
        return None
    carries = [np.asarray(items[m].value) for m in joined.items]
    done, finals, _ = run_iterations(joined.body, carries, invariants, 1, len(carries))
    if done != 1:
        return None
    for m, value in zip(joined.items, finals):
        want = np.asarray(after.items[m].value)
        value = np.asarray(value)
        if value.dtype != want.dtype or value.shape != want.shape or value.tobytes() != want.tobytes():
            return None
    return start


def rewound(watch, paths, first, step, invariants, same_state):
    """(how many recorded iterations the loop op of `paths` runs again, the header it starts from): the
    two that matched, and the first one too when it can (`opening`); `first`: the counter's value in
    the iteration about to start."""
    k = len(watch.iterations)
    if k == 2 and watch.opening is not None and watch.arrivals == 4 and not watch.rolls:
        whole = watch._body(paths, first - 3 * step, step)
        start = opening(watch, watch.opening, watch.first_counters, paths, whole, invariants, same_state)
        if start is not None:
            return 3, start
    return k, watch.headers[-1 - k]
