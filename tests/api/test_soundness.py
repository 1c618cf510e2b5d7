"""Soundness of the cache: changing each guarded thing retraces and gives the right answer; changing
what is not guarded (array contents) gives the right answer without retracing."""
import numpy as np
import pytest

import jitgrad

ARRAY = np.array([1.0, 2.0, 3.0])
SCALE = 2.0
MODE = "square"


def uses_global_array(x):
    return np.sum(ARRAY * x)


def uses_global_scalars(x):
    if MODE == "square":
        return SCALE * np.sum(x ** 2)
    return SCALE * np.sum(x)


def test_shape_change_retraces():
    g = jitgrad.jit_grad(lambda x: np.sum(x ** 2))
    assert np.allclose(g(np.ones(3)), 2 * np.ones(3))
    assert np.allclose(g(np.ones(4)), 2 * np.ones(4))
    assert g.cache_info().traces == 2
    g(np.ones(3) * 5)
    assert g.cache_info().traces == 2 and g.cache_info().hits == 1


def test_dtype_change_retraces():
    g = jitgrad.jit_grad(lambda x: np.sum(x ** 3))
    a = g(np.ones(3))
    b = g(np.ones(3, dtype=np.float32))
    assert a.dtype == np.float64 and b.dtype == np.float32
    assert g.cache_info().traces == 2


def test_static_int_change_retraces():
    def f(x, n):
        return np.sum(x ** n)
    g = jitgrad.jit_grad(f)
    x = np.array([1.5, 2.0])
    assert np.allclose(g(x, 2), 2 * x)
    assert np.allclose(g(x, 3), 3 * x ** 2)
    assert g.cache_info().traces == 2
    assert np.allclose(g(x, 2), 2 * x)
    assert g.cache_info().traces == 2


def test_python_float_is_dynamic():
    g = jitgrad.jit_grad(lambda x, s: s * np.sum(x ** 2))
    x = np.ones(2)
    assert np.allclose(g(x, 1.0), 2 * x)
    assert np.allclose(g(x, 3.0), 6 * x)
    assert g.cache_info().traces == 1


def test_global_array_contents_are_read_fresh():
    global ARRAY
    g = jitgrad.jit_grad(uses_global_array)
    x = np.ones(3)
    assert np.allclose(g(x), ARRAY)
    ARRAY[0] = 10.0                                 # mutate contents: no retrace, fresh answer
    try:
        assert np.allclose(g(x), [10.0, 2.0, 3.0])
        assert g.cache_info().traces == 1
        ARRAY = np.array([1.0, 1.0])                # rebind with a new shape: retrace
        with pytest.raises(ValueError):
            uses_global_array(x)                    # CPython fails too ...
        with pytest.raises(ValueError):
            g(x)                                    # ... and so does jitgrad, when it retraces
        ARRAY = np.array([4.0, 5.0, 6.0])           # same shape, new object: fresh answer
        assert np.allclose(g(x), [4.0, 5.0, 6.0])
        assert g.cache_info().traces == 1
    finally:
        ARRAY = np.array([1.0, 2.0, 3.0])


def test_global_scalar_and_string_are_guarded():
    global SCALE, MODE
    g = jitgrad.jit_grad(uses_global_scalars)
    x = np.array([1.0, 2.0])
    try:
        assert np.allclose(g(x), 4 * x)
        SCALE = 3.0
        assert np.allclose(g(x), 6 * x)
        MODE = "linear"
        assert np.allclose(g(x), [3.0, 3.0])
        info = g.cache_info()
        assert info.traces == 3
        assert any("SCALE" in r for r in info.retraces) and any("MODE" in r for r in info.retraces)
    finally:
        SCALE, MODE = 2.0, "square"


def test_closure_value_change_retraces():
    def make():
        k = 2.0
        w = np.array([1.0, -1.0])

        def f(x):
            return k * np.sum(w * x ** 2)

        def set_k(v):
            nonlocal k
            k = v
        return f, set_k, w
    f, set_k, w = make()
    g = jitgrad.jit_grad(f)
    x = np.array([1.0, 3.0])
    assert np.allclose(g(x), 2 * 2 * w * x)
    set_k(5.0)
    assert np.allclose(g(x), 5 * 2 * w * x)
    w[1] = 7.0                                      # closure array contents: fresh, no retrace
    assert np.allclose(g(x), 5 * 2 * w * x)
    assert g.cache_info().traces == 2


