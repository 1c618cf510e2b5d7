"""The call rules: ufuncs (IR ops and derived ones, out=/where=, reduce/accumulate/outer), numpy
functions, math, builtins, operator, impure callables and the registry's lookup special cases."""
import functools
import math
import operator
import random
import time

import numpy as np
import pytest

from jitgrad.ir import UnsupportedError, run_trace
from jitgrad.ir.ops import BINARY, UNARY
from jitgrad.tracer.recording.registry import lookup, register
from traced_helpers import TracedModule, call, check, trace

F = ((3, 4), "f8")
V = ((4,), "f8")
_UNIT = {"arcsin", "arccos", "arctanh"}          # ops defined on (-1, 1): inputs are scaled into it
_DERIVED_UNARY = ["square", "reciprocal", "exp2", "log2", "log10", "positive", "fabs", "deg2rad",
                  "rad2deg", "isnan", "isinf", "isfinite", "conjugate", "abs", "radians", "degrees"]
_DERIVED_BINARY = ["hypot", "float_power", "true_divide", "mod"]


@pytest.mark.parametrize("name", sorted(UNARY) + _DERIVED_UNARY)
def test_unary_ufuncs(name):
    def fn(np_, x):
        x = x / 2.5 if name in _UNIT else x + 1.0 if name == "arccosh" else x
        x = x > 1.2 if name == "logical_not" else x
        return getattr(np_, name)(x - 0.3), getattr(np_, name)(x.astype(np.float32))
    check(fn, F)


@pytest.mark.parametrize("name", sorted(BINARY) + _DERIVED_BINARY)
def test_binary_ufuncs(name):
    def fn(np_, x, y):
        if name.startswith("logical"):
            x, y = x > 1.2, y > 1.0
        ufunc = getattr(np_, name)
        return ufunc(x, y), ufunc(y, 1.5), ufunc(2.0, x)
    check(fn, F, V)


def test_ufunc_out_into_traced_array_rebinds_it():
    def fn(np_, x, y):
        z = x * 1.0
        r = np_.add(z, y, out=z)
        np_.multiply(z, 2.0, out=z, where=y > 1.0)
        np_.sin(y, z[0])                                    # positional out= into a view of z
        w = np_.zeros_like(y, dtype=np.float32)
        np_.exp(y, out=w)                                    # casts into out's dtype
        return r, z, w
    check(fn, F, V)


@pytest.mark.parametrize("fn, match", [
    (lambda np_, x: np_.add(x, 1.0, out=np.zeros(3)), "plain"),
    (lambda np_, x: np_.add(x, 1.0, where=x > 1), "where="),
    (lambda np_, x: np_.add(x, 1.0, casting="no"), "casting="),
    (lambda np_, x: np_.power.at(x, [0], 2.0), "at"),
    (lambda np_, x: np_.multiply.accumulate(x), "accumulate"),
    (lambda np_, x: np_.gcd.reduce(x), "reduce"),
])
def test_ufunc_options_refused(fn, match):
    with pytest.raises(UnsupportedError, match=match):
        trace(lambda x: fn(TracedModule(np), x), np.ones(3))


def test_ufunc_methods():
    check(lambda np_, x, y: (np_.add.reduce(x), np_.add.reduce(x, axis=1), np_.multiply.reduce(x, axis=None),
                             np_.maximum.reduce(x, axis=0, keepdims=True), np_.minimum.reduce(y),
                             np_.logical_or.reduce(x > 1.5), np_.add.accumulate(x, axis=1),
                             np_.add.outer(y, y), np_.multiply.outer(x, y), np_.subtract.outer(1.0, y)), F, V)


