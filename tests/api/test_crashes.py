"""Raw crashes turned into answers or clear errors: boolean indexing of 0-d arrays, reductions over no
elements, recursion deeper than the interpreter's share of CPython's stack, and traced values used
after their call returned.  SciPy's real functions where they exposed the crash."""
import dataclasses
import os
import sys

import numpy as np
import pytest
import scipy.special
import scipy.stats

import jitgrad
from e2e import assert_grad

HERE = os.path.basename(__file__)
X = np.array([0.3, 1.7, 0.9, 2.4, 1.1, 0.6, 1.9])


@pytest.mark.parametrize("scale", [0.5, 0.01])     # the condition True, then False (x[cond] is empty)
def test_piecewise_on_a_0d_array(scale):
    def f(x):
        s = np.sum(x) * scale
        return np.piecewise(s, [s > 1.0], [lambda v: v ** 2, lambda v: 3.0 * v])
    assert_grad(f, X)


def test_scalar_boolean_indexes():
    def f(x):
        y = x[True] * 2.0                     # a new axis of length 1
        z = x[np.False_]                      # one of length 0: selects nothing
        w = x.copy()
        w[False] = 5.0                        # writes nothing
        w[np.True_] = w * 3.0                 # writes everything
        return np.sum(y) + np.sum(w) + z.size
    g = assert_grad(f, X)
    assert np.allclose(g, 5.0)


@pytest.mark.parametrize("name", ["variation", "tmean", "tvar"])
def test_scipy_stats_through_apply_where(name):
    fn = getattr(scipy.stats, name)
    assert_grad(lambda x: fn(x), X)


def test_reductions_over_no_elements():
    def f(x):
        empty = x[:0]
        flag = (empty > 0).any()                # False
        every = (empty > 0).all()               # True
        return np.max(empty, initial=0.5) * np.sum(x) + np.min(empty, initial=2.0) + flag + every
    g = assert_grad(f, X)
    assert np.allclose(g, 0.5)
    assert np.isclose(jitgrad.value_and_grad(f)(X)[0], 0.5 * np.sum(X) + 3.0)


@pytest.mark.parametrize("name, extra", [("skew", ()), ("kurtosis", ()), ("moment", (3,)), ("sem", ()),
                                         ("trim_mean", (0.1,)), ("median_abs_deviation", ())])
def test_scipy_stats_reducing_empty_arrays_inside(name, extra):
    fn = getattr(scipy.stats, name)
    assert_grad(lambda x: fn(x, *extra), X)


def _descend(x, n):
    if n == 0:
        return x
    return _descend(x * 1.01, n - 1)


def test_shallow_recursion_works():
    g = jitgrad.jit_grad(lambda x: np.sum(_descend(x, 60)))(X)
    assert np.allclose(g, 1.01 ** 60)


def test_recursion_too_deep_is_a_clear_error_never_a_caught_exception():
    def caught(x):
        try:
            return np.sum(_descend(x, 2000))
        except Exception:                     # must not silently take this path
            return np.sum(x)
    for fn in (lambda x: np.sum(_descend(x, 2000)), caught):
        with pytest.raises(jitgrad.UnsupportedError, match="recursion too deep") as info:
            jitgrad.jit_grad(fn)(X)
        assert HERE in str(info.value)


def test_deeper_recursion_with_a_raised_limit():
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        g = jitgrad.jit_grad(lambda x: np.sum(_descend(x, 400)))(X)
    finally:
        sys.setrecursionlimit(before)
    assert np.allclose(g, 1.01 ** 400)


class _Carrier(Exception):
    """An exception raised by a traced function carrying one of its traced values out of the call."""

    def __init__(self, value):
        super().__init__("carrier")
        self.value = value


def test_traced_value_used_after_the_call_is_a_clear_error():
    def f(x):
        raise _Carrier(np.sin(x))
    with pytest.raises(_Carrier) as raised:
        jitgrad.jit_grad(f)(X)
    leaked = raised.value.value
    for use in (lambda: leaked + 1.0, lambda: np.sum(leaked), lambda: float(leaked[0]), lambda: np.asarray(leaked)):
        with pytest.raises(jitgrad.TraceError, match="has returned") as info:
            use()
        assert HERE in str(info.value)


class _Parameter:
    """A dataclass field descriptor storing into the instance's `__dict__` (astropy.cosmology's
    Parameter, reduced): reading a field not yet set raises KeyError, not AttributeError."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, cls=None):
        if obj is None:
            raise AttributeError(self.name)      # no default for the dataclass
        return obj.__dict__[self.name]

    def __set__(self, obj, value):
        obj.__dict__[self.name] = _validated(obj, value)


def _validated(obj, value):
    assert isinstance(obj, (_Cosmology, _FrozenCosmology))   # a native call given the half-built object
    return value * 1.0


@dataclasses.dataclass
class _Cosmology:
    H0: float = _Parameter()
    Om0: float = _Parameter()

    def rate(self):
        return self.H0 * np.sqrt(self.Om0)


@dataclasses.dataclass(frozen=True)
class _FrozenCosmology:          # its __init__ stores with object.__setattr__
    H0: float = _Parameter()
    Om0: float = _Parameter()


@pytest.mark.parametrize("cls", [_Cosmology, _FrozenCosmology])
def test_object_with_dataclass_descriptor_built_inside_the_loss(cls):
    def f(t):
        c = cls(H0=t[0], Om0=t[1])
        return c.H0 * np.sqrt(c.Om0)
    g = assert_grad(f, np.array([70.0, 0.3]))
    assert np.allclose(g, [np.sqrt(0.3), 70.0 / (2 * np.sqrt(0.3))])


def test_refusal_in_library_code_names_the_chain():
    def f(x):
        return np.sum(scipy.stats.vonmises.logpdf(x, 2.0))    # scipy.special.cosm1 has no rule
    line = f.__code__.co_firstlineno + 1
    with pytest.raises(jitgrad.UnsupportedError) as info:
        jitgrad.jit_grad(f)(X)
    message = str(info.value)
    assert f"{HERE}:{line}: " in message and "cosm1" in message
    chain = info.value.chain
    assert chain[0].endswith(f"{HERE}:{line}")
    assert len(chain) >= 2 and chain[-1].startswith("scipy/stats/_continuous_distns.py:")
    assert " -> ".join(chain) in message


def test_refusal_in_user_code_has_no_chain():
    def f(x):
        return np.sum(scipy.special.spence(x))
    with pytest.raises(jitgrad.UnsupportedError) as info:
        jitgrad.jit_grad(f)(X)
    assert info.value.chain is None and "called as" not in str(info.value)
