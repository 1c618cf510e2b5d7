"""The simplification passes seen through cond ops (ir/conditional.py); this module fills the tables
loop_passes.PRUNING and passes.LOOP_PASSES when imported.

- dead code (`CondPruning`, used by loop_passes.liveness): a cond is live when one of its results is
  used or a branch holds a guard; the results nobody reads are dropped, each branch is pruned to what
  the kept results (and its guards) need, and operands no pruned branch reads are dropped.
- `CondRewrites` (an `optimize` round): a cond on a constant predicate is its branch, inlined; any other
  has its branches optimized.
- `if_converted` (for the JIT, after differentiation): the conds a policy picks among the `branch_free`
  ones, in loop bodies and branches too, become straight-line code: both branches computed, each result
  a `where` on the predicate, each guard of a branch masked to hold where its branch is not taken
  (`guard where(pred, g, expected)`: it can fail only on the side taken, and the guards keep their
  order, so their numbers).  Only conds whose branches cannot fault on the operands of the other side
  qualify: 0-d real elementwise arithmetic, comparisons, casts and guards on bools or ints (no index
  arrays, loops, host calls); a NaN or inf computed on the side not taken never reaches a result, nor a
  derivative (the derivative of a cond is a cond, converted the same way after differentiation).
"""
import numpy as np

from . import loop_passes, passes
from .builder import Builder
from .ops import SPECS, owned_traces
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
        self.computed, self.indexed = {}, 0     # CSE keys of the round's nodes so far -> the node

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
        shared = self._shared(b, args, branches)
        if shared is not None:
            args, branches = shared
        optimized = tuple(passes.optimize(t) for t in branches)
        if shared is None and all(loop_passes.unchanged(o, t) for o, t in zip(optimized, branches)):
            return None
        return b.cond(*args, branches=optimized)

    def _shared(self, b, args, branches):
        """`with_computed_operands` on the round's nodes so far (indexed as the round goes)."""
        for n in b.nodes[self.indexed:]:
            if n.op != "guard" and not owned_traces(n):
                self.computed.setdefault(passes.node_key(n, n.args), n)
        self.indexed = len(b.nodes)
        shared = with_computed_operands(self.computed, args, branches)
        return None if shared is None else shared[:2]


def computed_values(nodes):
    """The CSE keys of `nodes` (guards and nodes owning traces left out) -> the first node of each."""
    computed = {}
    for n in nodes:
        if n.op != "guard" and not owned_traces(n):
            computed.setdefault(passes.node_key(n, n.args), n)
    return computed


def with_computed_operands(computed, args, branches):
    """(operands, branches) of a cond on `args` with the branch values the enclosing trace computed
    already (`computed`: CSE key -> Value, as `computed_values`; the same op on the same operands:
    `x[i]` read again inside an `if x[i] > 0:`) passed in as new operands (appended) instead of
    computed again, and the operands no branch reads then dropped; with, per operand, its position in
    `args` (None: a new one).  None when there are none."""
    extra, found = {}, []
    for t in branches:
        outer, hits = dict(zip((id(v) for v in t.inputs), args[1:])), {}
        for n in t.nodes:
            if n.op == "guard" or owned_traces(n) or not all(id(a) in outer for a in n.args):
                continue
            hit = computed.get(passes.node_key(n, [outer[id(a)] for a in n.args]))
            if hit is not None:
                outer[id(n)] = hit
                if n.op not in ("const", "fill"):      # (a constant stays one: matched for what reads it)
                    hits[id(n)] = hit
                    extra.setdefault(id(hit), hit)
        found.append(hits)
    if not extra:
        return None
    extra = list(extra.values())
    grown = [_with_operands(t, extra, hits) for t, hits in zip(branches, found)]
    read = {id(a) for t in grown for n in t.nodes for a in n.args} | {id(v) for t in grown for v in t.outputs}
    kept = [k for k in range(len(grown[0].inputs)) if any(id(t.inputs[k]) in read for t in grown)]
    operands = list(args[1:]) + extra
    origin = [1 + k if k < len(args) - 1 else None for k in kept]
    pruned = tuple(loop_passes.subtrace([t.inputs[k] for k in kept], t.nodes, t.outputs) for t in grown)
    return [args[0]] + [operands[k] for k in kept], pruned, origin


