"""Differentiation of loop ops (ir/loops.py): the derivative of a loop is again a loop, so the AD
transforms of ir/autodiff.py compose through loops (grad of grad, jvp of grad).  This module fills
autodiff.LOOP_JVP when imported.

Activity: a carry is active when its init is, or when its next value depends on an active carry or
invariant (a fixed point over the body); an invariant when its operand is.

Forward mode (`jvp_node`): the loop carries primal and tangent carries (tangents of the invariants are
new invariants); its body is `autodiff.jvp` of the body.  No storage.

Reverse mode: `autodiff.vjp(body, wrt=active carries and invariants)` splits the body into a forward
part (outputs and residuals) and a backward part (residuals and output cotangents -> cotangents of the
active inputs).  Each residual is, by what it depends on (`LoopVJP._classify`):
  - a body invariant: passed to the backward loop as it is;
  - invariants and constants only: hoisted, computed once before the loop;
  - the counter and invariants only (e.g. `x[i]`): recomputed in the backward loop from its counter;
  - a carry: taped, a stacked output of the forward loop (the *taping loop*, ir/loop_tape.py); so are
    values computed by an inner loop holding guards (recomputing them would check the guards again),
    and in a body holding guards, invariant values computed by an op that may raise
    (`loop_passes.may_raise`: hoisted, they would be computed ahead of the guards).
So a pure accumulator (`s = s + f(x, i)`) has no tape (recomputing trades the memory of a tape for
evaluating those values again).  The backward loop runs t = trip-1 .. 0 (its
body computes t from its own counter), reads the tape rows `index(tape, t)` and the rows of the stacked
outputs' cotangents, runs the backward part and carries the cotangents of the active carries and the
accumulated cotangents of the active invariants (a row read `x[i]` scatters its cotangent into the
accumulator in place: `autodiff.sum_cotangents`, O(1) per iteration).  A loop ending on a flag
(ir/loops.py's `exit`) tapes a row per iteration it may take; its backward loop ends on `j < count`
(the forward loop's count), so it runs exactly as many iterations.  Above a tape budget the forward loop keeps only
checkpoints and the backward loop recomputes each segment's tape (ir/loop_tape.py).
"""
import numpy as np

from . import autodiff, passes
from .builder import Builder
from .errors import IRError, RuntimeTripUnsupported, UnsupportedError
from .loop_passes import holds_guards, may_raise, subtrace, without_guards
from .loops import COUNTER_DTYPE, count_guards, runtime_rows
from .ops import LOOPS

AT_ROW = (("array", 0),)      # index spec of x[t] with t a 0-d intp


def active_carries(body, n_carry, active_inputs):
    """(positions k of the active carries, ids of the active body values): a fixed point from
    `active_inputs` (body input positions)."""
    active = set(active_inputs)
    while True:
        ids = autodiff.active_ids(body.nodes, [body.inputs[j] for j in sorted(active)])
        more = {1 + k for k in range(n_carry) if id(body.outputs[k]) in ids} - active
        if not more:
            return sorted(j - 1 for j in active if 1 <= j <= n_carry), ids
        active |= more


def _check_real(values, what):
    for v in values:
        if v.dtype.kind == "c":
            raise UnsupportedError(f"differentiating a loop with an active complex {what} is not supported")


# ---- forward mode ---------------------------------------------------------------------------------

