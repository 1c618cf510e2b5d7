"""The simplification passes, stated as expected traces in text form, plus semantic checks."""
import copy

import numpy as np
import pytest

from jitgrad.ir import Builder, IRError, Trace, run_trace
from jitgrad.ir import passes
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.printer import format_trace
from jitgrad.ir.verify import verify

from op_cases import CASES, make_inputs


def assert_rewrites(pass_fn, before, after):
    """pass_fn(parse(before)) prints as `after` (normalised through the parser), and verifies."""
    result = pass_fn(parse_trace(before))
    verify(result)
    assert format_trace(result) == format_trace(parse_trace(after))


def test_dce_drops_dead_nodes_but_keeps_guards_and_inputs():
    assert_rewrites(passes.dce, """
trace (%0: f64[3], %1: f64[]) {
  %2 = exp %0 : f64[3]
  %3 = log %0 : f64[3]
  %4 = greater %1, %1 : b1[]
  %5 = guard %4 {expected=False, loc='f.py:1', why='if'} : b1[]
  %6 = sin %3 : f64[3]
  return %2
}""", """
trace (%0: f64[3], %1: f64[]) {
  %2 = exp %0 : f64[3]
  %3 = greater %1, %1 : b1[]
  %4 = guard %3 {expected=False, loc='f.py:1', why='if'} : b1[]
  return %2
}""")


def test_cse_merges_equal_nodes_and_consts_but_not_guards():
    assert_rewrites(passes.cse, """
trace (%0: f64[2]) {
  %1 = exp %0 : f64[2]
  %2 = exp %0 : f64[2]
  %3 = const {value=[1.0, 2.0]} : f64[2]
  %4 = const {value=[1.0, 2.0]} : f64[2]
  %5 = const {value=[1.0, 2.0]} : f32[2]
  %6 = fill {shape=(2,), dtype=f64, value=0.0} : f64[2]
  %7 = fill {shape=(2,), dtype=f64, value=-0.0} : f64[2]
  %8 = add %1, %3 : f64[2]
  %9 = add %2, %4 : f64[2]
  %10 = sum %0 {axis=(0,), keepdims=False} : f64[]
  %11 = greater %10, %10 : b1[]
  %12 = guard %11 {expected=False, loc=None, why=''} : b1[]
  %13 = greater %10, %10 : b1[]
  %14 = guard %13 {expected=False, loc=None, why=''} : b1[]
  return %8, %9, %5, %6, %7
}""", """
trace (%0: f64[2]) {
  %1 = exp %0 : f64[2]
  %2 = const {value=[1.0, 2.0]} : f64[2]
  %3 = const {value=[1.0, 2.0]} : f32[2]
  %4 = fill {shape=(2,), dtype=f64, value=0.0} : f64[2]
  %5 = fill {shape=(2,), dtype=f64, value=-0.0} : f64[2]
  %6 = add %1, %2 : f64[2]
  %7 = sum %0 {axis=(0,), keepdims=False} : f64[]
  %8 = greater %7, %7 : b1[]
  %9 = guard %8 {expected=False, loc=None, why=''} : b1[]
  %10 = guard %8 {expected=False, loc=None, why=''} : b1[]
  return %6, %6, %3, %4, %5
}""")


def test_fold_constants_makes_consts_and_uniform_fills():
    assert_rewrites(passes.fold_constants, """
trace (%0: f64[2]) {
  %1 = fill {shape=(2,), dtype=f64, value=2.0} : f64[2]
  %2 = const {value=[1.0, 3.0]} : f64[2]
  %3 = multiply %1, %2 : f64[2]
  %4 = add %1, %1 : f64[2]
  %5 = broadcast_to %4 {shape=(50, 2)} : f64[50,2]
  %6 = less %1, %2 : b1[2]
  %7 = sum %6 {axis=(0,), keepdims=False} : i64[]
  %8 = multiply %0, %3 : f64[2]
  return %8, %5, %7
}""", """
trace (%0: f64[2]) {
  %1 = const {value=[2.0, 6.0]} : f64[2]
  %2 = fill {shape=(50, 2), dtype=f64, value=4.0} : f64[50,2]
  %3 = fill {shape=(), dtype=i64, value=1} : i64[]
  %4 = multiply %0, %1 : f64[2]
  return %4, %2, %3
}""")


