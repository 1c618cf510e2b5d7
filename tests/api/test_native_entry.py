"""The native cached-call entry (jit/entry.py, jitgrad/fastentry.py): a cached call runs as one C-level
call.  Each check it makes is changed here, and the call must then decline to the Python path and
give the right answer (retracing where the Python path retraces); the hits it serves are counted."""
import types

import numpy as np
import pytest

import jitgrad
from jitgrad.jit import entry as native

SCALE = 3.0
WEIGHTS = np.array([1.0, 2.0, 3.0])


def is_native(g):
    return type(g._entry) is types.BuiltinFunctionType


def squares(x):
    return np.sum(x * x)


def test_a_plain_gradient_runs_natively_and_counts_its_hits():
    g = jitgrad.jit_grad(squares)
    x = np.arange(8.0)
    g(x)
    assert is_native(g)
    for k in range(5):
        np.testing.assert_array_equal(g(x + k), 2 * (x + k))
    info = g.cache_info()
    assert info.traces == 1 and info.hits == 5


def test_keywords_arity_and_argument_types_decline():
    def f(x, scale):
        return scale * np.sum(x * x)
    g = jitgrad.jit_grad(f)
    x = np.arange(3.0)
    g(x, 2.0)
    assert not is_native(g)                  # a float argument: the Python path
    g = jitgrad.jit_grad(lambda x, y: np.sum(np.asarray(x) ** 2 * y))
    y = np.full(3, 2.0)
    g(x, y)
    assert is_native(g)
    np.testing.assert_allclose(g(x, y=5 * y), 20 * x)                # keywords: the full path
    np.testing.assert_allclose(g(x, y), 4 * x)
    with pytest.raises(TypeError):
        g(x)                                                         # another arity: as Python says
    np.testing.assert_allclose(g([0.0, 1.0, 2.0], y), [0.0, 4.0, 8.0])   # a list, not an array
    np.testing.assert_allclose(g(np.arange(6.0)[::2], y), 4 * np.arange(6.0)[::2])   # strided
    np.testing.assert_allclose(g(x.astype(np.float32), y), 4 * x)     # another dtype
    np.testing.assert_allclose(g(x, y), 4 * x)
    assert g.cache_info().traces == 4


def test_replaced_code_object_retraces():
    def f(x):
        return np.sum(x * x)
    g = jitgrad.jit_grad(f)
    x = np.arange(3.0)
    g(x)
    assert is_native(g)
    f.__code__ = (lambda x: np.sum(x * x * x)).__code__        # what a notebook's autoreload does
    np.testing.assert_allclose(g(x), 3 * x ** 2)
    assert g.cache_info().traces == 2


def test_error_mode_other_quiet_mode_and_raising_mode():
    g = jitgrad.jit_grad(lambda x: np.sum(np.exp(x)))
    x = np.array([1.0, 2.0])
    g(x)
    with np.errstate(all="ignore"):          # another mode object that does not raise: right answer
        np.testing.assert_allclose(g(x), np.exp(x))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        g(np.array([1000.0, 1.0]))               # NumPy raises where it would without jitgrad
    np.testing.assert_allclose(g(x), np.exp(x))
    assert g.cache_info().traces == 1


def test_static_arguments_checked_by_type_and_value():
    def f(x, n, flag):
        return np.sum(x * n) if flag else np.sum(x)
    g = jitgrad.jit_grad(f)
    x = np.array([1.0, 2.0])
    g(x, 1000, True)
    assert is_native(g)
    np.testing.assert_allclose(g(x, int("1000"), True), [1000.0, 1000.0])   # equal, another object
    assert g.cache_info().traces == 1 and g.cache_info().hits == 1
    np.testing.assert_allclose(g(x, 3, True), [3.0, 3.0])
    np.testing.assert_allclose(g(x, 3, False), [1.0, 1.0])
    np.testing.assert_allclose(g(x, 1, 1), [1.0, 1.0])                  # 1 is not True
    np.testing.assert_allclose(g(x, 1, True), [1.0, 1.0])
    np.testing.assert_allclose(g(x, np.int64(1), True), [1.0, 1.0])
    assert g.cache_info().traces == 6


def scaled(x):
    return SCALE * np.sum(x * WEIGHTS)