def _jvp_loop(b, node, args, tangents):
    """(tangent loop, result map: old index -> (primal index, tangent index or None)); None when no
    tangent reaches the loop."""
    p = node.params
    body, n_carry, trip = p["body"], p["n_carry"], p["trip"]
    n_inv, n_out = len(args) - n_carry, len(body.outputs)
    inv = [m for m in range(n_inv) if tangents[n_carry + m] is not None]
    carries, ids = active_carries(body, n_carry, [1 + k for k in range(n_carry) if tangents[k] is not None]
                                  + [1 + n_carry + m for m in inv])
    if not carries and not inv:
        return None
    _check_real([body.inputs[1 + k] for k in carries], "carry")
    _check_real([v for v in body.outputs if id(v) in ids], "output")
    tangent_body = autodiff.jvp(body, [1 + k for k in carries] + [1 + n_carry + m for m in inv])
    float_outputs = [j for j, v in enumerate(body.outputs) if v.dtype.kind == "f"]
    tangent_of = {j: n_out + n for n, j in enumerate(float_outputs)}
    ys = [j for j in range(n_carry, n_out) if id(body.outputs[j]) in ids and j in tangent_of]
    n_in = len(body.inputs)
    last = [n_in - 1] if trip is None else []          # the run-time trip count stays the last operand
    order = ([0] + list(range(1, 1 + n_carry)) + [n_in + a for a in range(len(carries))]
             + list(range(1 + n_carry, n_in - len(last))) + [n_in + len(carries) + a for a in range(len(inv))]
             + last)
    out_order = (list(range(n_carry)) + [tangent_of[k] for k in carries] + list(range(n_carry, n_out))
                 + [tangent_of[j] for j in ys])
    new_body = passes.optimize(subtrace([tangent_body.inputs[j] for j in order], tangent_body.nodes,
                                        [tangent_body.outputs[j] for j in out_order]))
    inits = [tangents[k] if tangents[k] is not None else b.fill(args[k].shape, args[k].dtype, 0)
             for k in carries]
    first_y = n_carry + len(carries)
    exit = p["exit"]
    invariants = list(args[n_carry:len(args) - len(last)]) + [tangents[n_carry + m] for m in inv]
    loop = b.loop(*args[:n_carry], *inits, *invariants, *args[len(args) - len(last):], body=new_body, trip=trip,
                  n_carry=n_carry + len(carries), exit=None if exit is None else first_y + exit - n_carry)
    result_map = [(k, n_carry + carries.index(k) if k in carries else None) for k in range(n_carry)]
    result_map += [(first_y + j - n_carry, first_y + n_out - n_carry + ys.index(j) if j in ys else None)
                   for j in range(n_carry, n_out)]
    return loop, result_map


def jvp_node(b, node, args, tangents, maps):
    """The forward-mode replay of a loop or loop_result `node` on `args`: sets `tangents[id(new)]`;
    `maps` holds the result maps of the loops made so far."""
    if node.op == "loop":
        made = _jvp_loop(b, node, args, [tangents.get(id(a)) for a in args])
        if made is None:
            return passes.copy_node(b, node, args)
        maps[id(made[0])] = made[1]
        return made[0]
    return autodiff.jvp_result(b, node, args, tangents, maps)


# ---- reverse mode ---------------------------------------------------------------------------------

