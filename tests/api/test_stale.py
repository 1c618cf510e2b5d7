"""Stale answers: code replaced in place (a notebook's autoreload), a builtin shadowed by a module
global defined later, a global rebound to another module.  Each must retrace, on the cached-call fast
path too; names nobody read may change without a retrace."""
import types

import numpy as np
import pytest

import jitgrad

X = np.linspace(0.1, 1.0, 5)


def _in_module(fn, **names):
    """`fn` with its own module namespace (`names` and numpy as `np`), so a test can change its globals."""
    namespace = {"__name__": "stale_test_module", "np": np, **names}
    return types.FunctionType(fn.__code__, namespace, fn.__name__), namespace


def _warm(fn, jit=True):
    g = jitgrad.jit_grad(fn, jit=jit)
    g(X)
    g(X)             # a hit: the fast path is in place
    assert g.cache_info().traces == 1 and g.cache_info().hits == 1
    return g


def square_sum(x):
    return np.sum(x ** 2)


def cube_sum(x):
    return np.sum(x ** 3)


@pytest.mark.parametrize("jit", [True, False])
def test_code_replaced_in_place_retraces(jit):
    fn, _ = _in_module(square_sum)
    g = _warm(fn, jit)
    fn.__code__ = cube_sum.__code__
    assert np.allclose(g(X), 3 * X ** 2)
    assert g.cache_info().traces == 2


def calls_helper(x):
    return np.sum(helper(x)) + np.sum(x)   # noqa: F821 - bound in the test's namespace


def test_inlined_helper_code_replaced_retraces():
    helper, _ = _in_module(lambda x: x ** 2)
    fn, _ = _in_module(calls_helper, helper=helper)
    g = _warm(fn)
    helper.__code__ = (lambda x: x ** 3).__code__
    assert np.allclose(g(X), 3 * X ** 2 + 1)
    assert g.cache_info().traces == 2


def test_method_code_replaced_retraces():
    class Model:
        def energy(self, x):
            return np.sum(x ** 2)
    model = Model()
    g = _warm(lambda x: model.energy(x))
    Model.energy.__code__ = (lambda self, x: np.sum(x ** 3)).__code__
    assert np.allclose(g(X), 3 * X ** 2)


def uses_abs(x):
    return abs(np.sum(x) - 10.0)


def test_builtin_shadowed_by_a_later_global_retraces():
    fn, namespace = _in_module(uses_abs)
    g = _warm(fn)
    assert np.allclose(g(X), -1.0)
    namespace["abs"] = lambda v: 2.0 * v          # defined after tracing: shadows the builtin
    assert np.allclose(g(X), 2.0)
    assert g.cache_info().traces == 2
    del namespace["abs"]
    assert np.allclose(g(X), -1.0)


def uses_module(x):
    return np.sum(np.sin(x))


def test_global_rebound_to_another_module_retraces():
    fn, namespace = _in_module(uses_module)
    g = _warm(fn)
    other = types.ModuleType("other")
    other.sum, other.sin = np.sum, np.cos
    namespace["np"] = other
    assert np.allclose(g(X), -np.sin(X))
    assert g.cache_info().traces == 2


def test_names_not_read_change_freely():
    fn, namespace = _in_module(uses_abs)
    g = _warm(fn)
    namespace["unrelated"] = 3.0
    namespace["sin"] = np.cos      # not a name the function looks up
    assert np.allclose(g(X), -1.0)
    info = g.cache_info()
    assert info.traces == 1 and info.hits == 2
    assert any("names of module 'stale_test_module'" in e for e in info.paths[0].environment)
