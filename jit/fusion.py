"""Horizontal loop fusion, the emission side: one loop nest computing every node of a group the plan
formed (plan.Unit: consecutive top-level nodes iterating over the same shape, e.g. the value and every
gradient of a value_and_grad trace), one pass over memory.

A group member is a materialized elementwise-style node of shape S (computed by access) or a
reduction over all axes of an operand of shape S.  Members read one another only aligned (the plan
checks it), so a member's value computed earlier in the same iteration is handed over in a register
(no reload); members read only inside the group (not in Unit.stored) are never stored.
"""
from .rules import REDUCE, Accumulator


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
