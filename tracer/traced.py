"""The traced value type, complete: `TracedArray` (core in `values`) with its ndarray methods, indexing
and `@` installed from `array_api`, `reorder`, `indexing` and `contractions`; and `contains_traced`.

Import TracedArray from here: this module guarantees the methods are installed.
"""
import numpy as np

from . import array_api, contractions, indexing, reorder
from .values import TracedArray, builder, check_not_environment, contains_traced, dtype_of, make, make_view, reshape

__all__ = ["TracedArray", "contains_traced"]


def _method(name, impl):
    """An ndarray method: it exists only when the concrete value is an ndarray or NumPy scalar."""
    def method(self, *args, **kwargs):
        if not isinstance(self.value, (np.ndarray, np.generic)):
            raise AttributeError(f"'{type(self.value).__name__}' object has no attribute '{name}'")
        return impl(self, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = impl.__doc__
    return method


def _array_property(name):
    def get(self):
        return getattr(self.value, name)
    return property(get, doc=f"The concrete value's `{name}`.")


def _complex_part(op, part):
    """The `.real` / `.imag` property: for a complex array the IR op `op` on a view of the concrete
    part (writes through it are refused); for real ones the array itself (`.real`) or zeros (`.imag`)."""
    def get(self):
        concrete = part(self.value)
        if np.iscomplexobj(self.value):
            return make_view(builder().emit(op, self.ir), concrete, self)
        if op == "real":
            return self
        return make(builder().fill(np.shape(concrete), dtype_of(concrete), 0), concrete)
    return get


def _conjugate(self):
    """x.conj(): the complex conjugate (a copy of a real array)."""
    if np.iscomplexobj(self.value):
        return make(builder().conj(self.ir), np.conjugate(self.value))
    return array_api.copy(self)


def _set_shape(self, shape):
    """`x.shape = shape`: this array object now has that shape (a reshape without copy)."""
    check_not_environment(self)
    new_value = self.value.reshape(shape, copy=False)      # NumPy's errors; setting .shape is deprecated
    self.ir, self.value = reshape(self.ir, new_value.shape), new_value
    self.link = None                                      # as a view of its base it is now unlinked


for _name, _impl in {**array_api.METHODS, **reorder.METHODS}.items():
    setattr(TracedArray, _name, _method(_name, _impl))
for _name in ("shape", "ndim", "size", "dtype", "itemsize", "nbytes", "flags", "device"):
    setattr(TracedArray, _name, _array_property(_name))

TracedArray.shape = property(_array_property("shape").fget, _set_shape, doc="The concrete value's `shape`.")
TracedArray.flat = property(_method("flat", reorder.FlatIterator), doc="An iterator over the flattened array.")
TracedArray.T = property(array_api.transpose, doc="The transposed array.")
TracedArray.mT = property(array_api.matrix_transpose, doc="The last two axes swapped (NumPy 2).")
TracedArray.real = property(_complex_part("real", lambda v: v.real), doc="The real part.")
TracedArray.imag = property(_complex_part("imag", lambda v: v.imag), doc="The imaginary part.")
TracedArray.conj = TracedArray.conjugate = _method("conj", _conjugate)
TracedArray.dot = _method("dot", contractions.dot)
TracedArray.__getitem__ = indexing.getitem
TracedArray.__setitem__ = indexing.setitem
TracedArray.__matmul__ = contractions.matmul
TracedArray.__rmatmul__ = lambda self, other: contractions.matmul(other, self)
