"""Snippets of the Python language for the interpreter tests: each runs under CPython and under jitgrad's
interpreter, and the two must agree (same result, or same exception type and message).  SNIPPETS lists
(function, args) pairs; interp_snippets_objects.py holds the snippets about classes, generators, `match`
and NumPy library code."""
import contextlib
import functools
import math
import operator

import numpy as np

def snippet_registrar(table):
    """A decorator factory: `@snippet(*args)` appends (function, args) to `table`."""
    def snippet(*args):
        def register(fn):
            table.append((fn, args))
            return fn
        return register
    return snippet


SNIPPETS = []
snippet = snippet_registrar(SNIPPETS)


# -- operators -----------------------------------------------------------------------------------------
@snippet(7, 3)
def arithmetic(a, b):
    return (a + b, a - b, a * b, a / b, a // b, a % b, a ** b, a << b, a >> 1, a & b, a | b, a ^ b,
            -a, +a, ~a, not a, divmod(a, b), a < b <= 10, a == b, a != b, a is b, a is not None)


@snippet(np.arange(6.0).reshape(2, 3), 2.5)
def numpy_operators(x, s):
    y = x * s + 1
    y -= x
    y[0, 1] = 9.0
    z = x @ y.T
    return z, y[:, 1:], x.sum(axis=0), np.sin(x).max(), x > 2


@snippet([1, 2], "ab")
def inplace_and_containers(lst, s):
    lst += [3]
    lst *= 2
    t = (1,)
    t += (2,)
    s += "c"
    d = {"k": 1}
    d |= {"j": 2}
    return lst, t, s, d, 3 in lst, "z" not in s, 2 in d.values()


@snippet(1, "x")
def unsupported_operand(a, b):
    return a + b


# -- unpacking, variables, closures ----------------------------------------------------------------
@snippet(range(6))
def unpacking(seq):
    a, *rest, z = seq
    (p, q), r = (1, 2), 3
    p, q = q, p
    first, *_ = "hello"
    merged = [*rest, *"ab", *(x for x in (7, 8))]
    d = {**{"a": 1}, "b": 2, **dict(c=3)}
    return a, rest, z, p, q, r, first, merged, d


@snippet([1, 2, 3])
def unpack_too_many(seq):
    a, b = seq
    return a, b


@snippet([1])
def unpack_too_few(seq):
    a, *b, c = seq
    return a, b, c


@snippet(5)
def closures_and_nonlocal(n):
    total = 0

    def add(k):
        nonlocal total
        total += k
        return total
    counters = [lambda i=i: i * n for i in range(3)]
    for k in range(n):
        add(k)
    return total, [c() for c in counters]


@snippet(3)
def argument_captured_by_closure(x):
    def inner():
        return x * 2
    x += 1
    return inner()


@snippet()
def unbound_local():
    if False:
        v = 1
    return v  # noqa: F821


COUNTER = 0


@snippet()
def global_read_write():
    global COUNTER
    before = COUNTER
    COUNTER = before + 1
    result = COUNTER - before
    COUNTER = before
    return result, math.pi, len


@snippet()
def undefined_name():
    return no_such_name  # noqa: F821


# -- calls ------------------------------------------------------------------------------------------
def _signature(a, b=2, /, c=3, *args, d, e=5, **kw):
    return a, b, c, args, d, e, sorted(kw.items())


@snippet()
def call_forms():
    args, kwargs = (1, 2, 3, 4), {"d": 6, "z": 0}
    return (_signature(1, d=4), _signature(1, 2, 3, 4, 5, d=6, y=7), _signature(*args, **kwargs),
            functools.partial(_signature, 10, d=1)(20), (lambda *a, **k: (a, k))(1, x=2))


@snippet()
def missing_argument():
    return _signature(1)


@snippet()
def too_many_positional():
    def f(a, b):
        return a + b
    return f(1, 2, 3)


@snippet()
def unexpected_keyword():
    return (lambda a: a)(b=1)


@snippet()
def duplicate_keyword_in_merge():
    return _signature(1, **{"d": 1}, **{"d": 2})


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@snippet(15)
def recursion(n):
    return fib(n)


@snippet(4)
def mutual_recursion(n):
    def even(k):
        return True if k == 0 else odd(k - 1)

    def odd(k):
        return False if k == 0 else even(k - 1)
    return even(n), odd(n)


# -- control flow ---------------------------------------------------------------------------------------
@snippet(20)
def loops(n):
    found, evens, i = None, [], 0
    while True:
        i += 1
        if i > n:
            break
        if i % 2:
            continue
        evens.append(i)
    for k in range(n):
        if k * k > n:
            found = k
            break
    else:
        found = -1
    for _ in []:
        pass
    else:
        empty_else = True
    return found, evens, empty_else


@snippet(3)
def early_return(n):
    for i in range(10):
        if i == n:
            return i * 10
    return None


# -- exceptions ----------------------------------------------------------------------------------------
def _raise_deep(depth):
    if depth == 0:
        raise KeyError("deep")
    return _raise_deep(depth - 1)


