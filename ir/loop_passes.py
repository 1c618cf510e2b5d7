"""The simplification passes seen through loop ops (ir/loops.py), called by ir/passes.py through its
table LOOP_PASSES, which this module fills when imported (it runs those passes on loop bodies).

- `dce`: a loop is live when one of its results is used or its body holds a guard; its carries and
  stacked outputs nobody needs (a carry is needed when its result is used or a needed body value reads
  it), and its invariants the pruned body does not read, are dropped: a new loop node, results renumbered.
- `LoopRewrites.loop` (a loop node in an `optimize` round): the body is optimized, then `restructure`d:
  a carry the body passes through unchanged becomes an invariant (its result is its init), invariants
  that are outer constants become constants of the body, and loop-invariant code (body nodes depending
  on invariants and constants only, never on the counter or a carry; never guards nor loops holding
  them, nor a node that may raise placed after a guard) is hoisted into the enclosing trace and passed
  in as new invariants.  A loop of trip 0 is its inits (and empty stacked outputs).
`subtrace` makes a closed trace of some nodes with chosen inputs: the bodies made here and by AD;
`without_guards` drops a trace's guards (for recomputing values whose guards were checked already).
"""
from . import passes
from .builder import Builder
from .loops import COUNTER_DTYPE, node_guards
from .ops import LINALG, ops_where, owned_traces
from .value import Trace

_CONSTANTS = ops_where(lambda s: s.constant)          # const, fill
_INDEXING = {"index": 1, "index_set": 2, "index_add": 2}       # operands before the index arrays


def subtrace(inputs, nodes, outputs, rule=None):
    """A trace whose inputs are new inputs typed like the Values `inputs` (any Values: they stand for
    those), made of `nodes` replayed on them (passes.replay, with `rule`), returning `outputs`."""
    b = Builder()
    env = passes.copy_inputs(b, inputs)
    passes.replay(b, nodes, env, rule)
    return b.build([env[id(v)] for v in outputs])


def without_guards(trace):
    """`trace` with its guards dropped, its loops' bodies' and conds' branches' too (for recomputing
    values whose guards were checked already)."""
    rule = passes.with_body_pass(None, without_guards)
    return subtrace(trace.inputs, [n for n in trace.nodes if n.op != "guard"], trace.outputs, rule)


# ---- dead code ------------------------------------------------------------------------------------

class _Pruning:
    """What of loop `node` is needed when the results `used` (indices) are: the results kept (in
    order: carries then stacked outputs), the carries, the invariants, the live body nodes."""

    def __init__(self, node, used):
        self.node = node
        body, n_carry, exit = node.params["body"], node.params["n_carry"], node.params["exit"]
        needed = set(used) | ({exit} if exit is not None else set())      # the flag says how long it runs
        while True:
            live, plans = liveness(body.nodes, [body.outputs[k] for k in sorted(needed)])
            more = {k for k in range(n_carry) if id(body.inputs[1 + k]) in live} - needed
            if not more:
                break
            needed |= more
        self.results = sorted(needed)
        self.carries = [k for k in self.results if k < n_carry]
        n_inv = len(node.args) - n_carry
        self.invariants = [m for m in range(n_inv) if id(body.inputs[1 + n_carry + m]) in live
                           or m == n_inv - 1 and node.params["trip"] is None]     # (the run-time trip count)
        self.operands = self.carries + [n_carry + m for m in self.invariants]
        self.index = {old: new for new, old in enumerate(self.results)}
        self.live_nodes, self.plans = [n for n in body.nodes if id(n) in live], plans
        self.changed = (len(self.results) < len(body.outputs) or len(self.invariants) < n_inv
                        or len(self.live_nodes) < len(body.nodes) or any(p.changed for p in plans.values()))

    def emit(self, b, args):
        body, n_carry = self.node.params["body"], self.node.params["n_carry"]
        inputs = ([body.inputs[0]] + [body.inputs[1 + k] for k in self.carries]
                  + [body.inputs[1 + n_carry + m] for m in self.invariants])
        bb = Builder()
        env = passes.copy_inputs(bb, inputs)
        _emit_pruned(bb, self.live_nodes, self.plans, env)
        new_body = bb.build([env[id(body.outputs[k])] for k in self.results])
        p = self.node.params
        return b.loop(*[args[k] for k in self.operands], body=new_body, trip=p["trip"], n_carry=len(self.carries),
                      exit=None if p["exit"] is None else self.index[p["exit"]])


