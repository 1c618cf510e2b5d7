"""Loop bodies with branches: several recorded paths of one loop's iteration joined into one body whose
decisions on data are `cond` ops (ir/conditional.py).

A path is one recorded iteration (loopbody.Iteration) from the loop header back to it.  Paths of one
loop agree on everything up to the first guard whose expected outcome differs (a bool guard at the
same place, on the same operand): there the body branches, a cond on the guard's predicate whose true
branch continues the paths that expected True and whose false branch the others, each to the end of
the iteration (what follows the `if` in the source is recorded in both branches: each is a whole path
to the next header).  Guards all paths agree on stay guards.  A guard on an int (`int(x)`, a scalar
index) forks by value: a cond on `value == v` for the first value seen, whose false branch forks
again on the others, the last one a guard (a value never seen fails it).

Carries.  The joined body carries every frame slot some path changes (`Joined.items`); a path that
leaves one unchanged passes it through, and reads its value at the header as that carry.  Operands
are compared by that joined class (`_Path.norm`).  Paths that differ anywhere but at a bool guard, or
whose carries cannot be told apart (one IR value held by two carried slots), cannot be joined (`join`
returns None).
"""
import numpy as np

from ...ir import Builder
from ...ir.conditional import result_values
from ...ir.loops import COUNTER_DTYPE, UNBOUNDED
from .loopbody import counter_value, params_key, with_count
from ..arrays.values import TracedArray, rebind

_CONSTANTS = ("const", "fill")


class Joined:
    """A loop body made of paths: `body`, the frame slot of each of its carries (`items`, the first
    slot holding it), per frame slot its carry or None (`positions`), its invariants (the loop's
    operands after the carries' inits)."""

    def __init__(self, body, items, positions, invariants):
        self.body, self.items, self.positions, self.invariants = body, items, positions, invariants


def single(iteration, first, step):
    """The Joined of one path (every iteration alike)."""
    items = [iteration.positions.index(j) for j in range(len(iteration.carry_inits))]
    return Joined(iteration.body(first, step), items, iteration.positions, iteration.invariants)


def _carries(iterations):
    """(items, positions, per path: [joined carry of each of its carries], per path: {id(value at its
    header): joined carry} of the joined carries it leaves unchanged); None when a path's values
    cannot be told apart (one IR value in two joined carries)."""
    n = len(iterations[0].positions)
    if any(len(it.positions) != n for it in iterations):
        return None
    keys, items, positions = {}, [], []
    for m in range(n):
        key = tuple(it.positions[m] for it in iterations)
        if all(k is None for k in key):
            positions.append(None)
            continue
        if key not in keys:
            keys[key] = len(items)
            items.append(m)
        positions.append(keys[key])
    carry_of, start_of = [], []
    for p, it in enumerate(iterations):
        mapping, starts = [None] * len(it.carry_inits), {}
        for key, c in keys.items():
            if key[p] is not None:
                if mapping[key[p]] not in (None, c):
                    return None
                mapping[key[p]] = c
                continue
            start = it.starts[items[c]]
            if start is None or starts.setdefault(id(start), c) != c:
                return None
        if any(id(v) in starts for v in it.carry_inits):
            return None
        carry_of.append(mapping)
        start_of.append(starts)
    return items, positions, carry_of, start_of


class _Path:
    """One Iteration laid out for joining: per entry its joined fingerprint (operands by joined class;
    the last entry: what it leaves in each joined carry) and, but for the last, the node recorded
    there with its index in the iteration (entry r is the path's r-th node that is not a constant);
    `outs` per joined carry the Value the path leaves in it."""

    def __init__(self, iteration, carry_of, start_of, items):
        self.it, self.carry_of, self.start_of = iteration, carry_of, start_of
        self.nodes = [(k, n) for k, n in enumerate(iteration.nodes) if n.op not in _CONSTANTS]
        self.invariants = {}
        self.outs = [iteration.carry_outs[carry_of.index(c)] if c in carry_of else iteration.starts[m]
                     for c, m in enumerate(items)]
        self.entries = [(n.op, params_key(n), n.shape, n.dtype.str, tuple(self.norm(a) for a in n.args))
                        for _, n in self.nodes]
        self.entries.append(tuple(self.norm(v) for v in self.outs))

    def norm(self, v):
        """The joined class of operand `v`: ('m', c) for a carry or a carried slot's value at the
        header, ('l', r) for the r-th non-constant node of the path; else its class in the iteration
        (invariants noted)."""
        cls = self.it.classify(v, self.it._local)
        if cls[0] == "c":
            return ("m", self.carry_of[cls[1]])
        if cls[0] == "v":
            if id(v) in self.start_of:
                return ("m", self.start_of[id(v)])
            self.invariants.setdefault(id(v), v)
        return cls


