"""Loops compiled as native loops (jit/loops.py) against the reference executor `ir.run_trace`, on
traces built by hand: scalar and array carries, invariants, stacked outputs, the counter indexing
reads and writes, guards and other exits inside bodies, trip counts 0..1000, nested loops, bodies
with reductions, products, host calls; compile work independent of the trip count."""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, run_trace
from jitgrad.ir.loops import COUNTER_DTYPE
from jitgrad.jit import compile_trace, loops

from test_loop_ad import with_scalar_output
from test_loop_ir import counter_body, nested_trace, pendulum_trace

F64 = np.dtype(np.float64)
TRIPS = [0, 1, 2, 3, 1000]


def check(trace, inputs, rtol=0.0):
    """Compile `trace`, run it on `inputs`, compare every output with the reference executor."""
    want = run_trace(trace, inputs)
    got = compile_trace(trace)(inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-300 if rtol else 0)
    return got


def loop_trace(body, trip, n_carry, operands, results):
    """A trace whose inputs, of types `operands` ((shape, dtype) pairs), are the operands of one loop
    over `body`; it returns that loop's results number `results`."""
    b = Builder()
    args = [b.input(s, d) for s, d in operands]
    loop = b.loop(*args, body=body, trip=trip, n_carry=n_carry)
    return b.build([b.loop_result(loop, index=k) for k in results])


@pytest.mark.parametrize("trip", TRIPS)
def test_euler_pendulum_scalar_carries_and_stacked_output(trip):
    loss, thetas = check(pendulum_trace(trip), [np.array([9.81, 0.3, 1.0, 0.2])])
    assert thetas.shape == (trip,)


def rnn_body(n, big=False):
    """x' = tanh(W x + b) (dot_general: BLAS gemv when `big`, else loops), s' = s + sum(x'^2),
    y = max(x'); invariants W, b."""
    b = Builder()
    _counter, x, s, w, bias = (b.input((), COUNTER_DTYPE), b.input((n,), F64), b.input((), F64),
                        b.input((n, n), F64), b.input((n,), F64))
    wx = b.dot_general(w, x, contract=((1,), (0,)), batch=((), ()))
    x_next = b.tanh(b.add(wx, bias))
    s_next = b.add(s, b.sum(b.multiply(x_next, x_next), axis=(0,), keepdims=False))
    return b.build([x_next, s_next, b.max(x_next, axis=(0,), keepdims=False), x_next])


@pytest.mark.parametrize("trip", TRIPS)
@pytest.mark.parametrize("n", [3, 64])
def test_array_carry_invariants_reduction_and_product(trip, n):
    rng = np.random.default_rng(n)
    t = loop_trace(rnn_body(n), trip, 2, [((n,), F64), ((), F64), ((n, n), F64), ((n,), F64)], [0, 1, 2, 3])
    inputs = [rng.standard_normal(n), np.float64(0.5), rng.standard_normal((n, n)) / np.sqrt(n),
              rng.standard_normal(n)]
    x, s, ys, xs = check(t, inputs, rtol=1e-12)
    assert ys.shape == (trip,) and xs.shape == (trip, n)
    if trip == 0:
        assert np.array_equal(x, inputs[0]) and s == inputs[1]


@pytest.mark.parametrize("trip", [0, 1, 5])
def test_counter_reads_and_index_set_into_a_carried_buffer(trip):
    n = 5
    b = Builder()
    x = b.input((n + 1,), F64)
    loop = b.loop(b.fill((), F64, 0.0), b.fill((n,), F64, -1.0), x, body=counter_body(n), trip=trip, n_carry=2)
    t = b.build([b.loop_result(loop, index=0), b.loop_result(loop, index=1)])
    acc, traj = check(t, [np.arange(1.0, n + 2.0)])
    assert np.array_equal(traj[trip:], -np.ones(n - trip))


