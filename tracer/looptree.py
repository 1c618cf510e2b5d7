"""Loop bodies with branches: several recorded paths of one loop's iteration joined into one body whose
decisions on data are `cond` ops (ir/conditional.py).

A path is one recorded iteration (loopbody.Iteration) from the loop header back to it.  Paths of one
loop agree on everything up to the first guard whose expected outcome differs (a bool guard at the
same place, on the same operand): there the body branches, a cond on the guard's predicate whose true
branch continues the paths that expected True and whose false branch the others, each to the end of
the iteration (what follows the `if` in the source is recorded in both branches: each is a whole path
to the next header).  Guards all paths agree on stay guards.  Paths that differ anywhere else, or
whose carries are not the same frame slots, cannot be joined (`join` returns None).
"""
from ..ir import Builder
from ..ir.conditional import result_values
from ..ir.loops import COUNTER_DTYPE
from .loopbody import counter_value

_CONSTANTS = ("const", "fill")


class _Path:
    """One Iteration laid out for joining: its fingerprint entries (the last one: its carried outputs)
    and, per entry but the last, the node recorded there and its index in the iteration."""

    def __init__(self, iteration):
        self.it = iteration
        self.entries = iteration.fingerprint
        self.nodes = [(k, n) for k, n in enumerate(iteration.nodes) if n.op not in _CONSTANTS]

    def cls(self, v):
        return self.it.classify(v, self.it._local)


def _fork_guard(group, pos):
    """The guard node of each path at `pos` when they differ only in its expected bool outcome there;
    else None."""
    found = []
    for p in group:
        if pos >= len(p.nodes):
            return None
        node = p.nodes[pos][1]
        if node.op != "guard" or node.args[0].dtype != bool or not isinstance(node.params["expected"], (bool, int)):
            return None
        found.append(node)
    first = group[0].entries[pos]
    for p in group[1:]:
        e = p.entries[pos]
        if e[0] != first[0] or e[1][1:] != first[1][1:] or e[2:] != first[2:]:
            return None
    return found


class _Segment:
    """Emission of a group of paths from one position into one builder: values they share by class."""

    def __init__(self, b, group, outer):
        self.b, self.group, self.outer = b, group, outer
        self.local = {id(p): {} for p in group}
        self.consts = {}

    def resolve(self, p, v):
        """The Value standing for operand `v` of path `p` in this segment's builder."""
        cls = p.cls(v)
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
                return [self.resolve(p0, v) for v in p0.it.carry_outs]
            node = p0.nodes[pos][1]
            new = b.emit(node.op, *[self.resolve(p0, a) for a in node.args], **node.params)
            for p in group:
                self.local[id(p)][p.nodes[pos][0]] = new
            pos += 1

    def fork(self, pos):
        guards = _fork_guard(self.group, pos)
        if guards is None:
            return None
        sides = ([p for p, g in zip(self.group, guards) if g.params["expected"]],
                 [p for p, g in zip(self.group, guards) if not g.params["expected"]])
        if not all(sides):
            return None
        pred = self.resolve(self.group[0], guards[0].args[0])
        operands = {}
        for p in self.group:
            at = p.nodes[pos][0]
            used = [a for _, n in p.nodes[pos + 1:] for a in n.args] + list(p.it.carry_outs)
            for a in used:
                cls = p.cls(a)
                if cls[0] != "k" and not (cls[0] == "l" and cls[1] > at):
                    v = self.resolve(p, a)
                    operands[id(v)] = v
        operands = list(operands.values())
        branches = []
        for side in sides:
            bb = Builder()
            inputs = {id(v): bb.input(v.shape, v.dtype) for v in operands}
            inner = _Segment(bb, side, lambda p, v, inputs=inputs: inputs[id(self.resolve(p, v))])
            outs = inner.grow(pos + 1)
            if outs is None:
                return None
            branches.append(bb.build(outs))
        return result_values(self.b, self.b.cond(pred, *operands, branches=tuple(branches)))


def join(iterations, first, step):
    """The closed body Trace joining `iterations` (paths of one loop, as Iteration.body: inputs
    `[i, *carries, *invariants]` with `invariants(iterations)` as the invariants), or None."""
    if any(it.positions != iterations[0].positions for it in iterations):
        return None
    paths = [_Path(it) for it in iterations]
    b = Builder()
    counter = b.input((), COUNTER_DTYPE)
    carries = [b.input(v.shape, v.dtype) for v in iterations[0].carry_inits]
    invariants = {id(v): b.input(v.shape, v.dtype) for v in invariant_values(iterations)}
    count = []

    def outer(p, v):
        cls = p.cls(v)
        if cls[0] == "i":
            if not count:                   # made where a path first reads the counter
                count.append(counter_value(b, counter, first, step))
            return count[0]
        if cls[0] == "c":
            return carries[cls[1]]
        return invariants[id(v)]
    outs = _Segment(b, paths, outer).grow(0)
    return None if outs is None else b.build(outs)


def invariant_values(iterations):
    """The invariants of the joined body, in order: every path's, without repeats."""
    found = {}
    for it in iterations:
        for v in it.invariants:
            found.setdefault(id(v), v)
    return list(found.values())