NUMPY_CASES = {
    "reductions": lambda np_, x, y: (np_.sum(x), np_.mean(x, axis=0), np_.var(x, axis=1), np_.std(x),
                                     np_.max(x, axis=1), np_.amin(x), np_.prod(y), np_.argmax(x, axis=0),
                                     np_.cumsum(x, axis=0), np_.all(x > 0.1), np_.any(y > 1.9)),
    "contractions": lambda np_, x, y: (np_.dot(x, y), np_.dot(x, x.T), np_.dot(2.0, y), np_.matmul(x, y),
                                       np_.vdot(x, x), np_.inner(x, x), np_.inner(y, y), np_.outer(y, x),
                                       np_.tensordot(x, x, axes=([1], [1])), np_.tensordot(x, x, 2),
                                       np_.matmul(np.ones((2, 1, 3)), x)),
    "einsum": lambda np_, x, y: (np_.einsum("ij,j->i", x, y), np_.einsum("ij,kj->ik", x, x),
                                 np_.einsum("ij->j", x), np_.einsum("ij", x), np_.einsum("ij,ij->", x, x),
                                 np_.einsum("ij,j,kj->ki", x, y, x), np_.einsum("ij,k->ikj", x, y),
                                 np_.einsum("bi,bj->bij", x, x), np_.einsum(x, [0, 1], y, [1], [0])),
    "shapes": lambda np_, x, y: (np_.reshape(x, (2, 6)), np_.transpose(x), np_.swapaxes(x[None], 0, 2),
                                 np_.moveaxis(x[None], 0, -1), np_.expand_dims(y, 1), np_.squeeze(x[None]),
                                 np_.ravel(x), np_.broadcast_to(y, (2, 3, 4)), np_.atleast_2d(y),
                                 np_.atleast_1d(y.sum())),
    "joins": lambda np_, x, y: (np_.concatenate([x, x * 2]), np_.concatenate([x, np.ones((3, 1))], axis=1),
                                np_.concatenate([y, y], axis=None), np_.stack([y, y * 2], axis=1),
                                np_.vstack([x, y]), np_.hstack([y, y]), np_.column_stack([x[:, 0], x])),
    "creation": lambda np_, x, y: (np_.zeros_like(x), np_.ones_like(y, dtype=np.float32),
                                   np_.full_like(x, 3.0), np_.full_like(y, y[0]), np_.empty_like(y) * 0,
                                   np_.asarray([y[0], 2.0, y[1]]), np_.array([[y[0], 1.0], [y[1], y[2]]]),
                                   np_.array([y, y * 2], dtype=np.float32), np_.asarray(y.sum()),
                                   np_.copy(y), np_.ascontiguousarray(x.T)),
    "elementwise_funcs": lambda np_, x, y: (np_.where(x > 1.0, x, y), np_.where(y > 1.0, 0.0, y),
                                            np_.clip(x, 0.7, 1.3), np_.round(x, 2), np_.around(y),
                                            np_.maximum(x, 1.0), np_.abs(x - 1.0), np_.take(x, [1, 2], axis=1),
                                            np_.diff(y)),
    "gathers": lambda np_, x, y: (np_.repeat(y, 2), np_.repeat(x, [1, 0, 2], axis=0),
                                  np_.diagonal(x), np_.diagonal(x, 1), np_.diagonal(x[None], -1, 1, 2),
                                  np_.trace(x), np_.trace(x, -1), np_.sort(y), np_.sort(x, axis=0),
                                  np_.sort(x, axis=None), np_.broadcast_arrays(x, y)[1]),
}


@pytest.mark.parametrize("name", sorted(NUMPY_CASES))
def test_numpy_functions(name):
    check(NUMPY_CASES[name], F, V, fresh=lambda xs: [x * 1.5 - 0.25 for x in xs])   # keeps sort orders


def test_asarray_of_traced_returns_it_and_metadata_has_no_ir():
    def fn(x):
        assert call(np.asarray, x) is x and call(np.asanyarray, x) is x
        assert call(np.shape, x) == (3,) and call(np.ndim, x) == 1 and call(np.size, x) == 3
        assert call(np.result_type, x, 1.0) == np.float32 and not call(np.iscomplexobj, x)
        assert not call(np.isscalar, x)
        return x
    ctx, _, tr = trace(fn, np.ones(3, np.float32))
    assert not tr.nodes


@pytest.mark.parametrize("name", ["exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "atan",
                                  "sinh", "cosh", "tanh", "asinh", "fabs", "log2", "log10", "exp2",
                                  "degrees", "radians", "asin", "acos", "atanh", "acosh"])
def test_math_unary(name):
    fn = getattr(math, name)
    value = {"asin": 0.3, "acos": 0.3, "atanh": 0.3, "acosh": 1.7}.get(name, 1.3)

    def f(x):
        r = call(fn, call(float, x))
        assert type(r.value) is float
        return r
    _, (out,), tr = trace(f, np.array(value))
    assert out.value == pytest.approx(fn(value), rel=1e-15)
    assert run_trace(tr, [np.array(value * 0.9)])[0] == pytest.approx(fn(value * 0.9), rel=1e-14)


def test_math_multi_argument_and_integer_results():
    def f(x, y):
        a, b = call(float, x), call(float, y)
        assert call(math.floor, a * 3) == 3 and call(math.trunc, -a) == -1 and call(math.ceil, b) == 3
        assert type(call(math.isnan, a).value) is bool
        return (call(math.pow, a, b), call(math.atan2, a, b), call(math.hypot, a, b, 2.0),
                call(math.log, a, b), call(math.log, b), call(math.prod, [a, b, 2.0]))
    x, y = np.array(1.25), np.array(2.5)
    _, outs, tr = trace(f, x, y)
    want = lambda a, b: [a ** b, math.atan2(a, b), math.hypot(a, b, 2.0), math.log(a, b), math.log(b), a * b * 2]
    assert [o.value for o in outs] == pytest.approx(want(1.25, 2.5))
    # floor, trunc, ceil; pow and both logs: clear of CPython's errors (isnan stays a traced bool)
    assert len(tr.guards) == 6
    assert run_trace(tr, [np.array(1.2), np.array(2.6)]) == pytest.approx(want(1.2, 2.6))


