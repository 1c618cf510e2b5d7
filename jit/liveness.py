"""Buffer reuse inside a kernel: workspace offsets by liveness (plan.py calls `reuse_workspace` once
its units are formed).

The planner first gives every workspace buffer its own byte range (a bump allocator).  Here each
buffer gets a live interval in units (plan.Unit, the emission order): from the first unit that
writes it to the last unit that reads it, directly or through fused values computed inside that
unit's loops; an index_set/index_add updating its operand in place shares the operand's buffer, so
their intervals join.  Buffers whose intervals do not overlap may share bytes.  A unit counts as one
point in time, so a buffer a unit reads is never given to a value the same unit writes (a loop nest
may read and write at different indices).  Offsets are chosen first-fit in order of interval start,
against the buffers still live then; the workspace shrinks to the peak (`Plan.peak_bytes`, against
`Plan.unshared_bytes` before).  Plans with nested plans (loop bodies sharing the workspace) keep the
bump allocation.

In place: a loop unit (a horizontal or row group, or one elementwise node) that is the last to read a
buffer u may write a value v of u's size over it when every read of u in the unit is at the
iteration's own index (through elementwise ops of the unit's shape) and happens before v is stored
in that iteration (by v itself or by members before it; in a row group, in v's phase or earlier).
The softmax gradient's G then overwrites the logits row it was computed from, still in L1, instead of
missing the cache on a fresh 4 MB buffer (W8's stores stalled on it).
"""
from .rules import MATERIALIZE, REDUCE

ALIGN = 64


def reuse_workspace(plan, aligned_ops):
    """Re-place plan's workspace buffers by liveness; returns (bytes before, bytes after).
    `aligned_ops`: the elementwise ops that read their operands at their own index."""
    before = plan.workspace.size
    classes, by_value = _intervals(plan)
    if not classes:
        return before, before
    over = _in_place(plan, by_value, classes, aligned_ops)
    placed, new_offset, peak = [], {}, 0
    for old, (start, end, size) in sorted(classes.items(), key=lambda item: (item[1][0], item[0])):
        placed = [p for p in placed if p[1] >= start]          # those still live at `start`
        offset = new_offset[over[old]] if old in over else 0     # (in place: over the buffer it replaces)
        for p_offset, _, p_size in sorted((p[2], p[1], p[3]) for p in placed if old not in over):
            if offset + size <= p_offset:
                break
            offset = max(offset, -(-(p_offset + p_size) // ALIGN) * ALIGN)
        placed.append((old, end, offset, size))
        new_offset[old] = offset
        peak = max(peak, offset + size)
    for vid, (kind, where) in list(plan.loc.items()):
        if kind == "ws" and where in new_offset:
            plan.loc[vid] = ("ws", new_offset[where])
    plan.workspace.size = -(-peak // ALIGN) * ALIGN
    return before, plan.workspace.size


def _intervals(plan):
    """{first-pass offset: [first unit, last unit, bytes]} of every workspace buffer a unit touches."""
    owner = {}                                    # first-pass offset -> bytes of its buffer
    by_value = {}
    for node in plan.trace.nodes:
        loc = plan.loc.get(id(node))
        if loc is not None and loc[0] == "ws" and plan.kind[id(node)] == "buf":
            size = max((node.shape[-1] if id(node) in plan.row_local else node.size) * node.dtype.itemsize, 8)
            owner[loc[1]] = max(owner.get(loc[1], 0), size)
            by_value[id(node)] = loc[1]
    classes = {}

    def touch(offset, u):
        span = classes.setdefault(offset, [u, u, owner[offset]])
        span[0], span[1] = min(span[0], u), max(span[1], u)

    for u, unit in enumerate(plan.units):
        nodes = [unit.copy_of] if unit.copy_of is not None else unit.nodes
        for node in nodes:
            if id(node) in by_value:
                touch(by_value[id(node)], u)
            for read in _buffers_read(plan, node, by_value):
                touch(read, u)
    for offset, size in owner.items():      # (a buffer no unit touches keeps bytes of its own)
        classes.setdefault(offset, [0, len(plan.units), size])
    return classes, by_value


def _in_place(plan, by_value, classes, aligned_ops):
    """{first-pass offset of v: that of u} for the values a loop unit writes over a buffer u it is the
    last to read (see the module docstring)."""
    over, taken = {}, set()
    for t, unit in enumerate(plan.units):
        order = [n for phase in unit.phases for n in phase] if unit.phases else unit.nodes
        if unit.copy_of is not None or not order:
            continue
        if len(order) == 1:
            node = order[0]
            if node.op in MATERIALIZE or id(node) in plan.hosted or plan.kind[id(node)] != "buf":
                continue
        shape = unit.shape or order[0].shape
        last = {}                   # u -> position of the last member reading it, None if read elsewhere
        for i, n in enumerate(order):
            for u, aligned in _reads(plan, n, by_value, shape, aligned_ops):
                last[u] = i if aligned and last.get(u, 0) is not None else None
        for i, v in enumerate(order):
            mine = by_value.get(id(v))
            if (mine is None or v.shape != shape or id(v) in plan.row_local
                    or (len(order) > 1 and id(v) not in unit.stored)):
                continue
            for u, at in last.items():
                start, end, size = classes[u]
                if (at is not None and at <= i and u != mine and u not in taken and start < t == end
                        and size == classes[mine][2] and classes[mine][0] == t):
                    over[mine] = u
                    taken.add(u)
                    break
    return over


def _reads(plan, node, by_value, shape, aligned_ops):
    """(first-pass offset, read at the iteration's own index?) of each workspace buffer loop member
    `node` of a unit iterating over `shape` reads, directly or through fused values."""
    ok = node.op in aligned_ops or node.op in REDUCE
    stack, seen = [(a, ok) for a in node.args], set()
    while stack:
        a, ok = stack.pop()
        ok = ok and a.shape == shape
        if (id(a), ok) in seen:
            continue
        seen.add((id(a), ok))
        if id(a) in by_value:
            yield by_value[id(a)], ok
        elif plan.kind.get(id(a)) == "fused":
            stack.extend((b, ok and a.op in aligned_ops) for b in a.args)


def _buffers_read(plan, node, by_value):
    """The first-pass offsets of the workspace buffers `node` reads, directly or through fused values."""
    found, stack, seen = set(), list(node.args), set()
    while stack:
        a = stack.pop()
        if id(a) in seen:
            continue
        seen.add(id(a))
        if id(a) in by_value:
            found.add(by_value[id(a)])
        elif plan.kind.get(id(a)) == "fused":
            stack.extend(a.args)
    return found
