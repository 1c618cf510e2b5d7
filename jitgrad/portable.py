"""What a trace assumes, in a form another process can re-validate: places, values, objects and code.

A trace recorded in one process rests on environment entries (tracer/context.py: a getter naming the
place read, a kind, the expected value) and on the code of every Python function it interpreted.  Here
each is turned into JSON that names things the way a new process can find them again, and back:

- places: a module global (module name, name), a closure cell of the traced function itself (by the
  free variable's name), an attribute / method / attribute-existence of a portable object, an item of a
  portable place, the names a module's code looked up (builtins not shadowed, modules not rebound);
- objects: the traced function itself, a module (by name), a function or class found by module and
  qualified name, a ufunc; a Python function also by the hash of its code (`code_digest`, which covers
  bytecode, constants, names, line table and nested code objects recursively);
- values: plain data with a tagged encoding that keeps every type and every float's bits.

Anything else raises Unportable with the reason (an object checked by identity, a closure variable of
an inlined function, a lambda reached by no portable place...): the record is then kept for
inspection but never answers a call in another process.  `rebuild` re-reads each place in this process
and rebuilds the EnvEntry only when the value found encodes exactly as recorded.
"""
import hashlib
import sys
import types

import numpy as np

from .tracer import (
    AttrGetter, CellGetter, CodeGetter, EnvEntry, GlobalGetter, HasAttrGetter, ItemGetter, MethodGetter,
    NamespaceGetter, snapshot, snapshot_structure)


class Unportable(Exception):
    """An assumption that another process cannot re-validate (the message says why)."""


# -- code ------------------------------------------------------------------------------------------
_digests = {}     # id(code) -> (code, digest): the code kept alive so that ids stay unique


def code_digest(code):
    """SHA-256 of everything in `code` that decides what it does or where it reports (recursive)."""
    known = _digests.get(id(code))
    if known is not None and known[0] is code:
        return known[1]
    h = hashlib.sha256()
    for part in (code.co_code, code.co_linetable, code.co_exceptiontable):
        h.update(len(part).to_bytes(8, "little") + part)
    h.update(repr((code.co_name, code.co_qualname, code.co_filename, code.co_firstlineno, code.co_flags,
                   code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_nlocals,
                   code.co_stacksize, code.co_names, code.co_varnames, code.co_freevars,
                   code.co_cellvars)).encode())
    for const in code.co_consts:
        h.update(b"\0code " + code_digest(const).encode() if type(const) is types.CodeType else
                 b"\0const " + repr((type(const).__name__, _const_key(const))).encode())
    digest = h.hexdigest()
    _digests[id(code)] = (code, digest)
    return digest


def _const_key(const):
    """A constant's repr that keeps types and float bits (`0.0` vs `-0.0`, `1` vs `True`)."""
    if type(const) is float:
        return const.hex()
    if type(const) in (tuple, frozenset):
        items = [(type(c).__name__, _const_key(c)) for c in const]
        return repr(sorted(map(repr, items)) if type(const) is frozenset else items)
    return repr(const)


def _nested_codes(code):
    for const in code.co_consts:
        if type(const) is types.CodeType:
            yield const
            yield from _nested_codes(const)


# -- objects -----------------------------------------------------------------------------------------
def _lookup(module, qualname):
    """The object named `qualname` in already-imported module `module` (never imports), or None."""
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def _through(obj, target):
    """How `target` is reached from the object found by name: itself, or the implementation a NumPy
    dispatcher or a functools.wraps wrapper holds, a property's getter, a class method's function;
    None when none of those."""
    if obj is target:
        return ""
    for via in ("_implementation", "__wrapped__", "fget", "fset", "fdel", "__func__"):
        if getattr(obj, via, None) is target:
            return via
    return None


def object_ref(obj, fn):
    """A JSON reference by which another process finds `obj` (`fn`: the traced function)."""
    if obj is fn:
        return ["fn"]
    if type(obj).__module__.split(".")[0] == "jitgrad":
        raise Unportable(f"{_what(obj)} is a jitgrad object (a transform's parameters are not compared)")
    if isinstance(obj, types.ModuleType):
        if sys.modules.get(obj.__name__) is obj:
            return ["module", obj.__name__]
        raise Unportable(f"module {obj.__name__!r} is not the one imported under its name")
    if isinstance(obj, np.ufunc) and getattr(np, obj.__name__, None) is obj:
        return ["ufunc", obj.__name__]
    if isinstance(obj, np.dtype) and obj.isbuiltin == 1 and np.dtype(obj.str) is obj:
        return ["dtype", obj.str]           # (NumPy's canonical instance of a built-in dtype)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
        via = _through(_lookup(module, qualname), obj)
        if via is not None:
            return ["named", module, qualname, via]
    raise Unportable(f"{_what(obj)} is checked by identity and cannot be found by name in another process")


