"""The loop counter while its loop is watched for rolling: `LoopIndex`, a stand-in for the int that a
`for` over a `range` yields.

Fast-forwarding a rolled loop skips the Python work of the remaining iterations, so any Python-level
decision or effect that depends on the counter would be skipped silently.  While a loop is watched its
counter is therefore a LoopIndex: moving it around (locals, the stack) is free, and every other use
(comparisons, `bool`, `int()`/`__index__` in C code, hashing, printing, arithmetic) first marks its loop
"not rollable" (with the use and the user's line) and then behaves exactly as the int would.
`isinstance(i, int)` holds.  The interpreter hands plain ints to native callees (`plain`).
"""
import operator

from . import context


class LoopIndex:
    """The value `value` of the counter of the watched loop `watch` (see the module docstring)."""

    __slots__ = ("watch", "value")

    def __init__(self, watch, value):
        self.watch = watch
        self.value = value

    @property
    def __class__(self):
        return int

    def use(self, what):
        """The plain int, after marking the loop not rollable because of `what`."""
        ctx = context.current()
        where = f" at {ctx.user_location()}" if ctx is not None else ""
        self.watch.refuse(f"the loop counter is used ({what}){where}")
        return self.value

    def __repr__(self):
        return repr(self.use("repr"))

    def __getattr__(self, name):
        return getattr(self.use(f".{name}"), name)


def plain(x):
    """`x` with a LoopIndex (also one directly inside a tuple or list) replaced by its int (its loop is
    marked not rollable): what native code receives."""
    t = type(x)
    if t is LoopIndex:
        return x.use("passed to compiled code")
    if (t is tuple or t is list) and any(type(e) is LoopIndex for e in x):
        return t(plain(e) for e in x)
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
          "ge": operator.ge, "neg": operator.neg, "pos": operator.pos, "abs": operator.abs,
          "invert": operator.invert, "index": operator.index, "int": int, "float": float, "complex": complex,
          "bool": bool, "hash": hash, "str": str, "format": format, "round": round, "trunc": int,
          "floor": int, "ceil": int, "array": lambda v, *a, **k: __import__("numpy").asarray(v, *a, **k),
          "reduce": lambda v: (int, (v,)), "copy": lambda v: v, "deepcopy": lambda v, memo: v,
          "getnewargs": lambda v: (v,), "sizeof": lambda v: v.__sizeof__()}

for _name, _fn in _BINARY.items():
    setattr(LoopIndex, f"__{_name}__", _operator(f"__{_name}__", _fn))
    setattr(LoopIndex, f"__r{_name}__", _operator(f"__r{_name}__", _fn, reflected=True))
for _name, _fn in _OTHER.items():
    setattr(LoopIndex, f"__{_name}__", _operator(f"__{_name}__", _fn))
