"""VJP: the reverse-mode derivative rule of every op, and `unbroadcast`.

`VJP[op](b, node, g) -> tuple` gives one cotangent per entry of `node.args`: a Value, None (zero), or
a function of no arguments building the Value (deferred), which the transform calls only when that
operand is active (depends on a differentiated input; see `cotangents`): a partial that refuses (e.g. a
second derivative w.r.t. a shape parameter, ir/incomplete_partials.py) then refuses only when needed.
`b` is the Builder of the backward trace, `node` the primal node (its args are primal Values usable in
the backward trace), `g` the cotangent of `node` (node's shape and dtype).  A returned cotangent may have
any shape that broadcasts to its operand's shape and any float or complex dtype: the AD transform passes
it through `unbroadcast`, the one place that sums broadcasting away and casts (rules never do; a complex
cotangent of a real operand becomes its real part there).  Complex operands: elementwise rules multiply
by the conjugate of the shared partial, dot_general contracts with the conjugated other operand.  Ops in
ops.NON_DIFFERENTIABLE, integer/bool operands and index-array operands get None.  Rules use IR ops
only, so the backward trace can itself be differentiated with these rules (second derivatives).
Elementwise partials and reduction helpers are shared with the JVP table (ir/partials.py); the
linear-algebra rules live in ir/linalg_rules.py, those of conj and the Fourier transforms in
ir/fft_rules.py.
"""
import numpy as np

from . import custom_ops
from .errors import IRError
from .fft_rules import VJP_RULES as FFT_VJP
from .linalg_rules import VJP_RULES as LINALG_VJP
from .ops import SPECS
from .spec import inverse_permutation
from .partials import (PARTIALS, STRUCTURED_RULES, cast, check_derivative_table,
                       elementwise_and_underived, expand_reduced,
                       extremum_vjp, flip, is_float, prod_of_others, scalar, scale)

VJP = {}


def unbroadcast(b, ct, shape, dtype):
    """Cotangent `ct` brought to exactly `shape` and `dtype`: sum the axes broadcasting added (leading
    axes, and size-1 axes of `shape` that `ct` stretched), broadcast up where `ct` is smaller, cast."""
    shape = tuple(shape)
    if ct.shape != shape:
        lead = ct.ndim - len(shape)
        if lead > 0:
            ct = b.sum(ct, axis=tuple(range(lead)), keepdims=False)
        stretched = tuple(i for i, (c, s) in enumerate(zip(ct.shape, shape)) if s == 1 and c != 1)
        if stretched:
            ct = b.sum(ct, axis=stretched, keepdims=True)
        if ct.shape != shape:
            ct = b.broadcast_to(ct, shape=shape)
    return cast(b, ct, dtype)


def _if_float(operand, make):
    """`make` (deferred: built only if the operand is active) if `operand` carries derivatives, else None."""
    return make if is_float(operand) else None


def cotangents(b, node, g, active):
    """The cotangents VJP[node.op] gives node's operands for cotangent `g`, one per operand: None where
    `active` (one bool per operand) is false or no cotangent flows; deferred ones are built only for
    active operands."""
    results = VJP[node.op](b, node, g)
    if len(results) != len(node.args):
        raise IRError(f"VJP rule of {node.op} gave {len(results)} cotangents for {len(node.args)} operands")
    return [None if ct is None or not is_active else ct() if callable(ct) else ct
            for ct, is_active in zip(results, active)]


def _no_cotangents(b, node, g):
    return (None,) * len(node.args)


def conj_if_complex(b, v):
    """conj(v) for a complex Value, else `v` itself (VJPs multiply by the conjugate partial)."""
    return b.conj(v) if v.dtype.kind == "c" else v


def _elementwise(op):
    partials = PARTIALS[op]

    def rule(b, node, g):
        return tuple(_if_float(a, lambda d=d: scale(b, g, _conj_partial(b, d(b, node))))
                     for a, d in zip(node.args, partials))
    return rule


def _conj_partial(b, d):
    return d if isinstance(d, str) else conj_if_complex(b, d)


VJP.update(elementwise_and_underived(_elementwise, _no_cotangents))


def _where(b, node, g):
    cond, x, y = node.args
    zero = scalar(b, 0, g.dtype)
    return None, _if_float(x, lambda: b.where(cond, g, zero)), _if_float(y, lambda: b.where(cond, zero, g))


def _one_operand(cotangent):
    """Rule of a one-operand op: `cotangent(b, node, g)` if the operand is float, else None."""
    def rule(b, node, g):
        return (_if_float(node.args[0], lambda: cotangent(b, node, g)),)
    return rule


def _weighted(weights):
    """Cotangent of a reduction: g broadcast back (keepdims form) times `weights(b, node)`."""
    return lambda b, node, g: b.multiply(expand_reduced(b, g, node), weights(b, node))


def _reverse_cumsum(b, node, g):
    axis = node.params["axis"]
    return flip(b, b.cumsum(flip(b, g, axis), axis=axis), axis)


_ONE_OPERAND = {
    # astype: cast back (none if the result is not float)
    "astype": lambda b, node, g: cast(b, g, node.args[0].dtype) if is_float(node) else None,
    "sum": lambda b, node, g: expand_reduced(b, g, node),
    "prod": _weighted(prod_of_others),
    "max": extremum_vjp,
    "min": extremum_vjp,
    "cumsum": _reverse_cumsum,
    "reshape": lambda b, node, g: b.reshape(g, shape=node.args[0].shape),
    "transpose": lambda b, node, g: b.transpose(g, perm=inverse_permutation(node.params["perm"])),
    "broadcast_to": lambda b, node, g: g,  # unbroadcast sums it back to the operand's shape
}
VJP.update({op: _one_operand(cotangent) for op, cotangent in _ONE_OPERAND.items()})
VJP["where"] = _where


