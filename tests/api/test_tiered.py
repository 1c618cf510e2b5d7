"""Tiered first calls (jitgrad/backend.py): a new trace answers from the reference executor while its
kernel compiles in a background thread, and later calls switch to the kernel; a trace the reference
executor would run slowly compiles first; a failed background compile leaves the reference executor
answering, and says so; answers are the same on every tier."""
import threading

import numpy as np
import pytest

import jitgrad
from jitgrad import backend


@pytest.fixture(autouse=True)
def background(monkeypatch):
    monkeypatch.setenv("JITGRAD_SYNC_COMPILE", "0")


def branchy(x, w):
    h = np.tanh(x @ w)
    if h.sum() > 0:
        return np.sum(h ** 2)
    return np.sum(np.sin(h))


X = np.random.default_rng(0).normal(size=(5, 3))
W = np.random.default_rng(1).normal(size=3)


def expected(x, w):
    return jitgrad.jit_grad(branchy, argnums=1, jit=False)(x, w)


def test_first_calls_answer_while_the_kernel_compiles_then_the_kernel_answers(monkeypatch):
    release, compiles = threading.Event(), []
    real = backend.compile_trace

    def slow_compile(trace, use_jit, about=None):
        if not use_jit:               # (the expected answers: the reference executor)
            return real(trace, use_jit, about)
        assert threading.current_thread() is not threading.main_thread()
        release.wait(30)
        compiles.append(trace)
        return real(trace, use_jit, about)
    monkeypatch.setattr(backend, "compile_trace", slow_compile)
    stored = []      # the trace record (jitgrad/persist.py) is written once the kernel is ready, with it
    monkeypatch.setattr(jitgrad.persist, "store", lambda *args: args[0].jit and stored.append(args[4:7]))
    grad = jitgrad.jit_grad(branchy, argnums=1)
    for w in (W, W * 1.1):   # answered while the compile waits: the reference executor
        np.testing.assert_allclose(grad(X, w), expected(X, w), rtol=1e-12)
    (path,) = grad.cache_info().paths
    assert path.machine_code == "pending" and "background" in path.note and grad._fast is None
    assert stored == []
    release.set()
    assert jitgrad.wait_compiled(30)
    ((kernel, backend_name, note),) = stored
    assert backend_name == "llvm" and note == "" and kernel.direct() is not None
    (path,) = grad.cache_info().paths
    assert len(compiles) == 1 and path.backend == "llvm" and path.note == ""
    assert path.machine_code in ("compiled", "disk", "memory")
    np.testing.assert_allclose(grad(X, W * 0.9), expected(X, W * 0.9), rtol=1e-12)
    assert grad._fast is not None     # the kernel's fast path took over
    np.testing.assert_allclose(grad(X, -W), expected(X, -W), rtol=1e-12)   # the other branch: a new trace
    assert grad.cache_info().traces == 2 and jitgrad.wait_compiled(30)


def test_a_guard_failing_in_the_reference_executor_retraces():
    grad = jitgrad.jit_grad(branchy, argnums=1)
    for w in (W, -W, W, -W * 2):
        np.testing.assert_allclose(grad(X, w), expected(X, w), rtol=1e-12)
    assert grad.cache_info().traces == 2
    assert jitgrad.wait_compiled(30)
    assert {p.backend for p in grad.cache_info().paths} == {"llvm"}


def test_a_failed_background_compile_leaves_the_reference_executor_answering(monkeypatch):
    real = backend.compile_trace

    def broken(trace, use_jit, about=None):
        if not use_jit:
            return real(trace, use_jit, about)
        raise RuntimeError("no LLVM today")
    monkeypatch.setattr(backend, "compile_trace", broken)
    grad = jitgrad.jit_grad(branchy, argnums=1)
    grad(X, W)
    assert jitgrad.wait_compiled(30)
    (path,) = grad.cache_info().paths
    assert path.backend == "reference" and "no LLVM today" in path.note and path.machine_code == ""
    np.testing.assert_allclose(grad(X, W * 1.2), expected(X, W * 1.2), rtol=1e-12)
    assert grad._fast is None and grad.cache_info().hits == 1


def pendulum(p, steps):
    theta, omega = p[0], p[1]
    loss = 0.0
    for _ in range(steps):
        theta, omega = theta + 0.01 * omega, omega - 0.01 * np.sin(theta)
        loss = loss + theta * theta
    return loss


def test_a_trace_slow_for_the_reference_executor_compiles_before_its_first_call(monkeypatch):
    p = np.array([1.0, 0.0])
    grad = jitgrad.jit_grad(pendulum)
    grad(p, 20_000)                   # a rolled loop: 20,000 iterations of its body
    (path,) = grad.cache_info().paths
    assert backend.reference_cost(path.trace) > backend.MAX_REFERENCE_US
    assert path.backend == "llvm" and path.note == "" and path.machine_code != "pending"
    small = jitgrad.jit_grad(branchy, argnums=1)
    small(X, W)
    assert backend.reference_cost(small.cache_info().paths[0].trace) < backend.MAX_REFERENCE_US


def kalman(obs, q):
    """Negative log-likelihood of a 2x2 constant-velocity Kalman filter: many small-matrix ops per step."""
    a, h = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])
    m, p, nll = np.zeros(2), np.eye(2), 0.0
    for y in obs:
        m, p = a @ m, a @ p @ a.T + q * np.eye(2)
        s = h @ p @ h.T + 0.5
        gain = p @ h.T / s
        v = y - h @ m
        m, p = m + gain @ v, p - gain @ h @ p
        nll = nll + np.sum(v * v / s + np.log(s))
    return nll


