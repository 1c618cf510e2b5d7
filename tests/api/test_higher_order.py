"""Gradients compose through the API: jit_grad applied inside a traced function (grad of grad, Hessian-
vector products, losses that contain gradients), with guards and environment reads of the inner function
checked by the outer kernel, and inner functions closing over the outer function's traced values."""
import numpy as np

import jitgrad
from e2e import assert_grad

W = np.array([0.5, -1.5, 2.0])


def energy(x):
    return np.sum(np.sin(x) * x[0]) + 0.5 * np.sum(W * x ** 2)


def test_second_and_third_derivative_of_scalar_function():
    f = lambda t: 2.0 * t ** 3 + np.exp(t)   # noqa: E731
    d1 = jitgrad.jit_grad(f)
    d2 = jitgrad.jit_grad(d1)
    d3 = jitgrad.jit_grad(d2)
    t = 0.7
    assert np.isclose(d2(t), 12 * t + np.exp(t)) and np.isclose(d3(t), 12 + np.exp(t))


def test_gradient_of_a_function_of_the_gradient():
    grad_energy = jitgrad.jit_grad(energy)

    def gradient_norm(x):
        return np.sum(grad_energy(x) ** 2)
    assert_grad(gradient_norm, np.array([0.3, 1.2, -0.7]))


def test_hessian_vector_product_equals_finite_difference_of_gradient():
    grad_energy = jitgrad.jit_grad(energy)
    hvp = jitgrad.jit_grad(lambda x, v: np.dot(grad_energy(x), v))
    x, v = np.array([0.3, 1.2, -0.7]), np.array([1.0, -2.0, 0.5])
    eps = 1e-6
    fd = (grad_energy(x + eps * v) - grad_energy(x - eps * v)) / (2 * eps)
    assert np.allclose(hvp(x, v), fd, rtol=1e-6, atol=1e-8)


def test_inner_guards_and_environment_are_checked_by_the_outer_kernel():
    global W
    def inner(x):
        return np.sum(W * x ** 3) if x[0] > 0 else np.sum(W * x ** 2)
    grad_inner = jitgrad.jit_grad(inner)
    outer = jitgrad.jit_grad(lambda x: np.sum(grad_inner(x)))
    pos, neg = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 2.0, 3.0])
    assert np.allclose(outer(pos), 6 * W * pos)
    assert np.allclose(outer(neg), 2 * W)              # the inner branch flips: the outer retraces
    assert outer.cache_info().traces == 2
    saved = W.copy()
    try:
        W[:] = [1.0, 1.0, 1.0]                         # the inner function's global array: read fresh
        assert np.allclose(outer(pos), 6 * pos)
        assert outer.cache_info().traces == 2
    finally:
        W[:] = saved


# -- an inner jit_grad closing over the outer function's traced values ----------------------------------
def _closed_form_outer(x):
    """sum(inner(x)**2) with inner = d/dy sum(sin(x*y)) at y = x, i.e. x cos(x²)."""
    return np.sum((x * np.cos(x * x)) ** 2)


def _central_difference(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def test_inner_gradient_closing_over_an_outer_traced_value():
    @jitgrad.jit_grad
    def outer(x):
        inner = jitgrad.jit_grad(lambda y: np.sum(np.sin(x * y)))   # closes over traced x
        return np.sum(inner(x) ** 2)
    for x in (np.array([0.3, 0.7]), np.array([1.1, -0.4])):        # the second call runs the cached kernel
        np.testing.assert_allclose(outer(x), _central_difference(_closed_form_outer, x), rtol=1e-7)
    assert outer.cache_info().traces == 1


def test_closure_over_a_traced_float_and_inner_call_on_constants():
    def outer(s, x):
        cubic = jitgrad.jit_grad(lambda y: s * y ** 3)                  # d/dy = 3 s y²
        inner = jitgrad.jit_grad(lambda y: np.sum(np.sin(x * y)))       # called on a constant below
        return cubic(2.0) * s + np.sum(inner(np.ones(2)))               # 12 s² + sum(x cos x)
    s, x = 1.5, np.array([0.3, 0.7])
    ds, dx = jitgrad.jit_grad(outer, argnums=(0, 1))(s, x)
    assert np.isclose(ds, 24 * s)
    np.testing.assert_allclose(dx, np.cos(x) - x * np.sin(x), rtol=1e-12)
    assert_grad(outer, s, x, argnums=(0, 1))


def test_second_order_through_the_closure():
    def first(x):
        inner = jitgrad.jit_grad(lambda y: np.sum(np.sin(x * y)))
        return np.sum(inner(x) ** 2)
    grad_first = jitgrad.jit_grad(first)
    second = jitgrad.jit_grad(lambda x: np.sum(grad_first(x) ** 2))
    x = np.array([0.3, 0.7])
    np.testing.assert_allclose(
        second(x), _central_difference(lambda z: np.sum(_central_difference(_closed_form_outer, z) ** 2), x,
                                       eps=1e-4), rtol=1e-5)
    assert_grad(lambda x: np.sum(grad_first(x) ** 2), x)


def test_innermost_gradient_closing_over_the_outermost_value():
    @jitgrad.jit_grad
    def top(x):
        def middle(z):
            inner = jitgrad.jit_grad(lambda y: np.sum(x * y * z))       # d/dy = x z
            return np.sum(inner(z) * z)                                 # sum(x z²)
        return np.sum(jitgrad.jit_grad(middle)(x) * x)                  # sum(2 x³)
    x = np.array([0.3, 0.7, -1.2])
    np.testing.assert_allclose(top(x), 6 * x ** 2, rtol=1e-12)


def test_a_value_kept_by_a_traced_call_is_plain_afterwards():
    kept = []

    @jitgrad.jit_grad
    def keeps(x):
        kept.append(x)
        return np.sum(x)
    keeps(np.array([1.0, 2.0]))
    assert type(kept[0]) is np.ndarray         # settled when the call returned (tracer/arrays/escape.py)
    later = jitgrad.jit_grad(lambda y: np.sum(kept[0] * y))
    assert np.allclose(later(np.array([3.0, 4.0])), [1.0, 2.0])