@snippet()
def exceptions():
    log = []
    try:
        _raise_deep(3)
    except (IndexError, KeyError) as e:
        log.append(repr(e))
    else:
        log.append("no")
    finally:
        log.append("finally")
    try:
        try:
            1 / 0
        except ZeroDivisionError as e:
            raise ValueError("wrapped") from e
    except ValueError as e:
        log.append((str(e), type(e.__cause__).__name__))
    try:
        try:
            [][0]
        except IndexError:
            raise
    except LookupError as e:
        log.append(type(e).__name__)
    try:
        try:
            {}["x"]
        except KeyError:
            raise RuntimeError("during handling")
    except RuntimeError as e:
        log.append(type(e.__context__).__name__)
    return log


def _finally_return(log):
    try:
        return "from try"
    finally:
        log.append("finally ran")


@snippet()
def finally_on_return():
    log = []
    value = _finally_return(log)
    for i in range(3):
        try:
            if i == 1:
                continue
            log.append(i)
        finally:
            log.append(f"f{i}")
    return value, log


@snippet()
def exception_escapes_through_frames():
    def level1():
        try:
            level2()
        finally:
            STATE.append("cleanup")

    def level2():
        raise TypeError("from level 2")
    STATE.clear()
    level1()


STATE = []


class Suppress:
    def __init__(self, log):
        self.log = log

    def __enter__(self):
        self.log.append("enter")
        return self

    def __exit__(self, kind, value, tb):
        self.log.append(("exit", kind.__name__ if kind else None))
        return kind is not None and issubclass(kind, ArithmeticError)


@contextlib.contextmanager
def tagged(log, tag):
    log.append("open " + tag)
    try:
        yield tag.upper()
    finally:
        log.append("close " + tag)


@snippet()
def with_blocks():
    log = []
    with Suppress(log) as s:
        log.append(s is not None)
        1 / 0
    with Suppress(log):
        log.append("body")
    with tagged(log, "a") as a, tagged(log, "b") as b:
        log.append(a + b)
    try:
        with tagged(log, "c"):
            raise KeyError("k")
    except KeyError:
        log.append("propagated")
    with contextlib.suppress(IndexError):
        [][1]
    return log


@snippet(-1)
def assertions(x):
    assert x < 0, "must be negative"
    assert x > 0, f"got {x}"


@snippet()
def raise_class():
    raise ValueError


@snippet()
def bare_raise_without_exception():
    raise


# -- strings, imports, match, builtins -------------------------------------------------------------
@snippet(3.14159, 42)
def formatting(x, n):
    return f"{x:.2f}|{n:>5}|{n!r}|{'s'!s:^5}|{x!a}|{n:{n % 10}d}", "{0}-{1}".format(n, x), "%d %s" % (n, "x")


@snippet(2.0)
def local_imports(x):
    import math as m
    from os import path
    from collections import OrderedDict, namedtuple
    P = namedtuple("P", "a b")
    return m.sqrt(x), path.join("a", "b"), list(OrderedDict(a=1)), P(1, b=2).b


@snippet([3, 1, 2], ["b", "a", "c"])
def builtins_with_callbacks(nums, words):
    return (sorted(nums, key=lambda v: -v), list(map(lambda a, b: a * 2 + len(b), nums, words)),
            list(filter(lambda v: v > 1, nums)), list(zip(nums, words)), list(enumerate(words, 1)),
            min(words, key=str.upper), max(nums, key=lambda v: v % 3), functools.reduce(operator.add, nums, 10),
            list(reversed(nums)), dict(zip(words, nums)), isinstance(nums, list), getattr(nums, "count")(3),
            round(2.567, 1), abs(-3), sum(x * x for x in nums), len({*nums}), [*map(str, nums)],
            sorted(words, key=functools.cmp_to_key(lambda a, b: (a > b) - (a < b))), hash(1), id(nums) == id(nums))


@snippet()
def frame_builtins():
    a, b = 1, "two"
    names = sorted(locals())
    return names, "a" in globals() or "math" in globals(), eval("a + 1"), sorted(vars())


@snippet()
def generator_keeps_its_handled_exception():
    def gen():
        try:
            raise KeyError("inside")
        except KeyError:
            yield 1
            raise
    g = gen()
    next(g)
    try:
        raise ValueError("outer")
    except ValueError:
        try:
            next(g)
        except KeyError as e:
            return repr(e), repr(e.__context__)


@snippet()
def exception_context_chain():
    def inner():
        raise IndexError("inner")
    try:
        try:
            raise KeyError("first")
        except KeyError:
            inner()
    except IndexError as e:
        return repr(e.__context__), e.__suppress_context__


@snippet()
def loop_with_try_break_continue():
    log = []
    for i in range(5):
        try:
            if i == 1:
                continue
            if i == 3:
                break
            log.append(i)
        except Exception:
            log.append("never")
        finally:
            log.append(-i)
    while log:
        try:
            log.pop()
        finally:
            if len(log) < 3:
                break
    return log
