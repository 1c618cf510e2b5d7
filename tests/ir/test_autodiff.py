"""The AD transforms (ir/autodiff.py): value_and_grad, vjp, jvp and their compositions, checked against
central finite differences with the project's gradient checker."""
import numpy as np
import pytest

from jitgrad.ir import Builder, IRError, UnsupportedError, run_trace
from jitgrad.ir import autodiff, passes
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.verify import verify

from gradcheck import check_jvp, check_vjp
from op_cases import CASES, NO_MATRIX_DERIVATIVE, make_inputs

# Small programs (text form), each with a 0-d float output 0 and arguments drawn by `draw`.
PROGRAMS = {
    "broadcast_repeat": """
trace (%0: f64[3,1], %1: f64[4]) {
  %2 = multiply %0, %1 : f64[3,4]
  %3 = sin %0 : f64[3,1]
  %4 = add %2, %3 : f64[3,4]
  %5 = multiply %4, %4 : f64[3,4]
  %6 = sum %5 {axis=(0, 1), keepdims=False} : f64[]
  return %6
}""",
    "reductions": """
trace (%0: f64[2,3,4]) {
  %1 = sum %0 {axis=(1,), keepdims=True} : f64[2,1,4]
  %2 = subtract %0, %1 : f64[2,3,4]
  %3 = exp %2 : f64[2,3,4]
  %4 = max %3 {axis=(0, 2), keepdims=False} : f64[3]
  %5 = prod %4 {axis=(0,), keepdims=False} : f64[]
  %6 = tanh %0 : f64[2,3,4]
  %7 = sum %6 {axis=(0, 1, 2), keepdims=False} : f64[]
  %8 = multiply %5, %7 : f64[]
  return %8
}""",
    "indexing": """
trace (%0: f64[5,3], %1: i64[4], %2: f64[3]) {
  %3 = index %0, %1 {spec=(('array', 0),)} : f64[4,3]
  %4 = index %0 {spec=(('slice', 1, 2, 2), ('int', 1))} : f64[2]
  %5 = index_add %0, %2, %1 {spec=(('array', 0),)} : f64[5,3]
  %6 = index_set %5, %2 {spec=(('int', 0),)} : f64[5,3]
  %7 = multiply %3, %3 : f64[4,3]
  %8 = sum %7 {axis=(0, 1), keepdims=False} : f64[]
  %9 = sum %4 {axis=(0,), keepdims=False} : f64[]
  %10 = cos %6 : f64[5,3]
  %11 = sum %10 {axis=(0, 1), keepdims=False} : f64[]
  %12 = add %8, %9 : f64[]
  %13 = add %12, %11 : f64[]
  return %13, %1
}""",
    "guards_where_dot": """
trace (%0: f64[2,3], %1: f64[3]) {
  %2 = dot_general %0, %1 {contract=((1,), (0,)), batch=((), ())} : f64[2]
  %3 = fill {shape=(), dtype=f64, value=0.0} : f64[]
  %4 = greater %2, %3 : b1[2]
  %5 = index %4 {spec=(('int', 0),)} : b1[]
  %6 = guard %5 {expected=True, loc='f.py:2', why='if y[0] > 0'} : b1[]
  %7 = log1p %2 : f64[2]
  %8 = where %4, %7, %2 : f64[2]
  %9 = sum %1 {axis=(0,), keepdims=False} : f64[]
  %10 = less %9, %3 : b1[]
  %11 = guard %10 {expected=False, loc='f.py:3', why='if s < 0'} : b1[]
  %12 = sum %8 {axis=(0,), keepdims=False} : f64[]
  %13 = divide %12, %9 : f64[]
  return %13, %8
}""",
    "float32_shapes": """
trace (%0: f32[2,3]) {
  %1 = transpose %0 {perm=(1, 0)} : f32[3,2]
  %2 = reshape %1 {shape=(6,)} : f32[6]
  %3 = concatenate %2, %2 {axis=0} : f32[12]
  %4 = cumsum %3 {axis=0} : f32[12]
  %5 = broadcast_to %4 {shape=(2, 12)} : f32[2,12]
  %6 = sqrt %5 : f32[2,12]
  %7 = sum %6 {axis=(0, 1), keepdims=False} : f32[]
  return %7
}""",
}


def draw(trace, rng):
    """Arguments for a program: positive floats (log1p, sqrt, the guards hold), indices into axis 0."""
    return [rng.uniform(0.5, 1.5, v.shape).astype(v.dtype) if v.dtype.kind == "f"
            else rng.integers(0, 5, v.shape).astype(v.dtype) for v in trace.inputs]


