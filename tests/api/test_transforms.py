"""The transformation family (jitgrad/transforms.py, jitgrad/checking.py): jvp, vjp, jacobian, hessian,
hvp and check_grads, against SciPy's closed forms and central finite differences; caching, guards,
composition inside traced functions, and the duality of the forward and reverse transforms over the
whole op table."""
import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

import jitgrad
from jitgrad.ir import Builder, autodiff, run_trace
from jitgrad.transforms import VjpFunction, _transform_of
from op_cases import CASES, NO_MATRIX_DERIVATIVE, make_inputs

X = np.array([1.3, 0.7, 0.8, 1.9, 1.2, -0.4])


def central_jacobian(f, x, eps=1e-6):
    """d f / d x by central differences: shape f(x).shape + x.shape."""
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        columns.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(columns, axis=-1).reshape(np.shape(f(x)) + x.shape)


# -- Hessians and Hessian-vector products of scipy.optimize.rosen -----------------------------------------

@pytest.mark.parametrize("jit", [True, False])
def test_hessian_of_rosen_equals_rosen_hess(jit):
    hessian = jitgrad.hessian(rosen, jit=jit)
    for x in (X, X[::-1] * 1.5):
        np.testing.assert_allclose(hessian(x), rosen_hess(x), rtol=1e-12, atol=1e-9)
    assert hessian.cache_info().traces == 1 and hessian.cache_info().hits == 1


def test_hvp_of_rosen_equals_rosen_hess_prod():
    hvp = jitgrad.hvp(rosen)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, v = rng.standard_normal(7), rng.standard_normal(7)
        np.testing.assert_allclose(hvp(x, v), rosen_hess_prod(x, v), rtol=1e-12, atol=1e-9)
    assert hvp.cache_info().traces == 1


