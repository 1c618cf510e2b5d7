"""The loop counter while its loop is watched for rolling: `LoopIndex`, a stand-in for the int that a
`for` over a `range` yields.

Fast-forwarding a rolled loop skips the Python work of the remaining iterations, so any Python-level
decision or effect that depends on the counter would be skipped silently.  While a loop is watched its
counter is therefore a LoopIndex `a * i + b` (i the range value of the iteration).  Moving it around is
free; `+`, `-`, `*` with ints and unary `-` give another LoopIndex; arithmetic with floats or traced values, and
indexing a traced array with it (`x[i]`, `x[i + 1] = v`, a scalar read or any write), record IR on the
iteration's counter Value (`ir()`), which the loop body computes from its iteration number.  Every other
use (comparisons, `bool`, `int()`/`__index__` in C code, hashing, printing) first marks its loop "not
rollable" (with the use and the user's line) and then behaves exactly as the int would.
`isinstance(i, int)` holds.  The interpreter hands plain ints to native callees (`plain`).
"""
import operator
import weakref

import numpy as np

from ..recording import context
from .values import TracedArray, builder, const

# TracedArrays standing for a counter inside an index key (indexing keeps them dynamic)
_COUNTER_ENTRIES = weakref.WeakValueDictionary()
_AFFINE = {operator.add: lambda a, b, k: (a, b + k), operator.iadd: lambda a, b, k: (a, b + k),
           operator.sub: lambda a, b, k: (a, b - k), operator.isub: lambda a, b, k: (a, b - k),
           operator.mul: lambda a, b, k: (a * k, b * k), operator.imul: lambda a, b, k: (a * k, b * k)}
_REFLECTED_AFFINE = {operator.add: lambda a, b, k: (a, b + k), operator.iadd: lambda a, b, k: (a, b + k),
                     operator.sub: lambda a, b, k: (-a, k - b), operator.isub: lambda a, b, k: (-a, k - b),
                     operator.mul: lambda a, b, k: (a * k, b * k), operator.imul: lambda a, b, k: (a * k, b * k)}


class LoopIndex:
    """The value `value` of the counter of the watched loop `watch` (see the module docstring)."""

    __slots__ = ("watch", "base", "a", "b", "value")

    def __init__(self, watch, base, a=1, b=0):
        self.watch, self.base, self.a, self.b = watch, base, a, b
        self.value = a * base + b

    def relative(self, current):
        """(a, c): this value is `a * current + c` (`current` a value of its loop's counter)."""
        return self.a, self.b + self.a * (self.base - current)

    def ir(self):
        """The IR Value of this value (intp), on the counter Value of its loop's running iteration."""
        current = self.watch.current
        a, c = self.relative(current)
        v = self.watch.counter_ir(current)
        if a != 1:
            v = builder().multiply(v, const(a, v.dtype))
        if c:
            v = builder().add(v, const(c, v.dtype))
        return v

    def __neg__(self):
        return LoopIndex(self.watch, self.base, -self.a, -self.b)

    def __pos__(self):
        return self

    def traced(self):
        """This counter as a traced Python int (an operand of arithmetic with floats or traced values)."""
        return TracedArray(self.ir(), self.value)

    @property
    def __class__(self):
        return int

    def use(self, what):
        """The plain int, after marking the loop not rollable because of `what`."""
        ctx = context.current()
        where = f" at {ctx.user_location()}" if ctx is not None else ""
        self.watch.pin()
        self.watch.refuse(f"the loop counter is used ({what}){where}")
        return self.value

    def __repr__(self):
        return repr(self.use("repr"))

    def __getattr__(self, name):
        return getattr(self.use(f".{name}"), name)


def binary(native, a, b):
    """`native(a, b)` (a binary operator) where `a` or `b` is a LoopIndex."""
    counter, other = (a, b) if type(a) is LoopIndex else (b, a)
    t = type(other)
    if t is int and native in _AFFINE:
        rule = _AFFINE if counter is a else _REFLECTED_AFFINE
        return LoopIndex(counter.watch, counter.base, *rule[native](counter.a, counter.b, other))
    if t is float or t is TracedArray or t is complex or isinstance(other, (np.generic, np.ndarray)):
        if counter is a:
            return native(counter.traced(), b)
        return native(a, counter.traced())
    return native(plain(a), plain(b))