def test_globals_value_identity_and_arrays():
    global SCALE, WEIGHTS
    g = jitgrad.jit_grad(scaled)
    x = np.ones(3)
    g(x)
    assert is_native(g)
    saved = SCALE, WEIGHTS
    try:
        WEIGHTS[0] = 10.0                     # contents: read afresh on every call
        np.testing.assert_allclose(g(x), [30.0, 6.0, 9.0])
        SCALE = float("3.0")                  # an equal float, another object: served by the Python path
        np.testing.assert_allclose(g(x), [30.0, 6.0, 9.0])
        assert g.cache_info().traces == 1
        SCALE = 4.0
        np.testing.assert_allclose(g(x), [40.0, 8.0, 12.0])
        WEIGHTS = np.array([1.0, 1.0, 1.0])
        np.testing.assert_allclose(g(x), [4.0, 4.0, 4.0])
        WEIGHTS = np.ones(4)                  # another shape: retrace (the trace reads it again)
        with pytest.raises(ValueError):
            g(x)
        del WEIGHTS
        with pytest.raises(NameError):
            g(x)
    finally:
        SCALE, WEIGHTS = saved
        WEIGHTS[0] = 1.0


def test_closure_cells_and_helper_functions():
    scale = 2.0

    def helper(x):
        return np.sum(x * x)

    def f(x):
        return scale * helper(x)
    g = jitgrad.jit_grad(f)
    x = np.array([1.0, 2.0])
    g(x)
    assert is_native(g)
    scale = 5.0
    np.testing.assert_allclose(g(x), 10 * x)
    helper.__code__ = (lambda x: np.sum(x * x * x)).__code__
    np.testing.assert_allclose(g(x), 15 * x ** 2)

    def helper(x):                                   # noqa: F811 (the cell rebound)
        return np.sum(x)
    np.testing.assert_allclose(g(x), [5.0, 5.0])
    assert g.cache_info().traces == 4


def test_shadowed_builtin_and_rebound_module_retrace():
    namespace = {"np": np}
    exec("def f(x):\n    return np.sum(x * x) * len(x)", namespace)
    g = jitgrad.jit_grad(namespace["f"])
    x = np.array([1.0, 2.0])
    g(x)
    assert is_native(g)
    namespace["len"] = lambda x: 10
    np.testing.assert_allclose(g(x), 20 * x)
    namespace["np"] = types.SimpleNamespace(sum=lambda v: np.sum(v) * 2.0)
    np.testing.assert_allclose(g(x), 40 * x)
    assert g.cache_info().traces == 3


def test_kernel_exit_codes_resume_the_right_path():
    def f(x):
        return np.sum(x ** 2) if x[0] > 0 else np.sum(x ** 3)
    g = jitgrad.jit_grad(f)
    x = np.array([1.0, 2.0])
    g(x)
    np.testing.assert_allclose(g(-x), 3 * x ** 2)          # the guard fails in the kernel: retrace
    np.testing.assert_allclose(g(x), 2 * x)
    np.testing.assert_allclose(g(-x), 3 * x ** 2)
    assert g.cache_info().traces == 2


def test_packaged_results_and_transforms_run_natively():
    vg = jitgrad.value_and_grad(squares)
    x = np.arange(3.0)
    vg(x)
    assert is_native(vg)
    value, grad = vg(x + 1)
    assert value == np.sum((x + 1) ** 2) and np.allclose(grad, 2 * (x + 1))
    jitgrad.jvp(squares, (x,), (np.ones(3),))
    value, tangent = jitgrad.jvp(squares, (x + 1,), (np.ones(3),))
    assert value == np.sum((x + 1) ** 2) and tangent == np.sum(2 * (x + 1))
    h = jitgrad.hvp(squares)
    h(x, np.ones(3))
    np.testing.assert_allclose(h(x, np.arange(3.0)), 2 * np.arange(3.0))
    assert is_native(h)


def test_python_path_when_the_layout_is_unknown(monkeypatch):
    monkeypatch.setattr(native, "_state", {"layout": None})
    g = jitgrad.jit_grad(squares)
    x = np.arange(3.0)
    g(x)
    assert not is_native(g) and g._fast is not None
    np.testing.assert_array_equal(g(x), 2 * x)
    assert g.cache_info().hits == 1


def test_layout_probe_finds_the_offsets():
    found = native.layout()
    assert found is not None

    def probe():
        return 0
    import ctypes
    read = lambda obj, off: ctypes.c_void_p.from_address(id(obj) + off).value
    assert read(probe, found["code"]) == id(probe.__code__)
    assert read(types.CellType(probe), found["cell"]) == id(probe)
    assert read((probe, 1), found["items"]) == id(probe)


