"""Rules for NumPy functions whose own code writes into fresh plain arrays, reads strides or calls
compiled helpers: pad, diag, diagflat, vander, kron, sliding_window_view, partition, argpartition and
linspace (np.logspace and np.geomspace are NumPy's Python code calling it), and np.vectorize's call.

Most are gathers: the same NumPy function is applied to an array of element numbers (`np.arange`
shaped like the operand), which says where each output element comes from; positions past the
operand's last element select fill values (pad constants, diag's zeros).  partition returns the fully
sorted array, which is one of the arrangements NumPy's contract allows (its concrete value is the sorted
array too, so the traced run and the compiled code agree).
np.vectorize(f)(*args) interprets f on every element (NumPy calls it through a compiled object ufunc):
the trace grows with the number of elements.
"""
import operator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as np_sliding_window_view

from ..arrays import array_api as A
from ..interpretation import interpreter
from ..recording.registry import register
from ..arrays.reorder import diagonal
from ..arrays.indexing import setitem
from ..arrays.values import astype, builder, elementwise, lift, make, make_view, reshape, unwrap
from ..arrays.refusals import refuse
from ..arrays.sort_scan import argsort, cumprod, sort


def element_numbers(x):
    """np.arange(x.size) shaped like TracedArray x: the flat position of every element."""
    return np.arange(x.value.size, dtype=np.intp).reshape(np.shape(x.value))


def gather(x, positions, fills=None):
    """IR of ravel(x) (followed by the 1-d IR `fills`, cast to x's dtype) taken at int array `positions`."""
    b = builder()
    flat = A.ravel(x).ir
    if fills is not None:
        flat = b.concatenate(flat, astype(fills, flat.dtype), axis=0)
    return b.index(flat, b.const(np.asarray(positions, dtype=np.intp)), spec=(("array", 0),))


_GATHER_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(array, pad_width, mode="constant", **kwargs):
    """np.pad for the modes constant, edge, reflect, symmetric and wrap (reflect_type='even')."""
    if not isinstance(mode, str) or mode not in _GATHER_PAD_MODES:
        refuse(f"np.pad with mode={mode!r} is not supported while tracing (modes: {', '.join(_GATHER_PAD_MODES)})")
    if kwargs.get("reflect_type", "even") != "even":
        refuse("np.pad with reflect_type='odd' is not supported while tracing")
    x = A.as_traced(array)
    concrete = np.pad(x.value, unwrap(pad_width), mode, **unwrap(kwargs))
    numbers = element_numbers(x)
    if mode != "constant":
        return make(gather(x, np.pad(numbers, pad_width, mode, **kwargs)), concrete)
    # Constant mode: each (axis, side) gets its own sentinel position past the end, NumPy orders corners.
    ndim, n = numbers.ndim, numbers.size
    sentinels = (n + np.arange(2 * ndim)).reshape(ndim, 2)
    positions = np.pad(numbers, pad_width, "constant", constant_values=sentinels)
    values = builder().broadcast_to(lift(kwargs.get("constant_values", 0)), shape=(ndim, 2))
    return make(gather(x, positions, reshape(values, (2 * ndim,))), concrete)


def diag(v, k=0):
    """np.diag: the k-th diagonal of a 2-d array, or a 2-d array with 1-d v on its k-th diagonal."""
    x = A.as_traced(v)
    if x.ir.ndim == 2:
        return diagonal(x, k)
    concrete = np.diag(x.value, k)
    if x.ir.ndim != 1:
        refuse("np.diag takes a 1-d or 2-d array")
    size = x.value.size
    positions = np.diag(np.arange(1, size + 1), k) - 1            # -1 off the diagonal
    positions[positions < 0] = size                               # -> the zero fill value
    return make(gather(x, positions, builder().fill((1,), x.ir.dtype, 0)), concrete)


def diagflat(v, k=0):
    """np.diagflat: np.diag of the flattened input."""
    return diag(A.ravel(A.as_traced(v)), k)


def vander(x, N=None, increasing=False):
    """np.vander: columns x**0, x**1, ... computed as NumPy does, by cumulative products of x."""
    t = A.as_traced(x)
    concrete = np.vander(t.value, N, increasing)
    if t.ir.ndim != 1:
        refuse("np.vander takes a 1-d array")
    rows, columns = concrete.shape
    if columns == 0:
        return make(builder().fill(concrete.shape, concrete.dtype, 0), concrete)
    x_columns = A.broadcast_to(A.reshape_(t, (rows, 1)), (rows, columns - 1))
    powers = cumprod(A.concatenate([np.ones((rows, 1), concrete.dtype), x_columns], axis=1), axis=1)
    return make((powers if increasing else powers[:, ::-1]).ir, concrete)


