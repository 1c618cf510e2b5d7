"""Shifts that cancel: values the differentiated outputs do not depend on, constants for the AD transforms.

Log-sum-exp and softmax are written the stable way, by subtracting each row's max:
    m = np.max(z, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(z - m), axis=1)) + m[:, 0]          # or: p = e / np.sum(e, ...), e = exp(z - m)
and the result does not depend on m at all: its derivative through m is zero (per row, 1 - sum(softmax)).
Differentiated op by op, that zero is still computed, to rounding: a row sum of it, a count of each
row's maxima and a masked term in the gradient, about a third of a softmax cross-entropy's row work
(0.29 of 0.78-0.88 ms at 512 x 1,000).  JAX's logsumexp stops the gradient of its max for this reason;
here the cancellation is proven on the user's own trace, and a value proven not to matter is a constant
for AD (`autodiff.active_ids`): the derivative is the same in exact arithmetic, only that rounded zero
goes.

The proof.  Perturb a value t by δ, an arbitrary array of t's shape, and follow the perturbation through
t's consumers in trace order, one rule per op (table SHIFT).  Every value reached is, exactly,
    v + c·δ   (Shift "add", c)     or     v·exp(c·δ)   (Shift "mul", c)
for a rational c (a shift scaled by a constant, `(z - m) / tau`, scales c), with δ laid out along v's
axes (`Shift.layout`: δ's extent along each axis of v, 1 where δ is constant along it).  c = 0 means the
value does not depend on t, and the perturbation stops there; a piecewise-constant op
(ops.NON_DIFFERENTIABLE: comparisons, guards) stops it too, its derivative being zero.  Any other
dependence (an op without a rule, a sum across an axis δ varies along, a product of a shift with a value
that is not a constant) is UNKNOWN and the proof fails.  t is shift-invariant when the perturbation
reaches no output.  Candidates are the subtrahends t of `exp(z - t)` (or of `exp((z - t) / tau)`, tau a
constant) and their shape-op ancestors (m of `z - m[:, None]`), the furthest ancestor tried first.
"""
import heapq
import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .ops import NON_DIFFERENTIABLE
from .passes import uniform_value

UNKNOWN = "unknown"
_SHAPE_OPS = ("reshape", "broadcast_to", "index", "transpose")


@dataclass(frozen=True)
class Shift:
    """How a value moves when t moves by δ: v + coef·δ ("add") or v·exp(coef·δ) ("mul")."""
    kind: str
    coef: Fraction        # exact, so that c·k and then c·k / k cancel to 0
    layout: tuple        # per axis of the value: δ's extent along it (1: δ is constant along the axis)


def _shift(kind, coef, layout):
    return None if coef == 0 else Shift(kind, coef, tuple(layout))


def _padded(s, ndim):
    """s with its layout aligned to a broadcast result of `ndim` axes (NumPy aligns trailing axes)."""
    return Shift(s.kind, s.coef, (1,) * (ndim - len(s.layout)) + s.layout)


def _sum_of_shifts(node, a, b, sign):
    """a + sign·b, each operand's Shift or None."""
    ndim = len(node.shape)
    if b is None:
        return _padded(a, ndim) if a.kind == "add" else UNKNOWN
    b = _padded(b, ndim)
    if a is None:
        return Shift("add", sign * b.coef, b.layout) if b.kind == "add" else UNKNOWN
    a = _padded(a, ndim)
    if a.layout != b.layout or a.kind != b.kind:
        return UNKNOWN
    if a.kind == "add":
        return _shift("add", a.coef + sign * b.coef, a.layout)
    return a if a.coef == b.coef else UNKNOWN       # (v ± w)·exp(cδ)


