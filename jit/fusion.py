"""Horizontal loop fusion, the emission side: one loop nest computing every node of a group the plan
formed (plan.Unit: consecutive top-level nodes iterating over the same shape, e.g. the value and every
gradient of a value_and_grad trace), one pass over memory.

A group member is a materialized elementwise-style node of shape S (computed by access) or a
reduction over all axes of an operand of shape S.  Members read one another only aligned (the plan
checks it), so a member's value computed earlier in the same iteration is handed over in a register
(no reload); members read only inside the group (not in Unit.stored) are never stored.

Row groups (rowgroups.py plans them: Unit.phases) run `emit_rows`: an outer loop over the rows and,
per phase, an inner loop over the row's elements; a row reduction finished after its phase's loop is
stored and handed over to the later phases as one register per row.
"""
from .llvmtext import literal
from .rules import REDUCE, Accumulator
from .scalar_ops import cast


def emit_group(em, unit):
    """One loop nest over `unit.shape` computing every node of the group, in program order."""
    nodes = unit.nodes
    accumulators = {id(n): Accumulator(em, n) for n in nodes if n.op in REDUCE}
    for acc in accumulators.values():
        acc.start()
    body = group_body(em, nodes, unit.stored, accumulators)
    em.loops(unit.shape, body)
    for acc in accumulators.values():
        acc.finish([])


def group_body(em, nodes, stored, accumulators):
    """The loop body computing every node of a group at index idx: reductions fold their operand into
    their Accumulator, the others are computed (stored when in `stored`) and handed over to later members."""
    def body(idx):
        for n in nodes:
            if id(n) in accumulators:
                accumulators[id(n)].add(em.value(n.args[0], idx))
            else:
                value = em.access(n, idx)
                if id(n) in stored:
                    em.store(n, idx, value)
                em.hand_over(n, idx, value)
    return body


def emit_rows(em, unit):
    """A row group: accumulators of 'total' members around the whole loop nest, 'col' members'
    buffers set to their identity first, then per row each phase's loop (see rowgroups.py)."""
    shape, roles = unit.shape, unit.roles
    accs = {id(n): Accumulator(em, n) for n in unit.nodes if roles[id(n)] not in ("full", "rowval")}
    for n in unit.nodes:
        if roles[id(n)] == "total":
            accs[id(n)].start()
        elif roles[id(n)] == "col":
            identity = literal(accs[id(n)].identity, n.dtype)
            em.loops(n.shape, lambda idx, n=n: em.store(n, idx, identity))

    def row(ridx):
        for phase in unit.phases:
            for n in phase:
                if roles[id(n)] == "rowval":
                    idx = list(ridx) + [0] * (n.ndim - len(ridx))
                    value = em.access(n, idx)
                    em.store(n, idx, value)
                    em.hand_over(n, idx, value)
            ends = [accs[id(n)] for n in phase if roles[id(n)] == "row"]
            for acc in ends:
                acc.start()
            if any(roles[id(n)] != "rowval" for n in phase):
                em.loops(shape[-1:], _phase_body(em, unit, phase, accs, ridx))
            for acc in ends:
                em.hand_over(acc.node, *acc.finish(ridx))
    em.loops(shape[:-1], row)
    for n in unit.nodes:
        if roles[id(n)] == "total":
            accs[id(n)].finish([])


def _phase_body(em, unit, phase, accs, ridx):
    """The inner loop body of one phase at element j of row `ridx`, members in program order."""
    f, roles = em.f, unit.roles

    def body(jdx):
        idx = list(ridx) + list(jdx)
        for n in phase:
            role = roles[id(n)]
            if role == "full":
                value = em.access(n, idx)
                if id(n) in unit.stored:
                    em.store(n, idx, value)
                em.hand_over(n, idx, value)
            elif role == "rowval":
                continue
            elif role == "col":
                acc, x = accs[id(n)], n.args[0]
                pos = [0] * (n.ndim - 1) + list(jdx)
                v = cast(f, em.value(x, idx), x.dtype, n.dtype)
                em.store(n, pos, acc.combine(f, em.load(n, pos), v, acc.ty))
            else:
                accs[id(n)].add(em.value(n.args[0], idx))
    return body
