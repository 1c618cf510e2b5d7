"""Rules for builtins.  Most only touch their arguments through dunders (which TracedArray traces), so
the builtin itself is the handler; `float` keeps the value traced, `type` reports the concrete value's
type.  (`int`, `bool`, `round`... reach TracedArray's guarding dunders.)  So are `functools.reduce`,
the `itertools` functions and the methods of containers and strings (`lst.append(x)`).
`inspect.getattr_static` of a traced value looks up the concrete value's class (a traced value has no
instance attributes of its own)."""
import builtins
import collections
import functools
import inspect
import itertools

from ..arrays.array_api import to_float
from ..recording.context import current
from ..recording.registry import NATIVE_OWNERS, register
from ..arrays.values import concrete_of

_THROUGH_DUNDERS = (
    "abs", "all", "any", "ascii", "bool", "callable", "complex", "dict", "divmod", "enumerate", "filter",
    "format", "frozenset", "getattr", "hasattr", "hash", "id", "int", "isinstance", "issubclass", "iter",
    "len", "list", "map", "max", "min", "next", "pow", "range", "repr", "reversed", "round",
    "set", "setattr", "slice", "sorted", "str", "sum", "tuple", "zip",
)


def type_(obj, *rest):
    """type(x): the concrete value's type for a traced x (3-argument form: class creation)."""
    return type(obj, *rest) if rest else type(concrete_of(obj))


_ITERTOOLS = [getattr(itertools, name) for name in dir(itertools)
              if not name.startswith("_") and callable(getattr(itertools, name))]
for _fn in [getattr(builtins, name) for name in _THROUGH_DUNDERS] + _ITERTOOLS + [functools.reduce]:
    register(_fn)(_fn)
NATIVE_OWNERS.update({list, dict, set, frozenset, tuple, str, collections.deque, collections.OrderedDict,
                      collections.defaultdict})
def getattr_static(obj, attr, *default):
    """inspect.getattr_static (it reads descriptors such as `type.__mro__` directly, which a traced value
    would otherwise reach as compiled code): the lookup on the concrete value."""
    return inspect.getattr_static(concrete_of(obj), attr, *default)


register(inspect.getattr_static)(getattr_static)
register(float)(to_float)


@register(builtins.print, always=True)
def print_(*args, **kwargs):
    """print(...), noted as a side effect that cached calls repeat (tracer/interpretation/sideeffects.py)."""
    ctx = current()
    if ctx is not None:
        ctx.note_effect("call", None, builtins.print, (args, kwargs))
    return builtins.print(*args, **kwargs)


print_.effect = True
register(type)(type_)
