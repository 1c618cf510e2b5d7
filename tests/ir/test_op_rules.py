"""The VJP and JVP rules of every op against finite differences (tests/gradcheck.py), table-driven over
tests/op_cases.py, in float64 and float32; second derivatives by applying the rules to the backward
trace; the derivative conventions at kinks (ties, abs at 0, sqrt at 0, powers at 0, prod at zeros);
`unbroadcast`; and a check that the checker itself rejects wrong rules."""
import numpy as np
import pytest

import gradcheck
import op_cases
from jitgrad.ir import Builder, UnsupportedError, run_trace
from jitgrad.ir.jvp import JVP
from jitgrad.ir.ops import NON_DIFFERENTIABLE
from jitgrad.ir.vjp import VJP, unbroadcast

# Cases at a kink (ties), where finite differences do not apply: checked exactly below.
AT_KINKS = {"maximum-ties"}
SMOOTH = [c for c in op_cases.CASES if c.name not in AT_KINKS and c.op not in ("const", "fill", "guard")
          and c.op not in op_cases.FIRST_ORDER]
EIGENVALUES = [c for c in op_cases.CASES if c.op == "eig_values"]


def one_op_trace(op, args, **params):
    """The trace computing op(*args) from inputs shaped like the arrays `args`."""
    b = Builder()
    out = b.emit(op, *[b.input(np.shape(a), np.asarray(a).dtype) for a in args], **params)
    return b.build([out])


def case_trace(case, dtype, seed=0):
    args = op_cases.make_inputs(case, np.random.default_rng(seed), dtype)
    return one_op_trace(case.op, args, **case.params), args


def cotangents(op, args, g, **params):
    """The cotangents the reverse sweep gives op(*args) for output cotangent g."""
    return run_trace(gradcheck.reverse_trace(one_op_trace(op, args, **params)), list(args) + [np.asarray(g)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", SMOOTH, ids=lambda c: c.name)
def test_first_and_second_derivatives(case, dtype):
    trace, args = case_trace(case, dtype)
    gradcheck.check_trace(trace, args, np.random.default_rng(1), order=2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", EIGENVALUES, ids=lambda c: c.name)
def test_eigenvalues_first_derivatives_and_refused_second(case, dtype):
    """eig_values (np.linalg.eigvals): first derivatives; the second ones w.r.t. the matrix are refused
    (its derivative maps eig_values_vjp/jvp are linear in the cotangent/tangent, checked here through them)."""
    trace, args = case_trace(case, dtype)
    gradcheck.check_trace(trace, args, np.random.default_rng(1), order=1)
    backward = gradcheck.reverse_trace(gradcheck.realified(trace))
    with pytest.raises(UnsupportedError, match="second derivatives of np.linalg.eigvals"):
        gradcheck.reverse_trace(backward)


@pytest.mark.parametrize("case", SMOOTH, ids=lambda c: c.name)
def test_float32_derivatives_stay_float32(case):
    trace, args = case_trace(case, np.float32)
    if any(v.dtype == np.float64 for v in trace.inputs + trace.nodes):
        return  # the case itself mixes in float64
    backward = gradcheck.reverse_trace(trace)
    for derived in (backward, gradcheck.forward_trace(trace), gradcheck.reverse_trace(backward)):
        # zero fills stand in for the derivatives of integer values; nothing else may be float64
        assert not [v for v in derived.nodes if v.dtype == np.float64 and v.op != "fill"]


@pytest.mark.parametrize("case", [c for c in SMOOTH if c.op in ("prod", "dot_general", "power", "index_set")],
                         ids=lambda c: c.name)
def test_third_derivatives(case):
    trace, args = case_trace(case, np.float64)
    gradcheck.check_trace(trace, args, np.random.default_rng(2), order=3, directions=1)


@pytest.mark.parametrize("case", op_cases.CASES, ids=lambda c: c.name)
def test_no_derivative_through_integers_or_non_differentiable_ops(case):
    args = op_cases.make_inputs(case, np.random.default_rng(0), np.float64)
    b = Builder()
    node = b.emit(case.op, *[b.input(a.shape, a.dtype) for a in args], **case.params)
    g = b.input(node.shape, node.dtype if gradcheck.is_float(node.dtype) else np.float64)
    cts = VJP[case.op](b, node, g)
    assert len(cts) == len(node.args)
    for a, ct in zip(node.args, cts):
        if not gradcheck.is_float(a.dtype) or case.op in NON_DIFFERENTIABLE:
            assert ct is None
    tangents = [b.input(a.shape, a.dtype) for a in node.args]
    if not gradcheck.is_float(node.dtype) or case.op in NON_DIFFERENTIABLE:
        assert JVP[case.op](b, node, tangents) is None


# --- conventions at kinks ----------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_ties_split_the_cotangent(op):
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 0.0, 5.0])
    g = np.array([2.0, 4.0, 8.0])
    cx, cy = cotangents(op, [x, y], g)
    first_wins = (x > y) if op == "maximum" else (x < y)
    np.testing.assert_array_equal(cx, np.where(x == y, 1.0, np.where(first_wins, 2 * 1.0, 0.0)) * g / 2)
    np.testing.assert_array_equal(cx + cy, g)


@pytest.mark.parametrize("op", ["max", "min"])
def test_reduction_ties_share_the_cotangent(op):
    x = np.array([[1.0, 3.0, 3.0, 3.0], [2.0, 0.0, 2.0, -1.0]])
    x = x if op == "max" else -x
    (cx,) = cotangents(op, [x], np.array([6.0, 4.0]), axis=(1,), keepdims=False)
    np.testing.assert_array_equal(cx, [[0.0, 2.0, 2.0, 2.0], [2.0, 0.0, 2.0, 0.0]])


def test_absolute_at_zero_is_zero():
    (cx,) = cotangents("absolute", [np.array([0.0, -2.0, 3.0])], np.ones(3))
    np.testing.assert_array_equal(cx, [0.0, -1.0, 1.0])


def test_sqrt_at_zero_is_inf():
    (cx,) = cotangents("sqrt", [np.array([0.0, 4.0])], np.ones(2))
    np.testing.assert_array_equal(cx, [np.inf, 0.25])


@pytest.mark.parametrize("exponent, dx", [(2.0, 0.0), (1.0, 1.0), (0.0, 0.0), (3.0, 0.0)])
def test_power_at_zero_base_is_finite(exponent, dx):
    cx, cy = cotangents("power", [np.array(0.0), np.array(exponent)], np.array(1.0))
    assert cx == dx and cy == 0.0


def test_power_of_negative_base_with_float_exponent_gives_nan_not_zero():
    cx, cy = cotangents("power", [np.array(-2.0), np.array(2.0)], np.array(1.0))
    assert cx == -4.0 and np.isnan(cy)


@pytest.mark.parametrize("row", [[0.0, 2.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [1.5, 2.0, 3.0]])
def test_prod_with_zeros(row):
    x = np.array([row, [2.0, -1.0, 0.5]])
    (cx,) = cotangents("prod", [x], np.ones(2), axis=(1,), keepdims=False)
    others = [[np.prod(np.delete(r, i)) for i in range(3)] for r in x]
    np.testing.assert_allclose(cx, others)
    trace = one_op_trace("prod", [x], axis=(1,), keepdims=False)
    gradcheck.check_trace(trace, [x], np.random.default_rng(0), order=2)


def test_index_set_repeated_indices_last_write_wins():
    x, v, idx = np.zeros(3), np.array([1.0, 2.0, 3.0]), np.array([1, 1, 2])
    trace = one_op_trace("index_set", [x, v, idx], spec=(("array", 0),))
    assert run_trace(trace, [x, v, idx])[0].tolist() == [0.0, 2.0, 3.0]
    cx, cv, cidx = run_trace(gradcheck.reverse_trace(trace), [x, v, idx, np.array([10.0, 20.0, 30.0])])
    assert cx.tolist() == [10.0, 0.0, 0.0] and cv.tolist() == [0.0, 20.0, 30.0]


# --- unbroadcast -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ct_shape, shape", [((2, 3), (2, 3)), ((4, 2, 3), (2, 3)), ((2, 3), (1, 3)),
                                             ((2, 3), ()), ((5, 2, 3), (2, 1)), ((1, 3), (2, 3)),
                                             ((0, 3), (1, 3)), ((), (2,))])
