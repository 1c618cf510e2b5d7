"""Signature keys: which argument leaves are dynamic inputs and what a cached trace may assume.

Arrays and floats (Python floats and NumPy floating scalars) are dynamic: keyed by kind, shape and dtype
only.  Python ints, bools, strings, None and NumPy integer/bool scalars are static: keyed by value.
Functions, classes and modules passed as arguments are static too, keyed by identity.
"""
import types

import numpy as np

from .ir.errors import TraceError

_STATIC_SCALARS = (bool, int, str, bytes, type(None), np.integer, np.bool_)
_STATIC_BY_IDENTITY = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
                       types.ModuleType, np.ufunc)


class Identity:
    """A key part equal only for the very same object, which it keeps alive: a bare `id()` could be
    reused by a new object (a lambda created per call) once the first one is freed."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return type(other) is Identity and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def leaf_key(leaf):
    """The part of the cache key for one leaf; raises TraceError for unsupported argument types."""
    t = type(leaf)
    if t is np.ndarray:
        return ("array", leaf.shape, leaf.dtype)
    if t is float:
        return ("float",)
    if isinstance(leaf, np.floating):
        return ("scalar", leaf.dtype)
    if isinstance(leaf, _STATIC_SCALARS):
        return ("static", t, leaf)
    if isinstance(leaf, _STATIC_BY_IDENTITY):
        return ("object", Identity(leaf))
    if isinstance(leaf, np.ndarray):
        raise TraceError(f"arguments of ndarray subclass {t.__name__} are not supported; pass np.asarray(x)")
    raise TraceError(
        f"unsupported argument type {t.__name__}: jitgrad takes arrays, floats, ints, bools, strings, None, "
        "and tuples/lists/dicts/namedtuples/dataclasses of those")


def describe_key(key):
    """How cache_info and logs show one leaf's key."""
    if key[0] == "size":
        return "int (a run-time trip count)"
    if key[0] == "array":
        return f"{key[2]}{list(key[1])}"
    if key[0] in ("float", "scalar"):
        return key[0] if key[0] == "float" else f"{key[1]} scalar"
    if key[0] == "static":
        return repr(key[2])
    return "object"


def is_dynamic(key):
    return key[0] in ("array", "float", "scalar")


def is_differentiable(key):
    """Whether a leaf with this key can be differentiated (a floating array, float or float scalar)."""
    if key[0] == "float":
        return True
    if key[0] in ("array", "scalar"):
        return np.issubdtype(key[-1], np.floating)
    return False


def as_input_array(leaf):
    """The ndarray handed to a kernel for a dynamic leaf."""
    return leaf if type(leaf) is np.ndarray else np.asarray(leaf)


def normalize_argnums(argnums):
    """(tuple of ints, whether the user gave a tuple)."""
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple, list)):
        raise TraceError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
    if isinstance(argnums, int):
        return (argnums,), False
    if not argnums or not all(isinstance(a, int) and not isinstance(a, bool) for a in argnums):
        raise TraceError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    if len(set(argnums)) != len(argnums):
        raise TraceError(f"argnums has repeated entries: {argnums!r}")
    return tuple(argnums), True
