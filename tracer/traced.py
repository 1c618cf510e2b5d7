"""The traced value type, complete: `TracedArray` (core in `values`) with its ndarray methods, indexing
and `@` installed from `array_api`, `reorder`, `indexing` and `contractions`; and `contains_traced`.

Import TracedArray from here: this module guarantees the methods are installed.
"""
import numpy as np

from . import array_api, contractions, indexing, reorder
from .values import TracedArray, check_not_environment, contains_traced, refuse, reshape

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


def _real_part(self):
    if np.iscomplexobj(self.value):
        refuse("complex values are not traced yet")
    return self


def _set_shape(self, shape):
    """`x.shape = shape`: this array object now has that shape (a reshape without copy)."""
    check_not_environment(self)
    new_value = self.value.view()
    new_value.shape = shape                               # NumPy's errors
    self.ir, self.value = reshape(self.ir, new_value.shape), new_value
    self.link = None                                      # as a view of its base it is now unlinked


for _name, _impl in {**array_api.METHODS, **reorder.METHODS}.items():
    setattr(TracedArray, _name, _method(_name, _impl))
for _name in ("shape", "ndim", "size", "dtype", "itemsize", "nbytes", "flags"):
    setattr(TracedArray, _name, _array_property(_name))

TracedArray.shape = property(_array_property("shape").fget, _set_shape, doc="The concrete value's `shape`.")
TracedArray.T = property(array_api.transpose, doc="The transposed array.")
TracedArray.real = property(_real_part, doc="The value itself (real dtypes only).")
TracedArray.conj = TracedArray.conjugate = _method("conj", lambda self: array_api.copy(_real_part(self)))
TracedArray.dot = _method("dot", contractions.dot)
TracedArray.__getitem__ = indexing.getitem
TracedArray.__setitem__ = indexing.setitem
TracedArray.__matmul__ = contractions.matmul
TracedArray.__rmatmul__ = lambda self, other: contractions.matmul(other, self)
