"""Shifts that cancel (ir/shift_invariance.py): the max of a stable log-sum-exp or softmax is a constant
for AD.  The proof is checked on traces that cancel and on near misses that must not; the derivatives
with the max dropped are checked against finite differences, the closed forms, forward mode and second
order, including rows whose maximum is tied."""
import numpy as np
import pytest

import jitgrad
from jitgrad.ir import autodiff
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.shift_invariance import shift_invariant

from gradcheck import check_jvp, check_vjp, trace_function

LSE = """
trace (%0: f64[4,5], %1: f64[4,5]) {
  %2 = max %0 {axis=(1,), keepdims=True} : f64[4,1]
  %3 = subtract %0, %2 : f64[4,5]
  %4 = exp %3 : f64[4,5]
  %5 = sum %4 {axis=(1,), keepdims=False} : f64[4]
  %6 = log %5 : f64[4]
  %7 = index %2 {spec=(('slice', 0, 4, 1), ('int', 0))} : f64[4]
  %8 = add %6, %7 : f64[4]
  %9 = multiply %1, %0 : f64[4,5]
  %10 = sum %9 {axis=(1,), keepdims=False} : f64[4]
  %11 = subtract %8, %10 : f64[4]
  %12 = sum %11 {axis=(0,), keepdims=False} : f64[]
  return %12
}"""

LOG_SOFTMAX = """
trace (%0: f64[4,5], %1: f64[4,5]) {
  %2 = max %0 {axis=(1,), keepdims=False} : f64[4]
  %3 = index %2 {spec=(('slice', 0, 4, 1), ('newaxis',))} : f64[4,1]
  %4 = subtract %0, %3 : f64[4,5]
  %5 = exp %4 : f64[4,5]
  %6 = sum %5 {axis=(1,), keepdims=False} : f64[4]
  %7 = log %6 : f64[4]
  %8 = reshape %7 {shape=(4, 1)} : f64[4,1]
  %9 = subtract %4, %8 : f64[4,5]
  %10 = multiply %1, %9 : f64[4,5]
  %11 = sum %10 {axis=(0, 1), keepdims=False} : f64[]
  %12 = negative %11 : f64[]
  return %12
}"""

SOFTMAX = """
trace (%0: f64[4,5], %1: f64[5,3]) {
  %2 = max %0 {axis=(1,), keepdims=True} : f64[4,1]
  %3 = subtract %0, %2 : f64[4,5]
  %4 = exp %3 : f64[4,5]
  %5 = sum %4 {axis=(1,), keepdims=True} : f64[4,1]
  %6 = divide %4, %5 : f64[4,5]
  %7 = dot_general %6, %1 {contract=((1,), (0,)), batch=((), ())} : f64[4,3]
  %8 = tanh %7 : f64[4,3]
  %9 = sum %8 {axis=(0, 1), keepdims=False} : f64[]
  return %9
}"""

GLOBAL_MAX = """
trace (%0: f64[4,5]) {
  %1 = max %0 {axis=(0, 1), keepdims=False} : f64[]
  %2 = subtract %0, %1 : f64[4,5]
  %3 = exp %2 : f64[4,5]
  %4 = sum %3 {axis=(0, 1), keepdims=False} : f64[]
  %5 = log %4 : f64[]
  %6 = add %5, %1 : f64[]
  return %6
}"""

TEMPERATURE_LSE = """
trace (%0: f64[4,5]) {
  %1 = max %0 {axis=(1,), keepdims=True} : f64[4,1]
  %2 = subtract %0, %1 : f64[4,5]
  %3 = const {value=0.3} : f64[]
  %4 = divide %2, %3 : f64[4,5]
  %5 = exp %4 : f64[4,5]
  %6 = sum %5 {axis=(1,), keepdims=False} : f64[4]
  %7 = log %6 : f64[4]
  %8 = multiply %3, %7 : f64[4]
  %9 = reshape %1 {shape=(4,)} : f64[4]
  %10 = add %8, %9 : f64[4]
  %11 = sin %10 : f64[4]
  %12 = sum %11 {axis=(0,), keepdims=False} : f64[]
  return %12
}"""

INVARIANT = {"lse": LSE, "log_softmax": LOG_SOFTMAX, "softmax": SOFTMAX, "global_max": GLOBAL_MAX,
             "temperature_lse": TEMPERATURE_LSE}

