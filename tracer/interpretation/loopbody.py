"""One recorded loop iteration as IR: its fingerprint (to compare consecutive iterations) and the closed
body trace extracted from it (the `body` of a `loop` op, ir/loops.py).

An iteration is the slice of the builder's nodes recorded between two arrivals at its loop header.  Its
operands are classified: `('l', k)` the k-th node of the iteration that is not a constant (constants
made in one iteration may be reused by the next), `('c', j)` carry j (a Value a frame
slot held at the header and that the iteration replaces), `('k', key)` a constant (by value: `const` and
`fill` nodes are shared across a trace, so where they were made does not matter), `('v', id)` an
invariant (a Value made before the iteration, by identity).  Two iterations with equal fingerprints do the
same work on their carries; the body is the later one with carries and invariants as inputs.
"""
import numpy as np

from ...ir import Builder, passes
from ...ir.loops import COUNTER_DTYPE, node_guards
from ...ir.printer import format_params
from ..arrays.values import TracedArray

_CONSTANTS = ("const", "fill")


def params_key(node):
    """The exact params of `node` as a comparable key (a const by its bytes, a loop by its body's
    fingerprint)."""
    op = node.op
    if op == "const":
        value = node.params["value"]
        return (value.dtype.str, value.shape, value.tobytes())
    if op == "loop":
        p = node.params
        return (body_key(p["body"]), p["trip"], p["n_carry"], p["exit"])
    if op == "cond":
        return tuple(body_key(t) for t in node.params["branches"])
    if op == "guard":
        p = node.params
        return (repr(p["expected"]), p["loc"], p["why"])
    return format_params(op, node.params)


def body_key(trace):
    """A structural fingerprint of a closed trace (nested loop bodies made per outer iteration are
    different objects with equal fingerprints)."""
    position = {id(v): i for i, v in enumerate(list(trace.inputs) + list(trace.nodes))}
    return (tuple((v.shape, v.dtype.str) for v in trace.inputs),
            tuple((n.op, params_key(n), tuple(position[id(a)] for a in n.args)) for n in trace.nodes),
            tuple(position[id(v)] for v in trace.outputs))


def counter_value(b, counter, first, step):
    """The range value `first + step * counter` of body input `counter`, emitted into `b` (the same
    nodes whatever `first`: a guard's position in bodies of one loop counted from different iterations
    is the same, rolling.py relies on it; the passes fold `+ 0`)."""
    value = counter
    if step != 1:
        value = b.multiply(value, b.const(np.asarray(step, COUNTER_DTYPE)))
    return b.add(value, b.const(np.asarray(first, COUNTER_DTYPE)))


def emits_key(emits, classify):
    """The part of an iteration's fingerprint saying what it appended: per value its list and, for a
    traced value, its class (`classify(ir)`), type and kind of concrete value; for a number, the number."""
    return tuple((n, (classify(v.ir), v.ir.shape, v.ir.dtype.str, type(v.value)) if type(v) is TracedArray
                  else ("py", type(v), repr(v))) for n, v in emits)


