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
"""
ALIGN = 64


def reuse_workspace(plan):
    """Re-place plan's workspace buffers by liveness; returns (bytes before, bytes after)."""
    before = plan.workspace.size
    classes = _intervals(plan)
    if not classes:
        return before, before
    placed, new_offset, peak = [], {}, 0
    for old, (start, end, size) in sorted(classes.items(), key=lambda item: (item[1][0], item[0])):
        placed = [p for p in placed if p[1] >= start]          # those still live at `start`
        offset = 0
        for p_offset, _, p_size in sorted((p[2], p[1], p[3]) for p in placed):
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
    return classes


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
