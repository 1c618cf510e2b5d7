"""Row fusion, the planning side: reductions along the last axis fused with their elementwise
producers and consumers (softmax, log-sum-exp, layer norm), one pass over each row.

A row group (a plan.Unit with `phases`) iterates over a full shape F = R + (n,), R not empty (over a
vector every reduction is total, which plain horizontal groups fuse): an outer loop over the rows
(index r over R) and inside it, per phase, one inner loop over the row's n elements
(fusion.emit_rows).  Its members, by role:
  - 'full':  a materialized elementwise-style node of shape F, computed at [r, j];
  - 'row':   a reduction over the last axis of an F-shaped operand (keepdims or not), accumulated in
             its phase's inner loop and stored at row r after it; later phases read it broadcast along
             the row (handed over in a register);
  - 'col':   a reduction over every axis but the last (output (n,)): its buffer is the accumulator, set
             to the identity before the row loop and updated at [j] in its phase;
  - 'total': a reduction over all axes of an F-shaped operand: one accumulator over the whole group;
  - 'rowval': a materialized elementwise-style node of shape R or R + (1,) (1 / sqrt(var + eps) of a
             layer norm), computed once per row before its phase's loop.
A member's phase is the first in which all it reads is ready: a 'full' member read at the same [r, j]
in its own phase (handed over in a register), a 'row' member in the phase after its own, a 'rowval'
in its own phase (it is computed before the loop).  Reads of
members through fused values are checked along every path (`_ready_phase`): the index stays [r, j]
(mode FULL: elementwise ops and broadcasts of F-shaped values) or is the row's index (mode ROW:
values of shape R or R + (1,) read under broadcasting along the row, reshapes between the two);
any other path to a member, or a read of a 'col' or 'total' member, keeps the node out.  A 'full'
member read in a later phase or outside the group is stored (the row is still in L1 when a later
phase reloads it); one read only by later phases of the group has a buffer of one row
(`Plan.row_local`: the emitter stores and loads it at [j]).

`row_groups` runs over the units the horizontal grouping formed: consecutive units whose nodes all
have a role over one F join while their reads check; straight-line units (0-d values, guards) that
do not read the group move ahead of it, 0-d values that read it follow it.  A group is kept only if
it holds a row reduction and another member; otherwise its units stay as they were.

Order of summation: a row sum adds the row's elements in the order the loop vectorizer chooses (the
reductions are `reassoc`, as every reduction loop of a kernel), not NumPy's pairwise order: results
differ from the reference executor by rounding only.
"""
from .rules import MATERIALIZE, REDUCE, accumulator_dtype

FULL, ROW, OTHER = "full", "row", "other"