def test_fold_drops_guards_that_hold():
    assert_rewrites(passes.fold_constants, """
trace (%0: f64[]) {
  %1 = fill {shape=(), dtype=f64, value=2.0} : f64[]
  %2 = greater %1, %1 : b1[]
  %3 = guard %2 {expected=False, loc='f.py:1', why='a'} : b1[]
  %4 = greater %0, %1 : b1[]
  %5 = guard %4 {expected=True, loc='f.py:2', why='b'} : b1[]
  return %0
}""", """
trace (%0: f64[]) {
  %1 = fill {shape=(), dtype=f64, value=2.0} : f64[]
  %2 = greater %0, %1 : b1[]
  %3 = guard %2 {expected=True, loc='f.py:2', why='b'} : b1[]
  return %0
}""")


def test_fold_raises_on_guard_that_always_fails():
    trace = parse_trace("""
trace () {
  %0 = fill {shape=(), dtype=b1, value=True} : b1[]
  %1 = guard %0 {expected=False, loc='user.py:7', why='if flag'} : b1[]
  return
}""")
    with pytest.raises(IRError, match="always fails: if flag") as info:
        passes.fold_constants(trace)
    assert info.value.loc == "user.py:7"


def test_simplify_exact_float_identities():
    assert_rewrites(passes.simplify, """
trace (%0: f64[3]) {
  %1 = fill {shape=(), dtype=f64, value=1.0} : f64[]
  %2 = multiply %1, %0 : f64[3]
  %3 = divide %2, %1 : f64[3]
  %4 = fill {shape=(3,), dtype=f64, value=-0.0} : f64[3]
  %5 = add %3, %4 : f64[3]
  %6 = fill {shape=(), dtype=f64, value=0.0} : f64[]
  %7 = subtract %5, %6 : f64[3]
  %8 = negative %7 : f64[3]
  %9 = negative %8 : f64[3]
  return %9
}""", """
trace (%0: f64[3]) {
  return %0
}""")


def test_simplify_keeps_inexact_identities():
    """x + (+0.0) maps -0.0 to +0.0, x - (-0.0) likewise, x * 0 is not 0 for NaN, inf or -x: all kept;
    x * 1 where 1 broadcasts x to a bigger shape is kept (the types differ)."""
    text = """
trace (%0: f64[3]) {
  %1 = fill {shape=(), dtype=f64, value=0.0} : f64[]
  %2 = add %0, %1 : f64[3]
  %3 = fill {shape=(), dtype=f64, value=-0.0} : f64[]
  %4 = subtract %2, %3 : f64[3]
  %5 = multiply %4, %1 : f64[3]
  %6 = fill {shape=(2, 3), dtype=f64, value=1.0} : f64[2,3]
  %7 = multiply %5, %6 : f64[2,3]
  %8 = fill {shape=(), dtype=i64, value=0} : i64[]
  %9 = add %0, %8 : f64[3]
  return %7, %9
}"""
    assert_rewrites(passes.simplify, text, text)


def test_simplify_integer_identities_and_zero_product():
    assert_rewrites(passes.simplify, """
trace (%0: i64[3]) {
  %1 = fill {shape=(), dtype=i64, value=0} : i64[]
  %2 = add %1, %0 : i64[3]
  %3 = multiply %2, %1 : i64[3]
  return %2, %3
}""", """
trace (%0: i64[3]) {
  %1 = fill {shape=(3,), dtype=i64, value=0} : i64[3]
  return %0, %1
}""")


