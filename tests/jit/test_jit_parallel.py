"""Big loop nests split across threads (jit/parallel.py): elementwise results bit-identical for every
thread count and equal to the reference executor; reductions equal the reference and deterministic per
thread count; the thread count is read at run time (set_num_threads) and from JITGRAD_NUM_THREADS;
exits from inside a thread's share (index out of bounds, the precise-math rerun) leave the kernel;
small loops and loop bodies are not split."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import jitgrad
from jitgrad.ir import Builder, run_trace
from jitgrad.jit import compile_trace, parallel
from jitgrad.jit.lower import lower

N = parallel.MIN_ITERATIONS + 4099          # not a multiple of any thread count used here


@pytest.fixture(autouse=True)
def restore_threads():
    before = parallel.num_threads()
    yield
    parallel.set_num_threads(before)


def run_with(kernel, inputs, threads):
    parallel.set_num_threads(threads)
    return kernel(inputs)


def elementwise_trace(shape):
    b = Builder()
    x, y, c = b.input(shape, np.float64), b.input(shape, np.float64), b.input((), np.float64)
    s = b.sin(c)                                # a 0-d register of the chunk, read by the split loop
    u = b.add(b.multiply(b.tanh(x), b.sin(y)), b.multiply(b.exp(b.negative(b.multiply(x, x))), s))
    return b.build([u, b.divide(u, b.add(y, b.const(3.0))), b.max(u, axis=tuple(range(len(shape))), keepdims=False)])


@pytest.mark.parametrize("shape", [(N,), (7, N // 7), (3, 5, N // 15)])
def test_elementwise_results_are_bit_identical_for_every_thread_count(shape):
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(shape), rng.standard_normal(shape), np.asarray(0.7)]
    trace = elementwise_trace(shape)
    assert "_par0" in lower(trace, "k")[0]
    kernel = compile_trace(trace)
    one = run_with(kernel, inputs, 1)
    for got, want in zip(one, run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for threads in (2, 3, 5):
        for got, want in zip(run_with(kernel, inputs, threads), one):
            assert np.array_equal(got, want), threads      # max is exact too


def test_the_thread_count_is_read_at_run_time():
    """The lane holding 2^53 loses every 1.0 added after it; split across more threads, fewer are lost.
    So the sum grows strictly with the thread count, and is the same on every call with one count."""
    x = np.ones(2 * N)
    x[0] = 2.0 ** 53
    b = Builder()
    xi = b.input(x.shape, np.float64)
    trace = b.build([b.sum(b.multiply(xi, b.const(1.0)), axis=(0,), keepdims=False)])
    kernel = compile_trace(trace)
    sums = [float(run_with(kernel, [x], t)[0]) for t in (1, 2, 4)]
    assert sums[0] < sums[1] < sums[2] <= 2.0 ** 53 + x.size
    assert float(run_with(kernel, [x], 2)[0]) == sums[1]
    np.testing.assert_allclose(sums, float(np.sum(x)), rtol=1e-10)


def test_an_index_out_of_bounds_in_another_threads_share_leaves_the_kernel():
    b = Builder()
    x, i = b.input((N,), np.float64), b.input((N,), np.int64)
    trace = b.build([b.add(b.index(x, i, spec=(("array", 0),)), x)])
    kernel = compile_trace(trace)
    x_value, index = np.arange(N, dtype=np.float64), np.arange(N)[::-1].copy()
    np.testing.assert_array_equal(run_with(kernel, [x_value, index], 2)[0], index + x_value)
    index[-3] = N + 5                                          # in the last thread's share
    for threads in (1, 2, 3):
        with pytest.raises(IndexError):
            run_with(kernel, [x_value, index], threads)


def test_precise_math_rerun_from_a_threads_share():
    x = np.linspace(-5, 5, N)
    x[-10:] = [800, -800, 1e5, np.inf, -np.inf, np.nan, 710, -745, 1e-320, 0]
    b = Builder()
    xi = b.input(x.shape, np.float64)
    trace = b.build([b.exp(b.multiply(xi, b.const(1.0)))])
    kernel = compile_trace(trace)
    with np.errstate(all="ignore"):
        want = np.exp(x)
    for threads in (1, 2):
        np.testing.assert_allclose(run_with(kernel, [x], threads)[0], want, rtol=1e-15)


def test_small_loops_and_loop_bodies_are_not_split():
    b = Builder()
    x = b.input((parallel.MIN_ITERATIONS - 1,), np.float64)
    assert "_par" not in lower(b.build([b.sin(x)]), "k")[0]
    b = Builder()
    x = b.input((1, N), np.float64)            # an outer trip count of 1: nothing to split
    assert "_par" not in lower(b.build([b.sin(x)]), "k")[0]


def test_gradient_of_big_elementwise_work_is_identical_with_two_threads():
    def f(x, y):
        return np.sum(np.tanh(x) * np.sin(y) ** 2 + np.exp(-x * x) * y)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(N), rng.standard_normal(N)
    g = jitgrad.value_and_grad(f, argnums=(0, 1))
    parallel.set_num_threads(1)
    v1, grads1 = g(x, y)
    parallel.set_num_threads(2)
    v2, grads2 = g(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(grads1, grads2))
    np.testing.assert_allclose(v2, v1, rtol=1e-12)
    assert g.cache_info().traces == 1


@pytest.mark.parametrize("setting, expected", [("3", 3), ("", len(os.sched_getaffinity(0)))])
def test_jitgrad_num_threads_sets_the_default(setting, expected):
    env = dict(os.environ, JITGRAD_NUM_THREADS=setting)
    code = "from jitgrad.jit import parallel; print(parallel.num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == expected


def test_bad_thread_counts_are_refused():
    env = dict(os.environ, JITGRAD_NUM_THREADS="0")
    code = "from jitgrad.jit import parallel"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "JITGRAD_NUM_THREADS" in out.stderr
    with pytest.raises(ValueError):
        parallel.set_num_threads(0)


def test_the_loops_over_tasks_stay_scalar_loops():
    """The kernel's loops over its tasks (filling task blocks, combining partials) carry loop metadata that
    keeps LLVM from vectorizing and unrolling them; the outlined body's loop is vectorized."""
    from jitgrad.jit.kernel import generated_code
    trace = elementwise_trace((N,))
    text, _ = lower(trace, "jg_par_test")
    units = text.count("call i64 @jg_parallel_run(")
    assert units >= 1 and text.count(", !llvm.loop !") >= 2 * units        # a fill and a combination each
    _, optimized, _ = generated_code(trace)
    functions = optimized.split("\ndefine ")
    heads = [f.split("\n")[0] for f in functions]
    outlined = [f for f, head in zip(functions, heads) if re.search(r"@\w+_par\d+\(", head)]
    callers = [f for f, head in zip(functions, heads) if "@jg_parallel_run(" in f and "@jg_parallel_run(" not in head]
    assert outlined and all(re.search(r"<\d+ x double>", f) for f in outlined)
    assert callers and not any(re.search(r"<\d+ x", f) for f in callers)