class Iteration:
    """The nodes of one iteration with its carries: `carry_inits[j]` the Value carry j held at the
    header that starts it, `carry_outs[j]` at the header that ends it; `counter` the IR Values standing for
    the loop counter in it (see loopindex.py); `fingerprint` says what it computes (see the module
    docstring)."""

    __slots__ = ("nodes", "carry_inits", "carry_outs", "counters", "fingerprint", "invariants", "positions", "starts",
                 "peel", "emits", "_carry", "_invariant", "_local")

    def __init__(self, nodes, carry_inits, carry_outs, counters=(), emits=()):
        self.nodes, self.carry_inits, self.carry_outs = nodes, carry_inits, carry_outs
        self.emits = list(emits)   # (list number, value) appended to lists (appends.py), in order
        self.counters = {id(v) for v in counters}
        self.invariants = []
        self.positions = None      # per flattened frame item: its carry number (None if not carried)
        self.starts = None         # per flattened frame item: its IR Value at the header starting it (or None)
        self.peel = False          # whether it carries a view read afresh (rolling._peel)
        self.fingerprint = self._fingerprint()

    def classify(self, v, local):
        """The class of operand Value `v` (see the module docstring)."""
        k = local.get(id(v))
        if id(v) in self.counters:
            return ("i",)
        if v.op in _CONSTANTS:
            return ("k", v.op, params_key(v), v.shape, v.dtype.str)
        if k is not None:
            return ("l", k)
        j = self._carry.get(id(v))
        if j is not None:
            return ("c", j)
        if id(v) not in self._invariant:
            self._invariant[id(v)] = len(self.invariants)
            self.invariants.append(v)
        return ("v", id(v))

    def _fingerprint(self):
        self._carry = {}
        for j, v in enumerate(self.carry_inits):
            self._carry.setdefault(id(v), j)
        self._invariant = {}
        local = {}
        key = []
        for node in self.nodes:
            if node.op in _CONSTANTS:
                continue
            local[id(node)] = len(local)
            key.append((node.op, params_key(node), node.shape, node.dtype.str,
                        tuple(self.classify(a, local) for a in node.args)))
        key.append(tuple(self.classify(v, local) for v in self.carry_outs))
        if self.emits:
            key.append(emits_key(self.emits, lambda v: self.classify(v, local)))
        self._local = local
        return tuple(key)

    def body(self, first, step):
        """The closed body Trace: inputs `[i, *carries, *invariants]` (`self.invariants` are the loop's
        operands after the carry inits), outputs the next carries, then the traced values appended to
        lists (stacked by the loop op).  The counter of iteration `i` of the
        loop op is the range value `first + step * i`."""
        b = Builder()
        counter = b.input((), COUNTER_DTYPE)
        mapped = {}
        for j, v in enumerate(self.carry_inits):
            mapped[("c", j)] = b.input(v.shape, v.dtype)
        for v in self.invariants:
            mapped[("v", id(v))] = b.input(v.shape, v.dtype)
        if self.counters:
            mapped[("i",)] = counter_value(b, counter, first, step)
        local = {}
        nodes = {}

        def value_of(v):
            cls = self.classify(v, local)
            found = mapped.get(cls) if cls[0] != "l" else nodes[cls[1]]
            if found is None:                      # a constant, made once in the body
                found = mapped[cls] = b.emit(v.op, **v.params)
            return found

        for node in self.nodes:
            if node.op in _CONSTANTS:
                continue
            local[id(node)] = len(local)
            nodes[len(local) - 1] = b.emit(node.op, *[value_of(a) for a in node.args], **node.params)
        return b.build([value_of(v) for v in self.carry_outs]
                       + [value_of(v.ir) for _, v in self.emits if type(v) is TracedArray])



def with_exit(body, positions):
    """`body` with its guards at `positions` of `body.nodes` made its continue flag (a last output, bool:
    whether they all hold), for a loop that ends where one fails (ir/loops.py's `exit`).  A guard after
    one of them is not reached in the iteration that leaves (Python returned or broke out before it):
    it holds or the iteration leaves."""
    guards = {id(body.nodes[k]) for k in positions}
    held = []              # the flag of the exit guards met so far

    def rule(b, node, args):
        if node.op != "guard" or id(node) not in guards and not held:
            return None
        ok = b.equal(args[0], b.const(np.asarray(node.params["expected"], args[0].dtype)))
        if id(node) not in guards:
            return b.guard(b.logical_or(ok, b.logical_not(held[0])), True, node.params["loc"], node.params["why"])
        held[:] = [ok if not held else b.logical_and(held[0], ok)]
        return ok
    b = Builder()
    env = passes.copy_inputs(b, body.inputs)
    passes.replay(b, body.nodes, env, rule)
    return b.build([env[id(v)] for v in body.outputs] + held)


def exits_cleanly(body, position):
    """Whether a loop of `body` may leave where its guard at `position` fails (`with_exit`): no cond or
    inner loop after it checks a guard of its own.  Python does not reach those in the iteration that
    leaves, but the loop op evaluates the whole body there, and a nested guard failing is no exit (it
    fails the trace: `with_exit` makes only the top-level ones hold or leave)."""
    return not any(node_guards(n) for n in body.nodes[position + 1:] if n.op in ("cond", "loop"))


def with_count(body):
    """`body` for a loop of a run-time trip count (ir/loops.py, trip None): one more invariant input,
    last, the count (intp), which it does not read."""
    b = Builder()
    env = passes.copy_inputs(b, body.inputs)
    b.input((), COUNTER_DTYPE)
    passes.replay(b, body.nodes, env)
    return b.build([env[id(v)] for v in body.outputs])
