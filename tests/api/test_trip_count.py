"""An int argument used only as the bound of `for` loops over a range (tracer/arrays/sizeint.py) is a
run-time trip count: the call traced gets today's kernel, and a call with another value gets the trace's
form whose loop ops read the count as an input (compiled then, without tracing again), cached under a
key holding that argument as a wildcard; any other use keeps it keyed (a new value traces again).  Each
case checks values against CPython, gradients against finite differences and the compiled kernel against
the NumPy reference executor, and counts traces through cache_info()."""
import numpy as np
import pytest

import jitgrad
from jitgrad.ir import loop_tape
from e2e import assert_grad

DT = 0.01
P = np.array([9.81, 0.3, 1.0])


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    """Loops roll at any trip count here (short ones stay unrolled by default: rolling.unroll_ops)."""
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def pendulum(p, n):
    """The first iteration joins the loop op (theta is traced from the start): any n >= 0 uses one trace
    (a loop of a run-time trip count: n = 0 runs no iteration)."""
    theta, omega, loss = p[2], 0.0, 0.0
    for _ in range(n):
        omega = omega - DT * (p[0] * np.sin(theta) + p[1] * omega)
        theta = theta + DT * omega
        loss = loss + theta * theta
    return loss * DT


def from_constant(p, n):
    """The first iteration differs (theta starts as a constant) and is interpreted: n = 0 retraces."""
    theta, omega = 1.0, 0.0
    for i in range(n):
        omega = omega - DT * (p[0] * np.sin(theta) + p[1] * omega)
        theta = theta + DT * omega
    return theta * theta + omega


COUNTS = [1000, 1, 2, 3, 5000, 200000, 0]


def _grad_fns(fn):
    return jitgrad.jit_grad(fn, argnums=(0,)), jitgrad.jit_grad(fn, argnums=(0,), jit=False)


def test_one_trace_serves_every_trip_count_compiled_and_reference():
    compiled, reference = _grad_fns(pendulum)
    for n in COUNTS:
        assert_grad(pendulum, P, n, grad_fn=compiled)
        np.testing.assert_allclose(compiled(P, n)[0], reference(P, n)[0], rtol=1e-10, atol=1e-14)
        assert jitgrad.value_and_grad(pendulum)(P, n)[0] == pytest.approx(pendulum(P, n), rel=1e-12)
    for f, calls in ((compiled, 2), (reference, 1)):
        info = f.cache_info()
        assert (info.traces, info.promoted, info.hits) == (1, 1, calls * len(COUNTS) - 1), info.retraces
        traced, promoted = info.paths
        assert traced.signature == "float64[3], 1000"        # the call traced: the loop of 1000 steps
        assert "runs 0 or more" not in str(traced.guards) and "i64[]" not in traced.text.splitlines()[0]
        assert promoted.signature == "float64[3], int (a run-time trip count)"
        assert "bounded by int argument 1: other values of it reuse this trace" in promoted.loops[0]
        assert "runs 0 or more iterations" in promoted.guards[0][0]


def test_counts_below_the_iterations_interpreted_retrace_once():
    compiled, reference = _grad_fns(from_constant)
    for n in COUNTS + [1, 4000]:
        assert_grad(from_constant, P, n, grad_fn=compiled)
        np.testing.assert_allclose(compiled(P, n)[0], reference(P, n)[0], rtol=1e-10, atol=1e-14)
    info = compiled.cache_info()
    assert (info.traces, info.promoted) == (2, 1)     # n = 0 retraced (keyed), n >= 1 one trace
    assert sorted(p.signature for p in info.paths) == [
        "float64[3], 0", "float64[3], 1000", "float64[3], int (a run-time trip count)"]
    assert "runs 0 or more" in info.retraces[0]


