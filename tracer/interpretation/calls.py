"""The call policy: what the interpreter does with every call it meets (see the tracer contract).

In order: a registered rule (when it is `always`, or when a traced value is among the arguments; a
user's Python handler is interpreted, jitgrad's own run natively); jitgrad's own code natively; Python
code (functions, bound methods, classes with Python `__new__`/`__init__`, instances with a Python
`__call__`, partials, staticmethods, and the Python implementation behind NumPy's `__array_function__`
dispatchers such as `np.mean`) interpreted inline; compiled code without traced arguments natively
(arrays it returns are remembered, arrays it may keep noted: `aliasing.after_native_call`), with
Python callbacks among the arguments wrapped so they are interpreted when compiled code calls them
(the function `map`/`filter`/`reduce`/`starmap` apply is wrapped whatever callable it is, so rules
apply); compiled
code whose traced arguments are all constant arrays on their concrete values
(`aliasing.call_with_constants`); anything else is refused with UnsupportedError.
Builtins that inspect the caller's frame (`super()`, `locals()`, `globals()`, `vars()`, `dir()`,
`eval`, `exec`) get the interpreted frame instead of the interpreter's own; `len`, `iter`, `next`, `bool`,
`repr`, `str` of
an object whose special method is Python code run that method interpreted; and `getattr`, `hasattr`,
`setattr` go through the interpreter's attribute protocol (properties, environment reads); `enumerate`
and `zip` of traced arrays, while loops are watched, make iterators whose loops can roll (seqloops.py).
"""
import builtins
import collections
import functools
import itertools
import types
from types import FunctionType, MethodType

import numpy as np

from ...ir.errors import UnsupportedError
from ..recording import context
from ..arrays.sizeint import plain as plain_size, sized_range
from ..arrays.aliasing import NOT_CONSTANT, after_native_call, call_with_constants, resolve_arguments
from .decode import CO_ASYNC_FLAGS, UNBOUND
from .frame import Frame
from .generators import InterpretedGenerator
from .protocols import is_jitgrad_code, python_method, type_lookup
from .seqloops import indexed_enumerate, indexed_zip
from ..recording.registry import lookup
from ..arrays.values import contains_traced

_CALLBACK_TYPES = (FunctionType, MethodType)
# Callees that store or inspect a function rather than call it: their arguments are never wrapped.
_NO_WRAP = {id(f) for f in (type, isinstance, issubclass, callable, id, hash, getattr, setattr, hasattr,
                            delattr, repr, str, print, format, vars, dir, property, staticmethod,
                            classmethod, MethodType, functools.partial, functools.update_wrapper,
                            functools.wraps, super)}
# Callees whose first argument is a function they apply to the items: wrapped whatever callable it is
# (`map(np.asarray, xs)` then traces np.asarray's rule).
_APPLY_FIRST = {id(f) for f in (map, filter, functools.reduce, itertools.starmap)}
# Containers whose methods store positional arguments (a `key=` keyword is still a callback).
_CONTAINERS = (list, dict, set, frozenset, tuple, collections.deque, collections.OrderedDict)


class InterpretedCallback:
    """A Python function handed to compiled code: calling it interprets the function."""

    __slots__ = ("__wrapped__", "interpreter")

    def __init__(self, fn, interpreter):
        self.__wrapped__, self.interpreter = fn, interpreter

    def __call__(self, *args, **kwargs):
        if context.current() is not self.interpreter.ctx:
            return self.__wrapped__(*args, **kwargs)
        return self.interpreter.call(self.__wrapped__, args, kwargs)

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)

    def __repr__(self):
        return f"<interpreted {self.__wrapped__!r}>"