def float_inputs(trace):
    return [i for i, v in enumerate(trace.inputs) if v.dtype.kind == "f"]


def float_outputs(trace):
    return [k for k, v in enumerate(trace.outputs) if v.dtype.kind == "f"]


def per_arg(args, wrt, values):
    """One entry per argument: values[k] at position wrt[k], None elsewhere."""
    result = [None] * len(args)
    for i, v in zip(wrt, values):
        result[i] = v
    return result


def gradient_vjp(vg_trace, n_outputs, wrt):
    """vjp callable of a scalar function from a value_and_grad trace: cotangent u gives u * grad."""
    return lambda args, cts: per_arg(args, wrt, [g * cts[0] for g in run_trace(vg_trace, args)[n_outputs:]])


def output_function(trace, k):
    return lambda args: run_trace(trace, args)[k]


@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.parametrize("optimized", [False, True])
def test_value_and_grad_matches_finite_differences(name, optimized):
    rng = np.random.default_rng(0)
    trace = parse_trace(PROGRAMS[name])
    wrt = float_inputs(trace)
    vg = autodiff.value_and_grad(trace, wrt)
    if optimized:
        vg = passes.optimize(vg)
    verify(vg)
    assert len(vg.outputs) == len(trace.outputs) + len(wrt)
    assert [g.params["loc"] for g in vg.guards] == [g.params["loc"] for g in trace.guards]
    args = draw(trace, rng)
    for want, got in zip(run_trace(trace, args), run_trace(vg, args)):
        assert np.array_equal(want, got)
    check_vjp(output_function(trace, 0), gradient_vjp(vg, len(trace.outputs), wrt), args, rng, wrt=wrt)


def test_value_and_grad_of_a_subset_and_unreachable_inputs():
    trace = parse_trace("""
trace (%0: f64[3], %1: f64[2], %2: f64[]) {
  %3 = multiply %0, %2 : f64[3]
  %4 = sum %3 {axis=(0,), keepdims=False} : f64[]
  %5 = floor %1 : f64[2]
  %6 = sum %5 {axis=(0,), keepdims=False} : f64[]
  %7 = add %4, %6 : f64[]
  return %7
}""")
    vg = passes.optimize(autodiff.value_and_grad(trace, [1, 0]))
    x, y, z = np.array([1.0, 2.0, 3.0]), np.array([0.3, 1.7]), np.array(2.5)
    value, d1, d0 = run_trace(vg, [x, y, z])
    assert value == pytest.approx(6.0 * 2.5 + 1.0)
    assert np.array_equal(d1, np.zeros(2)) and vg.outputs[1].op == "fill"
    assert np.array_equal(d0, np.full(3, 2.5))


def test_repeated_wrt_index_and_output_that_is_an_input():
    trace = parse_trace("trace (%0: f64[]) {\n  return %0, %0\n}")
    vg = autodiff.value_and_grad(trace, [0, 0], out=1)
    assert [float(v) for v in run_trace(vg, [np.array(3.0)])] == [3.0, 3.0, 1.0, 1.0]


@pytest.mark.parametrize("text, wrt, out, error, message", [
    ("trace (%0: f64[2]) {\n  return %0\n}", [0], 0, IRError, "0-d real float"),
    ("trace (%0: i64[]) {\n  %1 = astype %0 {dtype=f64} : f64[]\n  return %1\n}", [0], 0, IRError, "non-float"),
    ("trace (%0: f64[]) {\n  return %0\n}", [1], 0, IRError, "out of range"),
    ("trace (%0: f64[]) {\n  return %0\n}", [0], 2, IRError, "out of range"),
    ("trace (%0: c128[]) {\n  %1 = absolute %0 : f64[]\n  return %1\n}", [0], 0, UnsupportedError, "complex"),
    ("trace (%0: f64[]) {\n  %1 = astype %0 {dtype=c128} : c128[]\n  %2 = sign %1 : c128[]\n"
     "  %3 = real %2 : f64[]\n  return %3\n}", [0], 0, UnsupportedError, "complex"),
])
def test_value_and_grad_refuses(text, wrt, out, error, message):
    with pytest.raises(error, match=message):
        autodiff.value_and_grad(parse_trace(text), wrt, out=out)


# ---- vjp -----------------------------------------------------------------------------------------

