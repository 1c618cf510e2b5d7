"""Which calls of compiled code may run inside a loop iteration that the tracer rolls and fast-forwards.

Fast-forwarding skips the Python work of the remaining iterations, so an iteration that changes anything
outside itself (a list it appends to, a file, a random generator's state, an iterator it advances) must
not be rolled.  Python code is interpreted, and its stores are seen opcode by opcode (tracer/interpretation/rolling.py);
compiled code is opaque, so a call of it counts as pure only when it is known to be: `impure_call` says
why a call is not, or returns None.  Setting NumPy's error mode (`np.errstate` entered or left) is not
counted here: an iteration that leaves the mode as it found it (an errstate block inside it) rolls,
one that changes it does not (rolling.py compares the mode at each header).
"""
import builtins
import operator
import types

import numpy as np

from ..recording.errormode import is_mode_variable

_PURE_BUILTINS = {id(f) for f in (
    len, isinstance, issubclass, type, abs, min, max, range, tuple, list, dict, set, frozenset, float, int, bool,
    complex, str, repr, round, divmod, pow, hash, id, callable, zip, enumerate, map, filter, reversed, sorted,
    any, all, sum, slice, object, getattr, hasattr, format, ord, chr, bytes, iter, staticmethod, classmethod,
    property, super)}
# Methods that change their object, by name (of builtin containers, ndarrays and their kin).
_MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem",
    "add", "discard", "difference_update", "intersection_update", "symmetric_difference_update", "appendleft",
    "extendleft", "popleft", "rotate", "fill", "resize", "put", "itemset", "setfield", "setflags", "partition",
    "byteswap", "__setitem__", "__delitem__", "__iadd__", "__imul__", "__ior__", "__iand__", "__isub__",
    "__ixor__", "send", "throw", "close", "write", "writelines", "flush", "seek", "read", "readline", "readlines",
    "__next__", "set", "put_nowait", "get", "acquire", "release"})
_MUTATING_OPERATOR = {id(getattr(operator, name)) for name in dir(operator)
                      if name.startswith(("i", "set", "del", "__i", "__set", "__del")) and name not in
                      ("index", "is_", "is_not", "inv", "invert", "itemgetter", "__index__", "__inv__",
                       "__invert__")}
_IMPURE_NUMPY = {id(f) for f in (np.copyto, np.put, np.place, np.putmask, np.fill_diagonal, np.put_along_axis,
                                 np.save, np.savez, np.savetxt, np.load, np.loadtxt, np.seterr, np.set_printoptions,
                                 np.setbufsize, np.seterrcall)}
_PURE_MODULES = ("numpy", "math", "cmath", "operator", "functools", "itertools", "scipy.special",
                 "scipy._lib.array_api_compat", "scipy._lib.array_api_extra",     # (namespace queries;
                 "scipy._external.array_api_compat", "scipy._external.array_api_extra")  # SciPy >= 1.18)


def impure_call(fn, args, kwargs):
    """Why calling compiled `fn(*args, **kwargs)` inside a rolled iteration could be unsound, or None."""
    if id(fn) in _PURE_BUILTINS:
        return None
    name = getattr(fn, "__name__", None) or type(fn).__name__
    if "out" in kwargs and kwargs["out"] is not None:
        return f"{name}(out=...) writes into an array"
    owner = getattr(fn, "__self__", None)
    if is_mode_variable(owner):     # np.errstate entered or left: rolling compares the mode at each header
        return None
    if isinstance(fn, (types.BuiltinMethodType, types.MethodWrapperType)) and owner is not None \
            and not isinstance(owner, types.ModuleType):
        if name in _MUTATING_METHODS and not (name == "get" and isinstance(owner, (dict, types.MappingProxyType))) \
                or isinstance(owner, (types.GeneratorType, np.random.Generator, np.random.RandomState)):
            return f"{type(owner).__name__}.{name}() may change its object"
        return None if type(owner).__module__ in ("builtins", "numpy") else f"{type(owner).__name__}.{name}()"
    if isinstance(fn, np.ufunc):
        return None if len(args) <= fn.nin else f"{name} with an output argument"
    if id(fn) in _IMPURE_NUMPY or id(fn) in _MUTATING_OPERATOR:
        return f"{name}() writes into its arguments or outside state"
    module = getattr(fn, "__module__", None) or ""
    if module.startswith(("numpy.random", "random")) or fn is builtins.print or fn is builtins.input \
            or fn is builtins.open or fn is builtins.next:
        return f"{name}() reads or changes outside state"
    if isinstance(fn, type) and fn.__module__ in ("builtins", "numpy"):
        return None
    if module.split(".")[0] in ("numpy", "math", "cmath", "operator") or module.startswith(_PURE_MODULES):
        return None
    return f"{name}() (compiled code jitgrad cannot see into)"
