"""Indexing traced arrays: `x[key]` and `x[key] = v` translated to the IR's index specs.

Traced integer scalars in a key are guarded (the index is static), traced boolean masks are guarded to
equal their concrete value and then become constant integer index arrays (the result's shape depends
on them), traced integer arrays stay dynamic with a bounds guard.  `x[mask] = scalar` needs no guard: it
becomes `where(mask, scalar, x)`.  Writes are functionalized with `rebind`.
"""
import operator

import numpy as np

from ...ir.spec import normalize_slice
from .aliasing import CONSTANT_OPS, adopt_for_write, shadowed_items
from .loopindex import is_counter_entry
from .values import (
    IMPLEMENTATIONS, TracedArray, astype, builder, const, contains_traced, dtype_of, guard, lift, lift_operands,
    make_view, rebind, reshape, unwrap, ViewLink)
from .refusals import refuse


def _entries(key):
    return list(key) if type(key) is tuple else [key]


def _static_entry(e):
    """Resolve a traced entry that fixes the result's structure: guard it, return its concrete form."""
    if is_counter_entry(e):
        return e                                          # a rolled loop's counter: dynamic
    if type(e) is TracedArray and e.ir.op in CONSTANT_OPS:
        e = e.value                                       # a constant array (np.arange(n) in user code)
    if type(e) is not TracedArray:
        if isinstance(e, list) and contains_traced(e):
            refuse("an index given as a list holding traced values is not supported; use np.array(list)")
        return np.asarray(e) if isinstance(e, (list, range)) else e      # (NumPy: a sequence of ints)
    if dtype_of(e.value).kind == "b":
        return guarded_value(e, "boolean mask used as an index (the result's shape depends on it)")
    if np.ndim(e.value) == 0:
        return operator.index(e)                          # guarded by __index__
    return e                                              # a traced integer array stays dynamic


def guarded_value(t, why):
    """The concrete value of TracedArray `t`, guarded: the trace holds only while `t` equals it."""
    value = np.asarray(t.value)
    differs = builder().not_equal(t.ir, const(value))
    guard(builder().sum(differs, axis=tuple(range(value.ndim)), keepdims=False), 0, why)
    return value


def static_key(key):
    """`key` with every traced entry replaced by its guarded concrete value (for writes whose pattern
    depends on the index values, such as repeated indices in np.multiply.at)."""
    entries = [_static_entry(e) for e in _entries(key)]
    return tuple(guarded_value(e, "traced index array whose repeated entries decide the writes")
                 if type(e) is TracedArray else e for e in entries)


def _bounds_guard(index, dim):
    b = builder()
    if index.size == 0:
        return
    ok = b.less(index, const(dim, index.dtype))
    if index.dtype.kind != "u":
        ok = b.logical_and(ok, b.greater_equal(index, const(-dim, index.dtype)))
    guard(b.min(ok, axis=tuple(range(index.ndim)), keepdims=False), True, "traced index array in bounds")


def _is_mask(e):
    return isinstance(e, np.ndarray) and e.dtype == bool and e.ndim > 0


def _is_scalar_bool(e):
    """A 0-d boolean index (a Python/NumPy bool, or a 0-d mask such as `cond` of a 0-d array): True
    adds an axis of length 1 (as None does), False one of length 0."""
    return isinstance(e, (bool, np.bool_)) or isinstance(e, np.ndarray) and e.ndim == 0 and e.dtype == bool


def _selects_nothing(entries):
    """Whether the resolved key holds a False scalar boolean (the selection is empty); refuses scalar
    booleans mixed with index arrays (NumPy broadcasts them together: not translated)."""
    scalars = [bool(e) for e in entries if _is_scalar_bool(e)]
    if not scalars:
        return False
    if any(type(e) is TracedArray or isinstance(e, np.ndarray) and e.ndim > 0 for e in entries):
        refuse("indexing with a scalar boolean together with index arrays is not supported while tracing")
    return not all(scalars)