def split_vjp(trace, wrt):
    """vjp callable (for check_vjp) from the forward and backward traces of autodiff.vjp."""
    forward, backward = autodiff.vjp(trace, wrt)
    n = len(trace.outputs)
    floats = float_outputs(trace)

    def vjp(args, cts):
        residuals = run_trace(forward, args)[n:]
        return per_arg(args, wrt, run_trace(backward, residuals + [cts[k] for k in floats]))
    return vjp


@pytest.mark.parametrize("name", PROGRAMS)
def test_vjp_split_matches_finite_differences_and_value_and_grad(name):
    rng = np.random.default_rng(1)
    trace = parse_trace(PROGRAMS[name])
    wrt = float_inputs(trace)
    forward, backward = autodiff.vjp(trace, wrt)
    verify(forward)
    verify(backward)
    assert backward.guards == [] and [g.params["why"] for g in forward.guards] == \
        [g.params["why"] for g in trace.guards]
    args = draw(trace, rng)
    check_vjp(lambda a: run_trace(trace, a), split_vjp(trace, wrt), args, rng, wrt=wrt)
    # Composed with the seed 1 on output 0 (and 0 on the others), it is value_and_grad.
    n = len(trace.outputs)
    outs = run_trace(forward, args)
    seeds = [np.ones_like(o) if k == 0 else np.zeros_like(o)
             for k, o in enumerate(outs[:n]) if o.dtype.kind == "f"]
    grads = run_trace(backward, outs[n:] + seeds)
    expected = run_trace(autodiff.value_and_grad(trace, wrt), args)
    for want, got in zip(expected, outs[:n] + grads):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_vjp_residuals_are_exactly_what_backward_uses():
    trace = parse_trace(PROGRAMS["broadcast_repeat"])
    forward, backward = autodiff.vjp(trace, [0, 1])
    n_residuals = len(forward.outputs) - len(trace.outputs)
    assert len(backward.inputs) == n_residuals + 1
    used = {id(a) for node in backward.nodes for a in node.args} | {id(v) for v in backward.outputs}
    assert all(id(v) in used for v in backward.inputs[:n_residuals])
    assert not any(v.op in ("const", "fill") for v in forward.outputs[len(trace.outputs):])


def test_vjp_gives_cotangent_inputs_only_to_float_outputs():
    trace = parse_trace("""
trace (%0: f64[3]) {
  %1 = exp %0 : f64[3]
  %2 = greater %0, %1 : b1[3]
  %3 = astype %0 {dtype=i64} : i64[3]
  return %2, %1, %3
}""")
    forward, backward = autodiff.vjp(trace, [0])
    assert len(forward.outputs) == 4 and len(backward.inputs) == 2
    x, u = np.array([0.1, 0.2, 0.3]), np.array([1.0, -2.0, 0.5])
    residual = run_trace(forward, [x])[3]
    (grad,) = run_trace(backward, [residual, u])
    np.testing.assert_allclose(grad, u * np.exp(x))


def test_vjp_without_dependence_gives_zero_fill_and_no_residuals():
    trace = parse_trace("trace (%0: f64[3], %1: f64[]) {\n  %2 = exp %1 : f64[]\n  return %2\n}")
    forward, backward = autodiff.vjp(trace, [0])
    assert len(forward.outputs) == 1 and len(backward.inputs) == 1
    assert [n.op for n in backward.nodes] == ["fill"]
    assert np.array_equal(run_trace(backward, [np.array(2.0)])[0], np.zeros(3))


# ---- jvp -----------------------------------------------------------------------------------------

def tangent_jvp(trace, wrt):
    """jvp callable (for check_jvp) from autodiff.jvp: tangents of every float output."""
    jt = autodiff.jvp(trace, wrt)
    verify(jt)
    n = len(trace.outputs)

    def jvp(args, tangents):
        ts = [tangents[i] if tangents[i] is not None else np.zeros_like(args[i]) for i in wrt]
        return run_trace(jt, list(args) + ts)[n:]
    return jvp


@pytest.mark.parametrize("name", PROGRAMS)
def test_jvp_matches_finite_differences(name):
    rng = np.random.default_rng(2)
    trace = parse_trace(PROGRAMS[name])
    wrt = float_inputs(trace)
    floats = float_outputs(trace)
    jt = autodiff.jvp(trace, wrt)
    assert [g.params["loc"] for g in jt.guards] == [g.params["loc"] for g in trace.guards]
    assert len(jt.inputs) == len(trace.inputs) + len(wrt)
    assert len(jt.outputs) == len(trace.outputs) + len(floats)
    f = lambda args: [run_trace(trace, args)[k] for k in floats]
    check_jvp(f, tangent_jvp(trace, wrt), draw(trace, rng), rng, wrt=wrt)


