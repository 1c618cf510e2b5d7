"""Gradients compose through the API: jit_grad applied inside a traced function (grad of grad, Hessian-
vector products, losses that contain gradients), with guards and environment reads of the inner function
checked by the outer kernel."""
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