def resolve_ref(ref, fn):
    """The object `ref` (object_ref) names in this process; Unportable when it is not there."""
    tag = ref[0]
    if tag == "fn":
        return fn
    if tag == "module":
        found = sys.modules.get(ref[1])
    elif tag == "ufunc":
        found = getattr(np, ref[1], None)
    elif tag == "dtype":
        found = np.dtype(ref[1])
    else:
        found = _lookup(ref[1], ref[2])
        found = getattr(found, ref[3], None) if ref[3] and found is not None else found
    if found is None:
        raise Unportable(f"{'.'.join(map(str, ref[1:3]))} is not defined in this process")
    return found


def _what(obj):
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return f"{type(obj).__name__} {name}" if isinstance(name, str) else f"a {type(obj).__name__} object"


def identity_ref(obj, fn):
    """The reference of an object checked by identity; for a Python function with its code's digest
    (its module and qualified name too), so that one found through a place need not be found by name."""
    if type(obj) is types.FunctionType and obj is not fn:
        if not _module_globals(obj):
            raise Unportable(f"function {obj.__qualname__} has globals of no imported module")
        return ["function", obj.__module__, obj.__qualname__, code_digest(obj.__code__)]
    return object_ref(obj, fn)


def _module_globals(func):
    """Whether Python function `func` reads the globals of the module it names as its own."""
    module = sys.modules.get(func.__module__) if isinstance(func.__module__, str) else None
    return module is not None and vars(module) is func.__globals__


def identity_holds(ref, value, fn):
    """Whether `value`, found at the recorded place in this process, is the object `ref` describes."""
    if ref[0] == "function":
        return (type(value) is types.FunctionType and value.__module__ == ref[1] and value.__qualname__ == ref[2]
                and _module_globals(value) and code_digest(value.__code__) == ref[3])
    return value is resolve_ref(ref, fn)


# -- code objects of the inlined functions -------------------------------------------------------------
def code_ref(func, fn):
    """How another process checks that it would run the code `func` ran: the function found by module and
    qualified name (or, for a closure, the function defining it) with its code's digest."""
    qualname = func.__qualname__
    outer = qualname.split(".<locals>.")[0]
    if "<" in outer:
        raise Unportable(f"{func.__module__}.{qualname} (which ran while tracing) cannot be found by name")
    found = _lookup(func.__module__, outer)
    if outer == qualname:
        via = _through(found, func)
        if via is None:
            raise Unportable(f"{func.__module__}.{qualname} (which ran while tracing) is not what its name "
                             "refers to")
        return ["code", func.__module__, qualname, via, code_digest(func.__code__)]
    outer_func = getattr(found, "__wrapped__", found) if type(found) is not types.FunctionType else found
    if type(outer_func) is not types.FunctionType or not any(
            c is func.__code__ for c in _nested_codes(outer_func.__code__)):
        raise Unportable(f"{func.__module__}.{qualname} (which ran while tracing) was not made by the function "
                         "its name refers to")
    return ["code", func.__module__, outer, "" if outer_func is found else "__wrapped__",
            code_digest(outer_func.__code__)]


def code_holds(ref):
    """Whether the function `ref` (code_ref) names runs the same code in this process."""
    found = _lookup(ref[1], ref[2])
    found = getattr(found, ref[3], None) if ref[3] and found is not None else found
    return type(found) is types.FunctionType and code_digest(found.__code__) == ref[4]


# -- classes whose methods compiled code may call -----------------------------------------------------
_VERSIONED = {"builtins", "jitgrad", "numpy", "scipy"}     # (their versions or sources are in the key)