def test_attribute_array_and_scalar():
    class Model:
        def __init__(self):
            self.w = np.array([1.0, 2.0])
            self.scale = 1.0

        def loss(self, x):
            return self.scale * np.sum(self.w * x * x)
    m = Model()
    g = jitgrad.jit_grad(m.loss)
    x = np.array([1.0, 1.0])
    assert np.allclose(g(x), 2 * m.w * x)
    m.w = np.array([3.0, 4.0])
    assert np.allclose(g(x), 2 * m.w * x)
    m.scale = 2.0
    assert np.allclose(g(x), 4 * m.w * x)
    assert g.cache_info().traces == 2


def test_branch_outcome_change_retraces_and_is_correct():
    def f(x):
        y = x[0] * x[1]
        return y ** 2 if y > 1.0 else -y
    g = jitgrad.jit_grad(f)
    a, b = np.array([2.0, 3.0]), np.array([0.1, 0.2])
    assert np.allclose(g(a), [2 * 6 * 3, 2 * 6 * 2])
    assert np.allclose(g(b), [-0.2, -0.1])
    info = g.cache_info()
    assert info.traces == 2 and "guard failed" in info.retraces[0]
    assert np.allclose(g(a), [36.0, 24.0]) and g.cache_info().traces == 2


def test_int_of_traced_value_is_guarded():
    def f(x):
        n = int(x[0])
        return np.sum(x[1:] ** n)
    g = jitgrad.jit_grad(f)
    assert np.allclose(g(np.array([2.5, 3.0])), [0.0, 6.0])
    assert np.allclose(g(np.array([3.5, 3.0])), [0.0, 27.0])
    assert g.cache_info().traces == 2


def test_traced_index_is_guarded():
    def f(x, idx):
        i = int(np.argmax(idx))
        return x[i] ** 2
    g = jitgrad.jit_grad(f)
    x = np.array([1.0, 2.0, 3.0])
    assert np.allclose(g(x, np.array([0.0, 5.0, 1.0])), [0.0, 4.0, 0.0])
    assert np.allclose(g(x, np.array([9.0, 5.0, 1.0])), [2.0, 0.0, 0.0])
    assert g.cache_info().traces == 2


def test_recompile_limit_warns_once_and_stays_correct():
    def f(x, n):
        return np.sum(x) * n
    g = jitgrad.jit_grad(f, max_traces=3)
    x = np.ones(2)
    with pytest.warns(jitgrad.JitgradWarning, match="limit"):
        for n in range(6):
            assert np.allclose(g(x, n), n)
    info = g.cache_info()
    assert info.traces == 3 and info.uncached_calls == 3


def test_arguments_are_not_modified():
    def f(x):
        x[0] = 5.0
        x *= 2.0
        return np.sum(x)
    x = np.array([1.0, 2.0])
    g = jitgrad.jit_grad(f)(x)
    assert np.array_equal(x, [1.0, 2.0])
    assert np.allclose(g, [0.0, 2.0])


def test_cached_fast_path_declines_what_it_must():
    def f(x):
        y = np.asarray(x)
        return np.sum(y ** 2) if y[0] > 0 else np.sum(y ** 3)
    g = jitgrad.jit_grad(f)
    x = np.array([1.0, 2.0])
    g(x)
    assert np.allclose(g(x * 3), 2 * x * 3)                   # served by the fast path
    grad_list = g([1.0, 2.0])                                 # a list: another signature
    assert isinstance(grad_list, list) and np.allclose(grad_list, [2.0, 4.0])
    assert g(x.astype(np.float32)).dtype == np.float32        # another dtype: retrace
    assert np.allclose(g(np.array([1.0, 9.0, 2.0, 9.0])[::2]), [2.0, 4.0])   # a strided view
    assert np.allclose(g(-x), 3 * x ** 2)                     # same shapes, other branch
    assert np.allclose(g(x), 2 * x)                           # back on the first path
    info = g.cache_info()
    assert info.traces == 4 and info.hits >= 3


