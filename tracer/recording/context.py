"""The tracing context: what one tracing run records besides the IR itself.

A TraceContext owns the Builder of the trace being recorded, the interpreter's frame stack (for the
user's `file:line` in guards and errors), the environment reads (globals, closure cells and attributes
of objects that exist outside the traced call) and the set of objects created while tracing (reads from
those are not environment reads).  `current()` is the active context; the interpreter installs it with
`with ctx.active():`.
"""
import array
import collections.abc
import contextlib
import enum
import math
import os
import threading
import types
import weakref

import numpy as np

from ...ir import Builder
from ...ir.errors import TraceError, UnsupportedError
from . import hooks
from .namespaces import CodeGetter, NamespaceGetter
from .snapshots import _like, _snapshot, _snapshot_structure, _traced_inside
from .userframes import call_chain, user_frame


class _PerThread(threading.local):
    """Tracing state of one thread: the stack of its active contexts (innermost last).  Each thread
    traces on its own; contexts never cross threads."""

    def __init__(self):
        self.stack = []


_thread = _PerThread()


def current():
    """The active TraceContext of this thread (None when it is not tracing)."""
    stack = _thread.stack
    return stack[-1] if stack else None


def enclosing(ctx):
    """The active context of this thread that encloses active context `ctx` (None for the outermost)."""
    stack = _thread.stack
    position = next(i for i, c in enumerate(stack) if c is ctx)
    return stack[position - 1] if position else None


# Modules whose attributes are part of a library's fixed surface: reading them records no guard.
_STABLE_ROOTS = {"numpy", "scipy", "math", "builtins", "operator", "functools", "itertools", "collections",
                 "dataclasses", "typing", "types", "abc", "enum", "warnings", "contextlib", "numbers",
                 "jitgrad", "cmath", "copy", "re", "sys", "os"}
# builtin data read by C code: guarded on their contents (other objects read from the environment: by
# identity)
_NATIVE_DATA = (tuple, list, dict, collections.deque, set, frozenset, bytearray, array.array, range, slice,
                enum.Enum)
# generators and the iterators of builtins/itertools: consumed by reading, so never environment data
_NATIVE_ITERATOR_MODULES = ("builtins", "itertools", "collections")
_SCALARS = (int, float, complex, bool, str, bytes, type(None), np.generic)


class GlobalGetter:
    __slots__ = ("namespace", "name")

    def __init__(self, namespace, name):
        self.namespace, self.name = namespace, name

    def get(self):
        return self.namespace[self.name]

    def is_place(self):
        return True

    def describe(self):
        return f"global {self.name!r}"


class CellGetter:
    __slots__ = ("cell", "name")

    def __init__(self, cell, name):
        self.cell, self.name = cell, name

    def get(self):
        return self.cell.cell_contents

    def is_place(self):
        return True

    def describe(self):
        return f"closure variable {self.name!r}"


class AttrGetter:
    __slots__ = ("obj", "name")

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def get(self):
        return getattr(self.obj, self.name)

    def is_place(self):
        """Whether the attribute is stored (instance dict, slot, class attribute), not computed."""
        try:
            if self.name in vars(self.obj):
                return True
        except TypeError:
            pass
        for klass in (self.obj.__mro__ if isinstance(self.obj, type) else ()) + type(self.obj).__mro__:
            if self.name in klass.__dict__:
                held = klass.__dict__[self.name]
                return type(held) is types.MemberDescriptorType or not hasattr(type(held), "__get__")
        return False

    def describe(self):
        return f"attribute {type(self.obj).__name__}.{self.name}"


class MethodGetter:
    """What `owner.name` resolves to: the function behind a method bound to `owner` itself or to its
    class (a new bound method on every access), else the object the attribute holds (a function or
    another object's bound method stored on the instance)."""
    __slots__ = ("owner", "name")

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def get(self):
        return _resolved(self.owner, getattr(self.owner, self.name))

    def describe(self):
        owner = self.owner.__name__ if isinstance(self.owner, type) else type(self.owner).__name__
        return f"method {owner}.{self.name}"


class HasAttrGetter(AttrGetter):
    """Whether attribute `name` of `obj` exists."""
    __slots__ = ()

    def get(self):
        return hasattr(self.obj, self.name)

    def describe(self):
        return f"attribute {type(self.obj).__name__}.{self.name} existing"


class ItemGetter:
    __slots__ = ("base", "key")

    def __init__(self, base, key):
        self.base, self.key = base, key

    def get(self):
        return self.base.get()[self.key]

    def is_place(self):
        return True

    def describe(self):
        return f"{self.base.describe()}[{self.key!r}]"