def classes_met(functions, env, treedef):
    """The classes whose instances a trace may have met: the owners of the methods it interpreted, the
    classes read from the environment, the classes of the argument structure (dataclasses)."""
    found = {}
    for func in functions:
        owner = func.__qualname__.rpartition(".")[0]
        owner = _lookup(func.__module__, owner) if owner and "<" not in owner else None
        if isinstance(owner, type):
            found[id(owner)] = owner
    for e in env:
        for obj in (e.expected if e.kind == "identity" else None, getattr(e.getter, "obj", None),
                    getattr(e.getter, "owner", None)):
            if isinstance(obj, type):
                found[id(obj)] = obj
    nodes = [treedef]
    while nodes:
        node = nodes.pop()
        if node is not None:
            found.setdefault(id(node[0]), node[0])
            nodes.extend(node[2])
    return [cls for cls in found.values() if cls not in (tuple, list, dict)]


def methods_of(classes):
    """The Python functions of `classes` and their bases (methods, static and class methods, property
    accessors): code that compiled code may call without the tracer seeing it (`__eq__` in a dict
    lookup or `list.count`, `__lt__` in `sorted`); classes of builtins, NumPy, SciPy and jitgrad left out."""
    found = {}
    for cls in classes:
        for klass in cls.__mro__:
            if str(getattr(klass, "__module__", "")).split(".")[0] not in _VERSIONED:
                for value in list(vars(klass).values()):
                    for func in _functions_in(value):
                        found[id(func)] = func
    return list(found.values())


def _functions_in(value):
    if type(value) in (staticmethod, classmethod):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if type(f) is types.FunctionType]
    return [value] if type(value) is types.FunctionType else []


# -- values ------------------------------------------------------------------------------------------
def encode_value(value):
    """A JSON form of plain data equal for two values exactly when a trace cannot tell them apart."""
    t = type(value)
    if value is None or t is bool or t is str:
        return [t.__name__, value]
    if t is int:
        return ["int", str(value)]
    if t is float:
        return ["float", value.hex()]
    if t is complex:
        return ["complex", value.real.hex(), value.imag.hex()]
    if t is bytes:
        return ["bytes", value.hex()]
    if t is tuple or t is list:
        return [t.__name__, [encode_value(v) for v in value]]
    if t is dict:
        return ["dict", [[encode_value(k), encode_value(v)] for k, v in value.items()]]
    if t is set or t is frozenset:
        return [t.__name__, sorted((encode_value(v) for v in value), key=repr)]
    if t is range:
        return ["range", value.start, value.stop, value.step]
    if t is slice:
        return ["slice", [encode_value(v) for v in (value.start, value.stop, value.step)]]
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        return ["numpy", t.__name__, value.dtype.str, value.tobytes().hex()]
    raise Unportable(f"a value of type {t.__name__} cannot be compared in another process")


def _encode_structure(value):
    """The type, length and (for a dict) keys of a container whose items are read one by one."""
    t = type(value)
    if t not in (tuple, list, dict):
        raise Unportable(f"the length of a {t.__name__} cannot be checked in another process")
    return [t.__name__, len(value), [encode_value(k) for k in value] if t is dict else None]


# -- places ------------------------------------------------------------------------------------------
def _module_name(namespace):
    name = namespace.get("__name__")
    module = sys.modules.get(name) if isinstance(name, str) else None
    if module is None or vars(module) is not namespace:
        raise Unportable("a namespace that is not an imported module's")
    return name


def _encode_global(getter, fn):
    return ["global", _module_name(getter.namespace), getter.name]


def _encode_cell(getter, fn):
    code, closure = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars if code else (), closure):
        if cell is getter.cell and name == getter.name:
            return ["cell", name]
    raise Unportable(f"closure variable {getter.name!r} of a function called by the traced one")


def _encode_item(getter, fn):
    if type(getter.key) not in (str, int):
        raise Unportable(f"an item with a key of type {type(getter.key).__name__}")
    return ["item", encode_place(getter.base, fn), getter.key]


def _encode_names(getter, fn):
    modules = {}
    for name, module in getter.modules.items():
        object_ref(module, fn)
        modules[name] = module.__name__
    return ["names", _module_name(getter.namespace), sorted(getter.absent), modules]


_PLACES = {
    GlobalGetter: _encode_global, CellGetter: _encode_cell, ItemGetter: _encode_item,
    NamespaceGetter: _encode_names,
    AttrGetter: lambda g, fn: ["attr", object_ref(g.obj, fn), g.name],
    HasAttrGetter: lambda g, fn: ["hasattr", object_ref(g.obj, fn), g.name],
    MethodGetter: lambda g, fn: ["method", object_ref(g.owner, fn), g.name],
    CodeGetter: lambda g, fn: ["code", object_ref(g.func, fn)],
}


