"""NumPy functions and methods that write into an array, functionalized: `store` (a whole-array write
under an optional mask, shared with ufuncs' `out=`), `x.fill`, `np.copyto`, `np.fill_diagonal` and
`ufunc.at` (np.add.at / np.subtract.at accumulate over repeated indices: the IR's `index_add`).

Each computes the concrete result with NumPy on a copy of the target's value first (so NumPy's errors
and casting rules apply), then rebinds the target (`values.rebind`: views see the write, arguments are
never modified).  A plain target receiving a traced value is refused (`aliasing.check_plain_write`).
"""
import numpy as np

from .aliasing import check_plain_write
from .indexing import index_spec, region_value
from .values import TracedArray, astype, builder, const, lift, rebind, refuse, reshape, unwrap


def _written(a, what, values, write):
    """NumPy's in-place `write(array)` done on a copy of TracedArray `a`'s value, which is returned (the
    new concrete value); a plain `a` taking only constant `values` is written natively (None returned)."""
    if type(a) is not TracedArray:
        check_plain_write(what, *values)
        write(a)
        return None
    if not isinstance(a.value, np.ndarray):
        refuse(f"{what}: the target is not an array")
    new_value = a.value.copy()
    write(new_value)                              # NumPy's errors and casting rules first
    return new_value


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
    new_value = _written(a, "x.fill(value)", (value,), lambda array: array.fill(unwrap(value)))
    if new_value is not None:
        store(a, value, new_value)


def copyto(dst, src, casting="same_kind", where=True):
    """np.copyto: dst[...] = src where `where` (returns None)."""
    new_value = _written(dst, "np.copyto", (src, where),
                         lambda array: np.copyto(array, unwrap(src), casting=casting, where=unwrap(where)))
    if new_value is not None:
        store(dst, src, new_value, where)


def fill_diagonal(a, val, wrap=False):
    """np.fill_diagonal: NumPy's `a.flat[:end:step] = val` (val repeated cyclically; returns None)."""
    new_value = _written(a, "np.fill_diagonal", (val,), lambda array: np.fill_diagonal(array, unwrap(val), wrap=wrap))
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


def ufunc_at(ufunc, a, indices, b=None):
    """`np.add.at(a, indices, b)` / `np.subtract.at`: unbuffered, repeated indices accumulate."""
    addend = _AT_ADDENDS.get(ufunc)
    if addend is None or b is None:
        refuse(f"np.{ufunc.__name__}.at is not supported while tracing (only np.add.at and np.subtract.at)")
    new_value = _written(a, f"np.{ufunc.__name__}.at", (indices, b),
                         lambda array: ufunc.at(array, unwrap(indices), unwrap(b)))
    if new_value is None:
        return
    spec, arrays, _ = index_spec(a.ir.shape, indices)
    region = np.shape(a.value[unwrap(indices)])
    v = addend(builder(), region_value(b, region, a.ir.dtype))
    rebind(a, builder().index_add(a.ir, v, *arrays, spec=spec), new_value)
