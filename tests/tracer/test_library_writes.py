"""Writes that jitgrad functionalizes beyond user-made arrays: scratch buffers made by library code
(SciPy's rosen_hess, NumPy's polyvander), np.linspace/logspace/geomspace with traced ends (values
exactly NumPy's), ufunc.at for multiply/divide/maximum/minimum with repeated indices, and the
nan-quantiles under a guarded NaN mask.  Gradients are checked against finite differences."""
import numpy as np
import numpy.polynomial as P
import pytest
from scipy.optimize import rosen_hess, rosen_hess_prod

import jitgrad
from e2e import assert_grad
from jitgrad.ir import run_trace
from traced_helpers import TracedModule, trace

RNG = np.random.default_rng(3)
X5 = RNG.uniform(-1.0, 1.0, 5)
V6 = RNG.uniform(0.5, 2.0, 6)
M34 = RNG.standard_normal((3, 4))


# --- scratch buffers made by library code ------------------------------------------------------------
def hessian_times_x(x):
    return np.sum(rosen_hess(x) @ x)


def hessian_product(x, p):
    return np.sum(rosen_hess_prod(x, p) ** 2)


def vandermonde_rows(x, c):
    total = 0.0
    for vander in (P.polynomial.polyvander, P.chebyshev.chebvander, P.legendre.legvander):
        if total >= -1e9:                               # NumPy fills np.empty buffers row by row
            total = total + np.sum(vander(x, 3) @ c)
    return total


@pytest.mark.parametrize("fn, args, argnums", [
    (hessian_times_x, (X5,), 0), (hessian_product, (X5, V6[:5]), (0, 1)),
    (vandermonde_rows, (X5, V6[:4]), (0, 1)),
])
def test_library_scratch_buffers_take_traced_writes(fn, args, argnums):
    copies = [a.copy() for a in args]
    assert_grad(fn, *args, argnums=argnums)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)             # the caller's arrays are never modified


def test_library_code_on_constants_returns_plain_arrays():
    def f(x):
        counts, edges = np.histogram(np.arange(6.0), bins=3)    # no traced value in its frames
        assert type(counts) is np.ndarray and type(edges) is np.ndarray
        return np.sum(x * counts[0])
    np.testing.assert_allclose(jitgrad.jit_grad(f)(X5), np.full(5, 2.0))


# --- linspace / logspace / geomspace -----------------------------------------------------------------------
SPACES = [
    lambda np_, a, b: np_.linspace(a[0], b[0], 7),
    lambda np_, a, b: np_.linspace(a[1], b[1], 6, endpoint=False, retstep=True),
    lambda np_, a, b: np_.linspace(a[:3], b[:3], 4, axis=1),
    lambda np_, a, b: np_.linspace(a[2], b[2], 1),
    lambda np_, a, b: np_.linspace(a[0], a[0], 3, retstep=True),          # zero step (guarded)
    lambda np_, a, b: np_.linspace(a[0], b[0], 5, dtype=int),
]


@pytest.mark.parametrize("fn", SPACES)
def test_linspace_values_are_numpys_exactly(fn):
    a, b = X5 * 3, V6 * 2
    expected = fn(np, a, b)
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    _, outs, trace_ = trace(lambda a, b: fn(TracedModule(np), a, b), a, b)
    for got, run, e in zip(outs, run_trace(trace_, [a, b]), expected):
        np.testing.assert_array_equal(got.value, e)
        np.testing.assert_array_equal(run, e)
        assert np.asarray(got.value).dtype == np.asarray(e).dtype


def test_linspace_compiled_values_are_numpys_exactly():
    ends = (np.array([0.1]), np.array([0.7]))
    for k in (1, 3, 5):
        value_and_grad = jitgrad.value_and_grad(lambda a, b, k=k: np.linspace(a[0], b[0], 7)[k],
                                                argnums=(0, 1))
        value_and_grad(*ends)
        value, _ = value_and_grad(*ends)                 # the compiled kernel
        assert value == np.linspace(0.1, 0.7, 7)[k]


# --- ufunc.at beyond add/subtract --------------------------------------------------------------------------
REPEATED = np.array([0, 2, 2, 4, 2, 0])
AT_CASES = {
    "multiply": (np.multiply, REPEATED), "divide": (np.divide, REPEATED),
    "maximum": (np.maximum, REPEATED), "minimum": (np.minimum, REPEATED),
    "multiply_list": (np.multiply, [1, 1, 3, 1, 0, 0]),
}


@pytest.mark.parametrize("name", sorted(AT_CASES))
def test_ufunc_at_repeated_indices_in_loops_and_branches(name):
    ufunc, idx = AT_CASES[name]

    def f(x, v):
        a = x * 1.5 + 0.2
        for k in range(2):
            if k == 0 or a[0] > -10.0:
                ufunc.at(a, idx, v * (k + 1))
        return np.sum(np.sin(a))
    assert_grad(f, X5, V6, argnums=(0, 1))


