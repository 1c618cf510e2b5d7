"""Traced values never escape into user data.

While tracing, user code may store traced values into objects that outlive the call: a log list
(`history.append(float(loss))`), a global (`global best; best = loss`), an attribute of an outside
object (`self.last = loss`), a dict entry.  Inside the call those stay traced (a later read in the same
call must carry the derivative); once the outermost traced call has returned, `settle(ctx)` replaces
every traced value reachable from the places outside the trace that it wrote by its concrete value (the
interpreter notes them: stores to globals, cells, attributes and items of outside objects, and native
container methods such as `list.append` called on outside containers), so the user's data holds plain
floats and arrays (the values of the call that traced; cached calls run compiled code and do not
repeat Python-level side effects).  Containers and objects the
traced function returns (its result, aux data) are left as they are: they become the trace's outputs.
"""
import collections
import types

import numpy as np

from ..recording.context import enclosing
from .values import TracedArray

_BUDGET = 200_000           # objects visited at most per settle (user data can be large)
_OPAQUE = (str, bytes, int, float, complex, bool, type(None), np.ndarray, np.generic, types.ModuleType,
           type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.CodeType, range)


def settle(ctx, result):
    """Replace the traced values of TraceContext `ctx` held by outside data (see the module docstring);
    `result` is what the traced function returned.  Only for the outermost trace: an enclosing trace may
    still read what an inner one stored, and settles it (the places are handed to it) when it returns."""
    outer = enclosing(ctx)
    if outer is not None:
        for kind, holder, key in ctx.outside_stores.values():
            outer.note_store(kind, holder, key)
        return
    walk = _Walk()
    walk.protect(result)
    for get, put in _places(ctx):
        try:
            value = get()
            settled = walk.settled(value)
            if settled is not value:
                put(settled)
        except Exception:       # noqa: BLE001 - a place gone, or an object refusing: what it holds stays
            continue            # (a traced value used later raises TraceError there)


def _places(ctx):
    """(get, put) for every place outside the trace that it wrote (ctx.outside_stores)."""
    for kind, holder, key in ctx.outside_stores.values():
        if kind == "cell":
            yield _cell_place(holder)
        elif kind == "container":
            yield (lambda holder=holder: holder), _unchanged
        else:
            yield _STORE_PLACES[kind](holder, key)


def _unchanged(value):
    """The put of a container settled in place."""


def _item_place(holder, key):
    def put(value):
        holder[key] = value
    return (lambda: holder[key]), put


def _cell_place(cell):
    def put(value):
        cell.cell_contents = value
    return (lambda: cell.cell_contents), put


def _attr_place(obj, name):
    def put(value):
        namespace = getattr(obj, "__dict__", None)
        if isinstance(namespace, dict) and name in namespace:
            namespace[name] = value         # no user __setattr__ or property runs again
        else:
            setattr(obj, name, value)
    return (lambda: getattr(obj, name)), put


_STORE_PLACES = {"item": _item_place, "attr": _attr_place}


class _Walk:
    """One settling pass: objects already visited (or protected) are not entered again."""

    def __init__(self):
        self.seen = set()
        self.budget = _BUDGET

    def protect(self, result):
        """Leave the containers of `result` (the traced function's return value) as they are."""
        stack = [result]
        while stack:
            value = stack.pop()
            if isinstance(value, (list, tuple, dict, collections.deque)) and id(value) not in self.seen:
                self.seen.add(id(value))
                stack.extend(value.values() if isinstance(value, dict) else value)

    def settled(self, value):
        """`value` with the traced values in it replaced (lists, dicts, deques and objects' attributes
        in place; a tuple holding one is rebuilt and returned)."""
        if type(value) is TracedArray:
            concrete = value.value
            return concrete.copy() if isinstance(concrete, np.ndarray) else concrete
        if isinstance(value, _OPAQUE) or id(value) in self.seen or self.budget <= 0:
            return value
        self.seen.add(id(value))
        self.budget -= 1
        if isinstance(value, (list, collections.deque)):
            for i, item in enumerate(value):
                new = self.settled(item)
                if new is not item:
                    value[i] = new
        elif isinstance(value, dict):
            self._settle_mapping(value)
        elif isinstance(value, tuple):
            items = [self.settled(item) for item in value]
            if any(new is not old for new, old in zip(items, value)):
                return value._make(items) if hasattr(value, "_make") else type(value)(items)
        else:
            namespace = getattr(value, "__dict__", None)
            if isinstance(namespace, dict):
                self._settle_mapping(namespace)
        return value

    def _settle_mapping(self, mapping):
        for key, item in list(mapping.items()):
            new = self.settled(item)
            if new is not item:
                mapping[key] = new