def test_no_capacity_a_trace_of_ten_steps_serves_a_hundred_thousand():
    f = jitgrad.jit_grad(pendulum, argnums=(0,))
    for n in (10, 100_000, 3, 250_000, 0, 1):
        assert_grad(pendulum, P, n, grad_fn=f)
    info = f.cache_info()
    assert (info.traces, info.promoted, info.hits) == (1, 1, 5), info.retraces


@pytest.mark.parametrize("jit", [True, False])
def test_over_the_tape_budget_the_run_time_form_checkpoints(monkeypatch, jit):
    """JITGRAD_LOOP_TAPE_MB applies to the run-time form too: at 1 KB a few dozen rows taped, the rest
    recomputed in segments from checkpoints; the gradient the same, against finite differences and the
    form of the default budget, one trace (and one promoted form) for counts 0 to 200,000 (compiled;
    1,000 in the reference executor)."""
    want = jitgrad.jit_grad(pendulum, argnums=(0,), jit=jit)
    for n in (30, 7):
        want(P, n)
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", 1 / 1024)
    f = jitgrad.jit_grad(pendulum, argnums=(0,), jit=jit)
    for n in (30, 0, 1, 2, 3, 40, 1000) + ((200_000,) if jit else ()):
        if n < 200_000:
            assert_grad(pendulum, P, n, grad_fn=f)
        np.testing.assert_allclose(f(P, n)[0], want(P, n)[0], rtol=1e-11, atol=1e-15)
    info = f.cache_info()
    assert (info.traces, info.promoted) == (1, 1), info.retraces
    jac = jitgrad.jacrev(pendulum, jit=jit)         # (the backward segments inside its loop of passes)
    for n in (30, 0, 2, 400):
        np.testing.assert_allclose(jac(P, n), want(P, n)[0], rtol=1e-11, atol=1e-15)
    assert (jac.cache_info().traces, jac.cache_info().promoted) == (1, 1)


def test_forward_and_reverse_jacobians_reuse_the_trace():
    for mode in ("fwd", "rev"):
        jac = jitgrad.jacobian(pendulum, mode=mode)
        for n in (300, 0, 1, 2, 3, 900, 20000):
            eps = 1e-6
            fd = [(pendulum(P + eps * e, n) - pendulum(P - eps * e, n)) / (2 * eps) for e in np.eye(3)]
            np.testing.assert_allclose(jac(P, n), fd, rtol=1e-5, atol=1e-8)
        assert (jac.cache_info().traces, jac.cache_info().promoted) == (1, 1)


def bounded(x, n):
    s = 0.0
    for i in range(2, n - 1):         # range(a, n - c): its length is n - c - a
        s = s * 0.9 + x[0] * i
    return s


def test_range_from_a_start_to_n_minus_a_constant():
    f = jitgrad.jit_grad(bounded, argnums=(0,))
    x = np.array([0.7, 0.1])
    for n in (40, 41, 100, 3, 2):
        assert_grad(bounded, x, n, grad_fn=f)
    info = f.cache_info()
    assert (info.traces, info.promoted) == (3, 1)   # n = 3, 2: no iteration, fewer than interpreted: keyed
    assert "float64[2], int (a run-time trip count)" in [p.signature for p in info.paths]


def nested(x, m, n):
    s = 0.0
    for j in range(m):
        for i in range(n):
            s = s * 0.9 + x[0] * x[1]
        s = s * 0.5
    return s


def test_an_inner_loop_of_a_watched_loop_keeps_its_bound_keyed():
    """The inner loop op may become part of the outer loop's body, which the run-time form does not
    reach: its bound stays keyed."""
    f = jitgrad.jit_grad(nested, argnums=(0,))
    x = np.array([0.7, 1.3])
    for n in (40, 41):
        assert_grad(nested, x, 5, n, grad_fn=f)
    info = f.cache_info()
    assert (info.traces, info.promoted) == (2, 0)


def twice(x, n):
    s = 0.0
    for i in range(n):
        s = s * 0.9 + x[0] * x[1]
    for i in range(1, n):
        s = s * 0.8 + x[1] * i
    return s