FLAG = None


def flagged(x):
    return np.sum(x * x) if FLAG is None else np.sum(x)


def test_a_name_read_as_none_and_then_deleted_is_not_served():
    """A place holding None that disappears (a deleted global, an emptied closure cell) is missing,
    not None: the call must not be answered from the cache."""
    g = jitgrad.jit_grad(flagged)
    x = np.array([1.0, 2.0])
    g(x)
    assert is_native(g)
    del globals()["FLAG"]
    try:
        with pytest.raises(NameError):
            g(x)
    finally:
        globals()["FLAG"] = None

    def make():
        flag = None

        def f(x):
            return np.sum(x * x) if flag is None else np.sum(x)

        def clear():
            nonlocal flag
            del flag
        return f, clear
    f, clear = make()
    g = jitgrad.jit_grad(f)
    g(x)
    assert is_native(g)
    clear()
    with pytest.raises(NameError):
        g(x)


def test_module_attributes_run_natively_and_every_change_is_seen():
    """`helpers.f(x)` and `config.SCALE` (a colleague's module) are read natively from the module's
    dict: rebinding the function, editing its code, changing the constant, deleting it (with a
    module `__getattr__` answering instead) and a module whose class is not exactly a module each get
    the right answer."""
    helpers = types.ModuleType("helpers")
    exec("import numpy as np\nSCALE = 2.0\ndef sq(x):\n    return np.sum(x * x)\n", vars(helpers))
    namespace = {"np": np, "helpers": helpers}
    exec("def f(x):\n    return helpers.SCALE * helpers.sq(x)", namespace)
    g = jitgrad.jit_grad(namespace["f"])
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(g(x), 4 * x)
    g(x)
    assert is_native(g) and int(g._cache.native_hits[0]) == 1
    helpers.SCALE = 3.0
    np.testing.assert_allclose(g(x), 6 * x)
    helpers.sq.__code__ = (lambda x: np.sum(x * x * x)).__code__
    np.testing.assert_allclose(g(x), 9 * x ** 2)
    exec("def sq(x):\n    return np.sum(x)\n", vars(helpers))
    np.testing.assert_allclose(g(x), [3.0, 3.0])
    del helpers.SCALE
    helpers.__getattr__ = lambda name: 10.0 if name == "SCALE" else None
    np.testing.assert_allclose(g(x), [10.0, 10.0])
    traces = g.cache_info().traces
    np.testing.assert_allclose(g(x), [10.0, 10.0])
    assert g.cache_info().traces == traces == 5

    class Lazy(types.ModuleType):
        SCALE = property(lambda self: 7.0)
    helpers.__class__ = Lazy               # a subclass: attributes may be computed; the Python path reads
    np.testing.assert_allclose(g(x), [7.0, 7.0])
    g(x)
    assert g.cache_info().traces == 6 and not is_native(g)


def count_first(n, p):
    """The trip count before the array: the kernel takes it after the arrays."""
    s = p[0]
    for _ in range(n):
        s = s + 0.01 * np.sin(s * p[1])
    return s * s


def test_a_run_time_trip_count_is_passed_natively_as_an_int(monkeypatch):
    """The promoted form (tracer/interpretation/sizedloops.py) runs natively: its int argument goes to
    the kernel's wrapper as a Python int; a bool, or an int beyond int64, declines to the Python path,
    which answers it or raises as it would."""
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")
    g = jitgrad.jit_grad(count_first, argnums=1)
    p = np.array([0.4, 1.7])
    g(2000, p)
    g(5, p)
    assert is_native(g)
    hits = int(g._cache.native_hits[0])
    eps = 1e-6
    for n in (0, 1, 2, 3, 300, 40_000):
        fd = [(count_first(n, p + eps * e) - count_first(n, p - eps * e)) / (2 * eps) for e in np.eye(2)]
        np.testing.assert_allclose(g(n, p), fd, rtol=1e-6, atol=1e-10)
    assert int(g._cache.native_hits[0]) == hits + 6
    info = g.cache_info()
    assert (info.traces, info.promoted) == (1, 1)
    np.testing.assert_allclose(g(True, p), g(1, p))         # True: not an int to the wrapper
    with pytest.raises(OverflowError):
        g(2 ** 70, p)