class LoopVJP:
    """The reverse-mode pieces of one active loop: its body's VJP and what each residual needs."""

    def __init__(self, body, n_carry, trip, active_args, exit=None):
        self.body, self.n_carry, self.n_out, self.trip = body, n_carry, len(body.outputs), trip
        self.exit = exit              # the continue flag's output (ir/loops.py), or None
        n_inv = len(active_args) - n_carry
        self.invariants = [m for m in range(n_inv) if active_args[n_carry + m]]
        self.carries, _ = active_carries(body, n_carry, [1 + k for k in range(n_carry) if active_args[k]]
                                         + [1 + n_carry + m for m in self.invariants])
        _check_real([body.inputs[1 + k] for k in self.carries], "carry")
        if any(runtime_rows(body.inputs[1 + k]) for k in self.carries) or \
                any(runtime_rows(body.inputs[1 + n_carry + m]) for m in self.invariants):
            raise RuntimeTripUnsupported("reverse mode through a loop reading a stack of a run-time number of "
                                         "rows (the tape of a loop of a run-time trip count, differentiated again)")
        self.forward, self.backward = autodiff.vjp(
            body, [1 + k for k in self.carries] + [1 + n_carry + m for m in self.invariants])
        self.residuals = self.forward.outputs[self.n_out:]
        self._classify()
        if any(map(runtime_rows, self.taped)):
            raise RuntimeTripUnsupported("reverse mode through a loop whose body holds a loop of a run-time trip "
                                         "count taping (its tape would stack run-time stacks)")

    def _classify(self):
        fwd, n_carry = self.forward, self.n_carry
        counter, carried = {id(fwd.inputs[0])}, {id(v) for v in fwd.inputs[1:1 + n_carry]}
        for node in fwd.nodes:
            if any(id(a) in carried for a in node.args):
                carried.add(id(node))
            elif any(id(a) in counter for a in node.args):
                counter.add(id(node))
        invariant_inputs = {id(v) for v in fwd.inputs[1 + n_carry:]}
        guarded = {id(r) for r in self.residuals if self._must_tape(r, id(r) in counter)}
        self.taped = [r for r in self.residuals if id(r) in carried or id(r) in guarded]
        self.recomputed = [r for r in self.residuals if id(r) in counter and id(r) not in guarded]
        self.hoisted = [r for r in self.residuals if id(r) not in carried and id(r) not in counter
                        and id(r) not in invariant_inputs and id(r) not in guarded]

    def _must_tape(self, residual, per_iteration):
        """Recomputing a value computed by a loop holding guards would check them again; hoisting one
        that may raise ahead of the body's guards could fail where they would not: such are taped."""
        closure = _closure(self.forward.nodes, [residual])
        if any(n.op != "guard" and holds_guards(n) for n in closure):
            return True
        return not per_iteration and count_guards(self.forward) > 0 and any(may_raise(n) for n in closure)

    # -- the forward (taping) loop --

    def hoist(self, b, invariant_args):
        """Emit into `b` the residuals computed from invariants and constants only: their values."""
        fwd = self.forward
        env = dict(zip((id(v) for v in fwd.inputs[1 + self.n_carry:]), invariant_args))
        passes.replay(b, _closure(fwd.nodes, self.hoisted), env)
        return [env[id(r)] for r in self.hoisted]

    def taping_body(self, based=False, guards=True, count=False):
        """The forward part with the taped residuals as extra stacked outputs (`based`: counter
        offset by a last input, and `count`: another one after it, see `with_base`; `guards` False:
        without them, for recomputing)."""
        fwd = self.forward
        body = passes.dce(subtrace(fwd.inputs, fwd.nodes, list(fwd.outputs[:self.n_out]) + self.taped))
        body = body if guards else passes.dce(without_guards(body))
        return with_base(body, count) if based else body

    # -- the backward loop --

    def emit_backward(self, b, trip, ct_carries, accs, tapes, ct_ys, invariant_args, hoisted, base=None,
                      count=None):
        """Emit the backward loop of `trip` iterations into `b`: cotangents of the active carries
        (`ct_carries`, Values) and accumulators of the active invariants (`accs`) as carries, reading
        `tapes` (stacked, one per taped residual) and `ct_ys` (per stacked output: its cotangent,
        stacked, or None); `base` (intp Value) offsets the counter; `count` (intp Value): the forward
        loop took that many iterations of at most `trip` (the backward loop runs as many, iteration j
        reading row count-1-j).  `trip` None: the forward loop's run-time trip count is the last of
        `invariant_args` (a loop ending on its flag: `count`, the iterations it took), and the backward
        loop's too.
        Returns (final ct carries, accs)."""
        if trip == 0:                     # no iteration: the cotangents pass through
            return list(ct_carries), list(accs)
        present = [y for y in ct_ys if y is not None]
        if trip is None:                  # as many iterations as the forward loop took (the count given)
            extra = [v for v in (base, count if count is not None else invariant_args[-1]) if v is not None]
            count = None
        else:
            extra = [v for v in (base, count) if v is not None]
        bb = Builder()
        j = bb.input((), COUNTER_DTYPE)
        carry_ins = [bb.input(v.shape, v.dtype) for v in list(ct_carries) + list(accs)]
        rest = [bb.input(v.shape, v.dtype) for v in list(tapes) + present + list(invariant_args) + list(hoisted)
                + extra]
        tape_ins, rest = rest[:len(tapes)], rest[len(tapes):]
        y_ins, rest = rest[:len(present)], rest[len(present):]
        inv_ins, rest = rest[:len(invariant_args)], rest[len(invariant_args):]
        hoisted_ins, extra_ins = rest[:len(hoisted)], rest[len(hoisted):]
        if trip is None:                  # iteration j reads row n-1-j
            t = bb.subtract(bb.subtract(extra_ins[-1], bb.const(np.asarray(1, COUNTER_DTYPE))), j)
        elif count is None:
            t = bb.subtract(bb.const(np.asarray(trip - 1, COUNTER_DTYPE)), j)
        else:                             # the discarded iteration j = count reads row 0
            n_taken = extra_ins[-1]
            t = bb.maximum(bb.subtract(bb.subtract(n_taken, bb.const(np.asarray(1, COUNTER_DTYPE))), j),
                           bb.const(np.asarray(0, COUNTER_DTYPE)))
        counter = bb.add(extra_ins[0], t) if base is not None else t
        fwd = self.forward
        env = {id(fwd.inputs[0]): counter}
        env.update(zip((id(v) for v in fwd.inputs[1 + self.n_carry:]), inv_ins))
        env.update(zip((id(r) for r in self.hoisted), hoisted_ins))
        passes.replay(bb, _closure(fwd.nodes, self.recomputed), env)
        env.update((id(r), bb.index(tape, t, spec=AT_ROW)) for r, tape in zip(self.taped, tape_ins))
        ct_ins = self._output_cotangents(bb, carry_ins[:len(ct_carries)], iter(y_ins), ct_ys, t)
        bwd = self.backward
        env.update(zip((id(v) for v in bwd.inputs), [env[id(r)] for r in self.residuals] + ct_ins))
        passes.replay(bb, bwd.nodes, env)
        grads = [env[id(v)] for v in bwd.outputs]
        n = len(ct_carries)
        outputs = grads[:n] + [autodiff.sum_cotangents(bb, acc, g) for acc, g in zip(carry_ins[n:], grads[n:])]
        flag = [bb.less(j, extra_ins[-1])] if count is not None else []
        loop = b.loop(*ct_carries, *accs, *tapes, *present, *invariant_args, *hoisted, *extra,
                      body=bb.build(outputs + flag), trip=trip, n_carry=n + len(accs),
                      exit=len(outputs) if count is not None else None)
        results = [b.loop_result(loop, index=k) for k in range(n + len(accs))]
        return results[:n], results[n:]

    def _output_cotangents(self, bb, carry_cts, y_ins, ct_ys, t):
        """The backward part's cotangent inputs: one per real-float body output."""
        body = self.body
        cts = []
        for k, v in enumerate(body.outputs):
            if v.dtype.kind != "f":
                continue
            if k < self.n_carry and k in self.carries:
                cts.append(carry_cts[self.carries.index(k)])
            elif k >= self.n_carry and ct_ys[k - self.n_carry] is not None:
                cts.append(bb.index(next(y_ins), t, spec=AT_ROW))
            else:
                cts.append(bb.fill(v.shape, v.dtype, 0))
        return cts

    def zero_cotangents(self, b, args, received):
        """(ct carries, accs, ct_ys) to start the backward sweep from the loop's result cotangents
        `received` (result index -> Value; only the original results' take cotangents)."""
        if any(k >= self.n_out for k in received):
            raise IRError("internal: a cotangent reached a tape or checkpoint of a loop in taping form")
        ct_carries = [received.get(k) if received.get(k) is not None else b.fill(args[k].shape, args[k].dtype, 0)
                      for k in self.carries]
        accs = [b.fill(args[self.n_carry + m].shape, args[self.n_carry + m].dtype, 0) for m in self.invariants]
        ct_ys = [received.get(k) for k in range(self.n_carry, self.n_out)]
        return ct_carries, accs, ct_ys

    def operand_cotangents(self, n_args, ct_carries, accs):
        """One cotangent (or None) per operand of the loop."""
        cts = [None] * n_args
        for k, ct in zip(self.carries, ct_carries):
            cts[k] = ct
        for m, acc in zip(self.invariants, accs):
            cts[self.n_carry + m] = acc
        return cts


def with_base(body, count=False):
    """`body` with one more invariant input, last, an intp `base`: the counter it sees is base + its
    own (a segment of a loop, run from iteration `base`); with `count`, another one after it, which it
    does not read (the trip count of a loop of a run-time trip count: ir/loops.py)."""
    bb = Builder()
    env = passes.copy_inputs(bb, body.inputs)
    base = bb.input((), COUNTER_DTYPE)
    if count:
        bb.input((), COUNTER_DTYPE)
    env[id(body.inputs[0])] = bb.add(base, env[id(body.inputs[0])])
    passes.replay(bb, body.nodes, env)
    return bb.build([env[id(v)] for v in body.outputs])


def _closure(nodes, values):
    """The nodes (in order) that `values` depend on, themselves included."""
    need = {id(v) for v in values}
    for node in reversed(nodes):
        if id(node) in need:
            need.update(id(a) for a in node.args)
    return [n for n in nodes if id(n) in need]

autodiff.LOOP_JVP.update({op: jvp_node for op in LOOPS})