def test_simplify_uniform_const_counts_as_identity():
    assert_rewrites(passes.simplify, """
trace (%0: f32[2]) {
  %1 = const {value=[1.0, 1.0]} : f32[2]
  %2 = multiply %0, %1 : f32[2]
  %3 = const {value=[1.0, 2.0]} : f32[2]
  %4 = multiply %0, %3 : f32[2]
  return %2, %4
}""", """
trace (%0: f32[2]) {
  %1 = const {value=[1.0, 2.0]} : f32[2]
  %2 = multiply %0, %1 : f32[2]
  return %0, %2
}""")


def test_simplify_structural_no_ops_and_compositions():
    assert_rewrites(passes.simplify, """
trace (%0: f64[2,3], %1: b1[2,3]) {
  %2 = reshape %0 {shape=(2, 3)} : f64[2,3]
  %3 = transpose %2 {perm=(0, 1)} : f64[2,3]
  %4 = broadcast_to %3 {shape=(2, 3)} : f64[2,3]
  %5 = astype %4 {dtype=f64} : f64[2,3]
  %6 = sum %5 {axis=(), keepdims=False} : f64[2,3]
  %7 = concatenate %6 {axis=0} : f64[2,3]
  %8 = index %7 {spec=(('slice', 0, 2, 1),)} : f64[2,3]
  %9 = reshape %8 {shape=(6,)} : f64[6]
  %10 = reshape %9 {shape=(3, 2)} : f64[3,2]
  %11 = transpose %0 {perm=(1, 0)} : f64[3,2]
  %12 = reshape %11 {shape=(1, 3, 2)} : f64[1,3,2]
  %13 = transpose %12 {perm=(2, 0, 1)} : f64[2,1,3]
  %14 = transpose %13 {perm=(1, 0, 2)} : f64[1,2,3]
  %15 = broadcast_to %0 {shape=(1, 2, 3)} : f64[1,2,3]
  %16 = broadcast_to %15 {shape=(4, 2, 3)} : f64[4,2,3]
  %17 = fill {shape=(), dtype=b1, value=True} : b1[]
  %18 = where %17, %0, %5 : f64[2,3]
  %19 = where %1, %0, %0 : f64[2,3]
  %20 = sum %1 {axis=(), keepdims=False} : i64[2,3]
  return %10, %14, %16, %18, %19, %20
}""", """
trace (%0: f64[2,3], %1: b1[2,3]) {
  %2 = reshape %0 {shape=(3, 2)} : f64[3,2]
  %3 = transpose %0 {perm=(1, 0)} : f64[3,2]
  %4 = reshape %3 {shape=(1, 3, 2)} : f64[1,3,2]
  %5 = transpose %4 {perm=(0, 2, 1)} : f64[1,2,3]
  %6 = broadcast_to %0 {shape=(4, 2, 3)} : f64[4,2,3]
  %7 = sum %1 {axis=(), keepdims=False} : i64[2,3]
  return %2, %5, %6, %0, %0, %7
}""")


def test_optimize_reaches_a_fixed_point():
    assert_rewrites(passes.optimize, """
trace (%0: f64[3], %1: f64[3]) {
  %2 = fill {shape=(), dtype=f64, value=0.5} : f64[]
  %3 = add %2, %2 : f64[]
  %4 = multiply %0, %3 : f64[3]
  %5 = reshape %4 {shape=(3, 1)} : f64[3,1]
  %6 = reshape %5 {shape=(3,)} : f64[3]
  %7 = exp %1 : f64[3]
  %8 = exp %1 : f64[3]
  %9 = add %7, %8 : f64[3]
  %10 = negative %9 : f64[3]
  %11 = negative %10 : f64[3]
  %12 = less %2, %3 : b1[]
  %13 = guard %12 {expected=True, loc='f.py:1', why='x'} : b1[]
  return %6, %11
}""", """
trace (%0: f64[3], %1: f64[3]) {
  %2 = exp %1 : f64[3]
  %3 = add %2, %2 : f64[3]
  return %0, %3
}""")