def test_two_loops_bounded_by_one_argument():
    f = jitgrad.jit_grad(twice, argnums=(0,))
    reference = jitgrad.jit_grad(twice, argnums=(0,), jit=False)
    x = np.array([0.7, 1.3])
    for n in (40, 41, 90, 2):
        assert_grad(twice, x, n, grad_fn=f)
        np.testing.assert_allclose(f(x, n)[0], reference(x, n)[0], rtol=1e-10)
    info = f.cache_info()
    assert (info.traces, info.promoted) == (1, 1)


# -- any other use of the int keeps it keyed: a new value traces again ------------------------------------
def _loop(x, n):
    s = 0.0
    for _ in range(n):
        s = s * 0.9 + x[0]
    return s


def sliced(x, n):
    return _loop(x, n) + x[:n - 38].sum()


def branched(x, n):
    s = _loop(x, n)
    if n > 40:
        s = s * 2.0
    return s


def zeros(x, n):
    return _loop(x, n) + np.zeros(n).size * x[1]


def list_index(x, n):
    return _loop(x, n) * [1.0, 2.0, 3.0, 4.0][n - 38]


def as_float(x, n):
    return _loop(x, n) * n


def counter_after(x, n):
    s = 0.0
    for i in range(n):
        s = s * 0.9 + x[0]
    return s * x[i - 38]


def length_of_range(x, n):
    r = range(n)
    s = 0.0
    for _ in r:
        s = s * 0.9 + x[0]
    return s * len(r)


def returned(x, n):
    return _loop(x, n), n


def compared_in_the_body(x, n):
    s = 0.0
    for i in range(n):
        s = s * 0.9 + x[0] * (i < n - 5)
    return s


@pytest.mark.parametrize("fn", [sliced, branched, zeros, list_index, as_float, counter_after, length_of_range,
                                returned, compared_in_the_body])
def test_another_use_keeps_the_int_keyed(fn):
    has_aux = fn is returned
    f = jitgrad.value_and_grad(fn, has_aux=has_aux)
    x = np.array([0.4, 0.9, 1.3])
    for n in (40, 41):
        (value, grad) = f(x, n)
        expected = fn(x, n)
        assert (value[0] if has_aux else value) == pytest.approx(expected[0] if has_aux else expected, rel=1e-12)
        if has_aux:
            assert value[1] == n and type(value[1]) is int
        loss = (lambda y, k: fn(y, k)[0]) if has_aux else fn
        eps = 1e-6
        fd = [(loss(x + eps * e, n) - loss(x - eps * e, n)) / (2 * eps) for e in np.eye(3)]
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    info = f.cache_info()
    assert (info.traces, info.promoted) == (2, 0), info.paths
    assert sorted(p.signature for p in info.paths) == ["float64[3], 40", "float64[3], 41"]
    notes = [line for p in info.paths for line in p.loops if "bounded by int argument" in line]
    assert all("which is keyed: the int argument is used" in line for line in notes), notes


def reshaped(x, n):
    return _loop(x, n) + (x.reshape(n - 38, -1) ** 2).sum(axis=1)[0]


def by_keyword(x, n=3):
    return _loop(x, n)


def test_a_shape_given_to_a_traced_array_method_keeps_the_int_keyed_and_a_keyword_int_is_a_trip_count():
    x = np.arange(1.0, 13.0) / 10
    for fn, call, counts in ((reshaped, lambda f, n: f(x, n), (2, 0)), (by_keyword, lambda f, n: f(x, n=n), (1, 1))):
        f = jitgrad.value_and_grad(fn)
        for n in (40, 41):
            value, grad = call(f, n)
            assert value == pytest.approx(fn(x, n), rel=1e-12)
            eps = 1e-6
            fd = [(fn(x + eps * e, n) - fn(x - eps * e, n)) / (2 * eps) for e in np.eye(12)]
            np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
        assert (f.cache_info().traces, f.cache_info().promoted) == counts