def test_index_set_into_a_carry_updates_one_buffer_in_place():
    """traj[i] = v on a carried buffer: the carry is recognised as updated in place (one buffer, no
    copy of traj per iteration, which would make this loop quadratic) and the result is right."""
    n = 20000
    b = Builder()
    x = b.input((n + 1,), F64)
    loop = b.loop(b.fill((), F64, 0.0), b.fill((n,), F64, 0.0), x, body=counter_body(n), trip=n, n_carry=2)
    t = b.build([b.loop_result(loop, index=1)])
    assert loops.in_place_carries(loop) == [1]
    xv = np.linspace(0.0, 1.0, n + 1)
    (traj,) = compile_trace(t)([xv])
    np.testing.assert_allclose(traj, np.cumsum(xv[:-1] * xv[1:]), rtol=1e-12)


def test_out_of_bounds_counter_index_raises():
    b = Builder()
    i, acc, x = b.input((), COUNTER_DTYPE), b.input((), F64), b.input((4,), F64)
    ahead = b.add(i, b.const(np.asarray(2, COUNTER_DTYPE)))
    body = b.build([b.add(acc, b.index(x, ahead, spec=(("array", 0),)))])
    t = loop_trace(body, 3, 1, [((), F64), ((4,), F64)], [0])
    with pytest.raises(IndexError):
        run_trace(t, [np.float64(0), np.ones(4)])
    with pytest.raises(IndexError):
        compile_trace(t)([np.float64(0), np.ones(4)])
    ok = loop_trace(body, 2, 1, [((), F64), ((4,), F64)], [0])
    check(ok, [np.float64(0), np.arange(4.0)])


def test_guards_in_nested_bodies_report_their_global_number():
    t = nested_trace(3, 2, guarded=True)
    kernel = compile_trace(t)
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, 4.0])
    np.testing.assert_array_equal(kernel([x, y])[0], run_trace(t, [x, y])[0])
    for bad_x, bad_y, index in [([1.0, 2.0, -3.0], y, 1), (x, [0.5, -4.0], 2), ([1e10, 1.0, 1.0], y, 3),
                                ([-1e10, 1.0, 1.0], y, 0)]:
        with pytest.raises(GuardFailed) as failed:
            kernel([np.array(bad_x), np.array(bad_y)])
        assert failed.value.index == index
        with pytest.raises(GuardFailed) as reference:
            run_trace(t, [np.array(bad_x), np.array(bad_y)])
        assert reference.value.index == index


@pytest.mark.parametrize("outer, inner", [(1, 1), (3, 2), (40, 30)])
def test_nested_loops(outer, inner):
    rng = np.random.default_rng(outer)
    check(nested_trace(outer, inner), [rng.standard_normal(outer), rng.standard_normal(inner)], rtol=1e-13)


def guarded_decay_trace(trip):
    """A guard before the loop, one in the body (theta stays below 2), one after: later calls with a
    theta0 that crosses 2 at iteration j fail the body guard, number 1."""
    b = Builder()
    th0, rate = b.input((), F64), b.input((), F64)
    b.guard(b.greater(rate, b.const(np.float64(0.0))), True, loc="t.py:1", why="rate > 0")
    bb = Builder()
    i, th, r = bb.input((), COUNTER_DTYPE), bb.input((), F64), bb.input((), F64)
    th_next = bb.add(th, bb.multiply(r, bb.astype(i, dtype=F64)))
    bb.guard(bb.less(th_next, bb.const(np.float64(2.0))), True, loc="t.py:2", why="theta < 2")
    loop = b.loop(th0, rate, body=bb.build([th_next]), trip=trip, n_carry=1)
    final = b.loop_result(loop, index=0)
    b.guard(b.greater(final, b.const(np.float64(-5.0))), True, loc="t.py:3", why="theta > -5")
    return b.build([final])


