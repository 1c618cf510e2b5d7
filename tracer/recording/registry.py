"""The call registry: rules saying how a compiled (C-level) callable is traced.

`register(fn, *, always=False)` is a decorator on a handler: while tracing, a call of `fn` whose
arguments hold a traced value (or any call, if `always`) runs `handler(*args, **kwargs)` instead.
`lookup(fn)` finds the rule: by identity, then for bound methods of ufuncs (`np.add.reduce`: by ufunc
and method name), of plain ndarrays (`arr.dot`: by method name; a handler with `always = True` runs
on every call), of random generators (impure), and for
NumPy scalar types (`np.float64(x)`).  The built-in rules live in `tracer/rules/` and are loaded on the
first lookup; those for a library (SciPy's subpackages) when a lookup first runs after it was imported.
"""
import contextlib
import functools
import sys
import threading

import numpy as np

from . import hooks
from .context import current


class Rule:
    """How to trace calls of `fn`: call `handler` instead (always, or when a traced value is passed)."""

    __slots__ = ("fn", "handler", "always")

    def __init__(self, fn, handler, always=False):
        self.fn, self.handler, self.always = fn, handler, always

    def __repr__(self):
        return f"<Rule {getattr(self.fn, '__name__', self.fn)!r}{' always' if self.always else ''}>"


_BY_ID = {}            # id(fn) -> Rule (the Rule keeps fn alive, so ids stay unique)
# Rules for bound methods, keyed by the owner's kind; filled by the rule modules:
UFUNC_METHODS = {}     # method name -> handler(ufunc, *args, **kwargs)
NDARRAY_METHODS = {}   # method name -> handler(array, *args, **kwargs)
IMPURE_OWNERS = []     # classes whose every method is impure
NATIVE_OWNERS = set()  # types whose methods only store or compare values (list.append): called natively
_bound_cache = {}      # (id(owner), name) -> Rule for ufunc methods (ufuncs are long-lived)
_loaded = False        # set once the built-in rules are all registered
_modules_seen = 0      # len(sys.modules) when the library rules were last loaded
_library_loader = None  # rules.load_library_rules, once the built-in rules are imported
# Rules are loaded by one thread at a time, and a thread that needs them waits until they are all in;
# `_busy` is set while the thread holding the lock imports rule modules (whose `register` calls must
# not start loading again).
_load_lock = threading.RLock()
_busy = False


def register(fn, *, always=False):
    """Decorator: while tracing, calls of `fn` run the decorated handler (see the module docstring).

        @jitgrad.register(scipy.special.erf)
        def erf(x): ...          # build it from traced NumPy operations
    Built-in rules are loaded first, so a user's rule replaces the built-in one for the same callable.
    Registering a function defined in a class (`register(SomeClass.method)`) covers its bound methods
    too: `obj.method(*args)` runs `handler(obj, *args)`.
    """
    if not _loaded:
        _load_builtin_rules()
    elif len(sys.modules) != _modules_seen:
        _load_library_rules()

    def decorate(handler):
        _BY_ID[id(fn)] = Rule(fn, handler, always)
        return handler
    return decorate


def registered():
    """Every Rule registered by identity (built-in and users' ones), as a list."""
    return list(_BY_ID.values())


def lookup(fn):
    """The Rule for callable `fn`, or None."""
    if not _loaded:
        _load_builtin_rules()
    rule = _BY_ID.get(id(fn))
    if rule is not None and rule.fn is fn:
        return rule
    if len(sys.modules) != _modules_seen:       # a library imported since: load its rules, look again
        _load_library_rules()
        rule = _BY_ID.get(id(fn))
        if rule is not None and rule.fn is fn:
            return rule
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, type) and hasattr(fn, "__name__"):
        func = getattr(fn, "__func__", None)           # obj.method of a class's registered function
        rule = _BY_ID.get(id(func))
        if rule is not None and rule.fn is func:
            return Rule(fn, functools.partial(rule.handler, owner), rule.always)
        return _bound_rule(fn, owner)
    if isinstance(fn, type) and issubclass(fn, np.generic) and (np.number in fn.__mro__ or fn is np.bool_):
        rule = Rule(fn, functools.partial(hooks.scalar_cast, fn))
        _BY_ID[id(fn)] = rule
        return rule
    return None


def _bound_rule(fn, owner):
    name = fn.__name__
    if isinstance(owner, np.ufunc):
        key = (id(owner), name)
        rule = _bound_cache.get(key)
        if rule is None and name in UFUNC_METHODS:
            rule = _bound_cache[key] = Rule(fn, functools.partial(UFUNC_METHODS[name], owner))
        return rule
    if type(owner) is np.ndarray:
        handler = NDARRAY_METHODS.get(name)
        if handler is None:
            return None
        return Rule(fn, functools.partial(handler, owner), getattr(handler, "always", False))
    if type(owner) in NATIVE_OWNERS:
        return Rule(fn, _noting_store(fn, owner))
    if isinstance(owner, tuple(IMPURE_OWNERS)):
        return Rule(fn, hooks.impure_rule(fn), always=True)
    return None


def _noting_store(method, owner):
    """`method` of native container `owner` (list.append, dict.update...), run natively after noting
    that traced values may be stored into `owner` (tracer/arrays/escape.py settles them after the call)."""
    def call(*args, **kwargs):
        ctx = current()
        if ctx is not None:
            ctx.note_store("container", owner)
        return method(*args, **kwargs)
    return call


def _load_builtin_rules():
    global _loaded, _library_loader
    with _load_lock:
        if _loaded or _busy or hooks.load_rules is None:    # (None: tracer/__init__ not run yet)
            return
        with _loading():
            _library_loader = hooks.load_rules()   # importing the rules registers the Python/NumPy ones
        _load_library_rules()
        _loaded = True


def _load_library_rules():
    global _modules_seen
    with _load_lock:
        if _busy or _library_loader is None:
            return
        with _loading():
            _library_loader()
        _modules_seen = len(sys.modules)


@contextlib.contextmanager
def _loading():
    """This thread (holding `_load_lock`) imports rule modules."""
    global _busy
    _busy = True
    try:
        yield
    finally:
        _busy = False
