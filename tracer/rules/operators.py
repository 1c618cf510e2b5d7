"""Rules for the `operator` module: its functions only use the operands' dunders, so each is its own
handler; `operator.setitem` refuses writes of traced values into plain arrays."""
import operator

from ..arrays.indexing import setitem_plain
from ..recording.registry import register

for _name in dir(operator):
    _fn = getattr(operator, _name)
    if not _name.startswith("_") and callable(_fn) and not isinstance(_fn, type):
        register(_fn)(_fn)
register(operator.setitem)(setitem_plain)
register(operator.__setitem__)(setitem_plain)
