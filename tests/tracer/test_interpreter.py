"""Tests of the tracer's bytecode interpreter: every snippet of interp_snippets*.py runs under CPython
and under the interpreter, and both must give the same result or raise the same exception (type and
message).  Further tests: refusals (missing opcode, async code, JitgradErrors bypassing `except`), the
frame stack and locations, protocol builtins (test_interp_traced.py traces TracedArrays)."""
import copy

import numpy as np
import pytest

from jitgrad.ir.errors import JitgradError, UnsupportedError
from jitgrad.tracer.recording import context
from jitgrad.tracer.interpretation import interpreter
from jitgrad.tracer.recording.context import TraceContext

import interp_snippets
import interp_snippets_closures
import interp_snippets_objects
from interp_snippets import fib

SNIPPETS = interp_snippets.SNIPPETS + interp_snippets_objects.SNIPPETS + interp_snippets_closures.SNIPPETS


def _outcome(run):
    try:
        return ("ok", run())
    except JitgradError:
        raise
    except Exception as exc:  # the snippet's own exception is the outcome under test
        return ("raised", type(exc), str(exc))


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


def interpret(fn, *args, **kwargs):
    """Run `fn` under the interpreter in a fresh TraceContext; check the frame stack unwinds."""
    ctx = TraceContext()
    with ctx.active():
        try:
            return interpreter.call(fn, args, kwargs)
        finally:
            assert ctx.frames == []


@pytest.mark.parametrize("fn, args", SNIPPETS, ids=[fn.__name__ for fn, _ in SNIPPETS])
def test_snippet_matches_cpython(fn, args):
    expected = _outcome(lambda: fn(*copy.deepcopy(args)))
    got = _outcome(lambda: interpret(fn, *copy.deepcopy(args)))
    assert got[0] == expected[0], (got, expected)
    if expected[0] == "ok":
        assert _same(got[1], expected[1]), (got[1], expected[1])
    else:
        assert got[1:] == expected[1:]


def test_snippet_table_covers_raising_and_returning_snippets():
    outcomes = {_outcome(lambda: fn(*args))[0] for fn, args in SNIPPETS}
    assert outcomes == {"ok", "raised"}
    assert len(SNIPPETS) >= 40


def test_missing_opcode_refused_with_location():
    def uses_except_star():
        try:
            raise ExceptionGroup("group", [ValueError(1)])
        except* ValueError:
            pass
    with pytest.raises(UnsupportedError) as info:
        interpret(uses_except_star)
    assert "CHECK_EG_MATCH" in str(info.value) and "exception groups" in str(info.value)
    assert info.value.loc.startswith(__file__ + ":")
    line = int(info.value.loc.rsplit(":", 1)[1])
    assert line == uses_except_star.__code__.co_firstlineno + 3


def test_async_code_refused():
    async def coroutine():
        return 1
    with pytest.raises(UnsupportedError, match="async"):
        interpret(coroutine)


def test_jitgrad_errors_bypass_interpreted_except_clauses():
    log = []

    def refuse():
        raise UnsupportedError("refused on purpose")

    def catches_everything():
        try:
            refuse()
        except Exception:
            log.append("caught")
            return "swallowed"
    with pytest.raises(UnsupportedError, match="refused on purpose"):
        interpret(catches_everything)
    assert log == []


def test_frames_report_file_and_line_while_running():
    seen = []

    def probe():
        seen.append(context.current().location())
        return 1

    def outer():
        return probe() + 1
    assert interpret(outer) == 2
    assert seen == [f"{__file__}:{probe.__code__.co_firstlineno + 1}"]


def test_callbacks_from_native_code_are_interpreted():
    lines = []

    def key(v):
        lines.append(context.current().location())
        return -v
    assert interpret(sorted, [1, 3, 2], key=key) == [3, 2, 1]
    assert len(lines) == 3 and all(loc.endswith(f":{key.__code__.co_firstlineno + 1}") for loc in lines)


def test_deep_recursion_runs():
    def depth(n):
        return 0 if n == 0 else 1 + depth(n - 1)
    assert interpret(depth, 150) == 150


def test_protocol_builtins_interpret_python_dunders():
    seen = []

    class Sized:
        def __len__(self):
            seen.append(context.current().location())
            return 3

        def __repr__(self):
            seen.append(context.current().location())
            return "S"

    def use():
        s = Sized()
        return len(s), repr(s)
    assert interpret(use) == (3, "S")
    assert seen == [f"{__file__}:{Sized.__len__.__code__.co_firstlineno + 1}",
                    f"{__file__}:{Sized.__repr__.__code__.co_firstlineno + 1}"]


def test_super_property_is_interpreted():
    seen = []

    class Base:
        @property
        def size(self):
            seen.append(context.current().location())
            return 2

    class Derived(Base):
        @property
        def size(self):
            return super().size * 10
    assert interpret(lambda: Derived().size) == 20
    assert seen == [f"{__file__}:{Base.size.fget.__code__.co_firstlineno + 2}"]   # line 1 is @property


def test_objects_built_while_tracing_are_not_environment():
    class Bag:
        pass

    class Made:
        def __init__(self):
            self.n = 4

    def build():
        bag, made = Bag(), Made()
        bag.n = 3
        return bag.n + made.n
    ctx = TraceContext()
    with ctx.active():
        assert interpreter.call(build, (), {}) == 7
    # only the two classes, read from closure cells, the Python method run from one, and the code of
    # the function called are assumptions (by identity); their instances' attributes are not
    assert sorted((e.kind, e.getter.describe()) for e in ctx.env) == [
        ("identity", "closure variable 'Bag'"), ("identity", "closure variable 'Made'"),
        ("identity", "code of test_objects_built_while_tracing_are_not_environment.<locals>.build"),
        ("identity", "method Made.__init__")]


class _Config:
    """An object that exists outside the traced call: reading its data is an environment read."""

    def __init__(self):
        self.rate = 0.5


CONFIG = _Config()


def test_getattr_builtin_is_an_environment_read():
    def read():
        return getattr(CONFIG, "rate") * 2, hasattr(CONFIG, "missing"), getattr(CONFIG, "missing", 7)
    ctx = TraceContext()
    with ctx.active():
        assert interpreter.call(read, (), {}) == (1.0, False, 7)
    # the object by identity (rebinding CONFIG retraces), then its attribute by value, and that the
    # missing one stays missing (once, though read twice)
    assert [entry.describe().split(" (")[0] for entry in ctx.env] == [
        "code of test_getattr_builtin_is_an_environment_read.<locals>.read",
        "global 'CONFIG'", "attribute _Config.rate", "attribute _Config.missing existing"]


def test_code_objects_are_decoded_once_with_resolved_jumps():
    from jitgrad.tracer.interpretation.interpreter import HANDLERS, Interpreter
    interp = Interpreter(TraceContext())
    decoded = interp.decode(fib.__code__)
    assert interp.decode(fib.__code__) is decoded
    assert len(decoded.ops) == len(decoded.args) == len(decoded.linenos) == len(decoded.handlers)
    jumps = [arg for op, arg in zip(decoded.ops, decoded.args) if op in
             (HANDLERS.get("POP_JUMP_IF_FALSE"), HANDLERS.get("JUMP"))]
    assert jumps and all(type(a) is int and 0 <= a < len(decoded.ops) for a in jumps)