_ORDERING = frozenset({operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne})


def compare(native, a, b):
    """`native(a, b)` (a comparison) where `a` or `b` is a LoopIndex: against an int (or a counter), a
    traced bool on the iteration's counter, so that `while i < n:` and `if i == 0:` in a watched loop
    are decisions on data (a guard, or the loop's exit) rather than uses that keep the loop unrolled."""
    counter, other = (a, b) if type(a) is LoopIndex else (b, a)
    if native in _ORDERING and (type(other) is LoopIndex and other.watch is counter.watch
                                or type(other) is not LoopIndex and isinstance(other, int)):
        a, b = (_compared(v) for v in (a, b))
        return native(a, b)
    return native(plain(a), plain(b))


def _compared(v):
    """A comparison's operand: a counter traced, another int as the plain int (an int argument's
    stand-in, tracer/arrays/sizeint.py, is then static: the trace holds its value)."""
    return v.traced() if type(v) is LoopIndex else int(v)


def index_key(key):
    """`key` (of a traced array) with each LoopIndex a dynamic index entry (see `is_counter_entry`)."""
    entries = key if type(key) is tuple else (key,)
    resolved = []
    for e in entries:
        if type(e) is LoopIndex:
            e = TracedArray(e.ir(), np.intp(e.value))
            _COUNTER_ENTRIES[id(e)] = e
        resolved.append(e)
    return tuple(resolved) if type(key) is tuple else resolved[0]


def is_counter_entry(e):
    """Whether index entry `e` stands for a loop counter (a dynamic 0-d index, bounds-guarded)."""
    return _COUNTER_ENTRIES.get(id(e)) is e


def has_counter(key):
    return type(key) is LoopIndex or type(key) is tuple and any(type(e) is LoopIndex for e in key)


def plain(x, what="passed to compiled code"):
    """`x` with a LoopIndex (also one directly inside a tuple or list) replaced by its int (its loop is
    marked not rollable because of `what`): what native code receives."""
    t = type(x)
    if t is LoopIndex:
        return x.use(what)
    if (t is tuple or t is list) and any(type(e) is LoopIndex for e in x):
        return t(plain(e, what) for e in x)
    return x


def _operator(name, fn, reflected=False):
    def method(self, *others):
        values = [plain(o) if type(o) is LoopIndex else o for o in others]
        value = self.use(name)
        return fn(values[0], value) if reflected else fn(value, *values)
    method.__name__ = name
    return method


_BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
           "floordiv": operator.floordiv, "mod": operator.mod, "pow": pow, "lshift": operator.lshift,
           "rshift": operator.rshift, "and": operator.and_, "or": operator.or_, "xor": operator.xor,
           "divmod": divmod, "matmul": operator.matmul}
_OTHER = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
          "ge": operator.ge, "abs": operator.abs,
          "invert": operator.invert, "index": operator.index, "int": int, "float": float, "complex": complex,
          "bool": bool, "hash": hash, "str": str, "format": format, "round": round, "trunc": int,
          "floor": int, "ceil": int, "array": lambda v, *a, **k: np.asarray(v, *a, **k),
          "reduce": lambda v: (int, (v,)), "copy": lambda v: v, "deepcopy": lambda v, memo: v,
          "getnewargs": lambda v: (v,), "sizeof": lambda v: v.__sizeof__()}

for _name, _fn in _BINARY.items():
    setattr(LoopIndex, f"__{_name}__", _operator(f"__{_name}__", _fn))
    setattr(LoopIndex, f"__r{_name}__", _operator(f"__r{_name}__", _fn, reflected=True))
for _name, _fn in _OTHER.items():
    setattr(LoopIndex, f"__{_name}__", _operator(f"__{_name}__", _fn))