def test_body_guard_failing_at_a_later_iteration():
    t = guarded_decay_trace(10)
    kernel = compile_trace(t)
    check(t, [np.float64(0.0), np.float64(0.01)])
    assert kernel([np.float64(-1.0), np.float64(0.01)])[0] == run_trace(t, [np.float64(-1.0), np.float64(0.01)])[0]
    for args, index in [((1.5, 0.02), 1), ((0.0, -1.0), 0), ((-7.0, 0.01), 2), ((1.99, 1e-3), 1)]:
        with pytest.raises(GuardFailed) as failed:
            kernel([np.float64(a) for a in args])
        assert failed.value.index == index


def test_host_called_op_in_a_body_and_its_error():
    """gammaln is host-called; cholesky of a matrix that stops being positive definite raises."""
    b = Builder()
    i, s, a = b.input((), COUNTER_DTYPE), b.input((), F64), b.input((2, 2), F64)
    shifted = b.subtract(a, b.multiply(b.astype(i, dtype=F64), b.const(np.eye(2))))
    chol = b.cholesky(shifted)
    body = b.build([b.add(s, b.add(b.gammaln(s), b.sum(chol, axis=(0, 1), keepdims=False)))])
    t = loop_trace(body, 3, 1, [((), F64), ((2, 2), F64)], [0])
    check(t, [np.float64(1.5), np.array([[5.0, 1.0], [1.0, 4.0]])], rtol=1e-13)
    with pytest.raises(np.linalg.LinAlgError):
        compile_trace(t)([np.float64(1.5), np.array([[2.5, 1.0], [1.0, 2.5]])])


def test_precise_math_exit_inside_a_loop_reruns_the_libm_twin():
    """sin of a huge argument inside the body's array loop leaves the fast polynomial's range."""
    b = Builder()
    _counter, x, scale = b.input((), COUNTER_DTYPE), b.input((8,), F64), b.input((), F64)
    body = b.build([b.add(x, b.sin(b.multiply(x, scale)))])
    t = loop_trace(body, 4, 1, [((8,), F64), ((), F64)], [0])
    x0 = np.linspace(0.1, 1.0, 8)
    check(t, [x0, np.float64(3.0)], rtol=1e-12)
    check(t, [x0, np.float64(1e15)], rtol=1e-12)


def test_bool_and_int_carries_fused_inits_and_duplicate_results():
    b = Builder()
    i, flag, count, v, x = (b.input((), COUNTER_DTYPE), b.input((), np.bool_), b.input((), np.int64),
                            b.input((3,), F64), b.input((3,), F64))
    xi = b.index(x, b.remainder(i, b.const(np.asarray(3, COUNTER_DTYPE))), spec=(("array", 0),))
    body = b.build([b.not_equal(flag, b.greater(xi, b.const(np.float64(0.0)))),
                    b.add(count, b.astype(i, dtype=np.int64)), b.add(v, x), v])
    for trip in (0, 1, 7):
        o = Builder()
        x = o.input((3,), F64)
        loop = o.loop(o.fill((), np.bool_, False), o.fill((), np.int64, 0), o.fill((3,), F64, 1.0), x,
                      body=body, trip=trip, n_carry=3)
        results = [o.loop_result(loop, index=k) for k in (0, 1, 2, 3, 2, 1)]
        check(o.build(results), [np.array([1.0, -2.0, 3.0])])


def test_a_loop_fed_by_a_loop_and_an_output_that_is_an_init():
    b = Builder()
    x = b.input((4,), F64)
    bb = Builder()
    _counter, v, k = bb.input((), COUNTER_DTYPE), bb.input((4,), F64), bb.input((), F64)
    body = bb.build([bb.multiply(v, k)])
    first = b.loop(x, b.const(np.float64(0.5)), body=body, trip=3, n_carry=1)
    mid = b.loop_result(first, index=0)
    second = b.loop(mid, b.const(np.float64(3.0)), body=body, trip=2, n_carry=1)
    check(b.build([b.loop_result(second, index=0), mid, x]), [np.arange(4.0)])


