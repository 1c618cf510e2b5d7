"""Kept outputs (jit/pywrapper.py): a kernel's wrapper returns an output array again once nothing else
refers to it, with every element of the new call's values; anything that could observe the reuse gets a
fresh array instead."""
import gc
import os
import weakref

import numpy as np
import pytest

import jitgrad
from jitgrad.ir.builder import Builder
from jitgrad.jit import pywrapper
from jitgrad.jit.kernel import compile_trace



def test_this_numpy_has_the_fast_wrapper():
    assert pywrapper.layout_ok()       # (else no kernel has a wrapper, and nothing below is kept)


def _kernel(shape=(6,)):
    """x -> (x * x, exp(x), sum(x)): two array outputs and a 0-d one."""
    b = Builder()
    x = b.input(shape, np.float64)
    return compile_trace(b.build([b.emit("multiply", x, x), b.emit("exp", x),
                                  b.emit("sum", x, axis=tuple(range(len(shape))), keepdims=False)]))


def _expected(x):
    return [x * x, np.exp(x), np.sum(x)]


def _check(outputs, x):
    for got, want in zip(outputs, _expected(x)):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_a_dropped_output_comes_back_holding_the_new_call_values():
    kernel = _kernel()
    x = np.linspace(-1.0, 1.0, 6)
    first = kernel.fast_call(x)
    ids = [id(a) for a in first]
    del first
    for k in range(5):
        y = x * (k + 2)
        again = kernel.fast_call(y)
        assert [id(a) for a in again] == ids
        _check(again, y)
        assert all(a.flags.owndata and a.flags.writeable for a in again)
        del again


@pytest.mark.parametrize("hold", ["variable", "view", "memoryview", "element of a list"])
def test_an_output_something_refers_to_is_not_reused(hold):
    kernel = _kernel()
    x = np.linspace(-1.0, 1.0, 6)
    first = kernel.fast_call(x)
    keep = {"variable": lambda a: a, "view": lambda a: a[1:], "memoryview": memoryview,
            "element of a list": lambda a: [a]}[hold](first[0])
    before = first[0].copy()
    del first
    second = kernel.fast_call(x + 1.0)
    _check(second, x + 1.0)
    held = np.asarray(keep[0] if hold == "element of a list" else keep)
    np.testing.assert_array_equal(held, before if hold != "view" else before[1:])


def test_an_output_with_a_weak_reference_is_never_reused():
    kernel = _kernel()
    x = np.linspace(-1.0, 1.0, 6)
    first = kernel.fast_call(x)
    ref = weakref.ref(first[0])
    before = first[0].copy()
    del first
    second = kernel.fast_call(x + 1.0)
    assert second[0] is not ref()
    if ref() is not None:
        np.testing.assert_array_equal(ref(), before)
    _check(second, x + 1.0)


@pytest.mark.parametrize("change", ["shape", "dtype", "readonly"])
def test_an_output_changed_in_place_is_not_reused(change):
    kernel = _kernel((2, 3))
    x = np.arange(6.0).reshape(2, 3) / 7
    first = kernel.fast_call(x)
    target = first[0]
    if change == "shape":
        target.shape = (3, 2)
    elif change == "dtype":
        target.dtype = np.int64
    else:
        target.flags.writeable = False
    ident = id(target)
    del first, target
    second = kernel.fast_call(x + 1.0)
    _check(second, x + 1.0)
    assert second[0].shape == (2, 3) and second[0].dtype == np.float64 and second[0].flags.writeable
    assert id(second[0]) != ident or second[0].flags.owndata


def test_outputs_above_the_limit_are_not_kept(monkeypatch):
    monkeypatch.setenv("JITGRAD_KEEP_OUTPUTS_MB", "0.0001")       # ~105 bytes: two 8-double arrays are more
    assert not pywrapper.keeps_outputs([((8,), np.dtype(np.float64))] * 2)
    assert pywrapper.keeps_outputs([((4,), np.dtype(np.float64))])
    kernel = _kernel((8,))
    x = np.linspace(0.0, 1.0, 8)
    ids = [id(a) for a in kernel.fast_call(x)]
    keep_alive = [np.empty(8) for _ in range(6)]        # (the freed arrays' memory is not handed back at once)
    assert [id(a) for a in kernel.fast_call(x)] != ids
    del keep_alive
    monkeypatch.setenv("JITGRAD_KEEP_OUTPUTS_MB", "0")
    assert not pywrapper.keeps_outputs([((1,), np.dtype(np.float64))])
    monkeypatch.setenv("JITGRAD_KEEP_OUTPUTS_MB", "lots")
    with pytest.raises(ValueError, match="JITGRAD_KEEP_OUTPUTS_MB"):
        pywrapper.keeps_outputs([((1,), np.dtype(np.float64))])


def test_kept_outputs_are_released_with_their_kernel():
    kernel = _kernel()
    first = kernel.fast_call(np.ones(6))
    refs = [weakref.ref(a) for a in first[:2]]
    del first
    assert all(r() is not None for r in refs)           # the wrapper keeps them
    del kernel
    gc.collect()
    assert all(r() is None for r in refs)


def test_gradients_stay_right_when_their_arrays_are_reused():
    """Through the API: a gradient with several outputs (tuple argnums) and one with one, called with
    new values after each result is dropped, against the reference executor."""
    def loss(w, b, x):
        return np.sum(np.tanh(x @ w + b) ** 2) + 0.5 * np.sum(w * w)

    rng = np.random.default_rng(3)
    compiled = jitgrad.jit_grad(loss, argnums=(0, 1))
    reference = jitgrad.jit_grad(loss, argnums=(0, 1), jit=False)
    single = jitgrad.jit_grad(loss)
    seen = set()
    for _ in range(6):
        w, b, x = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(5, 4))
        got, want = compiled(w, b, x), reference(w, b, x)
        seen.add(tuple(id(g) for g in got))
        for k in range(2):
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(single(w, b, x), want[0], rtol=1e-12, atol=1e-14)
        del got
    assert len(seen) == 1       # the arrays came back on every call


def test_the_wrapper_builtin_outlives_its_kernel_safely():
    """The builtin's method definition lives in its `self` (make_builtin): a builtin the kernel no
    longer holds (its kernel collected in a cycle) still calls and ends cleanly.  In a fresh process:
    a definition kept by the Kernel was freed first, and the builtin's end read freed memory."""
    import subprocess
    import sys
    script = """if True:
        import gc
        import numpy as np
        from jitgrad.ir.builder import Builder
        from jitgrad.jit.kernel import compile_trace
        survivors = []
        for k in range(40):
            b = Builder()
            x = b.input((4,), np.float64)
            kernel = compile_trace(b.build([b.emit("multiply", x, b.const(float(k)))]))
            kernel.cycle = kernel
            survivors.append(kernel.fast_call.__closure__ and kernel._wrapper)
            del kernel
            gc.collect()
        junk = [bytearray(64) for _ in range(10000)]       # reuse freed memory
        for k, builtin in enumerate(survivors):
            assert builtin.__self__.held and np.array_equal(builtin(np.ones(4)), np.full(4, float(k)))
        del survivors
        gc.collect()
        print("clean")
    """
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, JITGRAD_DISK_CACHE="0"))
    assert out.returncode == 0 and out.stdout.strip() == "clean", out.stderr[-2000:]