def qualified_name(fn):
    """`module.qualname` of a callable, for error messages."""
    owner = getattr(fn, "__self__", None)
    module = getattr(fn, "__module__", None) or (type(owner).__module__ if owner is not None else None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__qualname__
    return f"{module}.{name}" if module and module != "builtins" else name


def function_str(fn):
    """CPython's `_PyObject_FunctionStr`: how call errors name the callee (`mod.f()`)."""
    return qualified_name(fn) + "()"


class CallPolicy:
    """Mixin of the Interpreter: `call` and the machinery it needs (see the module docstring)."""

    def call(self, fn, args, kwargs):
        """Call `fn(*args, **kwargs)` under the call policy and return its result."""
        if self.ctx.shadows is not None:          # plain arrays standing for traced values: those values
            args, kwargs = resolve_arguments(args, kwargs)
        special = _SPECIAL_BUILTINS.get(id(fn))
        if special is not None and special[0] is fn:
            result = special[1](self, args, kwargs)
            if result is not _NOT_PYTHON:
                return result
        rule = lookup(fn)
        loops = self.ctx.loops
        if rule is not None and (rule.always or contains_traced(args, kwargs)):
            args, kwargs = self._wrap_callbacks(fn, args, kwargs)
            if loops is not None:     # (a rule storing outside, `effect`, is checked like compiled code)
                args, kwargs = loops.native_call(fn, args, kwargs, rule=not getattr(rule.handler, "effect", False))
            try:
                return self._run_handler(rule.handler, args, kwargs)
            except np.linalg.LinAlgError as e:   # raised by the data (a singular matrix...): no guard says so
                self.ctx.forbid_caching(f"{qualified_name(fn)} raised LinAlgError ({e})")
                raise
        kind = type(fn)
        if kind is FunctionType:
            if is_jitgrad_code(fn):
                return fn(*self._own_arguments(args), **self._own_arguments(kwargs))
            return self.call_python(fn, args, kwargs)
        if kind is MethodType:
            func = fn.__func__
            if type(func) is FunctionType and not is_jitgrad_code(func):
                return self.call_python(func, (fn.__self__,) + tuple(args), kwargs)
        if is_jitgrad_code(fn):
            return fn(*self._own_arguments(args), **self._own_arguments(kwargs))
        if kind is MethodType:
            return self.call(fn.__func__, (fn.__self__,) + tuple(args), kwargs)
        if kind is functools.partial:   # its func/args/keywords are read like attributes (they may change)
            func, bound, keywords = (self.ctx.read_attr(fn, name, getattr(fn, name))
                                     for name in ("func", "args", "keywords"))
            return self.call(func, bound + tuple(args), {**keywords, **kwargs})
        if kind is staticmethod:
            return self.call(fn.__func__, args, kwargs)
        if kind is _ARRAY_FUNCTION_DISPATCHER and not _overrides_array_function(args, kwargs):
            return self.call(fn._implementation, args, kwargs)
        if isinstance(fn, type):
            result = self.construct(fn, args, kwargs)
            if result is not _NOT_PYTHON:
                return result
        else:
            method = python_method(kind, "__call__")
            if method is not None:
                return self.call_python(method, (fn,) + tuple(args), kwargs)
        if loops is not None:
            args, kwargs = loops.native_call(fn, args, kwargs)
        if not contains_traced(args, kwargs):
            args, kwargs = self._wrap_callbacks(fn, args, kwargs)
            result = fn(*args, **kwargs)
            if loops is not None:
                loops.native_result(result, args)
            if type(result) is fn:       # an instance constructed while tracing
                self.made(result)
            return after_native_call(fn, args, kwargs, result)     # a traced write may adopt it
        result = call_with_constants(fn, *self._wrap_callbacks(fn, args, kwargs))
        if result is not NOT_CONSTANT:           # only constant arrays were traced: run it on them
            return result
        name = qualified_name(fn)
        raise UnsupportedError(
            f"jitgrad cannot trace the call to {name}: it is compiled code and received a traced value. "
            f"Register a rule with jitgrad.register({name}) that computes it from traced operations "
            f"(see README, 'Registering rules')", loc=self.ctx.user_location())

    def _own_arguments(self, args):
        """Arguments (a tuple, or a dict of keywords) of jitgrad's own code (traced-array methods, nested
        transforms): an int argument standing in as a SizeInt is a plain int there (arrays/sizeint.py)."""
        loops = self.ctx.loops
        if loops is None or not loops.sizes:
            return args
        if type(args) is dict:
            return {k: plain_size(v, "passed to jitgrad") for k, v in args.items()}
        return tuple(plain_size(a, "passed to jitgrad") for a in args)

    def _run_handler(self, handler, args, kwargs):
        """Run a rule's handler: jitgrad's own natively, a user's Python handler interpreted (so that the
        NumPy operations it is written with are traced)."""
        bound = ()
        if type(handler) is functools.partial and not handler.keywords:
            handler, bound = handler.func, handler.args
        if type(handler) is FunctionType and not is_jitgrad_code(handler):
            return self.call_python(handler, bound + tuple(args), kwargs)
        return handler(*bound, *args, **kwargs)

    def call_python(self, func, args, kwargs):
        """Interpret the Python function `func` (a generator function returns an interpreted generator)."""
        code = func.__code__
        if code.co_flags & CO_ASYNC_FLAGS:
            raise UnsupportedError(f"jitgrad cannot trace async code ({func.__qualname__})",
                                   loc=self.ctx.user_location())
        self.ctx.read_code(func)
        decoded = self.decode(code)
        frame = Frame(decoded, func, decoded.bind(func, args, kwargs, *self.ctx.read_defaults(func)))
        if decoded.is_generator:
            generator = InterpretedGenerator(self, frame)
            self.ctx.mark_local(generator)
            if self.ctx.loops is not None:
                self.ctx.loops.made(generator)
            return generator
        return self.run_frame(frame)

    def construct(self, cls, args, kwargs):
        """`cls(*args, **kwargs)` when Python code takes part in it, else _NOT_PYTHON."""
        meta = type(cls)
        if meta is not type:
            method = python_method(meta, "__call__")
            if method is not None:
                return self.call_python(method, (cls,) + tuple(args), kwargs)
        new = type_lookup(cls, "__new__")
        new = new.__func__ if type(new) is staticmethod else new
        python_new = type(new) is FunctionType and not is_jitgrad_code(new)
        init = python_method(cls, "__init__")
        if not python_new and init is None:
            return self._native_container(cls, new, args, kwargs)
        if python_new:
            obj = self.call_python(new, (cls,) + tuple(args), kwargs)
        elif new is object.__new__:
            obj = object.__new__(cls)
        else:
            obj = new(cls, *args, **kwargs)
        if not isinstance(obj, cls):
            return obj
        self.made(obj)
        init = python_method(type(obj), "__init__")
        if init is not None:
            result = self.call_python(init, (obj,) + tuple(args), kwargs)
            if result is not None:
                raise TypeError(f"__init__() should return None, not '{type(result).__name__}'")
        elif type_lookup(type(obj), "__init__") is not object.__init__:
            type(obj).__init__(obj, *args, **kwargs)
        return obj

    def made(self, obj):
        """`obj` was constructed while tracing: its attributes are no environment, and stores into it in
        the loop iteration that made it change no outside state (Rolling.made)."""
        self.ctx.mark_local(obj)
        if self.ctx.loops is not None:
            self.ctx.loops.made(obj)

    def _native_container(self, cls, new, args, kwargs):
        """`cls(*args, **kwargs)` for a subclass of dict or list that keeps the builtin's construction
        (scipy's OdeResult, OptimizeResult): made natively, as the builtin's own rule does; else
        _NOT_PYTHON."""
        for base in (dict, list):
            if issubclass(cls, base) and new is base.__new__ and type_lookup(cls, "__init__") is base.__init__:
                obj = cls(*args, **kwargs)
                self.made(obj)
                return obj
        return _NOT_PYTHON

    def build_class(self, func, name, *bases, **kwds):
        """`builtins.__build_class__` with the class body interpreted."""
        resolved = types.resolve_bases(bases)
        meta, namespace, kwds = types.prepare_class(name, resolved, kwds)
        decoded = self.decode(func.__code__)
        frame = Frame(decoded, func, [UNBOUND] * decoded.nlocals, locals_dict=namespace)
        self.run_frame(frame)
        if resolved is not bases:
            namespace["__orig_bases__"] = bases
        cls = self.call(meta, (name, resolved, namespace), kwds)
        self.ctx.mark_local(cls)
        return cls

    def _wrap_callbacks(self, fn, args, kwargs):
        """Replace Python functions among the arguments by InterpretedCallbacks (see module doc)."""
        if id(fn) in _NO_WRAP:
            return args, kwargs
        if id(fn) in _APPLY_FIRST and args and callable(args[0]) and not is_jitgrad_code(args[0]):
            args = (InterpretedCallback(args[0], self),) + tuple(args[1:])
        if not isinstance(getattr(fn, "__self__", None), _CONTAINERS) and any(
                type(a) in _CALLBACK_TYPES for a in args):
            args = tuple(self._callback(a) for a in args)
        if kwargs and any(type(v) in _CALLBACK_TYPES for v in kwargs.values()):
            kwargs = {k: self._callback(v) for k, v in kwargs.items()}
        return args, kwargs

    def _callback(self, value):
        if type(value) not in _CALLBACK_TYPES or is_jitgrad_code(value):
            return value
        return InterpretedCallback(value, self)


# NumPy's public functions wrap their Python implementation in a C dispatcher of __array_function__.
_ARRAY_FUNCTION_DISPATCHER = type(np.mean)
_DEFAULT_ARRAY_FUNCTION = np.ndarray.__array_function__


def _overrides_array_function(args, kwargs):
    """Whether an argument overrides `__array_function__` (then NumPy's dispatch must run natively)."""
    for value in (*args, *kwargs.values()):
        override = getattr(type(value), "__array_function__", None)
        if override is not None and override is not _DEFAULT_ARRAY_FUNCTION:
            return True
    return False


class _NotPython:
    __slots__ = ()


_NOT_PYTHON = _NotPython()


# -- builtins that look at their caller's frame ---------------------------------------------------------
def _super(interp, args, kwargs):
    if args or kwargs:
        return super(*args, **kwargs)
    frame = interp.ctx.frames[-1]
    code = frame.code
    if "__class__" not in code.co_freevars:
        raise RuntimeError("super(): __class__ cell not found")
    cls = frame.cells[len(code.co_cellvars) + code.co_freevars.index("__class__")].cell_contents
    if code.co_argcount == 0:
        raise RuntimeError("super(): no arguments")
    first = code.co_varnames[0]
    receiver = (frame.cells[code.co_cellvars.index(first)].cell_contents if first in code.co_cellvars
                else frame.fast[0])
    return super(cls, receiver)


def _locals(interp, args, kwargs):
    return builtins.locals(*args, **kwargs) if args or kwargs else interp.ctx.frames[-1].local_variables()


def _globals(interp, args, kwargs):
    return builtins.globals(*args, **kwargs) if args or kwargs else interp.ctx.frames[-1].globals


def _vars(interp, args, kwargs):
    if len(args) == 1 and not kwargs:     # an object's namespace: read like its `__dict__` attribute
        return interp.ctx.read_attr(args[0], "__dict__", builtins.vars(args[0]))
    return builtins.vars(*args, **kwargs) if args or kwargs else interp.ctx.frames[-1].local_variables()


def _dir(interp, args, kwargs):
    return builtins.dir(*args, **kwargs) if args or kwargs else sorted(interp.ctx.frames[-1].local_variables())


def _with_namespaces(native):
    def run(interp, args, kwargs):
        if len(args) >= 2 or "globals" in kwargs:
            return native(*args, **kwargs)
        frame = interp.ctx.frames[-1]
        return native(*args, frame.globals, frame.local_variables(), **kwargs)
    return run


# -- builtins that run a protocol: interpreted when the argument's special method is Python code ---------
def _protocol(dunder, method):
    def run(interp, args, kwargs):
        if len(args) != 1 or kwargs or python_method(type(args[0]), dunder) is None:
            return _NOT_PYTHON
        return getattr(interp, method)(args[0])
    return run


def _len(interp, args, kwargs):
    """`len(x)`; of a list a watched loop appends to, a counter of that loop (Rolling.list_length)."""
    loops = interp.ctx.loops
    if len(args) == 1 and not kwargs and type(args[0]) is list and loops is not None and loops.active:
        found = loops.list_length(args[0])
        if found is not None:
            return found
    return _protocol("__len__", "length")(interp, args, kwargs)


def _next(interp, args, kwargs):
    if not 1 <= len(args) <= 2 or kwargs or python_method(type(args[0]), "__next__") is None:
        return _NOT_PYTHON
    try:
        return interp.next_item(args[0])
    except StopIteration:
        if len(args) == 2:
            return args[1]
        raise


def _conversion(dunder, native):
    def run(interp, args, kwargs):
        if len(args) != 1 or kwargs or python_method(type(args[0]), dunder) is None:
            return _NOT_PYTHON
        return interp.convert(args[0], dunder, native)
    return run


def _getattr(interp, args, kwargs):
    if kwargs or not 2 <= len(args) <= 3 or type(args[1]) is not str:
        return _NOT_PYTHON
    try:
        return interp.load_attr(args[0], args[1])
    except AttributeError:
        if len(args) == 3:
            return args[2]
        raise


def _hasattr(interp, args, kwargs):
    if kwargs or len(args) != 2 or type(args[1]) is not str:
        return _NOT_PYTHON
    try:
        interp.load_attr(args[0], args[1])
    except AttributeError:
        return False
    return True


def _setattr(interp, args, kwargs):
    if kwargs or len(args) != 3 or type(args[1]) is not str:
        return _NOT_PYTHON
    interp.store_attr(*args)


def _object_setattr(interp, args, kwargs):
    """`object.__setattr__(obj, name, value)` (how frozen dataclasses initialise): interpreted like a
    store that skips the class's own `__setattr__` (descriptors such as astropy's Parameter run)."""
    if kwargs or len(args) != 3 or type(args[1]) is not str or isinstance(args[0], type):
        return _NOT_PYTHON
    interp.store_attr(*args, generic=True)


def _indexed(make):
    """`enumerate`/`zip` of traced arrays while loops are watched: an IndexedIterator (seqloops.py)."""
    def run(interp, args, kwargs):
        loops = interp.ctx.loops
        iterator = make(args, kwargs) if loops is not None else None
        if iterator is None:
            return _NOT_PYTHON
        loops.made(iterator)
        return iterator
    return run


def _range(interpreter, args, kwargs):
    """`range(...)` bounded by an int argument standing in as a SizeInt: a SizedRange (arrays/sizeint.py)."""
    loops = interpreter.ctx.loops
    made = sized_range(args, kwargs) if loops is not None and loops.sizes else None
    return _NOT_PYTHON if made is None else made


_SPECIAL_BUILTINS = {id(fn): (fn, handler) for fn, handler in (
    (super, _super), (builtins.locals, _locals), (builtins.globals, _globals), (builtins.vars, _vars),
    (builtins.dir, _dir), (builtins.eval, _with_namespaces(builtins.eval)),
    (builtins.exec, _with_namespaces(builtins.exec)), (len, _len),
    (iter, _protocol("__iter__", "get_iter")), (bool, _protocol("__bool__", "truth")), (next, _next),
    (repr, _conversion("__repr__", repr)), (str, _conversion("__str__", str)), (getattr, _getattr),
    (hasattr, _hasattr), (setattr, _setattr), (object.__setattr__, _object_setattr),
    (enumerate, _indexed(indexed_enumerate)), (zip, _indexed(indexed_zip)), (range, _range))}