# Near misses: each changes one line of a cancelling trace so that the output does depend on the max.
NEAR_MISSES = {
    "added back twice": (LSE, "%8 = add %6, %7 : f64[4]", "%8 = add %6, %7 : f64[4]\n  %80 = add %8, %7 : f64[4]",
                         "%11 = subtract %8, %10", "%11 = subtract %80, %10"),
    "not added back": (LSE, "%8 = add %6, %7 : f64[4]", "%8 = add %6, %6 : f64[4]", None, None),
    "summed across rows": (LSE, "%5 = sum %4 {axis=(1,), keepdims=False} : f64[4]",
                           "%50 = sum %4 {axis=(0, 1), keepdims=False} : f64[]\n"
                           "  %5 = broadcast_to %50 {shape=(4,)} : f64[4]", None, None),
    "scaled by the max": (SOFTMAX, "%6 = divide %4, %5 : f64[4,5]",
                          "%60 = divide %4, %5 : f64[4,5]\n  %6 = multiply %60, %2 : f64[4,5]", None, None),
    "through a complex cast": (SOFTMAX, "return %9", "%12 = astype %3 {dtype=c128} : c128[4,5]\n"
                               "  %13 = exp %12 : c128[4,5]\n  %14 = real %13 : f64[4,5]\n"
                               "  %15 = sum %14 {axis=(0, 1), keepdims=False} : f64[]\n"
                               "  %16 = add %9, %15 : f64[]\n  return %16", None, None),
    "half the temperature added back": (TEMPERATURE_LSE, "%8 = multiply %3, %7 : f64[4]",
                                        "%80 = multiply %3, %7 : f64[4]\n  %81 = const {value=0.5} : f64[]\n"
                                        "  %8 = multiply %80, %81 : f64[4]", None, None),
    "scaled by a value": (TEMPERATURE_LSE, "%4 = divide %2, %3 : f64[4,5]",
                          "%40 = divide %2, %3 : f64[4,5]\n  %4 = multiply %40, %0 : f64[4,5]", None, None),
    "normalized by another row sum": (SOFTMAX, "%5 = sum %4 {axis=(1,), keepdims=True} : f64[4,1]",
                                      "%5 = sum %0 {axis=(1,), keepdims=True} : f64[4,1]", None, None),
}


def _near_miss(name):
    text, *edits = NEAR_MISSES[name]
    for old, new in zip(edits[::2], edits[1::2]):
        if old is not None:
            assert old in text
            text = text.replace(old, new)
    return parse_trace(text)


def _max_node(trace):
    return next(n for n in trace.nodes if n.op == "max")


def _invariant_ops(trace):
    active = autodiff.active_ids(trace.nodes, trace.inputs[:1])
    ids = shift_invariant(trace.nodes, trace.outputs, active)
    return sorted(n.op for n in trace.nodes if id(n) in ids)


@pytest.mark.parametrize("name", INVARIANT)
def test_the_max_of_a_stable_softmax_or_log_sum_exp_is_found_invariant(name):
    assert _invariant_ops(parse_trace(INVARIANT[name])) == ["max"]


@pytest.mark.parametrize("name", NEAR_MISSES)
def test_near_misses_keep_the_max_derivative(name):
    trace = _near_miss(name)
    assert _invariant_ops(trace) == []
    rng = np.random.default_rng(3)
    args = [rng.normal(size=v.shape) for v in trace.inputs]
    vg = autodiff.value_and_grad(trace, [0])
    check_vjp(trace_function(trace), lambda a, ct: [run_grad(vg, a) * ct[0]] + [None] * (len(a) - 1),
              args, rng, wrt=[0])


def test_the_max_is_not_invariant_when_it_is_an_output_itself():
    trace = parse_trace(LSE.replace("return %12", "return %12, %2"))
    assert _invariant_ops(trace) == []


def run_grad(vg, args):
    from jitgrad.ir import run_trace
    return run_trace(vg, args)[-1]


@pytest.mark.parametrize("name", INVARIANT)
def test_gradients_without_the_max_match_finite_differences_in_both_modes(name):
    trace = parse_trace(INVARIANT[name])
    rng = np.random.default_rng(5)
    args = [rng.normal(size=v.shape) for v in trace.inputs]
    args[0][1, 2] = args[0][1, 4] = args[0][1].max() + 0.5          # a row whose maximum is tied
    vg = autodiff.value_and_grad(trace, [0])
    assert "equal" not in {n.op for n in vg.nodes}                   # no mask of the maxima
    check_vjp(trace_function(trace), lambda a, ct: [run_grad(vg, a) * ct[0]] + [None] * (len(a) - 1),
              args, rng, wrt=[0])
    tangent = autodiff.jvp(trace, [0])
    assert "equal" not in {n.op for n in tangent.nodes}
    from jitgrad.ir import run_trace
    check_jvp(trace_function(trace), lambda a, ts: run_trace(tangent, list(a) + [ts[0]])[len(trace.outputs):],
              args, rng, wrt=[0])


def _softmax_xent(W, b, X, Y):
    logits = X @ W + b
    top = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - top), axis=1)) + top[:, 0]
    return np.mean(lse - np.sum(Y * logits, axis=1))


