"""Horizontal loop fusion: consecutive top-level nodes that iterate over the same shape share one loop
nest (one pass over memory), e.g. the value and every gradient of a value_and_grad trace.

A group member is a materialized elementwise-style node of shape S (computed by access) or a
reduction over all axes of an operand of shape S.  A node joins the current group only if every read
it makes of an earlier member is aligned: reached through fused elementwise nodes of shape S only, so
it reads the element the same iteration has just computed (the memo hands over the register, no
reload); a member never reads a reduction member of its own group (its value exists after the loop).
"""
from ..ir.ops import ELEMENTWISE
from .rules import REDUCE, Accumulator

_ALIGNED_OPS = set(ELEMENTWISE) | {"where", "astype"}


def iteration_shape(lw, node):
    """The shape a node's top-level loop runs over if it can join a group, else None."""
    k = lw.kind[id(node)]
    if k == "buf" and node.op not in lw.rules.MATERIALIZE and node.op != "const":
        return node.shape
    if node.op in REDUCE and k in ("buf", "reg"):
        x = node.args[0]
        if len(node.params["axis"]) == x.ndim and x.ndim > 0:
            return x.shape
    return None


def reads_aligned(lw, node, members, shape):
    """True if every path from `node` through fused values to a group member keeps the loop index."""
    def walk(n, aligned):
        for a in n.args:
            keeps = aligned and (n is node and n.op in REDUCE or (n.op in _ALIGNED_OPS and a.shape == shape))
            if id(a) in members:
                if not keeps or members[id(a)].op in REDUCE:
                    return False
            elif lw.kind[id(a)] == "fused" and not walk(a, keeps):
                return False
        return True
    return walk(node, True)


def depends_on(lw, node, members):
    """True if `node` reads a group member, directly or through fused values."""
    def walk(n):
        return any(id(a) in members or (lw.kind[id(a)] == "fused" and walk(a)) for a in n.args)
    return walk(node)


def _read_outside(lw, node, members):
    """True if some value other than the group's members (and fused values feeding only them) reads
    `node`, or it is an output: then its buffer must really be written."""
    def absorbed(u):
        return id(u) in members or (lw.kind[id(u)] == "fused" and
                                    all(absorbed(w) for w in lw.users.get(id(u), ())))
    return id(node) in lw.out_ids or not all(absorbed(u) for u in lw.users.get(id(node), ()))


def emit_group(lw, shape, nodes):
    """One loop nest over `shape` computing every node of the group, in program order; members read
    only inside the group are handed over in registers and never stored."""
    members = {id(n): n for n in nodes}
    stored = {id(n) for n in nodes if _read_outside(lw, n, members)}
    accumulators = {id(n): Accumulator(lw, n) for n in nodes if n.op in REDUCE}
    for acc in accumulators.values():
        acc.start()

    def body(idx):
        for n in nodes:
            if id(n) in accumulators:
                accumulators[id(n)].add(lw.value(n.args[0], idx))
            else:
                value = lw.rules.ACCESS[n.op](lw, n, list(idx))
                if id(n) in stored:
                    lw.store(n, idx, value)
                lw.memo[-1][(id(n), tuple(idx))] = value
    lw.loops(shape, body)
    for acc in accumulators.values():
        acc.finish([])
