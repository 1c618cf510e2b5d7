"""The public API: argnums, has_aux, value_and_grad, decorators, errors with the user's file:line."""
import os

import numpy as np
import pytest

import jitgrad

HERE = os.path.basename(__file__)


def test_value_and_grad_and_decorator_forms():
    @jitgrad.value_and_grad
    def f(x):
        return np.sum(x ** 2)

    v, g = f(np.array([1.0, 2.0]))
    assert np.isclose(v, 5.0) and np.allclose(g, [2.0, 4.0])

    @jitgrad.jit_grad(argnums=(0, 1))
    def h(a, b):
        return np.sum(a * b)

    ga, gb = h(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert np.allclose(ga, [3.0, 4.0]) and np.allclose(gb, [1.0, 2.0])


def test_has_aux():
    def f(x):
        y = x ** 2
        return np.sum(y), {"y": y, "label": "sq", "n": 3}

    g, aux = jitgrad.jit_grad(f, has_aux=True)(np.array([1.0, 3.0]))
    assert np.allclose(g, [2.0, 6.0])
    assert np.allclose(aux["y"], [1.0, 9.0]) and aux["label"] == "sq" and aux["n"] == 3
    (v, aux2), g2 = jitgrad.value_and_grad(f, has_aux=True)(np.array([2.0, 1.0]))
    assert np.isclose(v, 5.0) and np.allclose(aux2["y"], [4.0, 1.0]) and np.allclose(g2, [4.0, 2.0])


def test_float_argument_gets_float_gradient_and_negative_argnums():
    g = jitgrad.jit_grad(lambda x, s: s * s * np.sum(x), argnums=-1)
    out = g(np.ones(3), 2.0)
    assert type(out) is float and out == 12.0


def test_value_type_follows_the_function():
    v, _ = jitgrad.value_and_grad(lambda x: float(np.sum(x)))(np.ones(2))
    assert type(v) is float
    v, _ = jitgrad.value_and_grad(lambda x: np.sum(x))(np.ones(2))
    assert type(v) is np.float64


def test_constant_output_has_zero_gradient():
    g = jitgrad.jit_grad(lambda x: 3.0)(np.ones(2))
    assert np.array_equal(g, np.zeros(2))


def test_keyword_arguments_are_static_or_dynamic():
    def f(x, scale=1.0, power=2):
        return scale * np.sum(x ** power)
    g = jitgrad.jit_grad(f)
    assert np.allclose(g(np.ones(2), scale=3.0, power=3), [9.0, 9.0])


def test_non_scalar_output_error():
    def f(x):
        return x * 2.0
    with pytest.raises(jitgrad.TraceError, match=r"scalar.*shape \(3,\)") as e:
        jitgrad.jit_grad(f)(np.ones(3))
    assert HERE in str(e.value)


def test_non_float_output_error():
    with pytest.raises(jitgrad.TraceError, match="float"):
        jitgrad.jit_grad(lambda x: "x")(np.ones(3))


@pytest.mark.parametrize("bad, match", [
    (1, "argument 1 .* int"),
    (2, "argument 2 .* str"),
    (5, "argnums=5"),
])
def test_bad_argnums(bad, match):
    def f(x, n, s):
        return np.sum(x) * n
    with pytest.raises(jitgrad.TraceError, match=match) as e:
        jitgrad.jit_grad(f, argnums=bad)(np.ones(2), 3, "s")
    assert HERE in str(e.value)


def test_integer_array_in_argnums():
    with pytest.raises(jitgrad.TraceError, match="int64"):
        jitgrad.jit_grad(lambda x: np.sum(x) * 1.0)(np.arange(3))


@pytest.mark.parametrize("argnums", [True, "0", (), (0, 0), 1.0])
def test_malformed_argnums(argnums):
    with pytest.raises(jitgrad.TraceError, match="argnums"):
        jitgrad.jit_grad(lambda x: x, argnums=argnums)


def test_unsupported_argument_type():
    with pytest.raises(jitgrad.TraceError, match="unsupported argument type set"):
        jitgrad.jit_grad(lambda x, s: np.sum(x))(np.ones(2), {1, 2})


def test_unsupported_c_function_names_callee_and_line():
    import scipy.special

    def f(x):
        return np.sum(scipy.special.struve(0, x))   # the line the error must name
    line = f.__code__.co_firstlineno + 1
    with pytest.raises(jitgrad.UnsupportedError) as e:
        jitgrad.jit_grad(f)(np.ones(2))
    msg = str(e.value)
    assert "struve" in msg and f"{HERE}:{line}" in msg and "register" in msg


def test_impure_call_refused():
    def f(x):
        return np.sum(x * np.random.rand(2))
    with pytest.raises(jitgrad.UnsupportedError, match="random"):
        jitgrad.jit_grad(f)(np.ones(2))


def test_native_float_conversion_refused():
    import struct

    def f(x):
        packed = struct.pack("d", x[0])    # C code consuming a traced value
        return x[0] * len(packed)
    with pytest.raises(jitgrad.UnsupportedError):
        jitgrad.jit_grad(f)(np.ones(2))


def test_user_exception_propagates_unchanged():
    def f(x):
        raise KeyError("missing")
    with pytest.raises(KeyError, match="missing"):
        jitgrad.jit_grad(f)(np.ones(2))


def test_cache_info_reports_paths_and_guards():
    def f(x):
        if x[0] > 0:
            return np.sum(x)
        return -np.sum(x)
    g = jitgrad.jit_grad(f)
    g(np.ones(2))
    g(-np.ones(2))
    info = g.cache_info()
    assert info.traces == 2 and len(info.paths) == 2
    why, loc, expected = info.paths[0].guards[0]
    assert f"{HERE}:" in loc and expected in (True, False)
    assert "trace" in info.paths[0].text


def test_reference_executor_flag_gives_same_gradient():
    def f(x):
        return np.sum(np.tanh(x) * np.exp(-x))
    x = np.linspace(-1, 1, 5)
    a = jitgrad.jit_grad(f, jit=False)(x)
    b = jitgrad.jit_grad(f)(x)
    assert np.allclose(a, b, rtol=1e-12)
    g = jitgrad.jit_grad(f, jit=False)
    g(x)
    assert g.cache_info().paths[0].backend == "reference"


def test_traced_write_into_plain_array_is_refused_with_location():
    def f(x):
        out = np.fromiter((0.0, 0.0), float)    # made by compiled code without a rule: a plain array
        kept = np.nditer(out)                   # compiled code keeps it: a traced write could not reach it
        out[0] = x[0] * 2.0        # the line the error must name
        return np.sum(out) + 0.0 * len(str(kept))
    line = f.__code__.co_firstlineno + 3
    with pytest.raises(jitgrad.UnsupportedError, match="plain NumPy array") as e:
        jitgrad.jit_grad(f)(np.ones(2))
    assert f"{HERE}:{line}" in str(e.value)
