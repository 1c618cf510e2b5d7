"""TracedArray: operators, methods, indexing, in-place writes, guards, dtypes and types behave as
NumPy/CPython on the concrete values, and the recorded IR reproduces them on fresh inputs."""
import math

import numpy as np
import pytest

from jitgrad.ir import GuardFailed, UnsupportedError, run_trace
from jitgrad.tracer.arrays.values import TracedArray, contains_traced
from traced_helpers import TracedModule, call, check, trace

F = ((3, 4), "f8")
V = ((4,), "f8")
F32 = ((3, 4), "f4")

OPERATOR_CASES = {
    "add_sub_mul_div": (lambda np, x, y: (x + y) * 2.0 - y / x + 1, [F, V]),
    "reflected": (lambda np, x, y: 2.0 - x, [F, V]),
    "reflected_numpy_scalar": (lambda np, x, y: np.float64(2) * x + np.ones(4) / y, [F, V]),
    "pow_floordiv_mod": (lambda np, x, y: x ** 2 + x ** y + (x * 7) // y + (x * 7) % y, [F, V]),
    "rpow": (lambda np, x, y: 2.0 ** x, [F, V]),
    "unary": (lambda np, x, y: -x + abs(x - 1.2) + (+y), [F, V]),
    "compare": (lambda np, x, y: (x < y, x >= 1.0, x == y, 1.0 > y, x != y), [F, V]),
    "bool_ops": (lambda np, x, y: ((x < 1) & (y > 1)) | ~(x > 1.5) ^ (y < 1.2), [F, V]),
    "matmul": (lambda np, x, y: (x @ y, y @ x.T, x @ x.T @ x), [F, V]),
    "rmatmul_plain": (lambda np, x, y: np.ones((2, 3)) @ x, [F, V]),
    "divmod": (lambda np, x, y: divmod(x * 5, y), [F, V]),
    "float32_weak": (lambda np, x, y: x * 2.0 + 1 - 3.5 / x, [F32, V]),
    "int_array": (lambda np, x, y: x * 2 + 1, [((3,), "i8"), V]),
    "int_true_divide": (lambda np, x, y: x / 2, [((3,), "i4"), V]),
}

METHOD_CASES = {
    "sum": (lambda np, x: (x.sum(), x.sum(axis=0), x.sum(axis=(0, 1), keepdims=True), x.sum(-1)), [F]),
    "mean_var_std": (lambda np, x: (x.mean(), x.mean(1), x.var(), x.std(axis=0, ddof=1)), [F]),
    "mean_f32": (lambda np, x: (x.mean(), x.var(axis=1)), [F32]),
    "mean_int": (lambda np, x: x.mean(axis=0), [((3, 2), "i4")]),
    "max_min_prod": (lambda np, x: (x.max(), x.min(axis=1), x.prod(axis=0), x.max(0, keepdims=True)), [F]),
    "argmax": (lambda np, x: (x.argmax(), x.argmin(axis=1), x.argmax(axis=0, keepdims=True)), [F]),
    "ravel_orders": (lambda np, x: (x.ravel("F"), x.T.ravel("K"), x.T.ravel("A"), x.T.flatten("K"),
                                    x[:, ::2].ravel("K"), np.ravel(x.T, "C")), [F]),
    "shape_ops": (lambda np, x: (x.reshape(2, 6), x.reshape((4, -1)), x.T, x.transpose(1, 0), x.ravel(),
                                 x.flatten(), x.reshape(1, 3, 4).squeeze(), x.swapaxes(0, 1)), [F]),
    "astype_copy": (lambda np, x: (x.astype(np.float32), x.copy(), x.astype(int)), [F]),
    "clip_cumsum": (lambda np, x: (x.clip(0.8, 1.5), x.cumsum(), x.cumsum(axis=1), x.clip(None, 1.0)), [F]),
    "clip_f32": (lambda np, x: x.clip(0.8, 1.5), [F32]),
    "dot_round": (lambda np, x: (x.dot(x.T), x.round(1), x.round()), [F]),
    "all_any": (lambda np, x: ((x > 1).all(axis=0), (x > 1).any(), x.all()), [F]),
    "iteration": (lambda np, x: [row * 2 for row in x], [F]),
    "item": (lambda np, x: x[1, 2].item() * 2.0 + x.item(3), [F]),
    "gathers": (lambda np, x: (x.repeat(2, axis=1), x.diagonal(), x.trace(1), x[0].repeat(3)), [F]),
}

INDEX_CASES = {
    "basic": (lambda np, x: (x[0], x[-1, 1:3], x[:, ::2], x[..., 1], x[None, 1], x[1:, None, -2]), [F]),
    "int_array": (lambda np, x: (x[np.array([2, 0, -1])], x[:, [1, 1, 3]], x[np.array([0, 2]), np.array([1, 3])]), [F]),
    "plain_mask": (lambda np, x: x[np.array([True, False, True])], [F]),
    "take_diff": (lambda np, x: (np.take(x, [0, 5, 7]), np.take(x, [1, 0], axis=1), np.diff(x),
                                 np.diff(x, n=2, axis=0)), [F]),
}


@pytest.mark.parametrize("name", sorted(OPERATOR_CASES))
def test_operators(name):
    fn, specs = OPERATOR_CASES[name]
    check(fn, *specs)


@pytest.mark.parametrize("name", sorted(METHOD_CASES))
def test_methods(name):
    fn, specs = METHOD_CASES[name]
    check(fn, *specs)


@pytest.mark.parametrize("name", sorted(INDEX_CASES))
def test_indexing(name):
    fn, specs = INDEX_CASES[name]
    check(fn, *specs)


def test_traced_index_array_is_dynamic_with_bounds_guard():
    x, idx = np.arange(5.0), np.array([4, 0, 2])
    _, (y,), tr = trace(lambda x, i: x[i], x, idx)
    assert np.array_equal(y.value, x[idx])
    assert np.array_equal(run_trace(tr, [x, np.array([1, 1, 3])])[0], x[[1, 1, 3]])
    with pytest.raises(GuardFailed):
        run_trace(tr, [x, np.array([1, 5, 3])])


def test_traced_mask_is_guarded():
    x = np.array([1.0, 2.0, 3.0])
    _, (y,), tr = trace(lambda x: x[x > 1.5], x)
    assert np.array_equal(y.value, [2.0, 3.0])
    assert np.allclose(run_trace(tr, [x * 1.1])[0], [2.2, 3.3])    # same mask: fine
    with pytest.raises(GuardFailed):
        run_trace(tr, [np.array([2.0, 2.0, 3.0])])                     # mask changed


def test_traced_int_index_is_guarded():
    x = np.arange(6.0)
    _, (y,), tr = trace(lambda x: x[x.argmax() - 2], x)
    assert y.value == 3.0
    assert run_trace(tr, [x * 2])[0] == 6.0
    with pytest.raises(GuardFailed):
        run_trace(tr, [x[::-1].copy()])


GUARD_CASES = [  # (fn of traced scalar -> python result, value, expected guard value)
    (bool, 0.0, False), (bool, 2.5, True), (int, 2.7, 2), (int, -2.7, -2), (round, 2.5, 2),
    (math.floor, 2.7, 2), (math.ceil, 2.1, 3), (lambda t: t > 1.0, 1.5, True),
    (lambda t: range(3)[t.astype(int)], 1.0, None),
]


@pytest.mark.parametrize("fn, value, expected", GUARD_CASES)
def test_guards_record_expected_value(fn, value, expected):
    def traced_fn(t):
        result = call(fn, t)
        if type(result) is TracedArray:
            result = bool(result)
        return t
    ctx, _, tr = trace(traced_fn, np.float64(value))
    guards = tr.guards
    assert guards, "a decision on a traced value must record a guard"
    if expected is not None:
        assert guards[-1].params["expected"] == expected
    run_trace(tr, [np.float64(value)])                                 # holds on the same value


def test_guard_fails_on_other_branch():
    _, _, tr = trace(lambda t: t * 2 if t > 1.0 else t, np.float64(3.0))
    run_trace(tr, [np.float64(5.0)])
    with pytest.raises(GuardFailed):
        run_trace(tr, [np.float64(0.5)])


def test_index_guard_on_traced_integer_scalar():
    _, _, tr = trace(lambda t: [10.0, 20.0, 30.0][t.argmax()] * t, np.array([0.0, 5.0, 1.0]))
    (g,) = tr.guards
    assert g.params["expected"] == 1
    with pytest.raises(GuardFailed):
        run_trace(tr, [np.array([5.0, 0.0, 1.0])])


def test_types_follow_concrete_value():
    tnp = TracedModule(np)

    def fn(x):
        s, f = x.sum(), call(float, x[0])
        assert call(type, s) is np.float64 and isinstance(s, np.floating) and not isinstance(s, np.ndarray)
        assert isinstance(x, np.ndarray) and call(type, x) is np.ndarray
        assert isinstance(f, float) and call(type, f) is float and not isinstance(f, np.ndarray)
        assert isinstance(x[0] > 0.0, np.bool_)
        assert isinstance(f * 2, float) and isinstance(2.0 + f, float)
        assert type(tnp.sin(f).value) is np.float64
        assert x.shape == (3,) and x.ndim == 1 and x.dtype == np.float64 and x.size == 3 and len(x) == 3
        return f * 3.0
    _, (out,), tr = trace(fn, np.array([1.0, 2.0, 3.0]))
    assert run_trace(tr, [np.array([5.0, 0.0, 0.0])])[0] == 15.0      # float() kept the derivative path


def test_python_float_attributes_follow_float():
    def fn(x):
        f = call(float, x)
        with pytest.raises(AttributeError):
            f.shape
        with pytest.raises(AttributeError):
            f.sum()
        return f
    trace(fn, np.array(2.0))


def test_float32_stays_float32():
    def fn(x):
        ys = [x * 2.0, 2.0 * x, x + 1, x / 3, x ** 2, -x, x * np.float32(2), call(np.sin, x) * 0.5,
              call(np.maximum, x, 0.0), call(np.where, x > 1, x, 0.0), x.sum(), x.mean()]
        for y in ys:
            assert y.value.dtype == np.float32 and y.ir.dtype == np.float32
        up = x * np.float64(2)                                            # strong float64 scalar
        assert up.value.dtype == np.float64 == up.ir.dtype
        return ys[0]
    trace(fn, np.ones(3, np.float32))


def test_setitem_functionalizes():
    def fn(x):
        y = x * 1.0
        y[0] = y[1] * 3.0
        y[1:] = y[1:] ** 2
        y[y > 3.0] = 0.5                                                   # scalar into a mask: a where
        y[np.array([0, 2])] += 1.0
        return y
    x = np.array([1.0, 1.5, 2.5])
    _, (y,), tr = trace(fn, x)
    want = lambda x: (lambda y: (y.__setitem__(0, y[1] * 3.0), y.__setitem__(slice(1, None), y[1:] ** 2),
                                 y.__setitem__(y > 3.0, 0.5), y.__setitem__([0, 2], y[[0, 2]] + 1.0), y)[-1])(x * 1.0)
    assert np.allclose(y.value, want(x))
    assert not tr.guards
    assert np.allclose(run_trace(tr, [x * 0.5])[0], want(x * 0.5))


def test_inplace_operators_rebind_arrays_and_replace_scalars():
    def fn(x):
        y = x.copy()
        before = y
        y *= 2.0
        y += x
        assert y is before                                                 # arrays update in place
        s = x.sum()
        s0 = s
        s += 1.0
        assert s is not s0 and s0.value == x.value.sum()                   # scalars are immutable
        return y, s
    x = np.array([1.0, 2.0])
    _, (y, s), tr = trace(fn, x)
    assert np.allclose(y.value, 3 * x) and s.value == 4.0
    got = run_trace(tr, [np.array([2.0, 5.0])])
    assert np.allclose(got[0], [6.0, 15.0]) and got[1] == 8.0


def test_argument_writes_do_not_modify_caller_values():
    x = np.array([1.0, 2.0])
    _, (y,), tr = trace(lambda t: (t.__setitem__(0, 5.0), t)[1], x.copy())
    assert np.array_equal(y.value, [5.0, 2.0])
    assert np.array_equal(run_trace(tr, [np.array([7.0, 8.0])])[0], [5.0, 8.0])


def _write_through_views(np, x):
    y = x * 1.0
    r, t, v, w = y[1], y.T, y.reshape(-1), y[1:, ::2]
    y[0] += 1.0                              # Python: tmp = y[0]; tmp += 1; y[0] = tmp
    y[:, 1] *= 2.0
    r[2] = 7.0                               # through a row view
    t[0, 0] = -1.0                           # through a transpose
    v[3] = 5.0                               # through a reshape
    w[0] -= 3.0                              # through a view of a view
    w[1, :] = r[:2]
    return y, r, t, v, w, r.sum() + w.sum()


def _views_see_base_writes(np, x):
    y = x + 0.0
    rows = [row for row in y]                # iteration rows are views
    col = y[:, 0]
    y[1] = y[1] * 10.0
    y *= 2.0
    np.add(y, 1.0, out=y)
    return rows[1], col, rows[0][None] + col.sum()


def test_writes_through_views_reach_the_base():
    check(_write_through_views, ((3, 4), "f8"))


def test_views_follow_writes_into_the_base():
    check(_views_see_base_writes, ((3, 4), "f8"))


@pytest.mark.parametrize("make_view", [
    lambda tnp, y: tnp.broadcast_to(y[0], (2, 4)),
    lambda tnp, y: tnp.broadcast_to(y, (1, 3, 4))[0],
])
def test_writes_through_unlinked_views_are_refused(make_view):
    def fn(x):
        y = x * 1.0
        view = make_view(TracedModule(np), y)
        y[0, 0] = 3.0
        return view + 1.0                     # stale: NumPy would show the write
    with pytest.raises(UnsupportedError, match="view"):
        trace(fn, np.ones((3, 4)))


@pytest.mark.parametrize("key", [0, slice(None)])
def test_write_into_plain_array_is_refused(key):
    def fn(x):
        out = np.zeros(2)
        out[key] = x[key]
        return x
    with pytest.raises((UnsupportedError, ValueError)) as info:
        trace(fn, np.ones(2))
    # NumPy wraps an error raised by __float__ into "setting an array element with a sequence"
    error = info.value if info.type is UnsupportedError else info.value.__cause__
    assert isinstance(error, UnsupportedError) and "derivative" in str(error)


@pytest.mark.parametrize("conversion", [float, complex, np.asarray, lambda t: t.tolist(),
                                        lambda t: np.sin(t), lambda t: math.exp(t)])
def test_native_conversions_are_refused(conversion):
    with pytest.raises((UnsupportedError, TypeError)) as info:
        trace(lambda x: conversion(x), np.array(1.5))
    if info.type is TypeError:                                   # NumPy refuses via __array_ufunc__ = None
        assert "__array_ufunc__=None" in str(info.value)


def test_float_dunder_refusal_names_location_and_remedy():
    with pytest.raises(UnsupportedError, match="jitgrad.register"):
        trace(lambda x: float(x), np.array(1.5))


def test_unknown_ndarray_method_is_refused_loudly():
    with pytest.raises(UnsupportedError, match="choose"):
        trace(lambda x: x.choose([1, 2]), np.ones(3, dtype=np.int64))


def test_contains_traced_looks_into_containers():
    import dataclasses

    @dataclasses.dataclass
    class P:
        a: object

    ctx, (t,), _ = trace(lambda x: x, np.ones(2))
    assert contains_traced(([1, {"k": (t,)}],))
    assert contains_traced((), {"p": P(a={t.value.tobytes(): [t]})})
    assert contains_traced(({frozenset([1])}, P(a=t)))
    assert not contains_traced(([1, 2.0, np.ones(2)], {"k": "v"}), {"p": P(a=3)})


def test_printing_and_formatting_use_concrete_value():
    def fn(x):
        assert str(x) == str(x.value) and f"{x[0]:.2f}" == "1.50" and repr(x) == repr(x.value)
        return x
    trace(fn, np.array([1.5, 2.0]))


def test_sort_method_and_shape_setter_update_the_array():
    def fn(x):
        y = x * 1.0
        y.sort()
        z = x + 0.0
        z.shape = (2, 2)
        assert z.shape == (2, 2) and z.ir.shape == (2, 2)
        return y, z
    x = np.array([3.0, 1.0, 4.0, 2.0])
    _, (y, z), tr = trace(fn, x)
    assert np.array_equal(y.value, np.sort(x)) and np.array_equal(z.value, x.reshape(2, 2))
    got = run_trace(tr, [x * 2])
    assert np.array_equal(got[0], np.sort(x * 2)) and np.array_equal(got[1], (x * 2).reshape(2, 2))