def test_passes_are_pure():
    text = ("trace (%0: f64[3]) {\n  %1 = exp %0 : f64[3]\n  %2 = exp %0 : f64[3]\n  %3 = log %0 : f64[3]\n"
            "  return %1, %2\n}")
    trace = parse_trace(text)
    for pass_fn in (passes.dce, passes.cse, passes.fold_constants, passes.simplify, passes.optimize):
        pass_fn(trace)
        assert format_trace(trace) == format_trace(parse_trace(text))


def test_guard_order_is_kept_by_every_pass():
    b = Builder()
    x = b.input((), np.float64)
    for k in range(4):
        b.guard(b.greater(x, b.fill((), np.float64, float(k))), k % 2 == 0, loc=f"f.py:{k}", why=str(k))
    trace = b.build([x])
    for pass_fn in (passes.dce, passes.cse, passes.fold_constants, passes.simplify, passes.optimize):
        assert [g.params["loc"] for g in pass_fn(trace).guards] == [f"f.py:{k}" for k in range(4)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_optimize_keeps_meaning_of_every_op_on_constants_and_inputs(case):
    """Each op applied to inputs, and to the same values as consts (folded away), gives what EVAL gives."""
    rng = np.random.default_rng(1)
    args = make_inputs(case, rng, np.float64)
    b = Builder()
    inputs = [b.input(a.shape, a.dtype) for a in args]
    on_inputs = b.emit(case.op, *inputs, **case.params)
    on_consts = b.emit(case.op, *[b.const(a) for a in args], **case.params)
    original = b.build([on_inputs, on_consts])
    optimized = passes.optimize(original)
    verify(optimized)
    folded = passes.dce(Trace(optimized.inputs, optimized.nodes, optimized.outputs[1:]))
    assert all(n.op in ("const", "fill") or n.op == case.op == "guard" for n in folded.nodes)
    for want, got in zip(run_trace(original, args), run_trace(optimized, args)):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want, equal_nan=True)


def test_fold_keeps_big_non_uniform_results_computed():
    n = passes.FOLD_LIMIT + 1
    trace = parse_trace(f"""
trace () {{
  %0 = fill {{shape=({n},), dtype=f64, value=1.0}} : f64[{n}]
  %1 = cumsum %0 {{axis=0}} : f64[{n}]
  %2 = exp %0 : f64[{n}]
  return %1, %2
}}""")
    folded = passes.fold_constants(trace)
    assert [node.op for node in folded.nodes] == ["fill", "cumsum", "fill"]
    assert folded.outputs[1].params["value"] == np.exp(1.0)


def test_whole_index_check_handles_specs_longer_than_the_operand():
    """x[:, None] on a 1-d array has more spec entries than dims: simplify must leave it alone
    (regression: it read past x.shape and raised IndexError, breaking np.cov)."""
    from jitgrad.ir import Builder, run_trace
    from jitgrad.ir.passes import optimize
    b = Builder()
    x = b.input((3,), np.float64)
    y = b.index(x, spec=(("slice", 0, 3, 1), ("newaxis",)))
    out = optimize(b.build([y]))
    assert out.outputs[0].shape == (3, 1)
    np.testing.assert_array_equal(run_trace(out, [np.arange(3.0)])[0], np.arange(3.0)[:, None])


@pytest.mark.parametrize("a, b", [
    (0.0, -0.0), (1, True), (1, 1.0), (0, False), ((1, 2), (1.0, 2)), ((1, True), (1, 1)),
    (("slice", 0, 3, 1), ("slice", 0.0, 3, 1)), (np.float64(1.0), 1.0), (np.float32(1.0), np.float64(1.0)),
    (np.dtype("f4"), np.dtype("f8")), ([1, 2], (1, 2)), (complex(0.0, 0.0), complex(0.0, -0.0)),
    ("1", 1), (None, 0), (np.array([0.0]), np.array([-0.0])), (np.array([1], "i4"), np.array([1], "i8"))])