def _fork_guard(group, pos):
    """The guard node of each path at `pos` when they differ only in its expected outcome there (a bool,
    or the value of an int: `int(x)`, an index); else None."""
    found = []
    for p in group:
        if pos >= len(p.nodes):
            return None
        node = p.nodes[pos][1]
        if node.op != "guard" or node.args[0].shape != () or node.args[0].dtype.kind not in "biuf" \
                or not isinstance(node.params["expected"], (int, np.integer, np.bool_)):
            return None
        found.append(node)
    first = group[0].entries[pos]
    for p in group[1:]:
        e = p.entries[pos]
        if e[0] != first[0] or e[1][1:] != first[1][1:] or e[2:] != first[2:]:
            return None
    return found


class _Segment:
    """Emission of a group of paths from one position into one builder (`outer` resolves what they
    read from before it)."""

    def __init__(self, b, group, outer):
        self.b, self.group, self.outer = b, group, outer
        self.local = {id(p): {} for p in group}
        self.consts = {}

    def resolve(self, p, v):
        """The Value standing for operand `v` of path `p` in this segment's builder."""
        cls = p.norm(v)
        if cls[0] == "k":
            if id(v) not in self.consts:
                self.consts[id(v)] = self.b.emit(v.op, **v.params)
            return self.consts[id(v)]
        if cls[0] == "l" and cls[1] in self.local[id(p)]:
            return self.local[id(p)][cls[1]]
        return self.outer(p, v)

    def grow(self, pos):
        """Emit the group's paths from entry `pos`: the next carries, or None when they cannot join."""
        group, b = self.group, self.b
        while True:
            entries = [p.entries[pos] for p in group]
            if any(e != entries[0] for e in entries):
                return self.fork(pos)
            p0 = group[0]
            if pos == len(p0.nodes):                    # every path ended: its carried outputs
                return [self.resolve(p0, v) for v in p0.outs]
            node = p0.nodes[pos][1]
            new = b.emit(node.op, *[self.resolve(p0, a) for a in node.args], **node.params)
            for p in group:
                self.local[id(p)][pos] = new
            pos += 1

    def fork(self, pos):
        """The cond where the group's paths part at `pos` (None: they part elsewhere than at a guard)."""
        guards = _fork_guard(self.group, pos)
        if guards is None:
            return None
        pred = self.resolve(self.group[0], guards[0].args[0])
        first = guards[0].params["expected"]
        sides = ([p for p, g in zip(self.group, guards) if g.params["expected"] == first],
                 [p for p, g in zip(self.group, guards) if g.params["expected"] != first])
        starts = (pos + 1, pos + 1)
        if pred.dtype != bool:            # an int: this value, or the others (a guard or another fork at pos)
            pred, starts = self.b.equal(pred, self.b.const(np.asarray(first, pred.dtype))), (pos + 1, pos)
        elif not first:
            sides = sides[::-1]
        if not all(sides):
            return None
        operands = {}
        for p in self.group:
            for a in [a for _, n in p.nodes[min(starts):] for a in n.args] + p.outs:
                cls = p.norm(a)
                if cls[0] != "k" and not (cls[0] == "l" and cls[1] > pos):
                    v = self.resolve(p, a)
                    operands[id(v)] = v
        operands = list(operands.values())
        branches = []
        for side, start in zip(sides, starts):
            bb = Builder()
            inputs = {id(v): bb.input(v.shape, v.dtype) for v in operands}
            outs = _Segment(bb, side, lambda p, v, inputs=inputs: inputs[id(self.resolve(p, v))]).grow(start)
            if outs is None:
                return None
            branches.append(bb.build(outs))
        return result_values(self.b, self.b.cond(pred, *operands, branches=tuple(branches)))


