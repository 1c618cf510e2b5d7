"""Differentiation of cond ops (ir/conditional.py): the derivative of a cond is a cond on the same
predicate, so the AD transforms of ir/autodiff.py compose through it (grad of grad, jvp of grad).  This
module fills autodiff.LOOP_JVP, LOOP_TAPING and LOOP_BACKWARD for the cond ops when imported.

Forward mode: the tangents of the active operands are new operands; each branch is `autodiff.jvp` of
the branch, returning its outputs then one tangent per real-float output.

Reverse mode: `autodiff.vjp` splits each branch into a forward part (outputs and residuals) and a
backward part (residuals and output cotangents -> cotangents of the active operands).  The taping form
of the cond returns its outputs, then the true branch's residuals, then the false branch's (the
branch not taken returns zeros for the other's).  The backward cond, on the same predicate, runs the
taken branch's backward part on its residuals.  Inside a loop body the predicate is such a residual:
the outcome of every iteration is kept (taped, or recomputed from the counter) for the reverse loop.
"""
from . import autodiff, passes
from .builder import Builder
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

def _taping_branch(forward, n_out, before, after):
    """Branch trace: `forward`'s `n_out` outputs, zeros typed like `before`, its residuals, zeros typed
    like `after` (the other branch's residuals, whose places it fills)."""
    b = Builder()
    env = passes.copy_inputs(b, forward.inputs)
    passes.replay(b, forward.nodes, env)
    outs = [env[id(v)] for v in forward.outputs]
    zeros = [[b.fill(v.shape, v.dtype, 0) for v in values] for values in (before, after)]
    return b.build(outs[:n_out] + zeros[0] + outs[n_out:] + zeros[1])


def taping_form(b, node, args, active_args, records, result_maps):
    """The forward form of active cond `node` on `args` (autodiff.LOOP_TAPING's interface): its results
    first, then the residuals of both branches; `records[id(new)]` gets its reverse-mode record."""
    act = _active_operands(node, active_args)
    if not act:
        return None
    branches = node.params["branches"]
    n_out = len(branches[0].outputs)
    split = [autodiff.vjp(t, act) for t in branches]
    residuals = [fwd.outputs[n_out:] for fwd, _ in split]
    true = _taping_branch(split[0][0], n_out, [], residuals[1])
    false = _taping_branch(split[1][0], n_out, residuals[0], [])
    new = b.cond(*args, branches=(true, false))
    values = result_values(b, new)[n_out:]
    records[id(new)] = _CondRecord(branches, split, values, act)
    return new


class _CondRecord:
    """What the backward cond of one taped cond needs: the branches' backward parts and the residual
    Values (true branch's, then false branch's)."""

    def __init__(self, branches, split, residuals, act):
        self.branches, self.split, self.residuals, self.act = branches, split, residuals, act

    def backward(self, b, args, received):
        """One cotangent (or None) per operand of the cond (autodiff's reverse sweep)."""
        outputs = self.branches[0].outputs
        cts = [received.get(k) if received.get(k) is not None else b.fill(v.shape, v.dtype, 0)
               for k, v in enumerate(outputs) if v.dtype.kind == "f"]
        n_true = len(self.split[0][0].outputs) - len(outputs)
        sides = []
        for side, (_, backward) in enumerate(self.split):
            bb = Builder()
            res = [bb.input(v.shape, v.dtype) for v in self.residuals]
            ct_ins = [bb.input(v.shape, v.dtype) for v in cts]
            own = res[:n_true] if side == 0 else res[n_true:]
            env = dict(zip((id(v) for v in backward.inputs), own + ct_ins))
            passes.replay(bb, backward.nodes, env)
            sides.append(bb.build([env[id(v)] for v in backward.outputs]))
        back = b.cond(args[0], *self.residuals, *cts, branches=tuple(sides))
        grads = result_values(b, back)
        found = [None] * len(args)
        for k, g in zip(self.act, grads):
            found[1 + k] = g
        return found


autodiff.LOOP_JVP.update({op: jvp_node for op in CONDS})
autodiff.LOOP_TAPING["cond"] = taping_form
autodiff.LOOP_BACKWARD.update({op: backward_node for op in CONDS})
