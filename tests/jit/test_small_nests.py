"""Small fixed-shape ops as straight-line code (jit/llvmtext.py UNROLL_ELEMENTS): a loop nest of at most
UNROLL_ELEMENTS iterations is emitted once per index, without a loop, and computes what the reference
executor computes; a bigger nest stays a loop."""
import numpy as np

from jitgrad.ir import Builder, run_trace
from jitgrad.jit import compile_trace
from jitgrad.jit.llvmtext import UNROLL_ELEMENTS
from jitgrad.jit.lower import lower


def filter_step(n):
    """A Kalman-style step on n x n matrices: products (reductions over n), elementwise math, a sum."""
    b = Builder()
    a, p, q = b.input((n, n), np.float64), b.input((n, n), np.float64), b.input((), np.float64)
    ap = b.dot_general(a, p, contract=((1,), (0,)), batch=((), ()))
    apa = b.dot_general(ap, a, contract=((1,), (1,)), batch=((), ()))
    p2 = b.add(apa, b.multiply(q, b.exp(p)))
    loss = b.sum(b.multiply(p2, p2), axis=(0, 1), keepdims=False)
    return b.build([p2, loss])


def loops_in(text):
    """The number of loop headers (phi of an i64 counter) in module text."""
    return text.count(" = phi i64 [ 0, ")


def test_nests_of_a_few_elements_are_straight_line_and_match_the_reference():
    assert UNROLL_ELEMENTS >= 4
    trace = filter_step(2)                     # 2x2 results, reductions over 2: every nest <= 4 iterations
    text, _ = lower(trace, "jg_small")
    assert loops_in(text) == 0
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), np.float64(0.3)]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_bigger_nests_stay_loops_and_match_the_reference():
    trace = filter_step(3)                     # 9 elements per result: loops
    text, _ = lower(trace, "jg_small")
    assert loops_in(text) > 0
    rng = np.random.default_rng(4)
    inputs = [rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), np.float64(0.3)]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-13)