def test_a_loop_that_does_not_roll_keeps_its_bound_keyed(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "4000")
    f = jitgrad.jit_grad(_loop, argnums=(0,))
    x = np.array([0.4, 0.9])
    for n in (5, 6):
        assert_grad(_loop, x, n, grad_fn=f)
    assert f.cache_info().traces == 2


def test_trace_text_shows_the_run_time_trip_count():
    f = jitgrad.jit_grad(pendulum)
    f(P, 100)
    f(P, 200)
    text = f.cache_info().paths[1].text
    assert text.startswith("trace (%0: f64[3], %1: i64[])")
    assert "trip=None" in text and "f64[?]" in text and "exit=" not in text     # the tape: a run-time stack


def test_a_changed_global_is_seen_by_the_promoted_form():
    """The form compiled for another count rests on the traced call's environment, checked as any path's."""
    f = jitgrad.jit_grad(scaled, argnums=(0,))
    x = np.array([0.7, 1.3])
    assert_grad(scaled, x, 50, grad_fn=f)
    global SCALE
    SCALE = 3.0
    try:
        assert_grad(scaled, x, 60, grad_fn=f)
        assert f.cache_info().traces == 2
    finally:
        SCALE = 2.0


SCALE = 2.0


def scaled(x, n):
    s = 0.0
    for i in range(n):
        s = s * 0.9 + x[0] * SCALE
    return s


MODULE = '''
import numpy as np

def pendulum(p, n):
    theta, omega, loss = p[2], 0.0, 0.0
    for _ in range(n):
        omega = omega - 0.01 * (p[0] * np.sin(theta) + p[1] * omega)
        theta = theta + 0.01 * omega
        loss = loss + theta * theta
    return loss * {scale}
'''

SCRIPT = '''
import json, os, sys
sys.path.insert(0, {here!r})
import numpy as np, jitgrad, tripmod
g = jitgrad.value_and_grad(tripmod.pendulum)
P = np.array([9.81, 0.3, 1.0])
ok = []
for n in {counts!r}:
    v, gr = g(P, n)
    eps = 1e-6
    fd = [(tripmod.pendulum(P + eps * e, n) - tripmod.pendulum(P - eps * e, n)) / (2 * eps) for e in np.eye(3)]
    ok.append(bool(abs(v - tripmod.pendulum(P, n)) < 1e-12 and np.allclose(gr, fd, rtol=1e-5, atol=1e-9)))
i = g.cache_info()
print(json.dumps({{"ok": ok, "traces": i.traces, "restored": i.restored, "promoted": i.promoted,
                  "paths": sorted(p.signature for p in i.paths)}}))
'''


def _process(tmp_path, counts):
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(tmp_path / "cache"), OPENBLAS_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1", JITGRAD_UNROLL_OPS="0")
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(here=str(tmp_path), counts=counts)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(result["ok"]), result
    return result


def test_the_disk_cache_stores_and_restores_the_run_time_form(tmp_path):
    (tmp_path / "tripmod.py").write_text(MODULE.format(scale="0.01"))
    first = _process(tmp_path, [100, 200])
    assert (first["traces"], first["promoted"], first["restored"]) == (1, 1, 0)
    other = _process(tmp_path, [300, 1, 7])           # a new process, new counts: restored, not traced
    assert (other["traces"], other["restored"], other["paths"]) == (0, 1, ["float64[3], int (a run-time trip count)"])
    same = _process(tmp_path, [100])                  # the count traced: its own record, today's kernel
    assert (same["traces"], same["restored"], same["paths"]) == (0, 1, ["float64[3], 100"])
    (tmp_path / "tripmod.py").write_text(MODULE.format(scale="0.02"))   # the code changed: traced again
    changed = _process(tmp_path, [300])
    assert (changed["traces"], changed["restored"]) == (1, 0)
