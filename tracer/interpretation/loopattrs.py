"""Attributes as loop state: a loop whose iterations update an object's attributes (`solver.step()` storing
`self.t`, `self.y`, `self.nfev`...) rolls as one updating local variables does (rolling.py).

An object's attributes are part of a loop header's state (loopstate.flatten_frame) when the object was made
while tracing (so nothing outside the traced call held it before, and a store into it is no side effect
a cached call replays), is held by the loop's frame (a variable, a cell, the stack, a tuple or list
there, or an attribute of such an object), and its class keeps all of an instance's state in its
`__dict__`: a class written in Python, with no `__slots__`, no Python `__setattr__`, `__delattr__` or
`__getattribute__` and no base written in C but `object` (`class_refusal`).  Its attributes are then
compared at the headers, carried, stepped (stepping.py: `self.n += 1` a counter, `self.t += dt` traced)
and rebound after the loop op exactly as the frame's variables are, but for counts: an int attribute
that the iterations read only to add or subtract an int to it (`self.nfev += 1`: sideeffects.py's
`write_only_use`) is traced (an int64 carry) from the iteration after it changes, so iterations counting
differently (a step rejected and retried calls the function twice as often) are paths of one body, and
its value after the loop is the loop op's result.  A store (`obj.x = v`, `setattr`,
`object.__setattr__`) or deletion of an attribute of any other object in a watched iteration, of one
such object through a descriptor of its class other than a Python property, keeps that iteration out of
every loop op, with the reason (`store_refusal`, rolling.py's `taint`).
"""
import operator
import weakref

from .sideeffects import Update, write_only_use

_HEAP_TYPE = 1 << 9                      # Py_TPFLAGS_HEAPTYPE: a class made by a `class` statement
_HOOKS = ("__setattr__", "__delattr__", "__getattribute__")
_plain = weakref.WeakKeyDictionary()     # class -> why its instances' attributes are not loop state, or None


def class_refusal(tp):
    """Why the attributes of a `tp` instance cannot be loop state (see the module), or None."""
    try:
        return _plain[tp]
    except KeyError:
        pass
    except TypeError:                    # (a class that cannot be weakly referenced)
        return f"{tp.__name__} objects"
    why = None
    for klass in tp.__mro__[:-1]:
        if not klass.__flags__ & _HEAP_TYPE or klass.__module__.split(".")[0] == "jitgrad":
            why = f"its class derives from {klass.__name__}, not written in Python"
        elif "__slots__" in vars(klass):
            why = f"{klass.__name__} defines __slots__"
        else:
            hook = next((h for h in _HOOKS if h in vars(klass)), None)
            why = hook and f"{klass.__name__} defines {hook}"
        if why is not None:
            break
    if why is None and not tp.__dictoffset__:
        why = f"{tp.__name__} objects have no __dict__"
    _plain[tp] = why
    return why


class Objects:
    """The objects whose attributes one header's state holds (id -> object), found while flattening it."""

    __slots__ = ("ctx", "found")

    def __init__(self, ctx):
        self.ctx, self.found = ctx, {}

    def take(self, x):
        """The attribute dict of `x` when its attributes are state and it was not met before, else None."""
        if id(x) in self.found or not self.ctx.is_local(x) or isinstance(x, type) or class_refusal(type(x)):
            return None
        self.found[id(x)] = x
        return vars(x)


def _descriptor(tp, name):
    """A data descriptor of `tp` for attribute `name` other than a Python property, or None."""
    for klass in tp.__mro__:
        found = vars(klass).get(name)
        if found is not None:
            kind = type(found)
            if kind is property and found.fset is not None and hasattr(found.fset, "__code__"):
                return None
            return found if hasattr(kind, "__set__") or hasattr(kind, "__delete__") else None
    return None


def store_refusal(watch, obj, name, what):
    """Why a store into (or deletion of) attribute `name` of `obj` in the running iteration of `watch`
    keeps its loop unrolled (`what` says which), or None."""
    if watch.fresh.get(id(obj)) is obj:                  # made in this iteration: the iteration's own
        return None
    header = watch.headers[-1] if watch.headers else None
    if not watch.rolling.ctx.is_local(obj):
        return f"{what} of an object made outside the traced call (an argument, a global...)"
    why = class_refusal(type(obj))
    if why is not None:
        return f"{what} of a {type(obj).__name__} object ({why})"
    if header is None or header.objects.get(id(obj)) is not obj:
        return f"{what} of an object the loop's function does not hold in a variable"
    if _descriptor(type(obj), name) is not None:
        return f"{what}, a descriptor of its class {type(obj).__name__} (not a Python property)"
    return None


def note_read(watch, obj, name, frame):
    """Attribute `name` of `obj`, an int, was read by `frame` in the running iteration of `watch`: whether
    it stays a count (see the module) is noted in `watch.counts`."""
    if watch.headers and watch.headers[-1].objects.get(id(obj)) is obj:
        use = write_only_use(frame, name)
        key = (id(obj), name)
        watch.counts[key] = watch.counts.get(key, True) and type(use) is Update and type(use.delta) is int \
            and use.op in (operator.iadd, operator.isub)


def places(frame, objects):
    """(key, container, slot) of each variable of `frame` and attribute of `objects` (id -> object) a loop
    may step (stepping.py): `container[slot]` is its value."""
    for k in range(len(frame.fast)):
        yield k, frame.fast, k
    for obj in objects.values():
        state = vars(obj)
        for name in state:
            yield (id(obj), name), state, name


def place_name(code, key):
    """How the variable or attribute `key` (see `places`) is named in a message."""
    if type(key) is tuple:
        return f"attribute {key[1]!r}"
    return f"int variable {code.co_varnames[key]!r}" if key < len(code.co_varnames) else None
