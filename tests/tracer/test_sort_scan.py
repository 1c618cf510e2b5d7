"""np.sort, np.argsort and np.cumprod inside functions differentiated by jitgrad.jit_grad: gradients
against finite differences (tests/e2e.py) along every axis, with zeros in cumprod, and the permutation
itself: argsort results index like NumPy's and the sort's gradient follows the permutation."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad

RNG = np.random.default_rng(11)
X = RNG.permutation(24).reshape(2, 3, 4) / 7.0 - 1.5      # distinct values: no ties
W = RNG.standard_normal((2, 3, 4))

CASES = {
    "sort_last": (lambda x: np.sum(np.sort(x) * W), (X,)),
    "sort_axis0": (lambda x: np.sum(np.sort(x, axis=0) * W), (X,)),
    "sort_flat": (lambda x: np.sum(np.sort(x, axis=None) * W.ravel()), (X,)),
    "sort_kind": (lambda x: np.sum(np.sort(x, axis=1, kind="stable") * W), (X,)),
    "argsort_gather": (lambda x: np.sum(np.take_along_axis(x, np.argsort(x, axis=1), axis=1) * W), (X,)),
    "median_by_sort": (lambda x: np.sort(x.ravel())[11] + np.sort(x.ravel())[12], (X,)),
    "cumprod_flat": (lambda x: np.sum(np.cumprod(x) * W.ravel()), (X / 2 + 0.1,)),
    "cumprod_axis": (lambda x: np.sum(np.cumprod(x, axis=2) * W), (X,)),
    "cumprod_zeros": (lambda x: np.sum(np.cumprod(x, axis=1) * W), (np.where(X > 0.5, 0.0, X),)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    fn, args = CASES[name]
    assert_grad(fn, *args)


def test_sort_gradient_is_the_permuted_cotangent():
    x = np.array([3.0, -1.0, 2.0])
    g = jitgrad.jit_grad(lambda x: np.sum(np.sort(x) * np.array([1.0, 10.0, 100.0])))(x)
    np.testing.assert_array_equal(g, [100.0, 1.0, 10.0])


def test_cumprod_through_a_zero_is_exact():
    x = np.array([2.0, 0.0, 3.0, 4.0])
    g = jitgrad.jit_grad(lambda x: np.sum(np.cumprod(x)))(x)
    np.testing.assert_array_equal(g, [1.0, 2 + 2 * 3 + 2 * 3 * 4, 0.0, 0.0])


def test_int_cumprod_and_argsort_values_match_numpy():
    def f(x):
        order = np.argsort(x)
        counts = np.cumprod(np.array([1, 2, 3]))
        return np.sum(x[order] * counts)
    x = np.array([0.5, -2.0, 1.5])
    np.testing.assert_array_equal(jitgrad.jit_grad(f)(x), [2.0, 1.0, 6.0])
