"""The simplification passes seen through cond ops (ir/conditional.py); this module fills the tables
loop_passes.PRUNING and passes.LOOP_PASSES when imported.

- dead code (`CondPruning`, used by loop_passes.liveness): a cond is live when one of its results is
  used or a branch holds a guard; the results nobody reads are dropped, each branch is pruned to what
  the kept results (and its guards) need, and operands no pruned branch reads are dropped.
- `CondRewrites` (an `optimize` round): a cond on a constant predicate is its branch, inlined; any other
  has its branches optimized.
"""
from . import loop_passes, passes
from .value import Trace


class CondPruning:
    """What of cond `node` is needed when the results `used` (indices) are (loop_passes' interface)."""

    def __init__(self, node, used):
        self.node = node
        branches = node.params["branches"]
        self.results = sorted(used)
        self.pruned = [passes.dce(Trace(t.inputs, t.nodes, [t.outputs[k] for k in self.results])) for t in branches]
        read = set()
        for t in self.pruned:
            read.update(id(a) for n in t.nodes for a in n.args)
            read.update(id(v) for v in t.outputs)
        n_in = len(branches[0].inputs)
        self.inputs = [k for k in range(n_in) if any(id(t.inputs[k]) in read for t in self.pruned)]
        self.operands = [0] + [1 + k for k in self.inputs]
        self.index = {old: new for new, old in enumerate(self.results)}
        self.changed = (len(self.results) < len(branches[0].outputs) or len(self.inputs) < n_in
                        or any(len(p.nodes) < len(t.nodes) for p, t in zip(self.pruned, branches)))

    def emit(self, b, args):
        branches = tuple(loop_passes.subtrace([t.inputs[k] for k in self.inputs], t.nodes, t.outputs)
                         for t in self.pruned)
        return b.cond(*[args[k] for k in self.operands], branches=branches)


class CondRewrites:
    """The conds an `optimize` round inlined: id(the stand-in Value their results read) -> the Values
    of their results (conds kept keep their results' indices)."""

    def __init__(self):
        self.inlined = {}

    def result(self, b, node, args):
        """The replacement of cond_result `node` on `args[0]` (None: copy it)."""
        values = self.inlined.get(id(args[0]))
        return None if values is None else values[node.params["index"]]

    def cond(self, b, node, args):
        """The replacement of cond `node` on `args` (None: keep it)."""
        branches = node.params["branches"]
        c = passes.uniform_value(args[0]) if args[0].op in ("const", "fill") else None
        if c is not None:                       # a constant predicate: the branch it selects, inlined
            taken = branches[0 if bool(c) else 1]
            env = passes.replay(b, taken.nodes, dict(zip((id(v) for v in taken.inputs), args[1:])))
            stand_in = b.fill((), bool, True)   # what the cond_result nodes read now (dead after them)
            self.inlined[id(stand_in)] = [env[id(v)] for v in taken.outputs]
            return stand_in
        optimized = tuple(passes.optimize(t) for t in branches)
        if all(loop_passes.unchanged(o, t) for o, t in zip(optimized, branches)):
            return None
        return b.cond(*args, branches=optimized)


loop_passes.PRUNING["cond"] = CondPruning
passes.LOOP_PASSES["cond_rewrites"] = CondRewrites