# Ops that are tuples of results -> the class deciding what of one is needed (`_Pruning`'s interface:
# results, operands, index, changed, emit); ir/cond_passes.py adds the cond's.
PRUNING = {"loop": _Pruning}
RESULT_OPS = ("loop_result", "cond_result")


def liveness(nodes, roots):
    """(ids of the live values among `nodes` and roots, {id(loop or cond): its pruning}) for outputs
    `roots`: guards and nodes owning traces that hold guards are live; a live loop or cond keeps only
    what it needs."""
    live = {id(v) for v in roots}
    used, plans = {}, {}
    for node in reversed(nodes):
        if holds_guards(node):
            live.add(id(node))
        if id(node) not in live:
            continue
        if node.op in RESULT_OPS:
            used.setdefault(id(node.args[0]), set()).add(node.params["index"])
            live.add(id(node.args[0]))
        elif node.op in PRUNING:
            plan = plans[id(node)] = PRUNING[node.op](node, used.get(id(node), ()))
            live.update(id(node.args[k]) for k in plan.operands)
        else:
            live.update(id(a) for a in node.args)
    return live, plans


def dce(trace):
    """passes.dce for a trace holding loops (see the module docstring)."""
    live, plans = liveness(trace.nodes, trace.outputs)
    kept = [n for n in trace.nodes if id(n) in live]
    if not any(p.changed for p in plans.values()):
        return Trace(trace.inputs, kept, trace.outputs)
    b = Builder()
    b.inputs = list(trace.inputs)
    env = {id(v): v for v in trace.inputs}
    _emit_pruned(b, kept, plans, env)
    return b.build([env[id(v)] for v in trace.outputs])


def _emit_pruned(b, nodes, plans, env):
    """Replay the live `nodes` into `b`, loops pruned by their `plans` (unchanged nodes kept as they are)."""
    for node in nodes:
        plan = plans.get(id(node.args[0])) if node.op in RESULT_OPS else plans.get(id(node))
        args = [env.get(id(a)) for a in node.args]        # None: an operand a pruned loop drops
        if plan is not None and plan.changed:
            new = (b.emit(node.op, args[0], index=plan.index[node.params["index"]]) if node.op in RESULT_OPS
                   else plan.emit(b, args))
        elif args == list(node.args):
            b.nodes.append(node)
            new = node
        else:
            new = passes.copy_node(b, node, args)
        env[id(node)] = new


# ---- optimize: body optimization, pass-through carries, constant invariants, hoisting ----------------

def unchanged(new, old):
    """Whether trace `new` is trace `old` (the same nodes and outputs)."""
    return (len(new.nodes) == len(old.nodes) and all(x is y for x, y in zip(new.nodes, old.nodes))
            and all(x is y for x, y in zip(new.outputs, old.outputs)))


class LoopRewrites:
    """The result maps of the loops an `optimize` round restructured: id(new loop) -> one entry per
    old result, an int (the new result's index) or a Value (what the result is now)."""

    def __init__(self):
        self.maps = {}

    def result(self, b, node, args):
        """The replacement of loop_result `node` on operand `args[0]` (None: copy it)."""
        m = self.maps.get(id(args[0]))
        if m is None:
            return None
        r = m[node.params["index"]]
        return b.loop_result(args[0], index=r) if isinstance(r, int) else r

    def loop(self, b, node, args):
        """The replacement of loop `node` on `args` (None: keep it)."""
        p = node.params
        body, n_carry, trip, exit = p["body"], p["n_carry"], p["trip"], p["exit"]
        if trip == 0:                     # results: the inits; the node is dead unless it holds guards
            new = node if args == list(node.args) else passes.copy_node(b, node, args)
            ys = [b.fill((0,) + y.shape, y.dtype, 0) for y in body.outputs[n_carry:]]
            if exit is not None:
                ys[exit - n_carry] = b.fill((), COUNTER_DTYPE, 0)
            self.maps[id(new)] = list(args[:n_carry]) + ys
            return None if new is node else new
        optimized = passes.optimize(body)
        restructured = restructure(b, optimized, args, n_carry, runtime=trip is None)
        if restructured is not None:
            operands, new_body, new_n_carry, result_map = restructured
            new = b.loop(*operands, body=new_body, trip=trip, n_carry=new_n_carry,
                         exit=None if exit is None else result_map[exit])
            self.maps[id(new)] = result_map
            return new
        if unchanged(optimized, body):
            return None
        return b.loop(*args, body=optimized, trip=trip, n_carry=n_carry, exit=exit)


