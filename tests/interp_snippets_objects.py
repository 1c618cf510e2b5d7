"""Snippets about objects for the interpreter tests (see interp_snippets.py): classes, descriptors,
dataclasses, construction protocols, generators, `match`, and NumPy library code run as it ships."""
import dataclasses
import math

import numpy as np

from interp_snippets import snippet_registrar

SNIPPETS = []
snippet = snippet_registrar(SNIPPETS)

# -- classes -----------------------------------------------------------------------------------------
class Vec:
    __match_args__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __add__(self, other):
        if not isinstance(other, Vec):
            return NotImplemented
        return Vec(self.x + other.x, self.y + other.y)

    def __radd__(self, other):
        return Vec(self.x + other, self.y + other)

    def __mul__(self, k):
        return Vec(self.x * k, self.y * k)

    __rmul__ = __mul__

    def __eq__(self, other):
        return isinstance(other, Vec) and (self.x, self.y) == (other.x, other.y)

    def __lt__(self, other):
        return self.norm < other.norm

    def __neg__(self):
        return Vec(-self.x, -self.y)

    def __iter__(self):
        yield self.x
        yield self.y

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return (self.x, self.y)[i]

    def __bool__(self):
        return bool(self.x or self.y)

    def __repr__(self):
        return f"Vec({self.x}, {self.y})"

    @property
    def norm(self):
        return math.hypot(self.x, self.y)

    @classmethod
    def unit(cls):
        return cls(1, 0)

    @staticmethod
    def dot(a, b):
        return a.x * b.x + a.y * b.y


class Vec3(Vec):
    def __init__(self, x, y, z):
        super().__init__(x, y)
        self.z = z

    @property
    def norm(self):
        return math.sqrt(super().norm ** 2 + self.z ** 2)


@snippet()
def class_protocols():
    a, b = Vec(1, 2), Vec(3, 4)
    c = a + b
    d = 1 + a
    e = 2 * a * 3
    return (repr(c), repr(d), repr(e), a == Vec(1, 2), a != b, a < b, sorted([b, a]) == [a, b], -a == Vec(-1, -2),
            list(a), len(a), a[1], bool(Vec(0, 0)), Vec.unit().x, Vec.dot(a, b), a.norm, Vec3(1, 2, 2).norm,
            f"{a!r} {a}", str(b), max([a, b]).x, [*b], x_in(2, a))


def x_in(v, vec):
    return v in vec


@snippet()
def class_operand_errors():
    return Vec(1, 2) + "s"


@snippet()
def class_statement():
    class Base:
        scale = 2

        def __init__(self, v):
            self.v = v

        def value(self):
            return self.v * self.scale

    class Child(Base):
        scale = 3

        def value(self):
            return super().value() + 1

        def __call__(self, k):
            return self.value() * k

    class Lazy:
        def __getattr__(self, name):
            return name.upper()

    class Slot:
        __slots__ = ("a",)

        def __init__(self):
            self.a = 5
    obj = Child(4)
    return obj.value(), obj(2), Base(1).value(), Lazy().hello, Slot().a, Child.__mro__[1].__name__, type(obj).__name__


class Celsius:
    def __set_name__(self, owner, name):
        self.name = "_" + name

    def __get__(self, obj, objtype=None):
        return getattr(obj, self.name) if obj is not None else self

    def __set__(self, obj, value):
        if value < -273.15:
            raise ValueError("below absolute zero")
        setattr(obj, self.name, value)


class Thermo:
    temp = Celsius()

    def __init__(self, t):
        self.temp = t

    @property
    def kelvin(self):
        return self.temp + 273.15

    @kelvin.setter
    def kelvin(self, k):
        self.temp = k - 273.15


@snippet()
def descriptors_and_properties():
    t = Thermo(20)
    t.kelvin = 300.0
    t2 = Thermo(5)
    try:
        t2.temp = -500
    except ValueError as e:
        msg = str(e)
    return t.temp, t.kelvin, t2.temp, msg


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0
    tags: list = dataclasses.field(default_factory=list)

    def moved(self, dx):
        return dataclasses.replace(self, x=self.x + dx)


@snippet()
def dataclass_use():
    p = Point(1.0, tags=["a"])
    q = p.moved(2.0)

    @dataclasses.dataclass(frozen=True)
    class Pair:
        a: int
        b: int = 2
    pair = Pair(1)
    try:
        pair.a = 5
    except dataclasses.FrozenInstanceError as e:
        frozen = type(e).__name__
    return q.x, q.y, q.tags, p == Point(1.0, 0.0, ["a"]), repr(p), repr(pair), frozen, dataclasses.astuple(pair)


# -- comprehensions, generators ---------------------------------------------------------------------
@snippet(6)
def comprehensions(n):
    squares = [i * i for i in range(n) if i % 2 == 0]
    table = {i: [j for j in range(i)] for i in range(3)}
    letters = {c for c in "banana"}
    nested = [(i, j) for i in range(3) for j in range(i)]
    gen_sum = sum(i for i in range(n))
    return squares, table, letters, nested, gen_sum, any(i > 4 for i in range(n)), all(x for x in [])


def countdown(n):
    while n > 0:
        received = yield n
        n -= 1 if received is None else received
    return "done"


def delegating(n):
    result = yield from countdown(n)
    yield result


@snippet(5)
def generators(n):
    collected = [v for v in countdown(n)]
    gen = countdown(10)
    first = next(gen)
    second = gen.send(3)
    rest = list(gen)
    delegated = list(delegating(3))
    return collected, first, second, rest, delegated, sum(countdown(4)), sorted(countdown(3)), max(delegating(2))


def guarded_generator(log):
    try:
        yield 1
        yield 2
    except KeyError as e:
        log.append(f"caught {e}")
        yield 99
    finally:
        log.append("finally")