def _with_operands(branch, extra, hits):
    """`branch` taking inputs typed like `extra` too, its nodes in `hits` (id -> the outer Value among
    `extra` they equal) read from those inputs."""
    b = Builder()
    env = passes.copy_inputs(b, branch.inputs)
    ins = {id(v): b.input(v.shape, v.dtype) for v in extra}
    for n in branch.nodes:
        if id(n) in hits:
            env[id(n)] = ins[id(hits[id(n)])]
        else:
            env[id(n)] = passes.copy_node(b, n, [env[id(a)] for a in n.args])
    return b.build([env[id(v)] for v in branch.outputs])


def branch_free(branches):
    """Whether a cond with these branches may run both (see the module docstring)."""
    return all(_safe(n) for t in branches for n in t.nodes) and all(
        v.shape == () for t in branches for v in t.outputs)


def _safe(node):
    if node.shape != () or any(a.shape != () or a.dtype.kind == "c" for a in node.args) or node.dtype.kind == "c":
        return False                    # (a complex op may be a host call, which may raise)
    if node.op == "guard":
        return node.args[0].dtype.kind in "biu"
    spec = SPECS[node.op]
    return spec.constant or (spec.elementwise and not spec.host)


def if_converted(trace, wanted):
    """`trace` with the conds `wanted(branches)` picks (among the `branch_free` ones, judged after their
    own nested conds are converted) made straight-line, in its loop bodies and branches too; `trace`
    itself when none is."""
    if not any(n.op in ("loop", "cond") for n in trace.nodes):
        return trace
    converted = {}                              # id(stand-in Value) -> the results of the inlined cond
    changed = []

    def rule(b, node, args):
        p = node.params
        if node.op == "cond_result":
            values = converted.get(id(args[0]))
            return None if values is None else values[p["index"]]
        if node.op not in ("loop", "cond"):
            return None
        owned = [if_converted(t, wanted) for t in ([p["body"]] if node.op == "loop" else p["branches"])]
        if node.op == "cond" and branch_free(owned) and wanted(owned):
            stand_in = b.fill((), bool, True)   # what its cond_result nodes read (dropped below)
            converted[id(stand_in)] = _inline(b, args[0], args[1:], owned)
            return stand_in
        if all(t is o for t, o in zip(owned, [p["body"]] if node.op == "loop" else p["branches"])):
            return None
        changed.append(node)
        if node.op == "loop":
            return b.loop(*args, body=owned[0], trip=p["trip"], n_carry=p["n_carry"], exit=p["exit"])
        return b.cond(*args, branches=tuple(owned))

    b = Builder()
    env = passes.copy_inputs(b, trace.inputs)
    passes.replay(b, trace.nodes, env, rule)
    if not converted and not changed:
        return trace
    b.nodes = [n for n in b.nodes if id(n) not in converted]
    return b.build([env[id(v)] for v in trace.outputs])


def _inline(b, pred, operands, branches):
    """Both branches replayed into `b` on `operands`, guards masked by their side: the results selected."""
    outs = []
    for side, branch in enumerate(branches):
        def masked(bb, node, args, side=side):
            if node.op != "guard":
                return None
            held = bb.const(np.asarray(node.params["expected"], node.args[0].dtype))
            taken, other = (args[0], held) if side == 0 else (held, args[0])
            return bb.emit("guard", bb.where(pred, taken, other), **node.params)
        env = dict(zip((id(v) for v in branch.inputs), operands))
        passes.replay(b, branch.nodes, env, masked)
        outs.append([env[id(v)] for v in branch.outputs])
    return [t if t is f else b.where(pred, t, f) for t, f in zip(*outs)]


loop_passes.PRUNING["cond"] = CondPruning
passes.LOOP_PASSES["cond_rewrites"] = CondRewrites