def _log_softmax_xent(z, y):
    m = z.max(axis=1)
    logp = z - m[:, None] - np.log(np.exp(z - m[:, None]).sum(axis=1))[:, None]
    return -np.mean(np.sum(y * logp, axis=1))


def _classifier(seed, n=16, f=6, c=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    Y = np.zeros((n, c))
    Y[np.arange(n), rng.integers(0, c, size=n)] = 1.0
    return rng.normal(size=(f, c)), rng.normal(size=c), X, Y


def test_softmax_cross_entropy_gradient_is_the_closed_form_with_tied_maxima():
    W, b, X, Y = _classifier(0)
    W[:, 3] = W[:, 5]
    b[3] = b[5]                                     # columns 3 and 5 tie in every row; some rows' max
    dW, db = jitgrad.jit_grad(_softmax_xent, argnums=(0, 1))(W, b, X, Y)
    logits = X @ W + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    G = (p / p.sum(axis=1, keepdims=True) - Y) / X.shape[0]
    np.testing.assert_allclose(dW, X.T @ G, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(db, G.sum(axis=0), rtol=1e-12, atol=1e-15)
    z, y = X @ W + b, Y
    gz = jitgrad.jit_grad(_log_softmax_xent)(z, y)
    np.testing.assert_allclose(gz, G, rtol=1e-12, atol=1e-15)


def test_log_sum_exp_hessian_is_diag_p_minus_p_p_transposed():
    def lse(x):
        m = np.max(x)
        return np.log(np.sum(np.exp(x - m))) + m
    x = np.array([0.3, -1.2, 2.0, 2.0, 0.7])
    p = np.exp(x - x.max())
    p /= p.sum()
    np.testing.assert_allclose(jitgrad.jit_grad(lse)(x), p, rtol=1e-13)
    np.testing.assert_allclose(jitgrad.hessian(lse)(x), np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)
    value, tangent = jitgrad.jvp(lse, (x,), (np.arange(5.0),))
    np.testing.assert_allclose(tangent, p @ np.arange(5.0), rtol=1e-13)


def test_a_max_replaced_where_it_is_not_finite_is_a_constant_too():
    """Older SciPy's logsumexp (and code copied from it) replaces an infinite max by 0 before the shift;
    the `where` is then the value that cancels, and the gradient is softmax without the max's mask."""
    def lse_squared(a):
        a_max = np.amax(a, axis=1, keepdims=True)
        a_max = np.where(np.isfinite(a_max), a_max, 0)
        out = np.log(np.sum(np.exp(a - a_max), axis=1, keepdims=True))
        out += a_max
        return np.sum(np.squeeze(out, axis=1) ** 2)
    x = np.random.default_rng(2).normal(size=(8, 5))
    x[3, 1] = x[3, 4] = x[3].max() + 1.0
    lse = np.log(np.exp(x).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(jitgrad.jit_grad(lse_squared)(x), 2 * lse * np.exp(x - lse), rtol=1e-12, atol=1e-15)
    trace = parse_trace("""
trace (%0: f64[8,5]) {
  %1 = max %0 {axis=(1,), keepdims=True} : f64[8,1]
  %2 = subtract %1, %1 : f64[8,1]
  %3 = const {value=0.0} : f64[]
  %4 = equal %2, %3 : b1[8,1]
  %5 = where %4, %1, %3 : f64[8,1]
  %6 = subtract %0, %5 : f64[8,5]
  %7 = exp %6 : f64[8,5]
  %8 = sum %7 {axis=(1,), keepdims=True} : f64[8,1]
  %9 = log %8 : f64[8,1]
  %10 = add %9, %5 : f64[8,1]
  %11 = sum %10 {axis=(0, 1), keepdims=False} : f64[]
  return %11
}""")
    assert _invariant_ops(trace) == ["where"]


def test_a_boltzmann_policy_with_a_temperature_matches_finite_differences():
    """exp((q - max q) / tau), normalized: the max cancels through the division by the constant tau."""
    def expected_reward(q, r):
        p = np.exp((q - q.max(axis=1, keepdims=True)) / 0.7)
        p /= p.sum(axis=1, keepdims=True)
        return np.sum(p * r)
    rng = np.random.default_rng(4)
    q, r = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    q[2, 0] = q[2, 3] = q[2].max() + 0.2
    jitgrad.check_grads(expected_reward, (q, r), order=2)
    p = np.exp((q - q.max(axis=1, keepdims=True)) / 0.7)
    p /= p.sum(axis=1, keepdims=True)
    closed_form = p * (r - np.sum(p * r, axis=1, keepdims=True)) / 0.7
    np.testing.assert_allclose(jitgrad.jit_grad(expected_reward)(q, r), closed_form, rtol=1e-12, atol=1e-15)