class RowGroup:
    """A row group being formed over full shape `shape` (see the module docstring)."""

    def __init__(self, plan, shape, aligned_ops):
        self.plan, self.shape, self.aligned_ops = plan, shape, aligned_ops
        self.rows = shape[:-1]
        self.row_forms = (self.rows, self.rows + (1,))
        self.role, self.phase, self.members = {}, {}, {}
        self.later_reads = set()            # 'full' members read by a member of a later phase
        self.absorbed, self.ahead, self.deferred = [], [], {}

    # ---- roles and reads -------------------------------------------------------------------------
    def role_of(self, node):
        """The role `node` would have in this group, or None."""
        plan, shape = self.plan, self.shape
        k = plan.kind[id(node)]
        if id(node) in plan.hosted:
            return None
        if node.op in REDUCE:
            x, last = node.args[0], len(shape) - 1
            axes = tuple(sorted(node.params["axis"]))
            if x.shape != shape or k not in ("buf", "reg"):
                return None
            if axes == (last,) and last > 0 and k == "buf":
                return "row"
            if last > 0 and axes == tuple(range(last)) and k == "buf" and accumulator_dtype(node) == node.dtype:
                return "col"
            return "total" if axes == tuple(range(len(shape))) else None
        if k == "buf" and node.op not in MATERIALIZE and node.op != "const":
            if node.shape == shape:
                return "full"
            if node.shape in self.row_forms:
                return "rowval"
        return None

    def _mode(self, n, mode, a):
        """The mode in which operand `a` of fused (or member) node `n` is read when `n` is read in `mode`."""
        if mode == OTHER:
            return OTHER
        if n.op in self.aligned_ops or n.op == "broadcast_to":
            if mode == FULL and a.shape == self.shape:
                return FULL
            if mode == FULL and a.shape == self.rows + (1,):
                return ROW
            if mode == ROW and a.shape == n.shape:
                return ROW
            return OTHER
        if n.op == "reshape" and mode == ROW and a.shape in self.row_forms:
            return ROW
        return OTHER

    def _ready_phase(self, node, role):
        """(phase, 'full' members read) for `node` joining in `role`, or None if it reads the group
        other than in line."""
        if role in ("full", "rowval"):
            mode = FULL if role == "full" else ROW
            stack = [(a, self._mode(node, mode, a)) for a in node.args]
        else:
            stack = [(node.args[0], FULL)]
        seen, phase, read = set(), 0, []
        while stack:
            a, mode = stack.pop()
            if (id(a), mode) in seen:
                continue
            seen.add((id(a), mode))
            r = self.role.get(id(a))
            if r == "full" and mode == FULL:
                phase = max(phase, self.phase[id(a)])
                read.append(a)
            elif r in ("row", "rowval") and mode == ROW:
                phase = max(phase, self.phase[id(a)] + (r == "row"))
            elif r is not None or id(a) in self.deferred:
                return None
            elif self.plan.kind[id(a)] == "fused":
                stack.extend((b, self._mode(a, mode, b)) for b in a.args)
        return phase, read

    # ---- forming the group ---------------------------------------------------------------------
    def join(self, unit):
        """Add the unit's nodes as members if every one has a role and reads in line; True if added."""
        if unit.copy_of is not None:
            return False
        added = []
        for node in unit.nodes:
            role = self.role_of(node)
            ready = role and self._ready_phase(node, role)
            if not ready:
                for n in added:
                    del self.role[id(n)], self.phase[id(n)], self.members[id(n)]
                return False
            phase, read = ready
            self.role[id(node)], self.phase[id(node)], self.members[id(node)] = role, phase, node
            self.later_reads.update(id(a) for a in read if self.phase[id(a)] < phase)
            added.append(node)
        self.absorbed.append(unit)
        return True

    def step_aside(self, unit):
        """Straight-line units: ahead of the group if they do not read it, after it if they do (0-d
        values only); True if placed."""
        if unit.copy_of is not None or len(unit.nodes) != 1:
            return False
        node = unit.nodes[0]
        k = self.plan.kind[id(node)]
        if k not in ("reg", "guard"):
            return False
        if not self.plan._depends_on(node, {**self.members, **self.deferred}):
            self.ahead.append(unit)
        elif k == "reg":
            self.deferred[id(node)] = node
        else:
            return False
        self.absorbed.append(unit)
        return True

    def units(self, unit_type):
        """The units that replace the absorbed ones: the ahead units, the group, the deferred units;
        or the absorbed units as they were when the group is not worth it."""
        roles = list(self.role.values())
        if "row" not in roles or len(roles) < 2:
            return self.absorbed
        plan, nodes = self.plan, list(self.members.values())
        outside = {id(n) for n in nodes if self.role[id(n)] == "full" and plan._read_outside(n, self.members)}
        stored = frozenset(outside | self.later_reads)
        for vid in self.later_reads - outside:          # read only by later phases: one row's buffer
            plan.row_local.add(vid)
            plan.loc[vid] = ("ws", plan.workspace.alloc(max(self.shape[-1] * self.members[vid].dtype.itemsize, 8), 64))
        group = unit_type(nodes, self.shape, stored)
        group.roles = dict(self.role)
        group.phases = [[n for n in nodes if self.phase[id(n)] == p] for p in range(max(self.phase.values()) + 1)]
        after = [u for u in self.absorbed if id(u.nodes[0]) in self.deferred]
        return self.ahead + [group] + after


def _start(plan, unit, aligned_ops):
    """A new RowGroup holding `unit`, or None if the unit cannot start one."""
    if unit.copy_of is not None:
        return None
    first = unit.nodes[0]
    shape = first.args[0].shape if first.op in REDUCE and first.args else first.shape
    if len(shape) < 2 or shape[-1] < 2 or 0 in shape:
        return None
    group = RowGroup(plan, shape, aligned_ops)
    return group if group.join(unit) else None


def row_groups(plan, units, unit_type, aligned_ops):
    """`units` with row groups formed over runs of consecutive units (see the module docstring)."""
    out, group = [], None
    for unit in units:
        if group is not None and (group.join(unit) or group.step_aside(unit)):
            continue
        if group is not None:
            out += group.units(unit_type)
        group = _start(plan, unit, aligned_ops)
        if group is None:
            out.append(unit)
    if group is not None:
        out += group.units(unit_type)
    return out
