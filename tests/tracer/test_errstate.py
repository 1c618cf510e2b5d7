"""NumPy's floating-point error mode: errstate blocks inside traced code cache normally, and a mode
that raises, set after tracing, is honoured (the call is answered as NumPy answers it, never by a
kernel that returns inf)."""
import warnings

import numpy as np
import pytest
import scipy.stats

import jitgrad

X = np.linspace(0.2, 1.4, 6)


def t_logpdf_sum(x):
    return np.sum(scipy.stats.t.logpdf(x, 3.0))


def test_scipy_t_logpdf_hits_the_cache_on_its_second_call():
    g = jitgrad.jit_grad(t_logpdf_sum)
    first = g(X)
    second = g(X)
    info = g.cache_info()
    assert info.traces == 1 and info.hits == 1, info.retraces
    nu = 3.0
    assert np.allclose(first, -(nu + 1) * X / (nu + X ** 2)) and np.allclose(second, first)


def log_in_errstate_block(x):
    with np.errstate(divide="ignore"):
        logs = np.log(x)
    return np.sum(np.maximum(logs, -50.0) * x)


def test_errstate_block_in_traced_code_caches_and_applies():
    g = jitgrad.value_and_grad(log_in_errstate_block)
    with_zero = np.concatenate([[0.0], X[1:]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # the block's "ignore" holds while tracing
        value, _ = g(with_zero)
        assert np.isclose(value, np.sum(np.log(X[1:]) * X[1:]))
        for _ in range(2):
            value, grad = g(X)
    assert np.isclose(value, np.sum(np.log(X) * X)) and np.allclose(grad, np.log(X) + 1.0)
    info = g.cache_info()
    assert info.traces == 1 and info.hits == 2, info.retraces
    assert not any("attribute errstate" in e for e in info.paths[0].environment)


def log_sum(x):
    return np.sum(np.log(x))


@pytest.mark.parametrize("jit", [True, False])
def test_raise_set_after_tracing_raises(jit):
    g = jitgrad.jit_grad(log_sum, jit=jit)
    with_zero = np.array([0.0, 1.0, 2.0])
    with np.errstate(divide="ignore"):
        g(with_zero)
        g(with_zero)                            # cached; the fast path is in place
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            g(with_zero)
        assert np.allclose(g(X), 1 / X)          # no error on these: answered, and right
    old = np.seterr(divide="raise")
    try:
        with pytest.raises(FloatingPointError):
            g(with_zero)
    finally:
        np.seterr(**old)
    traces = g.cache_info().traces
    with np.errstate(divide="ignore"):
        assert np.allclose(g(with_zero), [np.inf, 1.0, 0.5])
    assert g.cache_info().traces == traces       # back to a quiet mode: the cached kernel answers


def test_other_quiet_modes_use_the_cache():
    g = jitgrad.jit_grad(log_sum)
    g(X)
    with np.errstate(all="ignore"):
        g(X)
    with np.errstate(over="warn", under="ignore"):
        g(X)
    info = g.cache_info()
    assert info.traces == 1 and info.hits == 2


def test_raise_detected_without_numpys_mode_object(monkeypatch):
    """NumPy 1.x has no mode object to compare: the mode itself is read on every call."""
    from jitgrad.tracer.recording import errormode
    monkeypatch.setattr(errormode, "_current_mode", None)
    g = jitgrad.jit_grad(log_sum)
    with_zero = np.array([0.0, 1.0, 2.0])
    with np.errstate(divide="ignore"):
        g(with_zero)
        g(with_zero)
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            g(with_zero)
    assert g.cache_info().hits == 1