def test_hessian_is_the_jacobian_of_the_gradient_and_hvp_a_jvp_of_it():
    grad = jitgrad.jit_grad(rosen)
    np.testing.assert_allclose(jitgrad.jacobian(grad)(X), rosen_hess(X), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(jitgrad.jacrev(grad)(X), rosen_hess(X), rtol=1e-12, atol=1e-9)
    v = np.linspace(-1, 1, X.size)
    out, tangent = jitgrad.jvp(grad, (X,), (v,))
    np.testing.assert_allclose(out, rosen_der(X), rtol=1e-12)
    np.testing.assert_allclose(tangent, rosen_hess_prod(X, v), rtol=1e-12, atol=1e-9)


# -- jvp and vjp ------------------------------------------------------------------------------------------

def two_outputs(x, s):
    return {"y": np.sin(x) * s, "total": np.sum(x ** 2) * s}, 3


def test_jvp_and_vjp_of_pytrees():
    s, ts = 0.5, -2.0
    tx = np.linspace(0.1, 0.6, X.size)
    out, tangent = jitgrad.jvp(two_outputs, (X, s), (tx, ts))
    assert out[1] == 3 and type(out[0]["total"]) is np.float64
    np.testing.assert_allclose(out[0]["y"], np.sin(X) * s)
    np.testing.assert_allclose(tangent[0]["y"], np.cos(X) * tx * s + np.sin(X) * ts, rtol=1e-12)
    np.testing.assert_allclose(tangent[0]["total"], 2 * np.dot(X, tx) * s + np.sum(X ** 2) * ts, rtol=1e-12)
    assert tangent[1] == 0.0

    out, vjp_fn = jitgrad.vjp(two_outputs, X, s)
    u = ({"y": np.ones_like(X), "total": 2.0}, 0)
    gx, gs = vjp_fn(u)
    np.testing.assert_allclose(gx, np.cos(X) * s + 4 * X * s, rtol=1e-12)
    assert type(gs) is float and np.isclose(gs, np.sum(np.sin(X)) + 2 * np.sum(X ** 2))


def test_vjp_fn_is_reused_without_retracing():
    f = lambda x: np.cumsum(np.exp(x) * x[::-1])   # noqa: E731
    out, vjp_fn = jitgrad.vjp(f, X)
    J = central_jacobian(f, X)
    for k in range(X.size):   # every row of the Jacobian from one forward pass
        (row,) = vjp_fn(np.eye(X.size)[k])
        np.testing.assert_allclose(row, J[k], rtol=1e-6, atol=1e-8)
    jitgrad.vjp(f, X * 2)[1](np.ones(X.size))
    info = _transform_of(f, VjpFunction, 1).cache_info()
    assert info.traces == 1 and info.hits == 1


def test_constant_functions_have_zero_derivatives():
    out, tangent = jitgrad.jvp(lambda x: 3.0, (X,), (X,))
    assert (out, tangent) == (3.0, 0.0)
    out, vjp_fn = jitgrad.vjp(lambda x: (2.0, np.ones(2)), X)
    (ct,) = vjp_fn((1.0, np.ones(2)))
    assert out[0] == 2.0 and ct.shape == X.shape and not ct.any()
    np.testing.assert_array_equal(jitgrad.jacobian(lambda x: np.ones(2))(X), np.zeros((2, X.size)))
    np.testing.assert_array_equal(jitgrad.hessian(lambda x: np.sum(x))(X), np.zeros((X.size, X.size)))


def test_complex_outputs_are_refused_not_given_zero_derivatives():
    f = lambda x: np.exp(1j * x)   # noqa: E731
    for transform in (lambda: jitgrad.jvp(f, (X,), (X,)), lambda: jitgrad.vjp(f, X),
                      lambda: jitgrad.jacfwd(f)(X), lambda: jitgrad.jacrev(f)(X)):
        with pytest.raises(jitgrad.UnsupportedError, match=r"test_transforms.py:\d+.*complex"):
            transform()
    np.testing.assert_allclose(jitgrad.jacfwd(lambda x: np.real(f(x)))(X), np.diag(-np.sin(X)), atol=1e-15)


def test_jvp_refuses_tangents_unlike_the_primals_at_the_users_line():
    with pytest.raises(jitgrad.TraceError, match=r"test_transforms.py:\d+.*tangent leaf 0 is float32"):
        jitgrad.jvp(two_outputs, (X, 0.5), (X.astype(np.float32), 1.0))
    with pytest.raises(jitgrad.TraceError, match="structure"):
        jitgrad.jvp(two_outputs, (X, 0.5), ((X,), 1.0))


# -- <v, J u> by jvp equals <J^T v, u> by vjp, op by op ---------------------------------------------------

DUAL_CASES = [c for c in CASES if c.op not in ("guard", "const", "fill") and c.float_args
              and c.op not in NO_MATRIX_DERIVATIVE]


@pytest.mark.parametrize("case", DUAL_CASES, ids=[c.name for c in DUAL_CASES])
def test_forward_and_reverse_transforms_are_adjoint_on_every_op(case):
    rng = np.random.default_rng(11)
    args = make_inputs(case, rng, np.float64)
    b = Builder()
    y = b.emit(case.op, *[b.input(a.shape, a.dtype) for a in args], **case.params)
    if y.dtype.kind != "f":
        return   # no derivative to compare: integer, boolean or complex results
    trace, wrt = b.build([y]), case.float_args
    us = [rng.standard_normal(args[i].shape) for i in wrt]
    v = rng.standard_normal(y.shape)
    primal, tangent = autodiff.linearize(trace, wrt)
    residuals = run_trace(primal, args)[1:]
    (ju,) = run_trace(tangent, residuals + us)
    (ju_joint,) = run_trace(autodiff.jvp(trace, wrt), args + us)[1:]
    forward, backward = autodiff.vjp(trace, wrt)
    jtv = run_trace(backward, run_trace(forward, args)[1:] + [v])
    lhs, rhs = float(np.sum(v * ju)), sum(float(np.sum(g * u)) for g, u in zip(jtv, us))
    scale = float(np.sum(np.abs(v * ju))) + sum(float(np.sum(np.abs(g * u))) for g, u in zip(jtv, us)) + 1e-300
    single = any(v.dtype == np.float32 for v in tangent.nodes + backward.nodes + [y])
    assert abs(lhs - rhs) <= (1e-5 if single else 1e-10) * scale, (lhs, rhs)
    np.testing.assert_allclose(ju, ju_joint, rtol=1e-13, atol=1e-300)


# -- Jacobians of vector-valued code with branches and in-place updates -----------------------------------

def piecewise_dynamics(x):
    """Vector-valued, with a data-dependent branch and in-place updates in a loop."""
    y = np.empty(x.size + 1)
    y[0] = x[0] ** 2
    for i in range(1, x.size):
        if x[i] > x[i - 1]:
            y[i] = y[i - 1] * np.sin(x[i])
        else:
            y[i] = y[i - 1] + np.exp(-x[i])
        y[i] += x[i] * x[i - 1]
    y[-1] = np.sum(x)
    y[1:3] *= 2.0
    return y


@pytest.mark.parametrize("mode", ["fwd", "rev", "auto"])
def test_jacobian_with_branches_and_in_place_updates_equals_finite_differences(mode):
    jac = jitgrad.jacobian(piecewise_dynamics, mode=mode)
    for x in (X, X[::-1], X + np.array([0, 2, 0, 0, 0, 0])):   # different branch paths
        J = jac(x)
        assert J.shape == (x.size + 1, x.size)
        np.testing.assert_allclose(J, central_jacobian(piecewise_dynamics, x), rtol=1e-6, atol=1e-8)
    assert jac(X.copy()) is not None and jac.cache_info().hits >= 1
    # the loop rolls (its branch takes both sides), so the three paths share the loop op's trace; the
    # first iteration, recorded before it with its own guard, may make a second one
    assert jac.cache_info().traces <= 2


def test_jacobian_of_pytrees_and_argnums():
    def f(params, t):
        return {"a": params["w"] * np.tanh(t * params["s"]), "b": params["s"] ** 2 * np.ones(2)}
    params, t = {"w": np.array([1.0, 2.0]), "s": 0.7}, np.array([0.3, -0.2])
    for mode in ("fwd", "rev"):
        J = jitgrad.jacobian(f, argnums=(0, 1), mode=mode)(params, t)
        dw = J["a"][0]["w"]
        np.testing.assert_allclose(dw, np.diag(np.tanh(t * 0.7)))
        np.testing.assert_allclose(J["a"][0]["s"], params["w"] * t / np.cosh(t * 0.7) ** 2)
        np.testing.assert_allclose(J["a"][1], np.diag(params["w"] * 0.7 / np.cosh(t * 0.7) ** 2))
        np.testing.assert_allclose(J["b"][0]["s"], [1.4, 1.4])
        assert J["b"][0]["w"].shape == (2, 2) and not J["b"][0]["w"].any()
        assert J["b"][1].shape == (2, 2) and not J["b"][1].any()


def test_a_jacobian_is_one_compiled_kernel_with_its_passes_in_a_loop(monkeypatch):
    compiled = []
    real = jitgrad.backend.compile_trace

    def counting(trace, *args, **kwargs):
        compiled.append(trace)
        return real(trace, *args, **kwargs)
    monkeypatch.setattr(jitgrad.backend, "compile_trace", counting)
    cases = [(jitgrad.hessian(rosen), X.size), (jitgrad.jacfwd(piecewise_dynamics), X.size),
             (jitgrad.jacrev(piecewise_dynamics), X.size + 1)]
    for jac, passes in cases:
        compiled.clear()
        jac(X)
        (path,) = jac.cache_info().paths
        assert path.backend == "llvm" and path.note == ""
        assert len(compiled) == 1 and compiled[0] is path.trace
        trips = [n.params["trip"] for n in path.trace.nodes if n.op == "loop"]
        assert trips[-1] == passes and len(trips) <= 2      # (before it: the function's own loop, rolled)


def test_jacobian_mode_is_checked():
    with pytest.raises(jitgrad.TraceError, match="mode"):
        jitgrad.jacobian(np.sin, mode="sideways")


# -- Hessians through branches and loops ------------------------------------------------------------------

def energy(x):
    """A scalar with a data-dependent branch and a loop of in-place updates."""
    acc = np.zeros(2)
    for i in range(x.size):
        acc[i % 2] += np.sin(x[i]) * x[i - 1]
    if acc[0] > acc[1]:
        return acc[0] ** 2 + np.sum(x ** 3)
    return acc[0] * acc[1] + np.sum(np.cos(x))


def test_hessian_through_a_branch_and_a_loop_equals_differences_of_the_gradient():
    hessian, grad = jitgrad.hessian(energy), jitgrad.jit_grad(energy)
    branches = set()
    for x in (X, X * np.array([1, -1, 1, -1, 1, -1]), X[::-1] * 0.3):
        acc = np.zeros(2)
        for i in range(x.size):
            acc[i % 2] += np.sin(x[i]) * x[i - 1]
        branches.add(bool(acc[0] > acc[1]))
        H = hessian(x)
        np.testing.assert_allclose(H, central_jacobian(grad, x), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)
    assert branches == {True, False}   # both branches taken, each its own trace
    assert hessian.cache_info().traces == 2 and hessian.cache_info().hits == 1


# -- composition inside traced functions ------------------------------------------------------------------

def test_hvp_inside_a_traced_loss():
    v = np.linspace(0.5, -0.5, X.size)
    hvp = jitgrad.hvp(rosen)
    loss = lambda x: np.sum(hvp(x, v) ** 2)   # noqa: E731
    grad = jitgrad.jit_grad(loss)
    np.testing.assert_allclose(grad(X), central_jacobian(loss, X), rtol=1e-6)
    np.testing.assert_allclose(grad(X * 0.5), central_jacobian(loss, X * 0.5), rtol=1e-6)
    assert grad.cache_info().traces == 1


def test_jacobian_jvp_and_vjp_inside_traced_functions():
    f = lambda x: np.sin(x) * np.sum(x)   # noqa: E731

    def via_jacobian(x):
        return np.sum(jitgrad.jacfwd(f)(x) ** 2) + np.sum(jitgrad.jacrev(f)(x))

    def via_jvp_vjp(x):
        _, t = jitgrad.jvp(f, (x,), (np.cos(x),))
        out, vjp_fn = jitgrad.vjp(f, x)
        return np.sum(t * out) + np.sum(vjp_fn(x * 2)[0] ** 2)
    for g in (via_jacobian, via_jvp_vjp):
        np.testing.assert_allclose(jitgrad.jit_grad(g)(X), central_jacobian(g, X), rtol=1e-6, atol=1e-8)


def test_third_order_hessian_of_a_gradient_closure():
    f = lambda x: np.sum(np.exp(x) * x[0])   # noqa: E731
    third = jitgrad.jacobian(jitgrad.hessian(f))
    T = third(X[:3])
    H = jitgrad.hessian(f)
    np.testing.assert_allclose(T, central_jacobian(H, X[:3], eps=1e-5), rtol=1e-6, atol=1e-6)


def test_an_environment_change_retraces_the_transforms():
    global SCALE
    SCALE = np.array([2.0])
    f = lambda x: SCALE[0] * np.sum(x ** 3) if SCALE[0] > 0 else np.sum(x)   # noqa: E731
    hessian = jitgrad.hessian(f)
    np.testing.assert_allclose(hessian(X), np.diag(12 * X))
    SCALE[0] = 3.0                       # array contents: read afresh, no retrace
    np.testing.assert_allclose(hessian(X), np.diag(18 * X))
    SCALE[0] = -1.0                      # the branch flips: a guard fails, retrace
    np.testing.assert_allclose(hessian(X), np.zeros((X.size, X.size)))
    assert hessian.cache_info().traces == 2


# -- check_grads ------------------------------------------------------------------------------------------

def test_check_grads_passes_on_correct_derivatives():
    jitgrad.check_grads(rosen, (X,), order=2)
    jitgrad.check_grads(two_outputs, (X, 0.5), order=2)
    jitgrad.check_grads(lambda x: np.tanh(x) * x[0], (X.astype(np.float32),), order=2)
    jitgrad.check_grads(piecewise_dynamics, (X,), order=1, modes=("rev",))
    jitgrad.check_grads(lambda x, s: np.sum(x ** 3) * s, (X, 0.5), order=2)
    # a wrong derivative fails it: tests/api/test_custom.py (a deliberately wrong custom_vjp rule)


def test_hvp_of_pytrees_with_argnums_and_data_arguments():
    def loss(params, data, power):
        return np.sum((params["w"] * data - params["b"]) ** power) + params["b"] ** 3

    params, data = {"w": np.array([0.5, -1.0, 2.0]), "b": 0.3}, np.array([1.0, 2.0, 3.0])
    v = {"w": np.array([1.0, 0.0, -1.0]), "b": 2.0}
    hv = jitgrad.hvp(loss)(params, data, 2, v)
    assert type(hv["b"]) is float and hv["w"].shape == (3,)
    # closed form for power 2: H = [[2 diag(d^2), -2 d], [-2 d^T, 2 n + 6 b]]
    w_part = 2 * data ** 2 * v["w"] - 2 * data * v["b"]
    b_part = -2 * np.dot(data, v["w"]) + (2 * data.size + 6 * params["b"]) * v["b"]
    np.testing.assert_allclose(hv["w"], w_part, rtol=1e-12)
    assert np.isclose(hv["b"], b_part, rtol=1e-12)
    both = jitgrad.hvp(loss, argnums=(0, 1))(params, data, 2, (v, np.ones(3)))
    assert len(both) == 2 and both[1].shape == (3,)
    with pytest.raises(jitgrad.TraceError, match=r"test_transforms.py:\d+.*hvp of loss"):
        jitgrad.hvp(loss)(params, data, 2, data)


def test_differentiating_an_integer_argument_is_refused_at_the_users_line():
    with pytest.raises(jitgrad.TraceError, match=r"test_transforms.py:\d+.*argument 1"):
        jitgrad.jacobian(lambda x, n: x * n, argnums=1)(X, 3)
    with pytest.raises(jitgrad.TraceError, match=r"test_transforms.py:\d+.*argument 1"):
        jitgrad.hessian(lambda x, n: np.sum(x ** n), argnums=(0, 1))(X, 3)


def test_transforms_closing_over_an_outer_traced_value():
    def outer(x):
        H = jitgrad.hessian(lambda y: np.sum(np.sin(x * y)))(x)
        hv = jitgrad.hvp(lambda y: np.sum(np.sin(x * y) ** 2))(x, np.ones(3))
        _, t = jitgrad.jvp(lambda y: np.sin(x * y), (x,), (np.ones(3),))
        return np.sum(H) + np.sum(hv) + np.sum(t)

    def closed_form(x):   # the same at y = x: -x² sin(x²) on the diagonal, 2 x² cos(2x²), x cos(x²)
        return np.sum(-x ** 2 * np.sin(x * x)) + np.sum(2 * x ** 2 * np.cos(2 * x * x)) + np.sum(x * np.cos(x * x))
    x = np.array([0.3, 0.7, -0.4])
    assert np.isclose(outer(x), closed_form(x), rtol=1e-13)
    np.testing.assert_allclose(jitgrad.jit_grad(outer)(x), central_jacobian(closed_form, x), rtol=1e-7)


def test_repeated_jvp_calls_reuse_the_transform_of_their_own_function():
    """transforms._transform_of remembers the last lookup: alternating functions, parameters and a
    function that died (its id reused) each get their own transform."""
    x, v = np.array([0.3, -1.2]), np.array([1.0, 2.0])

    def f(a):
        return np.sum(np.sin(a))

    def g(a):
        return np.sum(a ** 3)
    for _ in range(2):
        assert jitgrad.jvp(f, (x,), (v,))[1] == pytest.approx(np.cos(x) @ v, rel=1e-14)
        assert jitgrad.jvp(g, (x,), (v,))[1] == pytest.approx(3 * x ** 2 @ v, rel=1e-14)
        assert jitgrad.jvp(lambda a, b: f(a) * b, (x, 2.0), (v, 1.0))[1] == pytest.approx(
            2 * np.cos(x) @ v + np.sum(np.sin(x)), rel=1e-14)
    assert jitgrad.vjp(g, x)[1](1.0)[0] == pytest.approx(3 * x ** 2, rel=1e-14)
    assert jitgrad.jvp(g, (x,), (v,))[1] == pytest.approx(3 * x ** 2 @ v, rel=1e-14)


def test_hvp_of_one_array_returns_the_kernels_fresh_output_on_cached_calls():
    import scipy.optimize as so
    h = jitgrad.hvp(so.rosen)
    x = np.random.default_rng(5).normal(size=30)
    results = []
    for k in range(4):
        v = np.random.default_rng(k).normal(size=30)
        results.append((h(x, v), v))
    for r, v in results:        # each call's own array, not a buffer the next call overwrote
        assert type(r) is np.ndarray
        np.testing.assert_allclose(r, so.rosen_hess_prod(x, v), rtol=1e-12, atol=1e-9)
    assert h.cache_info().traces == 1 and h.cache_info().hits >= 3
