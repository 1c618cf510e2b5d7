"""The cond op (ir/conditional.py, ir/cond_passes.py, ir/cond_ad.py) on traces built by hand: the
reference executor runs only the taken branch, text round trip, verifier, passes, and forward and
reverse mode (grad of grad too) against central finite differences, with the untaken branch NaN."""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, IRError, autodiff, passes, run_trace
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.printer import format_trace
from jitgrad.ir.verify import verify
from cond_traces import (clipped, clipped_python, guarded_branches, make_cond, signed_sum, signed_sum_python,
                         unsafe_sides, unsafe_sides_python)
from gradcheck import check_jvp, check_vjp
from loop_traces import F64, scalar
from test_loop_ad import float_inputs, float_outputs_of, gradient_vjp, split_vjp, tangent_jvp, with_scalar_output

ARGS = {
    "unsafe_sides": (unsafe_sides, lambda rng: [np.float64(rng.choice([-1, 1]) * rng.uniform(0.5, 2)),
                                                np.float64(rng.normal())]),
    **{f"signed_sum{n}": (lambda n=n: signed_sum(n),
                          lambda rng, n=n: [rng.normal(size=n + 1), np.float64(rng.normal())])
       for n in (0, 1, 2, 3, 200)},
    "clipped": (lambda: clipped(12), lambda rng: [np.float64(0.6), np.float64(rng.uniform(0.5, 1.5))]),
}


def test_only_the_taken_branch_runs():
    trace = unsafe_sides()
    for x, y in ((1.5, 2.0), (-0.5, 3.0)):
        (r,) = run_trace(trace, [np.float64(x), np.float64(y)])
        assert r == pytest.approx(unsafe_sides_python(x, y))
    x = np.random.default_rng(0).normal(size=10)
    s, ss = run_trace(signed_sum(9), [x, np.float64(0.7)])
    want = signed_sum_python(x, 0.7)
    np.testing.assert_allclose(s, want[0])
    np.testing.assert_allclose(ss, want[1])
    y, traj = run_trace(clipped(30), [np.float64(0.6), np.float64(1.2)])
    np.testing.assert_allclose(traj, clipped_python(0.6, 1.2, 30)[1])


@pytest.mark.parametrize("name", ARGS)
def test_text_round_trip_and_verify(name):
    trace = ARGS[name][0]()
    verify(trace)
    text = format_trace(trace)
    assert format_trace(parse_trace(text)) == text
    if name == "unsafe_sides":
        assert ": cond" in text and text.count("trace (") == 3


def test_verifier_and_shape_rules_refuse_bad_conds():
    b = Builder()
    x = b.input((), F64)
    with pytest.raises(IRError, match="0-d bool"):
        make_cond(b, x, [x], lambda bb, a: [a[0]], lambda bb, a: [a[0]])
    with pytest.raises(IRError, match="result 0"):
        make_cond(b, b.greater(x, x), [x], lambda bb, a: [a[0]], lambda bb, a: [bb.astype(a[0], dtype=np.float32)])
    with pytest.raises(IRError, match="returns|return"):
        make_cond(b, b.greater(x, x), [x], lambda bb, a: [a[0]], lambda bb, a: [a[0], a[0]])


def test_guards_in_branches_are_numbered_true_branch_first():
    trace = guarded_branches()
    assert [g.params["why"] for g in trace.guards] == ["first", "< 5.0", "< -3.0", "last"]
    assert run_trace(trace, [np.float64(2.0)])[0] == 4.0
    for x, failed in ((7.0, 1), (-1.0, 2), (11.0, 0)):
        with pytest.raises(GuardFailed) as info:
            run_trace(trace, [np.float64(x)])
        assert info.value.index == failed
    optimized = passes.optimize(trace)        # the guards in the branches keep the cond alive
    assert [g.params["why"] for g in optimized.guards] == ["first", "< 5.0", "< -3.0", "last"]