def test_a_trace_slower_to_compile_than_to_run_on_the_reference_executor_answers_first(monkeypatch):
    """The reference executor would take over MAX_REFERENCE_US, but compiling the filter's loop nests takes
    longer still: the first calls do not wait for the compile."""
    release, compiled_in = threading.Event(), []
    real = backend.compile_trace

    def held_compile(trace, use_jit, about=None):
        if use_jit:
            compiled_in.append(threading.current_thread())
            release.wait(30)
        return real(trace, use_jit, about)
    monkeypatch.setattr(backend, "compile_trace", held_compile)
    obs = np.cumsum(np.random.default_rng(2).normal(size=300)) * 0.1
    grad = jitgrad.jit_grad(kalman)
    first = grad(obs, 0.1)
    (path,) = grad.cache_info().paths
    assert backend.MAX_REFERENCE_US < backend.reference_cost(path.trace) < backend.compile_cost(path.trace)
    assert not backend.compiles_first(path.trace) and path.machine_code == "pending"
    release.set()
    assert jitgrad.wait_compiled(60) and compiled_in and threading.main_thread() not in compiled_in
    (path,) = grad.cache_info().paths
    assert path.backend == "llvm" and path.machine_code in ("compiled", "disk", "memory")
    np.testing.assert_allclose(grad(obs, 0.1), first, rtol=1e-10)
    np.testing.assert_allclose(first, jitgrad.jit_grad(kalman, jit=False)(obs, 0.1), rtol=1e-12)


def test_the_compile_estimate_counts_loop_bodies_once():
    """compile_cost walks a rolled loop's body once (its code is emitted once), reference_cost trip times."""
    grad = jitgrad.jit_grad(kalman, jit=False)
    for n in (200, 2_000):
        grad(np.linspace(0.0, 1.0, n), 0.1)
    short, long = (path.trace for path in grad.cache_info().paths)
    assert backend.compile_cost(short) == backend.compile_cost(long)
    assert backend.reference_cost(long) > 9 * backend.reference_cost(short)


def test_the_synchronous_mode_compiles_before_the_first_call(monkeypatch):
    monkeypatch.setenv("JITGRAD_SYNC_COMPILE", "1")
    grad = jitgrad.jit_grad(branchy, argnums=1)
    grad(X, W)
    (path,) = grad.cache_info().paths
    assert path.note == "" and path.machine_code in ("compiled", "disk", "memory")
    assert grad._fast is not None


OVERLAPPING = r"""
import numpy as np, scipy.special, jitgrad
fns = [lambda x: np.sum(np.tanh(x) ** 2), lambda x: np.sum(scipy.special.erf(x) * x),
       lambda x: np.sum(np.outer(x, x) @ x), lambda x: float(np.prod(np.cos(x)))]
x = np.linspace(0.1, 0.9, 6)
grads = [jitgrad.jit_grad(f) for f in fns]
first = [g(x) for g in grads]            # four background compiles overlapping, the process's first ones
assert jitgrad.wait_compiled(120)
for g, f0 in zip(grads, first):
    np.testing.assert_allclose(g(x), f0, rtol=1e-12)
    (path,) = g.cache_info().paths
    assert path.backend == "llvm" and path.machine_code in ("compiled", "disk", "memory"), path.note
print("ok")
"""


def test_overlapping_background_compiles_in_a_fresh_process():
    """The first compiles of a process run at once in several threads (one-time set-up included)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, JITGRAD_SYNC_COMPILE="0", JITGRAD_DISK_CACHE="0")
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", OVERLAPPING], env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_background_compile_starts_once_the_first_answer_is_computed(monkeypatch):
    """Lowering is Python code: started before the reference executor's first answer, it would share
    the GIL with it.  A kernel made but never called starts compiling when `wait_compiled` waits."""
    events = []
    real_run, real_compile = backend.run_trace, backend.compile_trace
    monkeypatch.setattr(backend, "run_trace", lambda *a: events.append("reference") or real_run(*a))
    monkeypatch.setattr(backend, "compile_trace", lambda *a: events.append("compile") or real_compile(*a))
    grad = jitgrad.jit_grad(branchy, argnums=1)
    np.testing.assert_allclose(grad(X, W), expected(X, W), rtol=1e-12)
    assert jitgrad.wait_compiled(30) and events[:2] == ["reference", "compile"]
    (path,) = grad.cache_info().paths
    trace, info = path.trace, type(path)("", "", "", [], [], 0)
    kernel = backend.start_kernel(trace, True, {}, info)
    assert type(kernel) is backend.TieredKernel and not kernel.done.is_set()
    assert jitgrad.wait_compiled(30) and kernel.done.is_set() and info.backend == "llvm"


FIRST_CACHED_CALL = r"""
import numpy as np, jitgrad
from jitgrad.jit import engine
grad = jitgrad.jit_grad(lambda x: np.sum(np.tanh(x) ** 2))
x = np.linspace(0.1, 0.9, 6)
first = grad(x)                          # the reference executor answers; the kernel compiles meanwhile
assert jitgrad.wait_compiled(120)
compiled = []
real = engine.compile_ir
engine.compile_ir = lambda *a, **k: compiled.append(a[1]) or real(*a, **k)
np.testing.assert_allclose(grad(x), first, rtol=1e-12)
assert compiled == [], compiled
assert grad.cache_info().hits == 1 and grad._fast is not None
print("ok")
"""


def test_the_first_cached_call_after_a_background_compile_compiles_nothing():
    """The native cached-call entry (compiled once per process) is made in the compile thread: built
    on the first cached call instead, it cost that call ~60 ms and made the bench time single cold
    calls (pendulum, 100 steps: 20 us against 2.3 us)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, JITGRAD_SYNC_COMPILE="0", JITGRAD_DISK_CACHE="0")
    out = subprocess.run([sys.executable, "-c", FIRST_CACHED_CALL], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