def _product_of_shifts(node, a, b, sign):
    """a · b (sign 1) or a / b (sign -1): factors exp(cδ) multiply; a shift by c·δ only scales by a
    constant (`_scaled`)."""
    ndim = len(node.shape)
    scaled = _scaled(node, a, b, sign)
    if scaled is not None:
        return scaled
    shifts = [_padded(s, ndim) for s in (a, b) if s is not None]
    if any(s.kind != "mul" for s in shifts) or len({s.layout for s in shifts}) > 1:
        return UNKNOWN
    coef = (a.coef if a is not None else 0) + sign * (b.coef if b is not None else 0)
    return _shift("mul", coef, shifts[0].layout)


def _scaled(node, a, b, sign):
    """A shift by c·δ times a constant k, or over one: a shift by (c·k)δ or (c/k)δ; UNKNOWN for any
    other factor; None when neither operand is a shift by c·δ."""
    if a is not None and a.kind == "add" and b is None:
        shift, other = a, node.args[1]
    elif sign == 1 and b is not None and b.kind == "add" and a is None:
        shift, other = b, node.args[0]
    elif any(s is not None and s.kind == "add" for s in (a, b)):
        return UNKNOWN
    else:
        return None
    k = _constant(other)
    if k is None or (sign == -1 and k == 0):
        return UNKNOWN
    return _shift("add", shift.coef * k if sign == 1 else shift.coef / k, _padded(shift, len(node.shape)).layout)


def _constant(v):
    """The exact rational value of `v` when it is a fill, or a one-element const, of one finite real value,
    else None (a bigger const is not scanned: this runs for every exp of a trace)."""
    value = uniform_value(v) if v.op == "fill" or (v.op == "const" and v.size == 1) else None
    if value is None or np.iscomplexobj(value) or not np.isfinite(value):
        return None
    return Fraction(float(value))


def _reduction(node, s):
    """sum / max / min over axes δ is constant along: (v + cδ) sums to k·v-sum + k·c·δ, and a factor
    exp(cδ) > 0 passes through sums and extrema alike."""
    axes = node.params["axis"]
    if any(s.layout[ax] != 1 for ax in axes):
        return UNKNOWN
    coef = s.coef
    if node.op == "sum" and s.kind == "add":
        coef *= math.prod(node.args[0].shape[ax] for ax in axes)
    layout = s.layout if node.params["keepdims"] else tuple(e for ax, e in enumerate(s.layout) if ax not in axes)
    return Shift(s.kind, coef, layout)


def _reshape(node, s):
    """Only reshapes that add or drop length-1 axes keep track of δ's axes."""
    before = [(ax, n) for ax, n in enumerate(node.args[0].shape) if n != 1]
    after = [ax for ax, n in enumerate(node.shape) if n != 1]
    if [n for _, n in before] != [node.shape[ax] for ax in after]:
        return UNKNOWN
    layout = [1] * len(node.shape)
    for (old, _), new in zip(before, after):
        layout[new] = s.layout[old]
    return Shift(s.kind, s.coef, tuple(layout))


def _index(node, s):
    """Basic indexing: whole slices keep an axis δ varies along, ints and part slices only drop or cut
    axes δ is constant along; index arrays are UNKNOWN."""
    layout, axis = [], 0
    for entry in node.params["spec"]:
        if entry[0] == "newaxis":
            layout.append(1)
            continue
        extent = s.layout[axis]
        whole = entry == ("slice", 0, node.args[0].shape[axis], 1)
        if entry[0] == "array" or (extent != 1 and not whole):
            return UNKNOWN
        if entry[0] == "slice":
            layout.append(extent)
        axis += 1
    return Shift(s.kind, s.coef, tuple(layout) + s.layout[axis:])


def _where(node, states):
    _, x, y = (_padded(s, len(node.shape)) if s is not None else None for s in states)
    return x if x == y else UNKNOWN


def _one(rule):
    """A one-operand op's rule, given the operand's Shift."""
    return lambda node, states: rule(node, states[0])


