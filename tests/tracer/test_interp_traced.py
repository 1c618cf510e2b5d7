"""Tracing through the interpreter: functions called with TracedArray arguments record a trace that
evaluates (ir.run_trace) to the concrete result, with guards for decisions taken on traced data."""
import numpy as np
import pytest

from jitgrad.ir import run_trace
from jitgrad.ir.errors import GuardFailed, UnsupportedError
from jitgrad.tracer.interpretation import interpreter
from jitgrad.tracer.recording.context import TraceContext
from jitgrad.tracer.arrays.values import TracedArray

SCALE = 2.0


def helper(v, k):
    return np.sin(v) * k + v ** 2


class Affine:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, v):
        return v * self.w + self.b


def traced_program(x):
    acc = x * 0.0
    for i in range(3):
        acc = acc + helper(x, i)
    if acc.sum() > 0:
        acc = acc * SCALE
    else:
        acc = -acc
    layer = Affine(1.5, -0.25)
    parts = [layer(acc[i]) for i in range(2)]
    return sum(p * p for p in parts) + np.mean(acc)


def _trace(fn, *arrays):
    ctx = TraceContext()
    with ctx.active():
        traced = [TracedArray(ctx.builder.input(a.shape, a.dtype), a) for a in arrays]
        out = interpreter.call(fn, traced, {})
    return ctx, out


def test_trace_evaluates_to_concrete_result():
    x = np.array([0.5, -0.2, 1.0])
    ctx, out = _trace(traced_program, x)
    assert type(out) is TracedArray
    expected = traced_program(x)
    np.testing.assert_allclose(out.value, expected, rtol=1e-12)
    trace = ctx.builder.build([out.ir])
    np.testing.assert_allclose(run_trace(trace, [x])[0], expected, rtol=1e-12)
    guards = [n for n in trace.nodes if n.op == "guard"]
    assert guards
    branch_line = traced_program.__code__.co_firstlineno + 4
    assert any(g.params["loc"] == f"{__file__}:{branch_line}" for g in guards)
    other = np.array([2.0, 3.0, 0.1])
    np.testing.assert_allclose(run_trace(trace, [other])[0], traced_program(other), rtol=1e-12)
    with pytest.raises(GuardFailed):      # acc = 3 sin(x) + 3 x^2 < 0 at x = -0.5: the other branch
        run_trace(trace, [np.full(3, -0.5)])


def test_traced_argument_to_unknown_compiled_function_is_refused():
    def calls_compiled(x):
        return np.frompyfunc(lambda v: v, 1, 1)(x)
    with pytest.raises(UnsupportedError) as info:
        _trace(calls_compiled, np.ones(2))
    assert "compiled code and received a traced value" in str(info.value)
    assert info.value.loc == f"{__file__}:{calls_compiled.__code__.co_firstlineno + 1}"