def test_math_errors_are_cpythons():
    with pytest.raises(ValueError):
        trace(lambda x: call(math.sqrt, call(float, x) - 5.0), np.array(1.0))


def test_builtins_through_dunders():
    def f(x):
        assert call(len, x) == 3 and call(int, x[2] * 2) == 6 and call(round, x[0] * 1.4) == 1
        total = call(sum, [x[0], x[1], 1.0])
        biggest = call(max, x[0], x[1])
        order = call(sorted, [x[2], x[0], x[1]])
        return total, biggest, order[0], call(abs, -x), call(pow, x, 2)
    x = np.array([1.0, 2.0, 3.0])
    _, outs, tr = trace(f, x)
    assert [np.asarray(o.value).tolist() for o in outs] == [4.0, 2.0, 1.0, [1, 2, 3], [1, 4, 9]]
    assert len(tr.guards) >= 4                             # int(), round(), max's and sorted's comparisons
    assert np.allclose(run_trace(tr, [np.array([1.05, 2.05, 3.05])])[0], 4.1)


def test_operator_module():
    def f(x, y):
        return call(operator.add, x, y), call(operator.mul, 2.0, x), call(operator.neg, y), call(operator.getitem, x, 1)
    check(lambda np_, x, y: (x + y, 2.0 * x, -y, x[1]), F, V)
    x, y = np.ones((3, 4)), np.full(4, 2.0)
    _, outs, tr = trace(f, x, y)
    assert np.allclose(outs[0].value, 3.0) and np.allclose(run_trace(tr, [x * 2, y])[1], 4.0)


def test_numpy_scalar_casts_stay_traced():
    def f(x):
        a, b, c = call(np.float32, x[0]), call(np.float64, x.sum()), call(np.int64, x[1] * 2)
        assert type(a.value) is np.float32 and type(b.value) is np.float64 and type(c.value) is np.int64
        return a * 2.0, b, c
    x = np.array([1.5, 2.25])
    _, outs, tr = trace(f, x)
    got = run_trace(tr, [np.array([0.5, 3.25])])
    assert got[0] == 1.0 and got[1] == 3.75 and got[2] == 6 and got[0].dtype == np.float32


@pytest.mark.parametrize("fn", [np.random.rand, np.random.normal, np.random.default_rng, random.random,
                                random.uniform, time.time, time.perf_counter, np.random.default_rng(0).normal,
                                np.random.RandomState(0).rand, random.Random(1).gauss])
def test_impure_calls_refused_even_without_traced_arguments(fn):
    rule = lookup(fn)
    assert rule is not None and rule.always
    with pytest.raises(UnsupportedError, match="impure.*arguments"):
        trace(lambda x: rule.handler(), np.ones(1))


def test_lookup_special_cases():
    w = np.ones((2, 3))
    assert lookup(np.add.reduce) is lookup(np.add.reduce) and lookup(np.add.reduce).handler.args == (np.add,)
    assert lookup(w.dot).handler.args == (w,)
    assert lookup(np.float32) is not None and lookup(np.bool_) is not None
    assert lookup(print) is not None and lookup(len).handler is len
    assert lookup(lambda: None) is None and lookup(np.polyval) is None
    items = []
    lookup(items.append).handler(3)
    assert items == [3] and lookup(functools.reduce).handler is functools.reduce

    def f(x):
        return call(w.dot, x), call(w.sum, axis=x.argmin())
    _, outs, tr = trace(f, np.array([1.0, 2.0, 3.0]))
    assert np.allclose(run_trace(tr, [np.array([0.0, 5.0, 1.0])])[0], [6.0, 6.0])


def test_user_rule_replaces_builtin_rule():
    builtin = lookup(np.positive)

    @register(np.positive)
    def my_positive(x):
        return x * 2.0
    try:
        assert lookup(np.positive).handler is my_positive
        _, (y,), tr = trace(lambda x: call(np.positive, x), np.ones(2))
        assert np.array_equal(run_trace(tr, [np.full(2, 3.0)])[0], [6.0, 6.0])
    finally:
        register(np.positive, always=builtin.always)(builtin.handler)
    assert lookup(np.positive).handler is builtin.handler


def test_sort_trace_follows_a_new_order():
    y = np.array([3.0, 1.0, 2.0])
    _, (s,), tr = trace(lambda t: (call(np.sort, t),), y)
    assert np.array_equal(s.value, [1.0, 2.0, 3.0])
    assert np.array_equal(run_trace(tr, [np.array([0.0, 5.0, 1.0])])[0], [0.0, 1.0, 5.0])
