"""Copies and walks of plain data read from the environment: snapshots that later mutation cannot
change (the expected values of environment guards), and the traced values found inside containers."""
import array
import collections
import copy

from . import hooks


def _snapshot(value):
    """A copy of plain data that later mutation of the original cannot change."""
    if isinstance(value, tuple):    # immutable, but may hold lists
        return _like(value, [_snapshot(v) for v in value])
    if isinstance(value, (list, dict, collections.deque)):
        copied = copy.copy(value)    # of the same type (defaultdict, OrderedDict, a list subclass...)
        for k, v in (value.items() if isinstance(value, dict) else enumerate(value)):
            copied[k] = _snapshot(v)
        return copied
    if isinstance(value, (set, bytearray, array.array)):
        return copy.copy(value)
    return value


def _traced_inside(value, is_key=False):
    """(traced value, whether it is a dict key or set member) for those held (at any depth) by native
    containers `value`."""
    if type(value) is hooks.traced_type:
        yield value, is_key
    elif isinstance(value, (set, frozenset)):
        for v in value:
            yield from _traced_inside(v, True)
    elif isinstance(value, (tuple, list, collections.deque)):
        for v in value:
            yield from _traced_inside(v, is_key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _traced_inside(k, True)
            yield from _traced_inside(v, is_key)


def _snapshot_structure(value):
    if isinstance(value, dict):
        return type(value).fromkeys(value)
    return _like(value, [None] * len(value))


def _like(value, items):
    """A sequence of the type of `value` (a tuple, namedtuple, list, deque, or a subclass) holding `items`."""
    if hasattr(value, "_make"):
        return value._make(items)
    if isinstance(value, collections.deque):
        return type(value)(items, value.maxlen)
    return type(value)(items)
