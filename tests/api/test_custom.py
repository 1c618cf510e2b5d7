"""Custom derivatives (jitgrad/custom.py, the custom_call op): a custom_vjp function wrapping a C routine
the tracer cannot see into (libm's sin, through ctypes and np.vectorize) inside traced functions, loops,
branches and compiled kernels; its forward mode; second derivatives where its rule is differentiable;
check_grads catching a wrong rule; and the refusals."""
import ctypes
import ctypes.util
import functools

import numpy as np
import pytest

import jitgrad

_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_libm.sin.restype, _libm.sin.argtypes = ctypes.c_double, [ctypes.c_double]
c_sin = np.vectorize(_libm.sin, otypes=[float])          # opaque to the tracer


@jitgrad.custom_vjp
def csin(x):
    return c_sin(x)


csin.defvjp(lambda x: (csin(x), x), lambda x, g: (g * np.cos(x),))

X = np.array([0.3, 1.1, -0.7, 2.0])


def central_jacobian(f, x, eps=1e-6):
    columns = [(np.asarray(f(x + eps * e)) - np.asarray(f(x - eps * e))) / (2 * eps) for e in np.eye(x.size)]
    return np.stack(columns, axis=-1)


def test_the_c_routine_is_opaque_to_the_tracer():
    with pytest.raises(jitgrad.UnsupportedError):
        jitgrad.jit_grad(lambda x: np.sum(c_sin(x)))(X)


def looped(x, scale):
    """The custom function inside a loop with in-place updates and a data-dependent branch."""
    y = np.zeros_like(x)
    for i in range(3):
        y += csin(x * (i + 1)) ** 2
        if y[0] > 0.5:
            y[1:] *= scale
    return np.sum(y * x)


def looped_reference(x, scale):
    y = np.zeros_like(x)
    for i in range(3):
        y += np.sin(x * (i + 1)) ** 2
        if y[0] > 0.5:
            y[1:] *= scale
    return np.sum(y * x)


@pytest.mark.parametrize("jit", [True, False])
def test_custom_vjp_inside_a_traced_loop(jit):
    grad = jitgrad.jit_grad(looped, argnums=(0, 1), jit=jit)
    for x in (X, X * 0.1, X * 1.3, X + 0.01):   # three branch paths, then a cached call
        gx, gs = grad(x, 1.5)
        np.testing.assert_allclose(gx, central_jacobian(lambda z: looped_reference(z, 1.5), x), rtol=1e-6)
        eps = 1e-6
        assert np.isclose(gs, (looped_reference(x, 1.5 + eps) - looped_reference(x, 1.5 - eps)) / (2 * eps),
                          rtol=1e-6)
    assert grad.cache_info().hits == 1 and grad.cache_info().traces == 3


@pytest.mark.parametrize("jit", [True, False])
def test_a_gradient_runs_the_primal_routine_once_per_call(jit):
    calls = []

    @jitgrad.custom_vjp
    def counted(x):
        calls.append(x.shape)
        return c_sin(x)
    counted.defvjp(lambda x: (counted(x), x), lambda x, g: (g * np.cos(x),))

    def f(x):
        total = 0.0
        for k in range(3):
            total = total + np.sum(counted(x * (k + 1)) * x)
        return total

    def expected(x):
        return sum(np.sin(k * x) + k * x * np.cos(k * x) for k in (1, 2, 3))
    grad = jitgrad.jit_grad(f, jit=jit)
    grad(X)
    for x in (X * 0.5, X + 1.0):
        calls.clear()
        np.testing.assert_allclose(grad(x), expected(x), rtol=1e-12)
        assert len(calls) == 3            # once per call of `counted`, not again for the backward part
    assert grad.cache_info().traces == 1
    out, vjp_fn = jitgrad.vjp(f, X * 0.5)
    calls.clear()
    np.testing.assert_allclose(vjp_fn(1.0)[0], expected(X * 0.5), rtol=1e-12)
    assert calls == []                    # the backward kernel uses the forward kernel's residuals
    np.testing.assert_allclose(vjp_fn(2.0)[0], 2 * expected(X * 0.5), rtol=1e-12)   # (then runs fwd again)


def test_custom_vjp_called_by_library_code():
    def f(x):
        parts = list(map(csin, (x, 2 * x)))
        rows = np.apply_along_axis(csin, 1, np.outer(x, x))
        return functools.reduce(lambda a, b: a + np.sum(b), parts, 0.0) + np.sum(rows)

    def reference(x):
        return np.sum(np.sin(x)) + np.sum(np.sin(2 * x)) + np.sum(np.sin(np.outer(x, x)))
    np.testing.assert_allclose(jitgrad.jit_grad(f)(X), central_jacobian(reference, X), rtol=1e-6)


def test_custom_vjp_forward_mode_and_jacobians():
    _, tangent = jitgrad.jvp(csin, (X,), (np.ones(X.size),))
    np.testing.assert_allclose(tangent, np.cos(X), rtol=1e-12)
    f = lambda x: csin(x) * x[::-1]   # noqa: E731
    expected = central_jacobian(lambda x: np.sin(x) * x[::-1], X)
    for mode in ("fwd", "rev"):
        np.testing.assert_allclose(jitgrad.jacobian(f, mode=mode)(X), expected, rtol=1e-6, atol=1e-9)