def _concatenate(b, node, g):
    axis = node.params["axis"]
    lead = tuple(("slice", 0, d, 1) for d in node.shape[:axis])
    cts, start = [], 0
    for a in node.args:
        n = a.shape[axis]
        cts.append(_if_float(a, lambda s=start, n=n: b.index(g, spec=lead + (("slice", s, n, 1),))))
        start += n
    return tuple(cts)


VJP["concatenate"] = _concatenate


def _index(b, node, g):
    x, *arrays = node.args
    ct = _if_float(x, lambda: b.index_add(b.fill(x.shape, x.dtype, 0), g, *arrays, spec=node.params["spec"]))
    return (ct,) + (None,) * len(arrays)


def _winners(b, node, region_shape):
    """For index_set with index arrays: a bool mask, shaped like x[spec], of the entries whose write is
    the one that lands (repeated indices: the last write wins, exactly as the evaluation does it)."""
    x, v, *arrays = node.args
    spec = node.params["spec"]
    ids = b.const(np.arange(int(np.prod(region_shape)), dtype=np.intp).reshape(region_shape))
    written = b.index_set(b.fill(x.shape, np.intp, -1), ids, *arrays, spec=spec)
    return b.equal(b.index(written, *arrays, spec=spec), ids)


def _may_repeat(arrays):
    """Whether index arrays may name one position twice: more than one index tuple (a write at one
    position, `traj[i] = x`, needs no winners mask: building it cost a fill of all of x per write, so
    a loop writing its rows one by one was quadratic in the trip count)."""
    return any(int(np.prod(a.shape)) > 1 for a in arrays)


def _index_set(b, node, g):
    x, v, *arrays = node.args
    spec = node.params["spec"]
    made = []

    def value_ct():
        if not made:
            taken = b.index(g, *arrays, spec=spec)
            made.append(b.where(_winners(b, node, taken.shape), taken, scalar(b, 0, g.dtype))
                        if _may_repeat(arrays) else taken)
        return made[0]

    def x_ct():
        if is_float(v):   # g read before it is overwritten, so the write may update g's buffer in place
            value_ct()    # (a loop's cotangent carry: jit/loops.py in_place_carries); unused: removed by DCE
        return b.index_set(g, scalar(b, 0, g.dtype), *arrays, spec=spec)
    return (_if_float(x, x_ct), _if_float(v, value_ct)) + (None,) * len(arrays)


def _index_add(b, node, g):
    x, v, *arrays = node.args
    v_ct = _if_float(v, lambda: b.index(g, *arrays, spec=node.params["spec"]))
    return (_if_float(x, lambda: g), v_ct) + (None,) * len(arrays)


VJP.update(index=_index, index_set=_index_set, index_add=_index_add)


def _dot_transpose(b, g, other, g_other_free, other_free, other_batch, own_batch, own_free, own_contract,
                   other_contract):
    """The cotangent of one dot_general operand ("own"), as JAX transposes dot_general: contract g with
    the other operand over the other's free axes, then permute the axes back into own's order.  When
    the product taken the other way round (other . g) already has own's axis order, that one is
    emitted instead: no transpose (e.g. a weight gradient h.T @ g comes out as one BLAS call)."""
    g_batch = tuple(range(len(own_batch)))
    from_other = [own_contract[other_contract.index(j)] for j in sorted(other_contract)]
    swapped_axes = list(own_batch) + from_other + list(own_free)
    if swapped_axes == sorted(swapped_axes):
        return b.dot_general(other, g, contract=(other_free, g_other_free), batch=(other_batch, g_batch))
    res = b.dot_general(g, other, contract=(g_other_free, other_free), batch=(g_batch, other_batch))
    perm = inverse_permutation(list(own_batch) + list(own_free) + from_other)
    return res if perm == tuple(range(len(perm))) else b.transpose(res, perm=perm)


def _dot_general(b, node, g):
    x, y = node.args
    (xc, yc), (xb, yb) = [tuple(map(tuple, p)) for p in (node.params["contract"], node.params["batch"])]
    xfree = tuple(i for i in range(x.ndim) if i not in xc and i not in xb)
    yfree = tuple(j for j in range(y.ndim) if j not in yc and j not in yb)
    g_xfree = tuple(range(len(xb), len(xb) + len(xfree)))
    g_yfree = tuple(range(len(xb) + len(xfree), g.ndim))
    return (_if_float(x, lambda: _dot_transpose(b, g, conj_if_complex(b, y), g_yfree, yfree, yb, xb, xfree,
                                                xc, yc)),                  # ct_x = g . conj(y)
            _if_float(y, lambda: _dot_transpose(b, g, conj_if_complex(b, x), g_xfree, xfree, xb, yb, yfree,
                                                yc, xc)))


VJP["dot_general"] = _dot_general
VJP.update(LINALG_VJP)
VJP.update(FFT_VJP)
VJP["custom_call"] = custom_ops.vjp


VJP.update(STRUCTURED_RULES)



def check_complete(specs=SPECS):
    """IRError unless VJP has a rule for every op of `specs`, the zero rule exactly for those it says
    are not differentiable.  Run when the module is imported; tests run it on scratch specs."""
    check_derivative_table("VJP (ir/vjp.py)", VJP, _no_cotangents, specs)


check_complete()