def test_compile_work_does_not_grow_with_trip():
    """The module text for 10 and 1e6 iterations differs only in the trip count and in where the
    stacked output's buffer lives (on the stack or in the caller's workspace)."""
    from jitgrad.jit.lower import lower
    texts = [lower(pendulum_trace(trip), "k")[0] for trip in (10, 1000000)]
    assert abs(texts[0].count("\n") - texts[1].count("\n")) <= 2
    assert abs(len(texts[1]) - len(texts[0])) < 200


def test_scalar_carries_become_registers_in_the_optimized_loop(monkeypatch, tmp_path):
    """The body is inlined and its 0-d carries' stack slots promoted: the optimized kernel has no
    alloca and carries theta, omega and the loss in phi nodes; sin is the only call in the loop."""
    log = tmp_path / "llvm.txt"
    monkeypatch.setenv("JITGRAD_LOG", "llvm")
    monkeypatch.setenv("JITGRAD_LOG_FILE", str(log))
    monkeypatch.setenv("JITGRAD_DISK_CACHE", "0")
    compile_trace(pendulum_trace(77777))        # a trip count no other test compiles
    text = log.read_text()
    optimized = text[text.index("optimized IR"):text.index("assembly")]
    kernel = optimized[optimized.index("define"):optimized.index("\n}\n")]
    assert "alloca" not in kernel
    assert kernel.count("phi double") == 3
    calls = [line.split("@")[1].split("(")[0] for line in kernel.splitlines() if " call " in line]
    assert [c for c in calls if not c.startswith("llvm.")] == ["jg_libm_sin"]


def test_a_body_longer_than_a_chunk_with_a_guard_in_its_last_chunk():
    from jitgrad.jit.plan import CHUNK_OPS
    b = Builder()
    _counter, x, y = b.input((), COUNTER_DTYPE), b.input((), F64), b.input((), F64)
    for _ in range(CHUNK_OPS // 2 + 100):
        x = b.add(b.multiply(x, b.const(np.float64(0.999))), b.multiply(b.sin(y), b.const(np.float64(1e-3))))
    b.guard(b.less(x, b.const(np.float64(10.0))), True, loc="long.py:1", why="x < 10")
    body = b.build([x, b.add(y, b.const(np.float64(0.1)))])
    t = loop_trace(body, 50, 2, [((), F64), ((), F64)], [0, 1])
    check(t, [np.array(1.0), np.array(0.5)], rtol=1e-13)
    with pytest.raises(GuardFailed) as failed:
        compile_trace(t)([np.array(1e3), np.array(0.5)])
    assert failed.value.index == 0


# ---- loops made by loop AD (ir/loop_ad.py): taping forward loops, reversed backward loops -------------

def _ad_programs():
    import loop_traces as lt
    return {"pendulum": lt.pendulum(40), "pendulum0": lt.pendulum(0), "array_rnn": lt.array_rnn(7),
            "accumulator": lt.accumulator(9), "trajectory": lt.trajectory(6), "nested": lt.nested(4, 3),
            "guarded": lt.guarded(5), "int_carry": lt.int_carry(6)}


@pytest.mark.parametrize("name", list(_ad_programs()))
@pytest.mark.parametrize("tape", ["taped", "checkpointed"])
def test_value_and_grad_loops_compiled(name, tape, monkeypatch):
    """The value-and-gradient traces of the loop AD programs, optimized or not, taped or checkpointed,
    compiled against the reference executor."""
    from jitgrad.ir import autodiff, loop_tape, passes
    if tape == "checkpointed":
        monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", 0.0)
    trace = with_scalar_output(_ad_programs()[name])
    rng = np.random.default_rng(3)
    args = [rng.uniform(0.2, 0.6, v.shape) if v.ndim else np.array(rng.uniform(0.2, 0.6)) for v in trace.inputs]
    wrt = [k for k, v in enumerate(trace.inputs) if v.dtype.kind == "f"]
    vg = autodiff.value_and_grad(trace, wrt, out=len(trace.outputs) - 1)
    for t in (vg, passes.optimize(vg)):
        check(t, args, rtol=1e-12)