def kron(a, b):
    """np.kron: the operands' axes interleaved, multiplied by broadcasting and merged pairwise."""
    concrete = np.kron(unwrap(a), unwrap(b))
    x, y = A.as_traced(a), A.as_traced(b)
    nd = max(x.ir.ndim, y.ir.ndim)
    xs = (1,) * (nd - x.ir.ndim) + x.ir.shape
    ys = (1,) * (nd - y.ir.ndim) + y.ir.shape
    x = A.reshape_(x, sum(((d, 1) for d in xs), ()))
    y = A.reshape_(y, sum(((1, d) for d in ys), ()))
    product = elementwise("multiply", np.multiply, x, y)
    return make(A.reshape_(product, concrete.shape).ir, concrete)


def sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    """numpy.lib.stride_tricks.sliding_window_view (read-only, as NumPy's default)."""
    if writeable:
        refuse("sliding_window_view(..., writeable=True) is not supported while tracing")
    t = A.as_traced(x)
    concrete = np_sliding_window_view(t.value, window_shape, axis)
    positions = np_sliding_window_view(element_numbers(t), window_shape, axis)
    return make_view(gather(t, positions), concrete, t)


def _check_kth(np_fn, x, kth, axis):
    np_fn(x.value, kth, axis=axis)                                 # NumPy's checks of kth and axis


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """np.partition: the sorted array (a valid partition for every kth)."""
    x = A.as_traced(a)
    _check_kth(np.partition, x, unwrap(kth), axis)
    return sort(x, axis=axis, order=order)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """np.argpartition: the sorting permutation (valid for every kth)."""
    x = A.as_traced(a)
    _check_kth(np.argpartition, x, unwrap(kth), axis)
    return argsort(x, axis=axis, order=order)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    """np.linspace with traced start/stop (num static): NumPy's own arithmetic, operation for operation,
    so the values are NumPy's exactly (the zero-step test is guarded)."""
    num = operator.index(num)
    concrete = np.linspace(unwrap(start), unwrap(stop), num, endpoint, retstep, dtype, axis, device=device)
    dt = np.linspace(unwrap(start), unwrap(stop), 0).dtype            # NumPy's inexact result type
    if dt.kind != "f":
        refuse(f"np.linspace of {dt} values is not supported while tracing")
    first, last = A.astype_(A.as_traced(start), dt), A.astype_(A.as_traced(stop), dt)
    delta = last - first
    y = np.arange(0, num, dtype=dt).reshape((-1,) + (1,) * delta.ndim)
    div = (num - 1) if endpoint else num
    step = np.nan
    if div <= 0:
        y = y * delta
    else:
        step = delta / div
        y = (y / div) * delta if A.any_(step == 0) else y * step
    y = y + first
    if endpoint and num > 1:
        setitem(y, (-1, Ellipsis), last)
    if axis != 0:
        y = A.moveaxis(y, 0, axis)
    if dtype is not None and np.issubdtype(dtype, np.integer):
        y = elementwise("floor", np.floor, y)
    y = A.astype_(y, concrete[0].dtype if retstep else concrete.dtype, copy=False)
    return (y, step) if retstep else y


def vectorize_call(self, func, args):
    """np.vectorize's `_vectorize_call`: `func` called on the Python scalars of the broadcast arguments,
    element by element, its results stacked in the output dtypes (`otypes`, or those of the first
    result, as NumPy does).  With a gufunc `signature`, NumPy's own Python code for it is interpreted."""
    if self.signature is not None:
        return interpreter.call(type(self)._vectorize_call_with_signature, (self, func, args), {})
    arrays = [A.asarray(a) for a in args]
    shape = np.broadcast_shapes(*[np.shape(a.value) for a in arrays])
    if 0 in shape:
        refuse("np.vectorize of size-0 inputs is not traced")
    flat = [A.ravel(A.broadcast_to(a, shape)) for a in arrays]
    results = [interpreter.call(func, tuple(x[i].item() for x in flat), {}) for i in range(int(np.prod(shape)))]
    single = not isinstance(results[0], tuple)
    columns = [results] if single else list(zip(*results))
    otypes = self.otypes or "".join(np.asarray(unwrap(c[0])).dtype.char for c in columns)
    outputs = tuple(_stacked(column, np.dtype(t), shape) for column, t in zip(columns, otypes))
    return outputs[0] if single else outputs


def _stacked(values, dtype, shape):
    """The traced array of `values` (traced or not) in `dtype`, shaped `shape`."""
    concrete = np.array(unwrap(list(values)), dtype=dtype).reshape(shape)
    return make(reshape(astype(lift(list(values)), dtype), shape), concrete)


_RULES = {
    np.pad: pad, np.diag: diag, np.diagflat: diagflat, np.vander: vander, np.kron: kron,
    np_sliding_window_view: sliding_window_view, np.partition: partition, np.argpartition: argpartition,
    np.vectorize._vectorize_call: vectorize_call,
}
for _fn, _rule in _RULES.items():
    register(_fn)(_rule)