def test_custom_vjp_under_hessian_where_its_rule_is_differentiable():
    f = lambda x: looped(x, 0.7)   # noqa: E731
    H = jitgrad.hessian(f)
    reference_grad = jitgrad.jit_grad(lambda x: looped_reference(x, 0.7))
    for x in (X, X * 0.2):
        np.testing.assert_allclose(H(x), central_jacobian(reference_grad, x), rtol=1e-6, atol=1e-7)
    hvp = jitgrad.hvp(f)
    v = np.linspace(1.0, -1.0, X.size)
    np.testing.assert_allclose(hvp(X, v), H(X) @ v, rtol=1e-10)


def test_grad_of_grad_through_the_rule():
    grad = jitgrad.jit_grad(lambda x: np.sum(csin(x) ** 3))
    second = jitgrad.jit_grad(lambda x: np.sum(grad(x) * x))
    reference = lambda x: np.sum(3 * np.sin(x) ** 2 * np.cos(x) * x)   # noqa: E731
    np.testing.assert_allclose(second(X), central_jacobian(reference, X), rtol=1e-6)


def test_check_grads_accepts_the_rule_and_fails_on_a_wrong_one():
    jitgrad.check_grads(lambda x: csin(x) * x, (X,), order=1)
    jitgrad.check_grads(lambda x: np.sum(csin(x) ** 2), (X,), order=2, modes=("rev",))

    @jitgrad.custom_vjp
    def wrong_sin(x):
        return c_sin(x)
    wrong_sin.defvjp(lambda x: (wrong_sin(x), x), lambda x, g: (g * np.sin(x),))   # should be cos
    for mode in ("fwd", "rev"):
        with pytest.raises(AssertionError, match="disagrees with central finite differences"):
            jitgrad.check_grads(lambda x: wrong_sin(x) * 2.0, (X,), order=1, modes=(mode,))


def test_static_arguments_and_non_float_operands():
    @jitgrad.custom_vjp
    def power_sum(x, k, counts):
        return np.sum(x ** k * counts)
    power_sum.defvjp(lambda x, k, counts: (power_sum(x, k, counts), (x, k, counts)),
                     lambda res, g: (g * res[1] * res[0] ** (res[1] - 1) * res[2], None, None))
    counts = np.array([1, 2, 0, 3])
    grad = jitgrad.jit_grad(lambda x, k: power_sum(x, k, counts))
    np.testing.assert_allclose(grad(X, 3), 3 * X ** 2 * counts)
    np.testing.assert_allclose(grad(X, 2), 2 * X * counts)
    assert grad.cache_info().traces == 2   # the static k is part of the key


def test_refusals():
    @jitgrad.custom_vjp
    def no_rule(x):
        return c_sin(x)
    with pytest.raises(jitgrad.TraceError, match="defvjp"):
        jitgrad.jit_grad(lambda x: np.sum(no_rule(x)))(X)

    @jitgrad.custom_vjp
    def bad_shape(x):
        return c_sin(x)
    bad_shape.defvjp(lambda x: (bad_shape(x), x), lambda x, g: (np.sum(g),))
    with pytest.raises(jitgrad.TraceError, match="shape"):
        jitgrad.jit_grad(lambda x: np.sum(bad_shape(x)), jit=False)(X)

    third = jitgrad.jacobian(jitgrad.hessian(lambda x: np.sum(csin(x))))
    with pytest.raises(jitgrad.UnsupportedError, match="not supported"):
        third(X)


# -- custom_jvp --------------------------------------------------------------------------------------------

@jitgrad.custom_jvp
def scaled_csin(x, y):
    return c_sin(x) * y


@scaled_csin.defjvp
def scaled_csin_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    return scaled_csin(x, y), scaled_csin(x, 1.0) * ty + np.cos(x) * y * tx


Y = np.array([1.5, -0.5, 2.0, 0.25])


def test_custom_jvp_in_both_modes_inside_a_loop():
    def f(x, y):
        total = 0.0
        for i in range(3):
            total = total + np.sum(scaled_csin(x * (i + 1), y) ** 2)
        return total

    def reference(x, y):
        return sum(np.sum((np.sin(x * (i + 1)) * y) ** 2) for i in range(3))
    gx, gy = jitgrad.jit_grad(f, argnums=(0, 1))(X, Y)
    np.testing.assert_allclose(gx, central_jacobian(lambda x: reference(x, Y), X), rtol=1e-6)
    np.testing.assert_allclose(gy, central_jacobian(lambda y: reference(X, y), Y), rtol=1e-6)
    _, tangent = jitgrad.jvp(scaled_csin, (X, Y), (np.ones(4), np.zeros(4)))
    np.testing.assert_allclose(tangent, np.cos(X) * Y, rtol=1e-12)
    H = jitgrad.hessian(lambda x: f(x, Y))(X)
    np.testing.assert_allclose(H, central_jacobian(jitgrad.jit_grad(lambda x: reference(x, Y)), X),
                               rtol=1e-6, atol=1e-7)


def test_check_grads_on_custom_jvp_rules_to_second_order():
    jitgrad.check_grads(scaled_csin, (X, Y), order=2)

    @jitgrad.custom_jvp
    def off(x):
        return c_sin(x)
    off.defjvp(lambda p, t: (off(p[0]), 1.01 * np.cos(p[0]) * t[0]))   # 1% off
    for mode in ("fwd", "rev"):
        with pytest.raises(AssertionError, match="disagrees with central finite differences"):
            jitgrad.check_grads(off, (X,), order=1, modes=(mode,))