def helper_model(x):
    return np.sum(x ** 2)


def test_redefined_global_function_retraces():
    global helper_model
    g = jitgrad.jit_grad(lambda x: helper_model(x) * 2.0)
    x = np.array([1.0, 2.0])
    assert np.allclose(g(x), 4 * x)
    saved = helper_model
    try:
        def helper_model(x):                         # as when a notebook cell is edited and re-run
            return np.sum(x ** 3)
        assert np.allclose(g(x), 6 * x ** 2)
        assert g.cache_info().traces == 2 and "helper_model" in g.cache_info().retraces[0]
    finally:
        helper_model = saved


def test_global_read_in_a_loop_is_one_assumption():
    def f(x):
        total = 0.0
        for i in range(50):
            total = total + SCALE * x[i % 2]
        return total
    g = jitgrad.jit_grad(f)
    g(np.ones(2))
    environment = g.cache_info().paths[0].environment
    assert sum("SCALE" in e for e in environment) == 1
    assert len(environment) == 2     # and the names of the module (the builtin `range` not shadowed)


ACTIVATION = np.tanh


class Settings:
    scale = 2.0


def test_rebound_library_function_and_class_attribute_retrace():
    """Rebinding a user place retraces even when the new value is a library function or the place is
    a class attribute (both were once treated as stable and could serve a stale trace)."""
    global ACTIVATION
    g = jitgrad.jit_grad(lambda x: Settings.scale * np.sum(ACTIVATION(x)))
    x = np.array([0.3, -0.8])
    assert np.allclose(g(x), 2.0 / np.cosh(x) ** 2)
    try:
        ACTIVATION = np.sin
        assert np.allclose(g(x), 2.0 * np.cos(x))
        Settings.scale = 5.0
        assert np.allclose(g(x), 5.0 * np.cos(x))
    finally:
        ACTIVATION, Settings.scale = np.tanh, 2.0
    assert g.cache_info().traces == 3


def test_function_stored_on_an_object_is_guarded():
    class Model:
        def __init__(self):
            self.act = np.tanh

        def loss(self, x):
            return np.sum(self.act(x))
    m = Model()
    g = jitgrad.jit_grad(m.loss)
    x = np.array([0.1, 0.4])
    assert np.allclose(g(x), 1 / np.cosh(x) ** 2)
    m.act = np.exp
    assert np.allclose(g(x), np.exp(x))
    assert g(x) is not None and g.cache_info().traces == 2          # method reads do not retrace


def _weighted(x, w=np.ones(3), *, power=2.0):
    return np.sum(w * x ** power)


def test_default_array_changed_in_place_is_read_fresh():
    g = jitgrad.jit_grad(lambda x: _weighted(x))
    x = np.array([1.0, 2.0, 3.0])
    assert np.allclose(g(x), 2 * x)
    saved = _weighted.__defaults__[0].copy()
    try:
        _weighted.__defaults__[0][:] = [1.0, 2.0, 3.0]
        assert np.allclose(g(x), 2 * x * np.array([1.0, 2.0, 3.0]))
        assert g.cache_info().traces == 1          # contents are an input, not a constant
    finally:
        _weighted.__defaults__[0][:] = saved


def test_rebound_defaults_retrace():
    def f(x, scale=1.0):
        return scale * np.sum(x ** 2)
    g = jitgrad.jit_grad(f)
    x = np.array([1.0, -2.0])
    assert np.allclose(g(x), 2 * x)
    f.__defaults__ = (3.0,)
    assert np.allclose(g(x), 6 * x)
    saved = _weighted.__kwdefaults__
    try:
        h = jitgrad.jit_grad(lambda x: _weighted(x))
        y = np.array([1.0, 2.0, 3.0])
        assert np.allclose(h(y), 2 * y)
        _weighted.__kwdefaults__ = {"power": 3.0}
        assert np.allclose(h(y), 3 * y ** 2)
        assert h.cache_info().traces == 2
    finally:
        _weighted.__kwdefaults__ = saved