SHIFT = {
    "add": lambda node, states: _sum_of_shifts(node, *states, 1),
    "subtract": lambda node, states: _sum_of_shifts(node, *states, -1),
    "multiply": lambda node, states: _product_of_shifts(node, *states, 1),
    "divide": lambda node, states: _product_of_shifts(node, *states, -1),
    "negative": _one(lambda node, s: Shift(s.kind, -s.coef if s.kind == "add" else s.coef, s.layout)),
    "exp": _one(lambda node, s: Shift("mul", s.coef, s.layout) if s.kind == "add" else UNKNOWN),
    "log": _one(lambda node, s: Shift("add", s.coef, s.layout) if s.kind == "mul" else UNKNOWN),
    "sum": _one(_reduction),
    "max": _one(_reduction),
    "min": _one(_reduction),
    "reshape": _one(_reshape),
    "broadcast_to": _one(lambda node, s: _padded(s, len(node.shape))),
    "transpose": _one(lambda node, s: Shift(s.kind, s.coef, tuple(s.layout[ax] for ax in node.params["perm"]))),
    "index": _one(_index),
    "astype": _one(lambda node, s: s if node.dtype.kind == "f" else UNKNOWN if node.dtype.kind == "c" else None),
    "where": _where,
}


def _moved(node, states):
    """The Shift of `node` given its operands' (None where unaffected), None, or UNKNOWN."""
    if node.op in NON_DIFFERENTIABLE:
        return None
    rule = SHIFT.get(node.op)
    return UNKNOWN if rule is None else rule(node, states)


def _shifted_exponent(node):
    """The subtraction z - t of exp(z - t), also under products with and divisions by constants
    (exp((z - t) / tau)); else None."""
    x = node.args[0]
    while x.op in ("multiply", "divide"):
        if _constant(x.args[1]) is not None:
            x = x.args[0]
        elif x.op == "multiply" and _constant(x.args[0]) is not None:
            x = x.args[1]
        else:
            return None
    return x if x.op == "subtract" else None


def _candidates(nodes):
    """For each subtrahend t of exp(z - t): t and its chain of shape-op ancestors, furthest first."""
    for node in nodes:
        shifted = _shifted_exponent(node) if node.op == "exp" else None
        if shifted is not None:
            chain = [shifted.args[1]]
            while chain[-1].op in _SHAPE_OPS and len(chain[-1].args) == 1:
                chain.append(chain[-1].args[0])
            yield chain[::-1]


def shift_invariant(nodes, outputs, active):
    """ids of the active values among `nodes` that `outputs` do not depend on, by the shift algebra of
    the module docstring (empty when the trace has no exp(z - t))."""
    position = {id(n): k for k, n in enumerate(nodes)}
    consumers = None
    reach_outputs = {id(v) for v in outputs}
    found, tried = set(), set()
    for chain in _candidates(nodes):
        for t in chain:        # the first invariant one: its descendants along the chain then are too
            if id(t) in found:
                break
            if id(t) in tried or id(t) not in active or id(t) not in position:
                continue
            tried.add(id(t))
            if consumers is None:
                consumers = defaultdict(list)
                for k, n in enumerate(nodes):
                    for a in n.args:
                        consumers[id(a)].append(k)
            if _invariant(t, nodes, consumers, reach_outputs):
                found.add(id(t))
                break
    return found


def _invariant(t, nodes, consumers, outputs):
    """Whether perturbing t reaches none of `outputs` (ids)."""
    if id(t) in outputs:
        return False
    shifts = {id(t): Shift("add", Fraction(1), tuple(t.shape))}
    queue = sorted(set(consumers[id(t)]))
    queued = set(queue)
    while queue:
        node = nodes[heapq.heappop(queue)]
        moved = _moved(node, [shifts.get(id(a)) for a in node.args])
        if moved is UNKNOWN or (moved is not None and id(node) in outputs):
            return False
        if moved is None:
            continue
        shifts[id(node)] = moved
        for k in consumers[id(node)]:
            if k not in queued:
                queued.add(k)
                heapq.heappush(queue, k)
    return True