def test_dce_prunes_results_and_branches():
    b = Builder()
    x, y = b.input((), F64), b.input((), F64)
    r, unused = make_cond(b, b.greater(x, scalar(b, 0.0)), [x, y],
                          lambda bb, a: [bb.exp(a[0]), bb.sin(a[1])], lambda bb, a: [bb.cos(a[0]), bb.tan(a[1])])
    trace = passes.dce(b.build([r]))
    (node,) = [n for n in trace.nodes if n.op == "cond"]
    assert len(node.args) == 2          # the predicate and x: y is read only by the dropped result
    assert [[n.op for n in t.nodes] for t in node.params["branches"]] == [["exp"], ["cos"]]
    verify(trace)
    assert run_trace(trace, [np.float64(-1.0), np.float64(2.0)])[0] == np.cos(-1.0)
    assert not [n for n in passes.dce(b.build([x])).nodes if n.op == "cond"]


def test_constant_predicate_inlines_its_branch():
    b = Builder()
    x = b.input((), F64)
    (r,) = make_cond(b, b.fill((), bool, False), [x], lambda bb, a: [bb.exp(a[0])], lambda bb, a: [bb.sin(a[0])])
    trace = passes.optimize(b.build([r]))
    assert [n.op for n in trace.nodes] == ["sin"]


@pytest.mark.parametrize("name", ARGS)
def test_forward_mode(name):
    make, draw = ARGS[name]
    trace, rng = make(), np.random.default_rng(0)
    wrt = float_inputs(trace)
    for args in (draw(rng), draw(rng)):
        check_jvp(float_outputs_of(trace), tangent_jvp(trace, wrt), args, rng, wrt=wrt)
        check_jvp(float_outputs_of(trace), tangent_jvp(passes.optimize(trace), wrt), args, rng, wrt=wrt)


@pytest.mark.parametrize("name", ARGS)
def test_reverse_mode(name):
    make, draw = ARGS[name]
    trace, rng = make(), np.random.default_rng(1)
    wrt = float_inputs(trace)
    scalar_trace = with_scalar_output(trace)
    out = len(scalar_trace.outputs) - 1
    vg = passes.optimize(autodiff.value_and_grad(scalar_trace, wrt, out=out))
    verify(vg)
    for args in (draw(rng), draw(rng)):
        check_vjp(float_outputs_of(trace), split_vjp(trace, wrt), args, rng, wrt=wrt)
        check_vjp(lambda a: run_trace(scalar_trace, a)[out], gradient_vjp(vg, len(scalar_trace.outputs), wrt),
                  args, rng, wrt=wrt)
        assert all(np.all(np.isfinite(g)) for g in run_trace(vg, args))


@pytest.mark.parametrize("name", ["unsafe_sides", "signed_sum3", "clipped"])
def test_grad_of_grad(name):
    make, draw = ARGS[name]
    trace = with_scalar_output(make())
    rng = np.random.default_rng(3)
    wrt = float_inputs(trace)
    out = len(trace.outputs) - 1
    vg = autodiff.value_and_grad(trace, wrt, out=out)
    n = len(trace.outputs)
    grads = [n + j for j in range(len(wrt))]
    for g in grads:            # each gradient (summed), differentiated again
        b = Builder()
        env = passes.replay(b, vg.nodes, passes.copy_inputs(b, vg.inputs))
        grad = env[id(vg.outputs[g])]
        one = passes.optimize(b.build([b.sum(grad, axis=tuple(range(grad.ndim)), keepdims=False)]))
        hv = passes.optimize(autodiff.value_and_grad(one, wrt, out=0))
        verify(hv)
        check_vjp(lambda a, one=one: run_trace(one, a)[0], gradient_vjp(hv, 1, wrt), draw(rng), rng, wrt=wrt)


def test_predicate_is_taped_per_iteration():
    forward, _ = autodiff.vjp(clipped(20), [0, 1])
    (loop,) = [n for n in forward.nodes if n.op == "loop"]
    stacked = loop.params["body"].outputs[loop.params["n_carry"]:]
    assert any(v.dtype == np.bool_ for v in stacked)