class EnvEntry:
    """One assumption about the environment, checked by the dispatcher before a cached kernel runs.

    kind 'array': the getter yields an ndarray of `shape`/`dtype`; it is passed as trace input `index`.
    With `outer` set (a TracedArray of an enclosing trace, read by a nested jit_grad), the entry never
    holds on its own: the trace is spliced into the enclosing one with the input bound to `outer`.
    kind 'value': the getter yields something equal to `expected` (same type).
    kind 'len': the getter yields a container of `type(expected)` and length `len(expected)`.
    kind 'identity': the getter yields the very object `expected` (a user function or class: code
    redefined in a notebook or rebound in a module must not be served by a stale trace).
    """

    __slots__ = ("getter", "kind", "expected", "shape", "dtype", "index", "loc", "outer", "holds")

    def __init__(self, getter, kind, expected=None, shape=None, dtype=None, index=None, loc=None, outer=None):
        self.getter, self.kind, self.expected = getter, kind, expected
        self.shape, self.dtype, self.index, self.loc, self.outer = shape, dtype, index, loc, outer
        # holds(value): whether `value` (the getter's current result) satisfies this entry; a predicate
        # made for this kind and expected value once, as it runs on every cached call
        self.holds = _HOLDS[kind](self)

    def describe(self):
        what = {"array": f"shape/dtype {self.shape} {self.dtype}", "len": "length",
                "value": f"value {self.expected!r}", "identity": "identity"}[self.kind]
        return f"{self.getter.describe()} ({what}, read at {self.loc})"


def _holds_array(entry):
    shape, dtype, ndarray = entry.shape, entry.dtype, np.ndarray
    return lambda value: type(value) is ndarray and value.shape == shape and value.dtype == dtype


def _holds_identity(entry):
    """The very object; for a Python function, also still running the same code (a notebook's autoreload
    replaces `__code__` in place)."""
    expected = entry.expected
    if type(expected) is types.FunctionType:
        code = expected.__code__
        return lambda value: value is expected and value.__code__ is code
    return lambda value: value is expected


def _holds_len(entry):
    expected = entry.expected
    return lambda value: (type(value) is type(expected) and len(value) == len(expected)
                          and (not isinstance(value, dict) or list(value) == list(expected)))


def _holds_value(entry):
    """`_same(value, expected)`, with shortcuts for the common plain scalars (a global `DT = 0.01`, a
    flag, a count): for those, type and `==` decide, except for the sign of a zero and NaNs."""
    expected = entry.expected
    kind = type(expected)
    if expected is None or kind is bool:
        return lambda value: value is expected
    if kind is int or kind is str:
        return lambda value: type(value) is kind and value == expected
    if kind is float and expected == expected and expected != 0.0:
        return lambda value: type(value) is float and value == expected
    if kind is float:
        return lambda value: type(value) is float and _same_float(value, expected)
    return lambda value: _same(value, expected)


_HOLDS = {"array": _holds_array, "identity": _holds_identity, "len": _holds_len, "value": _holds_value}


