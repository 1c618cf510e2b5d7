"""Rules for methods of plain (untraced) ndarrays called with traced arguments (`w.dot(x)`): the
same implementations as TracedArray's methods, with the array lifted to a constant.  Methods that
write into the plain array are refused."""
from ..arrays import array_api, contractions, reorder
from ..recording.registry import NDARRAY_METHODS
from ..arrays.refusals import refuse


def _writes_into(name):
    def handler(array, *args, **kwargs):
        refuse(f"ndarray.{name} would write a traced value into a plain (untraced) array; this is not "
               "supported yet (aliasing is a later issue): build the array from traced values "
               "(np.zeros_like(x), np.stack) instead")
    return handler


NDARRAY_METHODS.update(array_api.METHODS)
NDARRAY_METHODS.update(reorder.METHODS)
NDARRAY_METHODS.update(dot=contractions.dot, __matmul__=contractions.matmul)
NDARRAY_METHODS.update({name: _writes_into(name) for name in (
    "__setitem__", "fill", "put", "itemset", "setfield", "sort", "__iadd__", "__isub__", "__imul__",
    "__itruediv__", "__ipow__")})
