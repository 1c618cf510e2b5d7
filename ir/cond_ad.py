"""Differentiation of cond ops (ir/conditional.py): the derivative of a cond is a cond on the same
predicate, so the AD transforms of ir/autodiff.py compose through it (grad of grad, jvp of grad).  This
module fills autodiff.LOOP_JVP, LOOP_TAPING and LOOP_BACKWARD for the cond ops when imported.

Forward mode: the tangents of the active operands are new operands; each branch is `autodiff.jvp` of
the branch, returning its outputs then one tangent per real-float output.

Reverse mode: `autodiff.vjp` splits each branch into a forward part (outputs and residuals) and a
backward part (residuals and output cotangents -> cotangents of the active operands).  The taping form
of the cond returns its outputs, then its tape slots: only one branch runs, so the two share them (a
residual of each side of one type in one slot, zeros where the taken side has fewer); a residual that
is an operand of the cond (the quickstart's `e`, on both sides) is not a result at all, the backward
cond reads the operand.  The backward cond, on the same predicate, runs the taken branch's backward
part on its residuals.  Inside a loop body the predicate is such a residual:
the outcome of every iteration is kept (taped, or recomputed from the counter) for the reverse loop.
"""
from . import autodiff, passes
from .builder import Builder
from .cond_passes import computed_values, with_computed_operands
from .conditional import result_values
from .loop_tape import backward_node
from .ops import CONDS


def _active_operands(node, active):
    """Positions k of the cond's operands (args[1 + k]) that carry derivatives."""
    return [k for k in range(len(node.args) - 1) if active[1 + k]]


# ---- forward mode ---------------------------------------------------------------------------------

def jvp_node(b, node, args, tangents, maps):
    """The forward-mode replay of a cond or cond_result `node` on `args` (autodiff.LOOP_JVP's interface;
    `maps`: id(new cond) -> per old result, (index, tangent index or None))."""
    if node.op == "cond_result":
        return autodiff.jvp_result(b, node, args, tangents, maps)
    ts = [tangents.get(id(a)) for a in args]
    act = _active_operands(node, [t is not None for t in ts])
    if not act:
        return passes.copy_node(b, node, args)
    branches = tuple(passes.optimize(autodiff.jvp(t, act)) for t in node.params["branches"])
    new = b.cond(*args, *[ts[1 + k] for k in act], branches=branches)
    outputs = node.params["branches"][0].outputs
    floats = [k for k, v in enumerate(outputs) if v.dtype.kind == "f"]
    maps[id(new)] = [(k, len(outputs) + floats.index(k) if k in floats else None) for k in range(len(outputs))]
    return new


# ---- reverse mode ---------------------------------------------------------------------------------

def _slots(residuals):
    """Tape slots shared by the two branches (only one runs): per side, the slot of each residual, and
    the (shape, dtype) of each slot; residuals of one type pair up across the sides."""
    kinds, sides = [], []
    for values in residuals:
        free = list(range(len(kinds)))
        placed = []
        for v in values:
            k = next((k for k in free if kinds[k] == (v.shape, v.dtype)), None)
            if k is None:
                k = len(kinds)
                kinds.append((v.shape, v.dtype))
            else:
                free.remove(k)
            placed.append(k)
        sides.append(placed)
    return sides, kinds


def _taping_branch(forward, n_out, own, slots, kinds):
    """Branch trace: `forward`'s `n_out` outputs, then per slot its residual (`own`: those of its
    residuals that are not its inputs, at `slots`), or zeros where it has none (the other side's)."""
    b = Builder()
    env = passes.copy_inputs(b, forward.inputs)
    passes.replay(b, forward.nodes, env)
    filled = [None] * len(kinds)
    for v, k in zip(own, slots):
        filled[k] = env[id(v)]
    rest = [f if f is not None else b.fill(shape, dtype, 0) for f, (shape, dtype) in zip(filled, kinds)]
    return b.build([env[id(v)] for v in forward.outputs[:n_out]] + rest)


def taping_form(b, node, args, active_args, records, result_maps):
    """The forward form of active cond `node` on `args` (autodiff.LOOP_TAPING's interface): its results
    first, then the tape slots the branches share (a residual that is an operand of the cond is that
    operand, not taped); `records[id(new)]` gets its reverse-mode record."""
    branches = node.params["branches"]
    shared = with_computed_operands(computed_values(b.nodes), args, branches)
    if shared is not None:                 # values the body computed before the cond: read, not recomputed
        args, branches, origin = shared
        active_args = [active_args[0]] + [active_args[o] if o is not None else v.dtype.kind == "f"
                                          for o, v in zip(origin, args[1:])]
    act = [k for k in range(len(args) - 1) if active_args[1 + k]]
    if not act:
        return None
    n_out = len(branches[0].outputs)
    split = [autodiff.vjp(t, act) for t in branches]
    operand_of = [{id(v): args[1 + k] for k, v in enumerate(fwd.inputs)} for fwd, _ in split]
    own = [[r for r in fwd.outputs[n_out:] if id(r) not in ops] for (fwd, _), ops in zip(split, operand_of)]
    slots, kinds = _slots(own)
    taped = tuple(_taping_branch(fwd, n_out, o, s, kinds) for (fwd, _), o, s in zip(split, own, slots))
    new = b.cond(*args, branches=taped)
    tape = result_values(b, new)[n_out:]
    residuals = []
    for (fwd, _), ops, side_slots, side_own in zip(split, operand_of, slots, own):
        at = dict(zip((id(r) for r in side_own), side_slots))
        residuals.append([ops[id(r)] if id(r) in ops else tape[at[id(r)]] for r in fwd.outputs[n_out:]])
    records[id(new)] = _CondRecord(branches, split, residuals, act)
    return new


class _CondRecord:
    """What the backward cond of one taped cond needs: the branches' backward parts and, per side, the
    Value of each of its residuals (a tape slot or an operand)."""

    def __init__(self, branches, split, residuals, act):
        self.branches, self.split, self.residuals, self.act = branches, split, residuals, act

    def backward(self, b, args, received):
        """One cotangent (or None) per operand of the cond (autodiff's reverse sweep)."""
        outputs = self.branches[0].outputs
        cts = [received.get(k) if received.get(k) is not None else b.fill(v.shape, v.dtype, 0)
               for k, v in enumerate(outputs) if v.dtype.kind == "f"]
        operands = list({id(v): v for side in self.residuals for v in side}.values())
        sides = []
        for (_, backward), own in zip(self.split, self.residuals):
            bb = Builder()
            ins = {id(v): bb.input(v.shape, v.dtype) for v in operands}
            ct_ins = [bb.input(v.shape, v.dtype) for v in cts]
            env = dict(zip((id(v) for v in backward.inputs), [ins[id(v)] for v in own] + ct_ins))
            passes.replay(bb, backward.nodes, env)
            sides.append(bb.build([env[id(v)] for v in backward.outputs]))
        back = b.cond(args[0], *operands, *cts, branches=tuple(sides))
        grads = result_values(b, back)
        found = [None] * len(args)
        for k, g in zip(self.act, grads):
            found[1 + k] = g
        return found


autodiff.LOOP_JVP.update({op: jvp_node for op in CONDS})
autodiff.LOOP_TAPING["cond"] = taping_form
autodiff.LOOP_BACKWARD.update({op: backward_node for op in CONDS})
