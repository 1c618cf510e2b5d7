"""Helpers for the traced-value and rule tests: trace a function of TracedArrays, then check that the
recorded trace reproduces the concrete result and, on fresh random inputs, the plain NumPy result."""
import numpy as np

from jitgrad.ir import run_trace
from jitgrad.tracer.recording.context import TraceContext
from jitgrad.tracer.recording.registry import lookup
from jitgrad.tracer.arrays.values import TracedArray, contains_traced


def call(fn, *args, **kwargs):
    """Call `fn` as the interpreter would: through its rule when a traced value is passed."""
    rule = lookup(fn)
    if rule is not None and (rule.always or contains_traced(args, kwargs)):
        return rule.handler(*args, **kwargs)
    return fn(*args, **kwargs)


class TracedModule:
    """`tnp.sin(x)`, `tnp.add.reduce(x)`: calls routed through `call` (tests read like NumPy code)."""

    def __init__(self, target):
        self._target = target

    def __call__(self, *args, **kwargs):
        return call(self._target, *args, **kwargs)

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if callable(attr) and not isinstance(attr, type):    # dtypes stay usable as dtype= arguments
            return TracedModule(attr)
        return attr


def random_input(rng, shape, dtype="f8"):
    if np.dtype(dtype) == bool:
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 5, shape).astype(dtype)
    return rng.uniform(0.5, 2.0, shape).astype(dtype)


def trace(fn, *values):
    """Run fn on TracedArrays standing for `values`; returns (ctx, traced results list, trace)."""
    ctx = TraceContext()
    with ctx.active():
        inputs = [TracedArray(ctx.builder.input(np.shape(v), np.asarray(v).dtype), v) for v in values]
        out = fn(*inputs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        trace_ = ctx.builder.build([o.ir for o in outs])
    return ctx, outs, trace_


def assert_same(got, expected):
    assert type(got) is type(expected), (type(got), type(expected))
    assert np.shape(got) == np.shape(expected)
    if hasattr(expected, "dtype"):
        assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-6, equal_nan=True)


def check(fn, *specs, seed=0, fresh=True):
    """Trace fn(tnp, *xs) on random inputs of `specs` ((shape, dtype) pairs) and check it against NumPy.

    The concrete results must equal fn(np, *xs) in type, dtype and value; the trace run on the same
    inputs must give them; with `fresh`, the trace on new inputs must equal fn(np, *new) (nothing frozen).
    """
    rng = np.random.default_rng(seed)
    xs = [random_input(rng, *spec) for spec in specs]
    expected = fn(np, *[x.copy() for x in xs])
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    tnp = TracedModule(np)
    ctx, outs, trace_ = trace(lambda *t: fn(tnp, *t), *xs)
    for o, e in zip(outs, expected):
        assert_same(o.value, e)
    for got, e in zip(run_trace(trace_, xs), expected):
        assert np.allclose(got, e, rtol=1e-6, atol=1e-6, equal_nan=True)
    if fresh:
        new = fresh(xs) if callable(fresh) else [random_input(rng, *spec) for spec in specs]
        want = fn(np, *[x.copy() for x in new])
        want = list(want) if isinstance(want, (tuple, list)) else [want]
        for got, e in zip(run_trace(trace_, new), want):
            assert np.allclose(got, e, rtol=1e-6, atol=1e-6, equal_nan=True)
    return ctx, outs, trace_