def test_exact_key_tells_apart_values_python_calls_equal(a, b):
    """CSE keys params by `exact_key`: values that compare equal in Python but differ in type or bits
    (True == 1 == 1.0, 0.0 == -0.0) get different keys; each value's key equals its copy's."""
    assert passes.exact_key(a) != passes.exact_key(b)
    for v in (a, b):
        assert passes.exact_key(v) == passes.exact_key(copy.deepcopy(v))
        hash(passes.exact_key(v))


def test_cse_keeps_fills_of_signed_zeros_and_of_bool_and_int_values_apart():
    b = Builder()
    x = b.input((2,), np.float64)
    fills = [b.fill((2,), np.float64, v) for v in (0.0, -0.0, 0.0, 1, True, 1.0)]
    out = passes.cse(b.build([b.emit("add", x, f) for f in fills]))
    got = run_trace(out, [np.array([-0.0, 2.0])])
    assert [np.signbit(g[0]) for g in got[:3]] == [False, True, False]
    assert len([n for n in out.nodes if n.op == "fill"]) == 5


def test_moves_of_a_fill_become_fills_without_materialising_it():
    """reshape, broadcast_to and transpose of a fill are fills of their shape (-0.0 kept), so that
    optimize never builds a big array to find out it is uniform."""
    b = Builder()
    x = b.input((1000, 3), np.float64)
    f = b.fill((3,), np.float64, -0.0)
    wide = b.broadcast_to(f, shape=(1000, 3))
    moved = [wide, b.transpose(wide, perm=(1, 0)), b.reshape(wide, shape=(3000,))]
    trace = b.build([b.add(x, wide)] + moved)
    out = passes.optimize(trace)
    assert [v.op for v in out.outputs[1:]] == ["fill"] * 3
    assert [v.shape for v in out.outputs[1:]] == [(1000, 3), (3, 1000), (3000,)]
    inputs = [np.random.default_rng(0).normal(size=(1000, 3))]
    for got, want in zip(run_trace(out, inputs), run_trace(trace, inputs)):
        assert got.tobytes() == want.tobytes()


def test_index_updates_of_every_element_become_elementwise():
    """index_add / index_set addressing all of x (full unit-step slices, 0 on an axis of size 1) are
    x + v and v placed in x's shape; a different dtype of v (np.add.at rounds in the wider type) or a
    partial slice is kept.  The rewritten trace evaluates to the same arrays."""
    before = """
trace (%0: f64[4,1], %1: f64[4], %2: f32[4], %3: f64[]) {
  %4 = index_add %0, %1 {spec=(('slice', 0, 4, 1), ('int', 0))} : f64[4,1]
  %5 = index_set %0, %3 {spec=(('slice', 0, 4, 1),)} : f64[4,1]
  %6 = index_add %0, %2 {spec=(('slice', 0, 4, 1), ('int', 0))} : f64[4,1]
  %7 = index_add %0, %3 {spec=(('slice', 0, 2, 1), ('int', 0))} : f64[4,1]
  return %4, %5, %6, %7
}"""
    assert_rewrites(passes.optimize, before, """
trace (%0: f64[4,1], %1: f64[4], %2: f32[4], %3: f64[]) {
  %4 = reshape %1 {shape=(4, 1)} : f64[4,1]
  %5 = add %0, %4 : f64[4,1]
  %6 = broadcast_to %3 {shape=(4, 1)} : f64[4,1]
  %7 = index_add %0, %2 {spec=(('slice', 0, 4, 1), ('int', 0))} : f64[4,1]
  %8 = index_add %0, %3 {spec=(('slice', 0, 2, 1), ('int', 0))} : f64[4,1]
  return %5, %6, %7, %8
}""")
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((4, 1)), rng.standard_normal(4), rng.standard_normal(4).astype(np.float32),
              np.float64(0.25)]
    trace = parse_trace(before)
    for got, want in zip(run_trace(passes.optimize(trace), inputs), run_trace(trace, inputs)):
        assert np.array_equal(got, want)