def may_raise(node):
    """Whether evaluating `node` can fail on some operands (an index array out of bounds, a singular
    matrix): such a node placed after a guard runs only where the guard held, so it is never moved
    ahead of one."""
    if owned_traces(node):
        return any(may_raise(n) for t in owned_traces(node) for n in t.nodes)
    return node.op in LINALG or (node.op in _INDEXING and len(node.args) > _INDEXING[node.op])


def holds_guards(node):
    """Whether `node` is a guard or owns a trace holding one."""
    return node_guards(node) > 0


def _hoistable(body, invariant_ids, constant_ids):
    """The body nodes depending on invariants (and constants) only, at least one invariant among
    their operands' sources; never guards nor loops holding guards, nor a node that may raise placed
    after a guard."""
    hoisted, guarded = set(), False
    for node in body.nodes:
        if holds_guards(node):
            guarded = True
            continue
        if node.op in _CONSTANTS or not node.args or (guarded and may_raise(node)):
            continue
        ids = [id(a) for a in node.args]
        if all(i in invariant_ids or i in constant_ids or i in hoisted for i in ids) and \
                any(i in invariant_ids or i in hoisted for i in ids):
            hoisted.add(id(node))
    return hoisted


def restructure(b, body, args, n_carry, runtime=False):
    """For a loop on `args` whose body `body` has a pass-through carry, an outer-constant invariant or
    hoistable code: emit the hoisted code into `b` and return (operands, body, n_carry, result map:
    per old result, its new index or the Value it is now) of the loop to emit; else None.  `runtime`:
    the last operand is the loop's run-time trip count (ir/loops.py), kept last."""
    inputs = body.inputs
    through = [k for k in range(n_carry) if body.outputs[k] is inputs[1 + k]]
    count = [len(args) - 1] if runtime else []
    invariant_slots = through + list(range(n_carry, len(args) - len(count)))          # operand positions
    constant_slots = [k for k in invariant_slots if args[k].op in _CONSTANTS]
    invariant_slots += count
    invariant_ids = {id(inputs[1 + k]) for k in invariant_slots if k not in constant_slots}
    constant_ids = {id(n) for n in body.nodes if n.op in _CONSTANTS} | {id(inputs[1 + k]) for k in constant_slots}
    hoisted = _hoistable(body, invariant_ids, constant_ids)
    if not through and not constant_slots and not hoisted:
        return None
    outer = {id(inputs[1 + k]): args[k] for k in invariant_slots}
    hoisted_nodes = [n for n in body.nodes if id(n) in hoisted]
    needed_constants = {id(a) for n in hoisted_nodes for a in n.args if a.op in _CONSTANTS}
    passes.replay(b, [n for n in body.nodes if id(n) in needed_constants] + hoisted_nodes, outer)
    staying = [n for n in body.nodes if id(n) not in hoisted]
    used = {id(a) for n in staying for a in n.args} | {id(v) for v in body.outputs}
    new_invariants = [n for n in hoisted_nodes if id(n) in used]
    carries = [k for k in range(n_carry) if k not in through]
    kept = [k for k in invariant_slots if k not in constant_slots and k not in count]
    body_inputs = ([inputs[0]] + [inputs[1 + k] for k in carries + kept] + new_invariants
                   + [inputs[1 + k] for k in count])
    bb = Builder()
    env = passes.copy_inputs(bb, body_inputs)
    for k in constant_slots:                 # the constant invariants' inputs: the outer constants
        env[id(inputs[1 + k])] = passes.copy_node(bb, args[k], [])
    passes.replay(bb, staying, env)
    outputs = [body.outputs[k] for k in carries] + list(body.outputs[n_carry:])
    new_body = bb.build([env[id(v)] for v in outputs])
    operands = [args[k] for k in carries + kept] + [outer[id(n)] for n in new_invariants] + [args[k] for k in count]
    result_map = [args[k] if k in through else carries.index(k) for k in range(n_carry)]
    result_map += [len(carries) + j for j in range(len(body.outputs) - n_carry)]
    return operands, new_body, len(carries), result_map


passes.LOOP_PASSES.update(dce=dce, rewrites=LoopRewrites)