def test_unbroadcast_matches_numpy(ct_shape, shape):
    ct = np.random.default_rng(0).standard_normal(ct_shape)
    b = Builder()
    out = unbroadcast(b, b.input(ct_shape, np.float64), shape, np.float32)
    (got,) = run_trace(b.build([out]), [ct])
    assert got.shape == shape and got.dtype == np.float32
    # <unbroadcast(ct), w> == <ct, broadcast(w)> when ct broadcasts from shape; else ct broadcasts up
    w = np.random.default_rng(1).standard_normal(shape)
    if np.broadcast_shapes(ct_shape, shape) == ct_shape:
        np.testing.assert_allclose(np.sum(got * w), np.sum(ct * np.broadcast_to(w, ct_shape)), rtol=1e-5)
    else:
        np.testing.assert_allclose(got, np.broadcast_to(ct, shape), rtol=1e-6)


# --- the checker rejects wrong rules --------------------------------------------------------------------

def _wrong_sin(b, node, g):
    return (b.multiply(g, b.sin(node.args[0])),)


def test_checker_rejects_a_wrong_vjp(monkeypatch):
    trace, args = case_trace(op_cases.cases_for("sin")[0], np.float64)
    monkeypatch.setitem(VJP, "sin", _wrong_sin)
    with pytest.raises(AssertionError, match="VJP mismatch"):
        gradcheck.check_vjp(gradcheck.trace_function(trace), gradcheck.trace_vjp(trace), args,
                            np.random.default_rng(0))


def test_checker_rejects_a_wrong_jvp(monkeypatch):
    trace, args = case_trace(op_cases.cases_for("sin")[0], np.float32)
    monkeypatch.setitem(JVP, "sin", lambda b, node, ts: b.multiply(ts[0], b.sin(node.args[0])))
    with pytest.raises(AssertionError, match="JVP mismatch"):
        gradcheck.check_jvp(gradcheck.trace_function(trace), gradcheck.trace_jvp(trace), args,
                            np.random.default_rng(0))


def test_checker_rejects_a_wrong_second_derivative(monkeypatch):
    # tanh's backward trace is g * (1 - y*y): a sign error in subtract's VJP leaves first derivatives of
    # tanh right and makes its second derivative wrong
    trace, args = case_trace(op_cases.cases_for("tanh")[0], np.float64)
    monkeypatch.setitem(VJP, "subtract", lambda b, node, g: (g, g))
    gradcheck.check_trace(trace, args, np.random.default_rng(0), order=1)
    with pytest.raises(AssertionError, match="VJP mismatch"):
        gradcheck.check_trace(trace, args, np.random.default_rng(0), order=2)