def join(iterations, first, step):
    """The Joined body of `iterations` (paths of one loop; the counter of iteration i of the loop op is
    the range value first + step * i), or None when they cannot be joined."""
    found = _carries(iterations)
    if found is None:
        return None
    items, positions, carry_of, start_of = found
    paths = [_Path(it, c, s, items) for it, c, s in zip(iterations, carry_of, start_of)]
    invariants = {}
    for p in paths:
        invariants.update(p.invariants)
    b = Builder()
    counter = b.input((), COUNTER_DTYPE)
    types = [iterations[0].carry_inits[carry_of[0].index(c)] if c in carry_of[0] else iterations[0].starts[m]
             for c, m in enumerate(items)]
    carries = [b.input(v.shape, v.dtype) for v in types]
    inputs = {i: b.input(v.shape, v.dtype) for i, v in invariants.items()}
    count = []

    def outer(p, v):
        cls = p.norm(v)
        if cls[0] == "i":
            if not count:                   # made where a path first reads the counter
                count.append(counter_value(b, counter, first, step))
            return count[0]
        if cls[0] == "m":
            return carries[cls[1]]
        return inputs[id(v)]
    outs = _Segment(b, paths, outer).grow(0)
    return None if outs is None else Joined(b.build(outs), items, positions, list(invariants.values()))


class Split:
    """A rolled loop as far as it ran (rolling.py): where its nodes start in the builder, the paths of
    its body, the header it started from (its carries' inits), its iterations so far (`done`, of which
    `ran` fast-forwarded), its first counter value and step, and its entry in Rolling.rolled (None while
    no loop node is recorded)."""

    __slots__ = ("start", "paths", "header", "done", "ran", "first", "step", "entry")

    def __init__(self, start, paths, header, done, ran, first, step):
        self.start, self.paths, self.header = start, paths, header
        self.done, self.ran, self.first, self.step, self.entry = done, ran, first, step, None


def known_values(ctx, header):
    """id(IR Value) -> concrete value, for the traced values of the frame at `header` (rolling.Header),
    the inputs and the arrays read from the environment."""
    known = {}
    for x in header.items:
        if type(x) is TracedArray:
            known[id(x.ir)] = x.value
    for traced, _ in ctx.arguments.values():
        if traced.ir.op == "input":
            known[id(traced.ir)] = traced.value
    for entry, array in ctx.env_arrays():                 # arrays read from globals, closures...
        known[id(ctx.builder.inputs[entry.index])] = array
    return known


def emit_loop(b, joined, body, split, header, run):
    """Record into builder `b` the loop node of `body` (joined.body, or its form leaving on data) on the carries at
    split.header; the frame's traced values at `header` rebound to its results (in place for those
    that were one object across iterations), as id -> TracedArray (and, when it leaves on its
    continue flag, "count" -> the iterations it takes).  `run`: (trip (None: a loop leaving on its
    flag only, of a run-time trip count UNBOUNDED), the concrete carries after it,
    the ids of the objects kept across iterations, whether it leaves); "loop" -> the loop node."""
    trip, finals, previous, leaves = run
    n_carry = len(joined.items)
    inits = [split.header.irs[m] for m in joined.items]
    unbounded = [b.const(np.asarray(UNBOUNDED, COUNTER_DTYPE))] if trip is None else []    # a `while` loop
    loop = b.emit("loop", *inits, *joined.invariants, *unbounded, body=with_count(body) if unbounded else body,
                  trip=trip, n_carry=n_carry, exit=n_carry if leaves else None)
    results = [b.loop_result(loop, index=k) for k in range(n_carry)]
    replace = {"loop": loop}
    for x, k in zip(header.items, joined.positions):
        if k is None or id(x) in replace:
            continue
        value = like_value(x.value, finals[k])
        if id(x) in previous:      # one object across iterations: rebound in place (as writes are)
            replace[id(x)] = rebind(x, results[k], value)
        else:              # (a view read afresh in each iteration stays a view of its base, unlinked:
            replace[id(x)] = TracedArray(results[k], value, x.base)     # writes through it are refused)
    if leaves:
        replace["count"] = b.loop_result(loop, index=n_carry)
    return replace


def like_value(template, array):
    """Concrete value `array` (from the reference evaluation) in the kind of `template`."""
    if isinstance(template, np.ndarray):
        return np.array(array, dtype=template.dtype, copy=True).reshape(template.shape)
    if isinstance(template, np.generic):
        return np.asarray(array, template.dtype)[()]
    return type(template)(np.asarray(array)[()])
