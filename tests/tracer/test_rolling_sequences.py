"""Rolling `for` loops over traced arrays, `enumerate` and `zip` (tracer/interpretation/seqloops.py) and
row or column reads `X[i]`, `X[:, i]` in a loop over a range: each pattern is traced (its value compared
with CPython's and with the reference executor), rolled into one loop op, its gradient compared with
finite differences and its compiled gradient with the reference executor's."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from jitgrad.ir.loops import loops_in
from test_rolling import not_rolled, top_loops, traced

W = np.array([0.4, -0.7, 0.2])


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def over_elements(x):
    s = 0.0
    for y in x:
        s = s * 0.9 + np.sin(y * 1.3)
    return s


def over_rows(X):
    s = 0.0
    for row in X:
        s = s * 0.9 + np.tanh(row @ W)
    return s


def over_enumerate(x):
    s = 0.0
    for i, y in enumerate(x, 1):
        s = s * 0.9 + np.sin(y) * i
    return s


def over_zip(x):
    s = 0.0
    for a, b in zip(x, np.cos(x)[::-1]):
        s = s * 0.8 + a * b
    return s


def over_zip_range(X):
    s = 0.0
    for t, row, y in zip(range(3, 100, 2), X, X[:, 1]):
        s = s * 0.9 + np.sum(row * row) * t + y
    return s


def row_reads(X):
    s = 0.0
    for i in range(len(X)):
        s = s * 0.9 + np.tanh(X[i] @ W)
    return s


def column_reads(X):
    s = np.zeros(len(X))
    for i in range(X.shape[1]):
        s = np.sin(s + X[:, i])
    return s.sum()


VECTOR = np.linspace(-1.0, 1.5, 12)
MATRIX = np.sin(np.arange(36.0)).reshape(12, 3)
PATTERNS = {over_elements: VECTOR, over_enumerate: VECTOR, over_zip: VECTOR, over_rows: MATRIX,
            over_zip_range: MATRIX, row_reads: MATRIX, column_reads: MATRIX.T.copy()}


@pytest.mark.parametrize("fn", PATTERNS, ids=lambda f: f.__name__)
def test_pattern_rolls_into_one_loop_with_the_right_gradient(fn):
    x = PATTERNS[fn]
    trace, ctx = traced(fn, x)
    assert len(top_loops(trace)) == 1, ctx.loops.report()
    assert all("rolled" in line and "paths" not in line for line in ctx.loops.report()), ctx.loops.report()
    reference = assert_grad(fn, x, jit=False)                       # against finite differences
    np.testing.assert_allclose(jitgrad.jit_grad(fn)(x), reference, rtol=1e-11, atol=1e-14)


def test_first_call_does_not_grow_with_the_length():
    sizes = [len(traced(over_rows, np.resize(MATRIX, (n, 3)))[0].nodes) for n in (20, 200, 2000)]
    assert sizes[0] == sizes[1] == sizes[2]


def accumulate_into_last(x):
    y = x * 1.0
    for v in y:                                         # the last items read see the writes before them
        y[-1] = y[-1] * 0.5 + v
    return np.sum(y * y)


def test_writes_into_the_iterated_array_are_seen():
    trace, _ = traced(accumulate_into_last, VECTOR)
    assert len(top_loops(trace)) == 1
    assert_grad(accumulate_into_last, VECTOR, jit=False)


def last_row_written(X):
    X = X * 1.0
    s = 0.0
    for row in X:
        s = s * 0.9 + np.tanh(row @ W)
    row[0] = s                                          # the last row is still a view of X
    return np.sum(X * X)


def test_the_last_row_after_the_loop_is_a_view_of_the_array():
    trace, _ = traced(last_row_written, MATRIX)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == len(MATRIX) - 2          # the first and the last iteration interpreted
    assert_grad(last_row_written, MATRIX, jit=False)


def native_consumers(x):
    pairs = list(zip(x, x[::-1]))                       # zip and enumerate consumed by compiled code
    return sum(a * b for a, b in pairs) + sum(i * y for i, y in list(enumerate(x)))


def test_native_consumers_get_the_same_items():
    traced(native_consumers, VECTOR)
    assert_grad(native_consumers, VECTOR, jit=False)


def over_list(x):
    s = 0.0
    for a, w in zip(x, [1.0, 2.0, 3.0, 4.0]):
        s = s + a * w
    return s


def test_a_loop_over_another_iterable_says_why_it_is_not_rolled():
    trace, ctx = traced(over_list, VECTOR)
    assert not top_loops(trace)
    assert "it iterates over a zip" in not_rolled(ctx)


def branchy(x):
    s = 0.0
    for y in x:
        if y > 0:
            s = s * 0.9 + y
        else:
            s = s * 0.5 - y * y
    return s


def test_a_branch_on_the_element_becomes_a_cond_and_new_data_retraces_only_for_new_lengths():
    g = jitgrad.jit_grad(branchy)
    flipped = np.concatenate([VECTOR[:1], -VECTOR[1:]])       # the first iteration (interpreted) alike
    for x in (VECTOR, flipped, np.sin(7.0 * VECTOR) - 0.5):  # other sides in the loop op: one trace
        np.testing.assert_allclose(g(x), assert_grad(branchy, x, jit=False), rtol=1e-11, atol=1e-14)
    assert g.cache_info().traces == 1 and loops_in(g.cache_info().paths[0].trace)
    longer = np.linspace(-1.0, 1.0, 30)                      # a new length: the trip count changes
    np.testing.assert_allclose(g(longer), assert_grad(branchy, longer, jit=False), rtol=1e-11, atol=1e-14)
    assert g.cache_info().traces == 2
