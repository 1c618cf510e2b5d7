"""NumPy functions and methods that write into an array, functionalized: `store` (a whole-array write
under an optional mask, shared with ufuncs' `out=`), `x.fill`, `np.copyto`, `np.fill_diagonal` and
`ufunc.at` (np.add.at / np.subtract.at accumulate over repeated indices: the IR's `index_add`;
np.multiply.at, np.divide.at, np.maximum.at and np.minimum.at apply the ufunc in rounds: `ufunc_at`).

Each computes the concrete result with NumPy on a copy of the target's value first (so NumPy's errors
and casting rules apply), then rebinds the target (`values.rebind`: views see the write, arguments are
never modified).  A plain target receiving a traced value takes it as an array made while tracing does
(`aliasing.adopt_for_write`), or is refused (`aliasing.check_plain_write`).
"""
import numpy as np

from .aliasing import adopt_for_write, check_plain_write
from .indexing import index_spec, region_value, static_key
from .values import TracedArray, astype, builder, const, lift, rebind, reshape, unwrap
from .refusals import refuse


def _written(a, what, values, write):
    """(the TracedArray written, NumPy's in-place `write(array)` done on a copy of its value: the new
    concrete value); a plain `a` standing for no traced value and taking only constant `values` is
    written natively ((a, None) returned)."""
    adopted = adopt_for_write(a, what, *values) if type(a) is np.ndarray else None
    if adopted is not None:
        a = adopted
    if type(a) is not TracedArray:
        check_plain_write(what, *values)
        write(a)
        return a, None
    if not isinstance(a.value, np.ndarray):
        refuse(f"{what}: the target is not an array")
    new_value = a.value.copy()
    write(new_value)                              # NumPy's errors and casting rules first
    return a, new_value


def store(target, value, new_value, where=True):
    """`target[...] = value` (cast and broadcast) where `where` is true; `new_value` is NumPy's result."""
    b = builder()
    v = astype(lift(value), target.ir.dtype)
    if v.shape != target.ir.shape:
        v = b.broadcast_to(v, shape=target.ir.shape)
    if where is not True:
        v = b.where(astype(lift(where), bool), v, target.ir)
    return rebind(target, v, new_value)


def fill(a, value):
    """x.fill(value): every entry becomes `value` (returns None)."""
    a, new_value = _written(a, "x.fill(value)", (value,), lambda array: array.fill(unwrap(value)))
    if new_value is not None:
        store(a, value, new_value)


def copyto(dst, src, casting="same_kind", where=True):
    """np.copyto: dst[...] = src where `where` (returns None)."""
    dst, new_value = _written(dst, "np.copyto", (src, where),
                         lambda array: np.copyto(array, unwrap(src), casting=casting, where=unwrap(where)))
    if new_value is not None:
        store(dst, src, new_value, where)


def fill_diagonal(a, val, wrap=False):
    """np.fill_diagonal: NumPy's `a.flat[:end:step] = val` (val repeated cyclically; returns None)."""
    a, new_value = _written(a, "np.fill_diagonal", (val,),
                            lambda array: np.fill_diagonal(array, unwrap(val), wrap=wrap))
    if new_value is None:
        return
    written = np.zeros(a.value.shape, dtype=bool)
    np.fill_diagonal(written, True, wrap=wrap)
    positions = np.flatnonzero(written)
    v = astype(lift(val), a.ir.dtype)
    b = builder()
    if v.ndim:
        v = reshape(v, (v.size,))
        cycle = const(np.arange(positions.size) % v.shape[0])
        v = b.index(v, cycle, spec=(("array", 0),))
    flat = b.index_set(reshape(a.ir, (a.ir.size,)), v, const(positions), spec=(("array", 0),))
    rebind(a, reshape(flat, a.ir.shape), new_value)


# ufuncs whose `.at` is an accumulation of (a function of) the operand: ufunc -> IR of the added value
_AT_ADDENDS = {np.add: lambda b, v: v, np.subtract: lambda b, v: b.negative(v)}
# ufuncs whose `.at` is applied write by write (in rounds of distinct positions): ufunc -> IR op
_AT_STEPWISE = {np.multiply: "multiply", np.divide: "divide", np.maximum: "maximum", np.minimum: "minimum"}


def ufunc_at(ufunc, a, indices, b=None):
    """`ufunc.at(a, indices, b)`: unbuffered, so a repeated index sees every write in turn.

    np.add.at / np.subtract.at accumulate (`index_add`).  np.multiply.at, np.divide.at, np.maximum.at and
    np.minimum.at become rounds of gather / ufunc / scatter, round k doing the k-th write to each
    position (so each round's positions are distinct, and writes happen in NumPy's order); the number of
    rounds is the largest multiplicity of an index, and traced indices are guarded to their values.
    Ties of maximum/minimum split the derivative 0.5/0.5 at each write, as the loop
    `for i, v in zip(idx, b): a[i] = np.maximum(a[i], v)` does.
    """
    if b is None or (ufunc not in _AT_ADDENDS and ufunc not in _AT_STEPWISE):
        refuse(f"np.{ufunc.__name__}.at is not supported while tracing (supported: np.add.at, "
               "np.subtract.at, np.multiply.at, np.divide.at, np.maximum.at, np.minimum.at with an operand)")
    a, new_value = _written(a, f"np.{ufunc.__name__}.at", (indices, b),
                         lambda array: ufunc.at(array, unwrap(indices), unwrap(b)))
    if new_value is None:
        return
    if ufunc in _AT_STEPWISE:
        return _stepwise_at(_AT_STEPWISE[ufunc], a, indices, b, new_value)
    spec, arrays, _ = index_spec(a.ir.shape, indices)
    region = np.shape(a.value[unwrap(indices)])
    v = _AT_ADDENDS[ufunc](builder(), region_value(b, region, a.ir.dtype))
    rebind(a, builder().index_add(a.ir, v, *arrays, spec=spec), new_value)


def _occurrences(positions):
    """For each entry of 1-d int array `positions`: how many equal entries precede it."""
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    n = np.arange(positions.size)
    starts = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], n, 0))
    found = np.empty_like(n)
    found[order] = n - starts
    return found


def _stepwise_at(op, a, indices, b, new_value):
    """`a[i] = op(a[i], v)` for the (position, operand) pairs of ufunc.at, in rounds of distinct positions."""
    bld = builder()
    key = static_key(indices)
    region = np.shape(a.value[key])
    positions = np.arange(a.value.size).reshape(a.value.shape)[key].reshape(-1)
    dtype = np.result_type(a.value, unwrap(b))          # NumPy computes in the promoted dtype, then casts
    operand = bld.broadcast_to(region_value(b, region, dtype), shape=region)
    operand, flat = reshape(operand, (positions.size,)), reshape(a.ir, (a.ir.size,))
    occurrence = _occurrences(positions)
    for k in range(occurrence.max(initial=-1) + 1):
        writes = np.flatnonzero(occurrence == k)
        where, spec = const(positions[writes]), (("array", 0),)
        current = astype(bld.index(flat, where, spec=spec), dtype)
        update = bld.emit(op, current, bld.index(operand, const(writes), spec=spec))
        flat = bld.index_set(flat, astype(update, a.ir.dtype), where, spec=spec)
    rebind(a, reshape(flat, a.ir.shape), new_value)