def _same_float(a, b):
    """Python floats `a` and `b` have the same value and sign, or are both NaN."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b) or (a != a and b != b)


def _same(a, b):
    """Whether plain data `a` equals the recorded `b` in every way a trace may depend on: same types at
    every level (`True` is not `1`, `1` is not `1.0`), the same bits for floats (`-0.0` is not `0.0`, a
    NaN matches a NaN) and the same key order for dicts."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return _same_float(a, b)
    if isinstance(a, (complex, np.inexact)):
        return a == b and np.signbit(np.real(a)) == np.signbit(np.real(b)) and \
            np.signbit(np.imag(a)) == np.signbit(np.imag(b)) or (a != a and b != b)
    if isinstance(a, (tuple, list, collections.deque)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(_same(ka, kb) and _same(a[ka], b[kb]) for ka, kb in zip(a, b))
    if a is b:
        return True
    if not isinstance(a, _SCALARS + _NATIVE_DATA):
        return False        # other objects: by identity
    try:
        return bool(a == b)
    except Exception:
        return False


def _is_plain_data(value):
    """Numbers, strings and (small, nested) containers of them: guarded on their value.  (`type()`, not
    `isinstance`: a traced float claims to be a float.)"""
    if issubclass(type(value), _SCALARS):
        return True
    if isinstance(value, (tuple, list)) and len(value) <= 64:
        return all(_is_plain_data(v) for v in value)
    if isinstance(value, dict) and len(value) <= 64:
        return all(issubclass(type(k), _SCALARS) and _is_plain_data(v) for k, v in value.items())
    return False


def _holds_arrays(value, traced_type):
    """Whether `value` is or holds arrays of the environment (traced values stored into it while
    tracing are not: the container is then read as it is, so later writes land in it)."""
    if isinstance(value, np.ndarray):
        return type(value) is not traced_type
    if isinstance(value, (tuple, list, collections.deque)):
        return any(_holds_arrays(v, traced_type) for v in value)
    if isinstance(value, dict):
        return any(_holds_arrays(v, traced_type) for v in value.values())
    return False


class TraceContext:
    """Everything one tracing run records; see the module docstring."""

    def __init__(self):
        self.builder = Builder()
        self.frames = []          # interpreter frames; each has .code and .lineno
        self.env = []             # EnvEntry list, in the order the reads happened
        self._env_inputs = {}     # (getter kind, ids) -> traced value, so one global is one input
        self._env_recorded = set()  # keys of the value/len/identity entries already recorded
        self.local_objects = {}   # id -> object created while tracing (kept alive so ids stay unique)
        self.created_arrays = weakref.WeakValueDictionary()   # id -> plain ndarray made while tracing
        self.shadows = None       # the ShadowTable of plain arrays known by identity (tracer/arrays/aliasing.py)
        self.audit = []           # (IR value, concrete value, loc) pairs when auditing (tracer/recording/audit.py)
        self.scalar_consts = {}   # (dtype, bytes) -> the one `const` node of that 0-d value (values.const)
        self.uncacheable = None   # why this trace must not be cached (an exception no guard can describe)
        self.arguments = {}       # id -> (TracedArray of an argument leaf, its input index)
        self.written_inputs = {}  # input index of an argument written in place -> user's location of the write
        self.code_checked = set()  # ids of the Python functions whose `__code__` a guard (or the key) checks
        self._names = {}          # id of a module namespace -> (it, builtin names, {name: module}) read
        self.outside_stores = {}  # places outside the trace written (tracer/arrays/escape.py settles them): key ->
                                  # ("item", container, key) / ("attr", obj, name) / ("cell", cell, None) /
                                  # ("container", container a native method stored into, None)
        self.loops = None         # interpretation.rolling.Rolling when loops are rolled (tracer.trace sets it)
        self.replay = None        # interpretation.sideeffects.Recorder when cached calls replay side effects
        self.inlined = {}         # id -> every Python function interpreted (by this trace or one it encloses)

    @contextlib.contextmanager
    def active(self):
        stack = _thread.stack
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    # -- locations -------------------------------------------------------------------------------
    def location(self):
        """`file:line` of the innermost interpreted frame (None outside any frame)."""
        if not self.frames:
            return None
        f = self.frames[-1]
        return f"{f.code.co_filename}:{f.lineno}"

    def user_location(self):
        """`file:line` of the innermost frame outside numpy/scipy/the standard library (and outside
        generated code, such as a dataclass's `__init__`, when a frame of a real file called it)."""
        frame = user_frame(self.frames, _is_library_file)
        return f"{frame.code.co_filename}:{frame.lineno}" if frame is not None else self.location()

    def chain(self):
        """The calls from the user's line to the innermost frame, as `file:line` strings (library
        files relative to their package directory): what an error raised there names."""
        return call_chain(self.frames, _is_library_file, _LIBRARY_DIRS)

    def traceback(self):
        """The interpreted call chain, outermost first, as 'function (file:line)' strings."""
        return [f"{f.code.co_name} ({f.code.co_filename}:{f.lineno})" for f in self.frames]

    # -- recording ----------------------------------------------------------------------------------
    def guard(self, pred, expected, why):
        """Record that Value `pred` must equal `expected` for this trace to be valid."""
        return self.builder.guard(pred, expected, loc=self.user_location(), why=why)

    def forbid_caching(self, why):
        """The path of this trace (and of the traces enclosing it) depends on the data in a way no guard
        records, e.g. an exception raised by a library routine on traced arrays and caught: the trace
        is run for this call only (`why`, with the user's location, is reported by `cache_info`)."""
        why = f"{why} at {self.user_location()}"
        for ctx in _thread.stack:
            ctx.uncacheable = ctx.uncacheable or why

    def add_argument(self, traced):
        """Note that TracedArray `traced` stands for an argument (writes into it are noted, see
        `note_write`)."""
        self.arguments[id(traced)] = (traced, traced.ir.params["index"])

    def traced_inputs(self):
        """The TracedArrays standing for this trace's inputs: the arguments and the environment reads."""
        return [t for t, _ in self.arguments.values()] + list(self._env_inputs.values())

    def note_write(self, target):
        """TracedArray `target` (not a view) is modified in place.  The trace writes into a copy of an
        argument, which is sound only while that argument shares no memory with the other inputs:
        remember which input and where (jitgrad/aliases.py checks it, at trace time and per call)."""
        known = self.arguments.get(id(target))
        if known is not None and known[0] is target and known[1] not in self.written_inputs:
            self.written_inputs[known[1]] = self.user_location()

    def note_store(self, kind, holder, key=None):
        """A value was stored into place `key` of `holder` ("item": a container or module namespace,
        "attr": an object, "cell": a closure cell, "container": anywhere in a container); remembered
        when the holder exists outside the trace."""
        if not self.is_local(holder):
            self.outside_stores.setdefault((id(holder), key), (kind, holder, key))

    def note_effect(self, kind, holder, key, value):
        """`value` was stored into place `key` of `holder` ("item", "attr", "cell"), or (kind "call")
        native method `key` of container `holder` (None for `print`) was called with `value`, a pair
        (args, kwargs): an effect cached calls replay (tracer/interpretation/sideeffects.py)."""
        if self.replay is not None and (holder is None or not self.is_local(holder)):
            if kind == "call":
                self.replay.called(key, holder, *value)
            else:
                self.replay.stored(kind, holder, key, value)

    def mark_local(self, obj):
        """Note that `obj` was created while tracing: reads from it are not environment reads."""
        self.local_objects[id(obj)] = obj

    def is_local(self, obj):
        return self.local_objects.get(id(obj)) is obj

    # -- environment reads --------------------------------------------------------------------------
    def read_global(self, namespace, name, value):
        stable = str(namespace.get("__name__", "")).split(".")[0] in _STABLE_ROOTS
        if isinstance(value, types.ModuleType):
            if not _is_library_namespace(namespace):
                self._names_of(namespace)[2][name] = value
            return value
        return self._read(GlobalGetter(namespace, name), value, ("g", id(namespace), name), stable)

    def read_builtin(self, namespace, name):
        """Global name `name`, absent from module namespace `namespace`, was found among the builtins."""
        if not _is_library_namespace(namespace):
            self._names_of(namespace)[1].add(name)

    def _names_of(self, namespace):
        names = self._names.get(id(namespace))
        if names is None:
            names = self._names[id(namespace)] = (namespace, set(), {}, self.user_location())
        return names

    def finish(self):
        """The traced call has returned: record the names looked up per module namespace (see
        NamespaceGetter) as one environment entry per namespace."""
        for namespace, absent, modules, loc in self._names.values():
            self.env.append(EnvEntry(NamespaceGetter(namespace, absent, modules), "value", expected=True, loc=loc))
        self._names = {}
        if self.replay is not None:
            self.replay.finish()

    def read_code(self, func):
        """Python function `func` (defined outside the trace) is about to be interpreted: guard its
        `__code__`, unless a guard on `func` (or the cache key, for the traced function itself) checks it.
        Every such function is noted (`inlined`) in this context and those enclosing it, library code too:
        the persistent cache (jitgrad/persist.py) checks their code in another process."""
        for ctx in _thread.stack:
            ctx.inlined[id(func)] = func
        if id(func) in self.code_checked or self.is_local(func) or _is_library_file(func.__code__.co_filename):
            return
        self.code_checked.add(id(func))
        self._record(("code", id(func)), CodeGetter(func), "identity", func.__code__)

    def read_cell(self, cell, name, value):
        if self.is_local(cell):
            return value
        return self._read(CellGetter(cell, name), value, ("c", id(cell)))

    def read_attr(self, obj, name, value):
        """Attribute `name` of a non-traced object `obj`, read while tracing."""
        if type(value) is types.MethodType:
            self.read_method(obj, name, value)
            return value
        if self.is_local(obj) or _fresh_per_access(value):
            return value
        if isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] in _STABLE_ROOTS:
            return value
        if isinstance(obj, type) and _is_library_object(obj):
            return value
        return self._read(AttrGetter(obj, name), value, ("a", id(obj), name))

    def read_missing_attr(self, obj, name):
        """Attribute `name` of non-traced object `obj` was found missing: guard that it stays so."""
        if not (self.is_local(obj) or isinstance(obj, types.ModuleType) or
                _is_library_object(obj if isinstance(obj, type) else type(obj))):
            self._record(("missing", id(obj), name), HasAttrGetter(obj, name), "value", False)

    def read_method(self, obj, name, method):
        """`obj.name` resolved to `method` (a bound method, or the Python function that the class of
        `obj` holds under `name`): guarded by identity (see MethodGetter), so that redefining the method
        on the class, or rebinding or shadowing it on a non-local instance, retraces.  Methods of
        library classes are stable."""
        tp = type(obj)
        cls = obj if isinstance(obj, type) else tp
        if self.is_local(cls) or _is_library_object(cls):
            return method
        owner = obj
        if self.is_local(obj):     # its own attributes are the trace's doing; its class's are not
            if type(method) is types.MethodType and method.__self__ is not obj:
                return method
            owner = tp
        expected = method.__func__ if type(method) is types.MethodType and method.__self__ is obj else method
        self._record(("m", id(owner), name), MethodGetter(owner, name), "identity", _resolved(owner, expected))
        return method

    def read_defaults(self, func):
        """(func.__defaults__, func.__kwdefaults__) for a call of Python function `func`, read like
        attributes when `func` is user code defined outside the trace: default arrays become inputs
        fetched on every call (in-place changes are seen), plain values are guarded (rebinding
        `__defaults__` retraces).  Library functions' defaults are part of their fixed surface."""
        defaults, kwdefaults = func.__defaults__, func.__kwdefaults__
        if self.is_local(func) or _is_library_file(func.__code__.co_filename):
            return defaults, kwdefaults
        if defaults is not None:
            defaults = self.read_attr(func, "__defaults__", defaults)
        if kwdefaults is not None:
            kwdefaults = self.read_attr(func, "__kwdefaults__", kwdefaults)
        return defaults, kwdefaults

    def _read(self, getter, value, key, stable=False):
        if type(value) is hooks.traced_type:
            return self._traced_read(getter, value)
        if self.replay is not None and not stable and self.replay.defer(getter, value, key):
            return value
        standing = self._shadowed(value) if type(value) is np.ndarray else None
        if standing is not None:
            return self._traced_read(getter, standing)
        if isinstance(value, np.ndarray):
            if type(value) is not np.ndarray:   # masked arrays, matrices...: their own semantics
                raise UnsupportedError(f"{getter.describe()} is a {type(value).__name__} (an ndarray subclass), "
                                       "which jitgrad does not trace; store np.asarray(...) of it",
                                       loc=self.user_location())
            return self._array_input(getter, value, key)
        if _is_plain_data(value):
            self._record(key, getter, "value", _snapshot(value))
            return value
        if callable(value) and not stable and not _fresh_per_access(value):
            self._record(key, getter, "identity", value)   # rebinding a user place must retrace
            return value
        if _holds_arrays(value, hooks.traced_type):
            self._record(key, getter, "len", _snapshot_structure(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            rebuilt = {k: self._read(ItemGetter(getter, k), v, key + (k,)) for k, v in items}
            if isinstance(value, dict):
                return rebuilt
            return _like(value, [rebuilt[i] for i in range(len(value))])
        if isinstance(value, collections.abc.Iterator) and type(value).__module__ in _NATIVE_ITERATOR_MODULES:
            raise UnsupportedError(f"{getter.describe()} is a {type(value).__name__} created outside the traced "
                                   "call: what it yields next cannot be checked by a cached trace; pass the "
                                   "values as arguments", loc=self.user_location())
        if stable or isinstance(value, types.ModuleType) or not getter.is_place():
            return value
        for traced, is_key in _traced_inside(value):
            if is_key:      # looking it up would compare with a value of a finished trace: refused
                self._traced_read(getter, traced)
            return value    # values stored while tracing (a log of losses...): not data to check
        # Anything else held by a place of the environment: native containers (read by C code, which
        # records nothing) by their contents, other objects (whose attribute reads are recorded) by
        # identity, so that rebinding the place (`model = Model(...)`) retraces.
        self._record(key, getter, "value" if isinstance(value, _NATIVE_DATA) else "identity", _snapshot(value))
        return value

    def _shadowed(self, array):
        """The TracedArray that plain `array` stands for in this trace or an enclosing one (their shadow
        tables, tracer/arrays/aliasing.py), or None."""
        for ctx in reversed(_thread.stack):
            if ctx.shadows is not None:
                traced = ctx.shadows.resolve(array, ctx is self)
                if traced is not array:
                    return traced
        return None

    def _record(self, key, getter, kind, expected):
        """Record one environment assumption, once per place read (loops re-read globals often)."""
        if kind == "identity" and type(expected) is types.FunctionType:
            self.code_checked.add(id(expected))      # (see _holds_identity)
        if key not in self._env_recorded:
            self._env_recorded.add(key)
            self.env.append(EnvEntry(getter, kind, expected=expected, loc=self.user_location()))

    def adopt_env_array(self, entry):
        """The IR Value, in this context, of the environment array that `entry` (of another context)
        reads: an input of this trace, or the very Value of this trace that `entry` read (a nested
        jit_grad's closure over this trace's variables)."""
        if entry.outer is not None:
            return self._traced_read(entry.getter, entry.outer).ir
        return self._array_input(entry.getter, entry.getter.get(), ("adopted", id(entry))).ir

    def _traced_read(self, getter, traced):
        """A traced value read from the environment.  One of this trace (stored in a global or an
        attribute earlier in the call) is itself.  One of an enclosing trace (a jit_grad called inside a
        traced function, closing over its variables) becomes an input of this trace whose EnvEntry keeps
        it (`outer`): splicing this trace into the enclosing one binds the input to it
        (jitgrad/nested.py), so derivatives flow through the read; one input per outer Value, however
        often and wherever it is read.  Any other is a leaked value."""
        key = ("outer", id(traced.ir))
        known = self._env_inputs.get(key)
        if known is not None:
            return known
        for ctx in reversed(_thread.stack):
            if ctx.builder_owns(traced.ir):
                if ctx is self:
                    return traced
                return self._array_input(getter, traced.value, key, outer=traced)
        raise TraceError(f"{getter.describe()} holds a traced value of a jit_grad call that has returned "
                         "(it was stored while tracing and read later); pass the value as an argument",
                         loc=self.user_location())

    def builder_owns(self, value):
        """Whether IR Value `value` is an input or node of this trace (a linear scan, newest first)."""
        return any(v is value for v in reversed(self.builder.nodes)) or \
            any(v is value for v in self.builder.inputs)

    def env_arrays(self):
        """(EnvEntry, the ndarray read) for every array this trace read from a place of the environment
        (not from an enclosing trace)."""
        read = {t.ir.params["index"]: t.value for t in self._env_inputs.values()}
        return [(e, read[e.index]) for e in self.env if e.kind == "array" and e.outer is None]

    def is_environment_array(self, traced):
        """Whether TracedArray `traced` is the one standing for an array read from the environment."""
        return any(t is traced for t in self._env_inputs.values())

    def _array_input(self, getter, value, key, outer=None):
        known = self._env_inputs.get(key)
        if known is not None:
            return known
        shape, dtype = np.shape(value), np.asarray(value).dtype
        ir_value = self.builder.input(shape, dtype)
        self.env.append(EnvEntry(getter, "array", shape=shape, dtype=dtype, index=ir_value.params["index"],
                                 loc=self.user_location(), outer=outer))
        traced = hooks.traced_type(ir_value, value)
        self._env_inputs[key] = traced
        return traced


def _fresh_per_access(value):
    """Bound methods: a new object on every attribute access, so never guarded by identity (the
    function behind one belongs to a class, itself guarded where user code reads it)."""
    if isinstance(value, types.MethodType):
        return True
    owner = getattr(value, "__self__", None)
    return (isinstance(value, (types.BuiltinMethodType, types.MethodWrapperType)) and owner is not None
            and not isinstance(owner, types.ModuleType))


def _resolved(owner, value):
    """See MethodGetter."""
    if type(value) is types.MethodType and (value.__self__ is owner or value.__self__ is type(owner)):
        return value.__func__
    return value


def _is_library_object(value):
    """Functions and classes of numpy, scipy, the standard library or jitgrad: stable by design."""
    module = getattr(value, "__module__", None) or ""
    return module.split(".")[0] in _STABLE_ROOTS


_LIBRARY_DIRS = tuple({os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(np.__file__))})


def _is_library_namespace(namespace):
    """Globals of a module of numpy, scipy, the standard library, jitgrad or an installed package: its
    names are stable by design (like its functions)."""
    return (str(namespace.get("__name__", "")).split(".")[0] in _STABLE_ROOTS
            or _is_library_file(str(namespace.get("__file__", ""))))


def _is_library_file(filename):
    return filename.startswith(_LIBRARY_DIRS) or "site-packages" in filename