def _spec(shape, entries):
    """(spec, index-array IR Values) for resolved key `entries` on an array of `shape`."""
    consumed = sum(e.ndim if _is_mask(e) else 1 for e in entries
                   if e is not None and e is not Ellipsis and not _is_scalar_bool(e))
    spec, arrays, axis = [], [], 0
    for e in entries:
        if e is None or _is_scalar_bool(e):           # (a False one: see _selects_nothing)
            spec.append(("newaxis",))
        elif e is Ellipsis:
            spec.extend(("slice", 0, d, 1) for d in shape[axis:axis + len(shape) - consumed])
            axis += len(shape) - consumed
        elif isinstance(e, slice):
            spec.append(normalize_slice(e, shape[axis]))
            axis += 1
        elif type(e) is TracedArray:
            _bounds_guard(e.ir, shape[axis])
            spec.append(("array", len(arrays)))
            arrays.append(e.ir)
            axis += 1
        elif _is_mask(e):
            for idx in np.nonzero(e):
                spec.append(("array", len(arrays)))
                arrays.append(const(idx))
            axis += e.ndim
        elif isinstance(e, np.ndarray) and e.ndim > 0:
            dim = shape[axis]
            spec.append(("array", len(arrays)))
            arrays.append(const(np.where(e < 0, e + dim, e)))
            axis += 1
        else:
            k = operator.index(e)
            spec.append(("int", k + shape[axis] if k < 0 else k))
            axis += 1
    return tuple(spec), arrays


def index_spec(shape, key):
    """(spec, index-array IR Values, resolved entries) of `key` on an array of `shape`; the spec is None
    when the key selects nothing (a False scalar boolean)."""
    entries = [_static_entry(e) for e in _entries(key)]
    if _selects_nothing(entries):
        return None, [], entries
    return _spec(shape, entries) + (entries,)


def getitem(x, key):
    """x[key] for a TracedArray x."""
    concrete = x.value[unwrap(key)]                       # NumPy's errors first
    spec, arrays, entries = index_spec(x.ir.shape, key)
    if spec is None:
        return concrete                                   # empty: depends on nothing
    basic_key = tuple(unwrap(e) for e in entries)         # a view only when the key is basic: its index
    link = ViewLink(lambda base_ir: builder().index(base_ir, *arrays, spec=spec),   # arrays are loop counters
                    lambda view_ir, base_ir: builder().index_set(base_ir, view_ir, *arrays, spec=spec),
                    lambda base: base[basic_key])
    return make_view(builder().index(x.ir, *arrays, spec=spec), concrete, x, link)


def _is_full_mask(key, shape):
    mask = unwrap(key)
    return isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == shape


def setitem(x, key, value):
    """x[key] = value for a TracedArray x: functionalized (x now stands for an index_set node)."""
    if not isinstance(x.value, np.ndarray):
        x.value[unwrap(key)] = unwrap(value)              # raises as NumPy does for scalars
    new_value = x.value.copy()
    new_value[unwrap(key)] = unwrap(value)               # NumPy's errors and casting first
    b = builder()
    if _is_full_mask(key, x.ir.shape) and np.ndim(unwrap(value)) == 0:
        v, _ = lift_operands("where", (value, x))
        new_ir = b.where(astype(lift(key), bool), astype(v, x.ir.dtype), x.ir)
    else:
        spec, arrays, _ = index_spec(x.ir.shape, key)
        if spec is None:
            return                                        # writes nothing
        region = np.shape(x.value[unwrap(key)])
        new_ir = b.index_set(x.ir, region_value(value, region, x.ir.dtype), *arrays, spec=spec)
    rebind(x, new_ir, new_value)


def region_value(value, region, dtype):
    """The IR of `value` as NumPy stores it into an indexed region of shape `region` of a `dtype` array:
    cast, with the leading length-1 axes NumPy drops removed (the rest broadcasts)."""
    v = astype(lift(value), dtype)
    extra = v.ndim - len(region)
    if extra > 0:
        v = reshape(v, v.shape[extra:])
    return v


def setitem_plain(target, key, value):
    """operator.setitem: into a plain array standing for a traced value, or made while tracing and given
    a traced value, a traced write (`aliasing.adopt_for_write`); a traced value into any other plain
    array is refused (constant ones are written natively)."""
    if type(target) is np.ndarray:
        adopted = adopt_for_write(target, "this assignment", value, key)
        if adopted is not None:
            return setitem(adopted, shadowed_items(key), value)
        value, key = unwrap(value), unwrap(key)
    target[key] = value


IMPLEMENTATIONS.update(getitem=getitem, setitem=setitem)
