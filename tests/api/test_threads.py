"""Threads: tracing state is per thread, rules load once for all threads, and threads missing the same
cache at once all get right answers and leave one cache entry per path.  The switch interval is made
tiny so that threads interleave inside tracing (the code before these fixes failed these tests)."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import jitgrad

SCALE = np.linspace(0.5, 1.5, 7)


def stepped(x):
    s = 0.0
    for i in range(6):
        s = s + np.sum(np.sin(x) * (i + 1))
    return s


def branching(x):
    if np.sum(x) > 0:        # a value guard: positive and negative arguments take two paths
        return np.sum(np.exp(-x) * SCALE)
    return np.sum(x ** 3)


def nested(x):
    inner = jitgrad.jit_grad(lambda y: np.sum(np.tanh(y) * x))
    return np.sum(inner(x) * x) + np.sum(x ** 2)


def with_value(x):
    return np.sum(np.log1p(x ** 2) * SCALE)


FUNCTIONS = [(stepped, jitgrad.jit_grad), (branching, jitgrad.jit_grad), (nested, jitgrad.jit_grad),
             (with_value, jitgrad.value_and_grad)]
ARGUMENTS = [np.linspace(0.1, 1.0, 7), -np.linspace(0.3, 1.2, 7)]


def _same(a, b):
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    return np.allclose(a, b, rtol=1e-12, atol=0)


@pytest.fixture
def tiny_switch_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _run_threads(n, work):
    """Start `n` threads running `work(k)` at once; the exceptions they raised."""
    errors, start = [], threading.Barrier(n)

    def run(k):
        try:
            start.wait()
            work(k)
        except Exception as e:      # noqa: BLE001 - collected and reported by the test
            errors.append(e)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.parametrize("jit", [True, False])
def test_eight_threads_trace_and_call_at_once(tiny_switch_interval, jit):
    expected = [[make(fn, jit=jit)(x) for x in ARGUMENTS] for fn, make in FUNCTIONS]
    for repeat in range(6):
        grads = [make(fn, jit=jit) for fn, make in FUNCTIONS]
        wrong = []

        def work(k):
            for step in range(2 * len(grads)):       # each thread: every function, both paths, twice
                i = (k + step) % len(grads)
                j = (k + step // len(grads)) % 2
                got = grads[i](ARGUMENTS[j])
                if not _same(got, expected[i][j]):
                    wrong.append((FUNCTIONS[i][0].__name__, j))
        errors = _run_threads(8, work)
        assert not errors, errors[:3]
        assert not wrong, wrong[:3]
        for g, (fn, _) in zip(grads, FUNCTIONS):
            info = g.cache_info()
            paths = 2 if fn is branching else 1
            assert info.traces == paths == len(info.paths), (fn.__name__, info.traces, info.retraces)


def test_threads_missing_one_function_leave_one_entry(tiny_switch_interval):
    for repeat in range(4):
        g = jitgrad.jit_grad(stepped)
        results = [None] * 8
        errors = _run_threads(8, lambda k: results.__setitem__(k, g(ARGUMENTS[0])))
        assert not errors, errors[:3]
        reference = jitgrad.jit_grad(stepped, jit=False)(ARGUMENTS[0])
        assert all(_same(r, reference) for r in results)
        assert g.cache_info().traces == 1
        hits = g.cache_info().hits
        assert _same(g(ARGUMENTS[0]), reference) and g.cache_info().hits == hits + 1


def test_rules_load_once_for_threads_starting_together():
    """A fresh process whose threads all make the first traced calls into SciPy at once: every thread
    must find the rules (one thread loads them, the others wait), none may see a half-loaded table."""
    script = textwrap.dedent("""
        import sys, threading
        sys.setswitchinterval(1e-6)
        import numpy as np, jitgrad, scipy.special as sc
        fns = [lambda x: np.sum(sc.erf(x) * np.tanh(x)), lambda x: np.sum(sc.expit(x) ** 2)]
        x = np.linspace(0.1, 1.0, 5)
        start, errors = threading.Barrier(8), []
        def run(k):
            start.wait()
            try:
                jitgrad.jit_grad(fns[k % 2], jit=False)(x)
            except Exception as e:
                errors.append(repr(e))
        threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print(len(errors), errors[:1])
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("0 "), done.stdout