# ---- second derivatives --------------------------------------------------------------------------

SECOND_ORDER = ["broadcast_repeat", "reductions", "indexing", "guards_where_dot"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_hessian_vector_product_by_jvp_of_value_and_grad(name):
    rng = np.random.default_rng(3)
    trace = parse_trace(PROGRAMS[name])
    wrt = float_inputs(trace)
    n = len(trace.outputs)
    vg = passes.optimize(autodiff.value_and_grad(trace, wrt))
    gradient = lambda args: run_trace(vg, args)[n:]
    hvp = tangent_jvp(vg, wrt)
    check_jvp(gradient, lambda args, ts: hvp(args, ts)[-len(wrt):], draw(trace, rng), rng, wrt=wrt)


def with_squared_norm_of(trace, outputs):
    """`trace` plus a last output: the sum of squares of the given outputs (a scalar to differentiate)."""
    b = Builder()
    env = passes.replay(b, trace.nodes, passes.copy_inputs(b, trace.inputs))
    total = None
    for k in outputs:
        g = env[id(trace.outputs[k])]
        s = b.sum(b.multiply(g, g), axis=tuple(range(g.ndim)), keepdims=False)
        total = s if total is None else b.add(total, s)
    return b.build([env[id(v)] for v in trace.outputs] + [total])


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_grad_of_grad(name):
    rng = np.random.default_rng(4)
    trace = parse_trace(PROGRAMS[name])
    wrt = float_inputs(trace)
    n = len(trace.outputs)
    vg = passes.optimize(autodiff.value_and_grad(trace, wrt))
    norm = with_squared_norm_of(vg, range(n, n + len(wrt)))
    out = len(norm.outputs) - 1
    vg2 = passes.optimize(autodiff.value_and_grad(norm, wrt, out=out))
    verify(vg2)
    check_vjp(output_function(norm, out), gradient_vjp(vg2, len(norm.outputs), wrt), draw(trace, rng), rng,
              wrt=wrt)


def test_third_derivative_of_a_scalar_function():
    trace = parse_trace("trace (%0: f64[]) {\n  %1 = sin %0 : f64[]\n  %2 = multiply %1, %0 : f64[]\n  return %2\n}")
    t = trace
    for _ in range(3):
        t = passes.optimize(autodiff.value_and_grad(t, [0], out=len(t.outputs) - 1))
    x = 0.7
    derivatives = [float(v) for v in run_trace(t, [np.array(x)])]
    expected = [x * np.sin(x), np.sin(x) + x * np.cos(x), 2 * np.cos(x) - x * np.sin(x),
                -3 * np.sin(x) - x * np.cos(x)]
    np.testing.assert_allclose(derivatives, expected, rtol=1e-12)


# ---- every op, through the transforms ------------------------------------------------------------

SMOOTH_CASES = [c for c in CASES if c.op not in ("guard", "const", "fill") and "ties" not in c.name
                and c.op not in NO_MATRIX_DERIVATIVE]


def summed_op_trace(case, args):
    """inputs -> op -> (sum of its elements, the op's result): a scalar to differentiate."""
    b = Builder()
    inputs = [b.input(a.shape, a.dtype) for a in args]
    y = b.emit(case.op, *inputs, **case.params)
    return b.build([b.sum(y, axis=tuple(range(y.ndim)), keepdims=False), y])


@pytest.mark.parametrize("case", SMOOTH_CASES, ids=[c.name for c in SMOOTH_CASES])
def test_every_op_through_value_and_grad_and_jvp(case):
    rng = np.random.default_rng(5)
    args = make_inputs(case, rng, np.float64)
    trace = summed_op_trace(case, args)
    wrt = case.float_args
    if trace.outputs[0].dtype.kind != "f" or not wrt:
        complex_input = not wrt and args[0].dtype.kind == "c"
        error, message = (UnsupportedError, "complex input 0") if complex_input else (IRError, "real float|non-float")
        with pytest.raises(error, match=message) as info:
            autodiff.value_and_grad(trace, wrt or [0])
        assert type(info.value) is error
        return
    vg = passes.optimize(autodiff.value_and_grad(trace, wrt))
    verify(vg)
    check_vjp(output_function(trace, 0), gradient_vjp(vg, 2, wrt), args, rng, wrt=wrt)
    check_jvp(lambda a: run_trace(trace, a), tangent_jvp(trace, wrt), args, rng, wrt=wrt)