@snippet()
def generator_throw_close():
    log = []
    g = guarded_generator(log)
    a = next(g)
    b = g.throw(KeyError("k"))
    g.close()
    h = guarded_generator(log)
    next(h)
    h.close()
    inner = delegating(5)
    next(inner)
    try:
        inner.throw(ValueError("into delegate"))
    except ValueError as e:
        thrown = str(e)
    return a, b, log, thrown, list(g)


@snippet()
def generator_raises():
    def bad():
        yield 1
        raise ValueError("inside generator")
    out = []
    try:
        for v in bad():
            out.append(v)
    except ValueError as e:
        out.append(str(e))
    return out


@snippet()
def generator_stopiteration():
    def bad():
        yield 1
        raise StopIteration
    return list(bad())


@snippet()
def match_statements():
    out = []
    for subject in [0, 1.5, "s", [1, 2, 3], (4,), {"k": 1, "extra": 2}, Vec(1, 2), Point(3.0), Vec(0, 5),
                    None, [1, [2, 3]]]:
        match subject:
            case 0 | None:
                out.append("zero-ish")
            case float(v) if v > 1:
                out.append(("float", v))
            case str() as s:
                out.append(("str", s))
            case [1, *rest]:
                out.append(("list", rest))
            case (x,):
                out.append(("single", x))
            case {"k": v, **others}:
                out.append(("map", v, others))
            case Vec(0, y=yy):
                out.append(("vec0", yy))
            case Vec(x, y):
                out.append(("vec", x, y))
            case Point(x=px):
                out.append(("point", px))
            case _:
                out.append("other")
    return out


@snippet()
def match_class_error():
    match 5:
        case Vec(1, 2, 3):
            return "no"


# -- numpy library code, run as it ships -----------------------------------------------------------
@snippet(np.linspace(-1, 1, 7), [1.0, -2.0, 0.5])
def numpy_polyval(x, coef):
    return np.polynomial.polynomial.polyval(x, coef)


@snippet(0.0, 2.0, 9)
def numpy_linspace(a, b, n):     # NumPy's logspace and geomspace code, calling np.linspace's rule
    return np.logspace(a, b, n), np.geomspace(1.0 + a, b, n, endpoint=False), np.logspace([a, b], b + 1, n, axis=1)


@snippet(np.arange(12.0).reshape(3, 4))
def numpy_mean(x):
    return np.mean(x), np.mean(x, axis=1), x.mean(axis=0), np.var(x), np.std(x, axis=0)


@snippet([4, 5, 6])
def deletions_and_walrus(items):
    d = {"a": 1, "b": 2}
    del d["a"], items[0]
    p = Point(1.0)
    p.extra = 3
    del p.extra
    local = 5
    del local
    total = [y for x in items if (y := x * 2) > 10]
    return d, items, hasattr(p, "extra"), total, (n := len(items)) + n, 1 if items else 0


class Singleton:
    _instance = None

    def __new__(cls, *args):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance.created = 0
        cls._instance.created += 1
        return cls._instance

    def __init__(self, tag):
        self.tag = tag


class Registry(type):
    def __call__(cls, *args, **kwargs):
        instance = super().__call__(*args, **kwargs)
        instance.registered = True
        return instance


class Registered(metaclass=Registry):
    def __init__(self, v):
        self.v = v

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.sub = True


class AppError(Exception):
    def __init__(self, code, detail="none"):
        super().__init__(f"error {code}: {detail}")
        self.code = code


@snippet()
def construction_protocols():
    Singleton._instance = None
    a, b = Singleton("x"), Singleton("y")

    class Sub(Registered):
        pass
    r = Sub(4)
    try:
        raise AppError(7, detail="bad")
    except AppError as e:
        err = (str(e), e.code, e.args)
    import enum

    class Color(enum.Enum):
        RED = 1
        GREEN = 2
    return (a is b, a.created, a.tag, r.v, r.registered, Sub.sub, err, Color(2).name, Color.RED.value,
            [c.name for c in Color])


@snippet(np.array([3.0, -4.0, 12.0]), np.linspace(0, 1, 11))
def numpy_python_functions(v, grid):
    poly = np.polynomial.Polynomial([1.0, 2.0, 3.0])
    return (np.linalg.norm(v), poly(grid), np.percentile(grid, [10, 50]), np.histogram(grid, bins=3),
            np.interp(0.25, grid, grid ** 2), np.clip(v, -1, 5), np.cumsum(v), np.outer(v, v).trace(),
            np.atleast_2d(v).shape, np.stack([v, v]).sum(axis=1), np.diff(grid, n=2).round(12))



def _echo_inner(log):
    try:
        while True:
            try:
                x = yield "i"
                log.append(("got", x))
            except ValueError as e:
                log.append(("handled", str(e)))
                yield "after-handle"
    finally:
        log.append("inner-finally")


def _echo_outer(log):
    try:
        result = yield from _echo_inner(log)
        log.append(result)
    finally:
        log.append("outer-finally")


@snippet()
def generator_delegation_protocol():
    log = []
    g = _echo_outer(log)
    seen = [next(g), g.send(5), g.throw(ValueError("v")), next(g)]
    g.close()
    try:
        g.throw(KeyError("late"))
    except KeyError as e:
        seen.append(repr(e))
    fresh = _echo_outer(log)
    try:
        fresh.throw(IndexError("fresh"))
    except IndexError as e:
        seen.append(repr(e))
    return seen, log, list(fresh)


@snippet()
def plain_instances_are_local():
    class Bag:
        pass
    bag = Bag()
    bag.n = 3
    bag.items = [bag.n] * bag.n
    return bag.n, bag.items