def test_ufunc_at_multi_dimensional_keys_and_scalar_operands():
    def f(x, v):
        a = np.ones((3, 4)) * x[0]
        np.maximum.at(a, (np.array([0, 0, 2]), slice(None)), v[:4])
        np.multiply.at(a, ([1, 1], [3, 3]), v[4])
        np.divide.at(a, (0, [1, 1, 2]), 2.0 + x[1])
        return np.sum(a * a)
    assert_grad(f, X5, V6, argnums=(0, 1))


def test_maximum_at_ties_split_as_a_sequential_loop():
    def at(x):
        a = np.zeros(3) + x[0]
        np.maximum.at(a, [1, 1, 2], x)
        return np.sum(a)

    def loop(x):
        a = np.zeros(3) + x[0]
        for i, v in zip([1, 1, 2], x):
            a[i] = np.maximum(a[i], v)
        return np.sum(a)
    x = np.array([1.0, 1.0, 1.0])                     # every write ties
    np.testing.assert_array_equal(jitgrad.jit_grad(at)(x), jitgrad.jit_grad(loop)(x))


def test_ufunc_at_traced_indices_are_guarded():
    def f(x, v):
        a = np.ones(5)
        np.multiply.at(a, np.argsort(x)[:3] // 2, v[:3])
        return np.sum(a * x)
    g = jitgrad.jit_grad(f, argnums=(0, 1))
    for x in (X5, X5[::-1].copy()):
        expected = assert_grad(f, x, V6, argnums=(0, 1))
        for got, e in zip(g(x, V6), expected):
            np.testing.assert_allclose(got, e, rtol=1e-12)
    assert g.cache_info().traces == 2


# --- nan-quantiles ---------------------------------------------------------------------------------------
def test_nanmedian_retraces_when_the_nan_mask_changes():
    def f(x):
        return np.sum(np.nanmedian(x, axis=1) ** 2) + np.nanpercentile(x, 30)
    g = jitgrad.jit_grad(f)
    first, second = M34.copy(), M34.copy()
    first[0, 1] = np.nan
    second[2, 0] = second[2, 3] = np.nan
    for x in (first, second, first):
        np.testing.assert_allclose(g(x), assert_grad(f, x), rtol=1e-12)
    assert g.cache_info().traces == 2


# --- lazy adoption: any array library code made while tracing takes traced writes --------------------------
@pytest.fixture
def library_style(monkeypatch):
    """tests/library_style_writes.py, treated as library code (as numpy or scipy are)."""
    import library_style_writes
    from jitgrad.tracer.recording import context
    monkeypatch.setattr(context, "_LIBRARY_DIRS", context._LIBRARY_DIRS + (library_style_writes.__file__,))
    return library_style_writes


@pytest.mark.parametrize("name", ["recurrence", "rows_from_literal", "copied_grid", "from_compiled_code",
                                  "through_closure", "constant_write_stays_plain", "written_by_callees",
                                  "view_before_write", "held_by_list", "passed_in_a_kept_tuple",
                                  "list_then_variable", "held_by_attribute", "two_names",
                                  "write_through_earlier_view", "loop_over_it_while_written",
                                  "filled_by_numpy_writers"])
def test_library_arrays_are_adopted_at_the_first_traced_write(library_style, name):
    """Whatever else holds the array (names, lists, tuples, attributes, views taken earlier), gradients
    equal finite differences and values equal CPython's."""
    helper = getattr(library_style, name)

    def f(x):
        out = helper(x)
        if type(out) is tuple:
            out, plain = out
            assert plain                                # adopted only when a traced value is written
        return np.sum(np.cos(out) * out)
    x, copy = X5[:4] + 1.0, X5[:4] + 1.0
    g = jitgrad.value_and_grad(f)
    for point in (x, x[::-1] * 0.5):
        value, grad = g(point)
        np.testing.assert_allclose(grad, assert_grad(f, point), rtol=1e-12)
        np.testing.assert_allclose(value, f(point.copy()), rtol=1e-14)
    np.testing.assert_array_equal(x, copy)               # the argument is never modified
    assert g.cache_info().traces == 1


@pytest.mark.parametrize("name, message", [
    ("kept_by_nditer", "also held elsewhere: it was handed to compiled code .*nditer"),
    ("iterated_while_written", "also held elsewhere: it was handed to compiled code .*zip"),
    ("viewed_with_another_dtype", "view of an array that took traced writes .*another dtype"),
])
def test_library_arrays_held_where_writes_cannot_reach_refuse_traced_writes(library_style, name, message):
    helper = getattr(library_style, name)

    def f(x):
        out = helper(x)
        return np.sum(out[0] if type(out) is tuple else out)
    with pytest.raises(jitgrad.UnsupportedError, match=message) as refused:
        jitgrad.jit_grad(f)(X5[:4])
    assert "library_style_writes.py" in str(refused.value) or "test_library_writes.py" in str(refused.value)


def test_arrays_made_before_the_trace_are_never_adopted(library_style):
    def f(x):
        return np.sum(library_style.write_into_table(x))
    with pytest.raises(jitgrad.UnsupportedError):
        jitgrad.jit_grad(f)(X5[:4])
    np.testing.assert_array_equal(library_style.TABLE, np.arange(4.0))
