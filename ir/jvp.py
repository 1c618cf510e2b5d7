"""JVP: the forward-mode derivative rule of every op.

`JVP[op](b, node, tangents) -> Value or None`: `b` is the Builder of the tangent trace, `node` the primal
node, `tangents` one Value-or-None (None = zero) per entry of `node.args`, each shaped and typed like
its operand (the AD transform guarantees it).  The result (None = zero) need only broadcast to node's
shape and have a float dtype: the transform broadcasts and casts it.  Tangents of integer, bool and
index-array operands are ignored; ops in ops.NON_DIFFERENTIABLE, sources and guards give None.
Elementwise partials and reduction helpers are shared with the VJP table (ir/partials.py); the
linear-algebra rules live in ir/linalg_rules.py, those of conj and the Fourier transforms in
ir/fft_rules.py.
"""
from . import custom_ops
from .fft_rules import JVP_RULES as FFT_JVP
from .linalg_rules import JVP_RULES as LINALG_JVP
from .ops import SPECS
from .partials import (PARTIALS, STRUCTURED_RULES, cast, check_derivative_table,
                       elementwise_and_underived, extremum_weights,
                       is_float, prod_of_others, scalar, scale)

JVP = {}


def _no_tangent(b, node, tangents):
    return None


def _float_tangents(node, tangents):
    """The tangents, with None for operands that carry no derivatives."""
    return [t if t is not None and is_float(a) else None for a, t in zip(node.args, tangents)]


def _total(b, terms):
    """The sum of the non-None `terms` (None if there are none)."""
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else b.add(total, t)
    return total


def _or_zeros(b, t, like, dtype):
    """`t`, or zeros shaped like `like` if `t` is None."""
    return t if t is not None else b.fill(like.shape, dtype, 0)


def _with_tangents(rule):
    """Run `rule(b, node, tangents)` only if some float operand has a tangent; it sees the tangents
    with None for operands that carry no derivatives."""
    def wrapped(b, node, tangents):
        ts = _float_tangents(node, tangents)
        return None if all(t is None for t in ts) else rule(b, node, ts)
    return wrapped


def _elementwise(op):
    partials = PARTIALS[op]

    def rule(b, node, tangents):
        ts = _float_tangents(node, tangents)
        return _total(b, [scale(b, t, d(b, node)) for t, d in zip(ts, partials) if t is not None])
    return rule


JVP.update(elementwise_and_underived(_elementwise, _no_tangent))


def _where(b, node, ts):
    cond, x, y = node.args
    zero = scalar(b, 0, node.dtype)
    return b.where(cond, ts[1] if ts[1] is not None else zero, ts[2] if ts[2] is not None else zero)


def _astype(b, node, ts):
    return cast(b, ts[0], node.dtype) if is_float(node) else None


def _reduction(weights):
    """Rule of a reduction: the same reduction (a sum for prod/max/min) of the tangent times weights."""
    def rule(b, node, ts):
        p = node.params
        t = ts[0] if weights is None else b.multiply(ts[0], weights(b, node))
        return b.sum(t, axis=p["axis"], keepdims=p["keepdims"])
    return rule


JVP.update({
    "where": _with_tangents(_where),
    "astype": _with_tangents(_astype),
    "sum": _with_tangents(_reduction(None)),
    "prod": _with_tangents(_reduction(prod_of_others)),
    "max": _with_tangents(_reduction(extremum_weights)),
    "min": _with_tangents(_reduction(extremum_weights)),
    "cumsum": _with_tangents(lambda b, node, ts: b.cumsum(ts[0], **node.params)),
    "reshape": _with_tangents(lambda b, node, ts: b.reshape(ts[0], **node.params)),
    "transpose": _with_tangents(lambda b, node, ts: b.transpose(ts[0], **node.params)),
    "broadcast_to": _with_tangents(lambda b, node, ts: ts[0]),  # the transform broadcasts
    "concatenate": _with_tangents(lambda b, node, ts: b.concatenate(
        *[_or_zeros(b, t, a, node.dtype) for a, t in zip(node.args, ts)], **node.params)),
})


def _index(b, node, ts):
    x, *arrays = node.args
    return b.index(ts[0], *arrays, **node.params)


def _index_update(b, node, ts):
    """index_set / index_add are linear in (x, v) jointly: apply the op to the tangents."""
    x, v, *arrays = node.args
    tx, tv = ts[0], ts[1]
    if node.op == "index_add" and tv is None:
        return tx
    tv = tv if tv is not None else scalar(b, 0, node.dtype)
    return b.emit(node.op, _or_zeros(b, tx, x, node.dtype), tv, *arrays, **node.params)


def _dot_general(b, node, ts):
    x, y = node.args
    tx, ty = ts
    return _total(b, [b.dot_general(tx, y, **node.params) if tx is not None else None,
                      b.dot_general(x, ty, **node.params) if ty is not None else None])


JVP.update(index=_with_tangents(_index), index_set=_with_tangents(_index_update),
           index_add=_with_tangents(_index_update),
           dot_general=_with_tangents(_dot_general))
JVP.update({op: _with_tangents(rule) for op, rule in {**LINALG_JVP, **FFT_JVP}.items()})
JVP["custom_call"] = _with_tangents(custom_ops.jvp)


JVP.update(STRUCTURED_RULES)



def check_complete(specs=SPECS):
    """IRError unless JVP has a rule for every op of `specs`, the zero rule exactly for those it says
    are not differentiable.  Run when the module is imported; tests run it on scratch specs."""
    check_derivative_table("JVP (ir/jvp.py)", JVP, _no_tangent, specs)


check_complete()