def encode_place(getter, fn):
    encode = _PLACES.get(type(getter))
    if encode is None:
        raise Unportable(f"a place of kind {type(getter).__name__}")
    return encode(getter, fn)


def _names_getter(place, fn):
    module = sys.modules.get(place[1])
    if module is None:
        raise Unportable(f"module {place[1]!r} is not imported")
    modules = {name: sys.modules.get(module_name) for name, module_name in place[3].items()}
    if any(m is None for m in modules.values()):
        raise Unportable("a module its code uses is not imported")
    return NamespaceGetter(vars(module), place[2], modules)


def _global_getter(place, fn):
    module = sys.modules.get(place[1])
    if module is None:
        raise Unportable(f"module {place[1]!r} is not imported")
    return GlobalGetter(vars(module), place[2])


def _cell_getter(place, fn):
    code, closure = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars if code else (), closure):
        if name == place[1]:
            return CellGetter(cell, name)
    raise Unportable(f"the function has no closure variable {place[1]!r}")


_GETTERS = {
    "global": _global_getter, "cell": _cell_getter, "names": _names_getter,
    "item": lambda p, fn: ItemGetter(rebuild_getter(p[1], fn), p[2]),
    "attr": lambda p, fn: AttrGetter(resolve_ref(p[1], fn), p[2]),
    "hasattr": lambda p, fn: HasAttrGetter(resolve_ref(p[1], fn), p[2]),
    "method": lambda p, fn: MethodGetter(resolve_ref(p[1], fn), p[2]),
    "code": lambda p, fn: CodeGetter(resolve_ref(p[1], fn)),
}


def rebuild_getter(place, fn):
    return _GETTERS[place[0]](place, fn)


# -- environment entries -------------------------------------------------------------------------------
def encode_entry(entry, fn):
    """The JSON form of EnvEntry `entry` (raises Unportable)."""
    if entry.outer is not None:
        raise Unportable("a value of an enclosing trace")
    out = {"place": encode_place(entry.getter, fn), "kind": entry.kind}
    if entry.kind == "array":
        out.update(shape=list(entry.shape), dtype=np.dtype(entry.dtype).str, index=entry.index)
    elif entry.kind == "value":
        out["expected"] = encode_value(entry.expected)
    elif entry.kind == "len":
        out["expected"] = _encode_structure(entry.expected)
    else:
        if type(entry.getter) is CodeGetter:      # the code a function runs: by its digest
            out["expected"] = ["digest", code_digest(entry.expected)]
        else:
            out["expected"] = identity_ref(entry.expected, fn)
    return out


def rebuild_entry(encoded, fn, loc):
    """The EnvEntry `encoded` describes, made of what this process holds at its place, if that is what
    the recording process held; else Unportable saying what differs."""
    getter = rebuild_getter(encoded["place"], fn)
    kind, expected = encoded["kind"], encoded.get("expected")
    try:
        value = getter.get()
    except Exception as e:
        raise Unportable(f"{getter.describe()} cannot be read ({type(e).__name__})") from None
    if kind == "array":
        shape, dtype = tuple(encoded["shape"]), np.dtype(encoded["dtype"])
        entry = EnvEntry(getter, "array", shape=shape, dtype=dtype, index=encoded["index"], loc=loc)
    elif kind == "value":
        _same_encoding(getter, encode_value(value), expected, value)
        entry = EnvEntry(getter, "value", expected=snapshot(value), loc=loc)
    elif kind == "len":
        _same_encoding(getter, _encode_structure(value), expected, value)
        entry = EnvEntry(getter, "len", expected=snapshot_structure(value), loc=loc)
    elif expected[0] == "digest":
        if code_digest(value) != expected[1]:
            raise Unportable(f"{getter.describe()} changed")
        entry = EnvEntry(getter, "identity", expected=value, loc=loc)
    else:
        if not identity_holds(expected, value, fn):
            raise Unportable(f"{getter.describe()} is not the object it was (its code or name changed)")
        entry = EnvEntry(getter, "identity", expected=value, loc=loc)
    if not entry.holds(value):
        raise Unportable(f"{getter.describe()} changed")
    return entry


def _same_encoding(getter, found, expected, value):
    if found != expected:
        shown = repr(value)
        raise Unportable(f"{getter.describe()} changed: now {shown if len(shown) < 60 else shown[:57] + '...'}")
