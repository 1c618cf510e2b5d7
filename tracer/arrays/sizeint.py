"""Python int arguments that may be a loop's run-time trip count: `SizeInt`, a stand-in for the int
argument `n` of a traced call (and for `n + c`), and `SizedRange`, for `range(start, n + c)`.

An int argument is static (part of the cache key) unless the only thing the trace does with it is to
bound `for` loops over a range that roll into loop ops running to the end of the range: then a form of
the trace whose loop ops take their trip counts from an IR input carrying `n` at run time answers any
`n` (tracer/interpretation/sizedloops.py; jitgrad/api.py keys that position as a wildcard).  So every
use of the stand-in that could make the trace depend on the value in another way first marks its
argument static (`SizeArg.mark`, with the use and the user's line) and then behaves exactly as the int
would: comparisons, `bool`, hashing, `int()`/`__index__` (C code, shapes, list indices), printing,
arithmetic other than `+`/`-` of an int (which give another SizeInt), every use of a SizedRange other
than `iter()`, and any use of the range iterator other than the watched FOR_ITER (rolling.py marks
those, and loops over it that do not roll to the end).  `isinstance(n, int)` holds; the interpreter
hands plain ints to native callees (`plain`).
"""
import numpy as np

from ..recording import context


class SizeArg:
    """One int argument leaf of the traced call: its value, why it is static (None while it is only a
    range bound), and the loop ops bounded by it (tracer/interpretation/sizedloops.py's Swap: each may
    take its trip count from the argument at run time)."""

    __slots__ = ("position", "value", "static", "swaps")

    def __init__(self, position, value):
        self.position, self.value = position, value
        self.static = None
        self.swaps = []

    def mark(self, why):
        """The trace depends on the value otherwise than through trip counts: the argument stays keyed."""
        if self.static is None:
            ctx = context.current()
            self.static = f"{why} at {ctx.user_location()}" if ctx is not None else why


class SizeInt:
    """The value `n + offset` of int argument `arg` (see the module docstring)."""

    __slots__ = ("arg", "offset")

    def __init__(self, arg, offset=0):
        self.arg, self.offset = arg, offset

    @property
    def value(self):
        return self.arg.value + self.offset

    @property
    def __class__(self):
        return int

    def use(self, what):
        """The plain int, after marking the argument static because of `what`."""
        self.arg.mark(f"the int argument is used ({what})")
        return self.value

    def __add__(self, other):
        if type(other) is int:
            return SizeInt(self.arg, self.offset + other)
        return self.use("+") + plain(other)

    __radd__ = __add__

    def __sub__(self, other):
        if type(other) is int:
            return SizeInt(self.arg, self.offset - other)
        return self.use("-") - plain(other)

    def __pos__(self):
        return self

    def __repr__(self):
        return repr(self.use("repr"))

    def __getattr__(self, name):
        return getattr(self.use(f".{name}"), name)


class SizedRange:
    """`range(start, stop)` with `stop` a SizeInt: iterating it is not a use (the loop watch decides);
    anything else is, and behaves as the range would."""

    __slots__ = ("range", "start", "stop")

    def __init__(self, start, stop):
        self.start, self.stop = start, stop
        self.range = range(start, stop.value)

    @property
    def __class__(self):
        return range

    def __iter__(self):
        iterator = iter(self.range)
        ctx = context.current()
        if ctx is not None and ctx.loops is not None:
            ctx.loops.sized_iterators[id(iterator)] = [iterator, self, False]
        else:
            self.stop.use("iterated outside a watched loop")
        return iterator

    def use(self, what):
        self.stop.use(f"range {what}")
        return self.range

    def __repr__(self):
        return repr(self.use("repr"))

    def __getattr__(self, name):
        return getattr(self.use(f".{name}"), name)


def sized_range(args, kwargs):
    """`range(*args)` as a SizedRange when its stop is a SizeInt and its start a plain int (step 1), else
    None."""
    if kwargs or not args or len(args) > 3 or type(args[-1 if len(args) < 3 else 1]) is not SizeInt:
        return None
    if len(args) == 1:
        return SizedRange(0, args[0])
    if type(args[0]) is not int or len(args) == 3 and (type(args[2]) is not int or args[2] != 1):
        return None
    return SizedRange(args[0], args[1])


def plain(x, what="passed to compiled code"):
    """`x` with a SizeInt or SizedRange (also one directly inside a tuple or list) replaced by what it
    stands for, its argument marked static because of `what`."""
    t = type(x)
    if t is SizeInt or t is SizedRange:
        return x.use(what)
    if (t is tuple or t is list) and any(type(e) in SIZED for e in x):
        return t(plain(e, what) for e in x)
    return x


SIZED = (SizeInt, SizedRange)


def _operator(name, fn, reflected=False):
    def method(self, *others):
        values = [plain(o) for o in others]
        value = self.use(name)
        return fn(values[0], value) if reflected else fn(value, *values)
    method.__name__ = name
    return method


def _install():
    import operator
    binary = {"mul": operator.mul, "truediv": operator.truediv, "floordiv": operator.floordiv,
              "mod": operator.mod, "pow": pow, "lshift": operator.lshift, "rshift": operator.rshift,
              "and": operator.and_, "or": operator.or_, "xor": operator.xor, "divmod": divmod,
              "matmul": operator.matmul}
    other = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
             "ge": operator.ge, "abs": operator.abs, "neg": operator.neg, "invert": operator.invert,
             "index": operator.index, "int": int, "float": float, "complex": complex, "bool": bool,
             "hash": hash, "str": str, "format": format, "round": round, "trunc": int, "floor": int,
             "ceil": int, "array": lambda v, *a, **k: np.asarray(v, *a, **k), "reduce": lambda v: (int, (v,)),
             "copy": lambda v: v, "deepcopy": lambda v, memo: v, "getnewargs": lambda v: (v,),
             "sizeof": lambda v: v.__sizeof__()}
    for name, fn in binary.items():
        setattr(SizeInt, f"__{name}__", _operator(f"__{name}__", fn))
        setattr(SizeInt, f"__r{name}__", _operator(f"__r{name}__", fn, reflected=True))
    setattr(SizeInt, "__rsub__", _operator("__rsub__", operator.sub, reflected=True))
    for name, fn in other.items():
        setattr(SizeInt, f"__{name}__", _operator(f"__{name}__", fn))
    ranged = {"len": len, "getitem": operator.getitem, "contains": operator.contains, "reversed": reversed,
              "eq": operator.eq, "ne": operator.ne, "hash": hash, "bool": bool, "str": str,
              "format": format, "reduce": lambda r: r.__reduce__(), "copy": lambda r: r,
              "deepcopy": lambda r, memo: r, "sizeof": lambda r: r.__sizeof__()}
    for name, fn in ranged.items():
        setattr(SizedRange, f"__{name}__", _operator(f"__{name}__", fn))


_install()
