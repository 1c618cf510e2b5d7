"""The documented way to add a rule for a C function (`jitgrad.register`, README 'Registering rules'):
the refusal names it, a user's rule written with NumPy operations is used and differentiated (first and
second order, through the compiled kernel), a user's rule replaces a built-in one, and registering a
class's function covers its bound methods."""
import ctypes
import ctypes.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from jitgrad.tracer.recording import registry


def _c_function(name):
    """A fresh ctypes handle of libm's double -> double function `name` (no rule registered for it)."""
    fn = getattr(ctypes.CDLL(ctypes.util.find_library("m")), name)
    fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_double]
    return fn


@pytest.fixture
def restore_rules():
    saved = dict(registry._BY_ID)
    yield
    registry._BY_ID.clear()
    registry._BY_ID.update(saved)


def test_unsupported_c_function_names_the_registration_route():
    cbrt = _c_function("cbrt")
    with pytest.raises(jitgrad.UnsupportedError) as e:
        jitgrad.jit_grad(lambda x: cbrt(x) * 2.0)(8.0)
    message = str(e.value)
    assert "jitgrad.register(" in message and "Registering rules" in message and "cbrt" in message


def test_user_rule_for_a_ctypes_function_is_used_and_differentiated(restore_rules):
    cbrt = _c_function("cbrt")
    calls = []

    @jitgrad.register(cbrt)
    def _cbrt(x):
        calls.append(1)
        return np.sign(x) * np.abs(x) ** (1.0 / 3.0)       # NumPy operations on the traced value

    def f(x):
        return cbrt(x) * x
    grad = assert_grad(f, 8.0)
    assert grad == pytest.approx(8.0 ** (1 / 3) + 8.0 / 3 * 8.0 ** (-2 / 3), rel=1e-12)
    assert calls                                           # the rule ran while tracing
    second = jitgrad.jit_grad(jitgrad.jit_grad(lambda x: cbrt(x)))(8.0)
    assert second == pytest.approx(-2 / 9 * 8.0 ** (-5 / 3), rel=1e-10)
    assert jitgrad.jit_grad(cbrt)(-27.0) == pytest.approx(1 / 27, rel=1e-12)   # the C function passed directly


def test_user_rule_for_a_numpy_ufunc_made_from_python(restore_rules):
    """np.frompyfunc makes a C-level ufunc that jitgrad cannot look into; a rule makes it traceable."""
    softplus = np.frompyfunc(lambda v: np.log1p(np.exp(v)), 1, 1)

    @jitgrad.register(softplus)
    def _softplus(x):
        return np.logaddexp(0.0, x)

    x = np.array([-2.0, 0.5, 3.0])
    grad = assert_grad(lambda x: np.sum(softplus(x) * np.arange(1, 4)), x)
    np.testing.assert_allclose(grad, np.arange(1, 4) / (1 + np.exp(-x)), rtol=1e-12)


def test_user_rule_replaces_the_built_in_one(restore_rules):
    @jitgrad.register(np.sin)
    def _not_sin(x):
        return x * 2.0

    assert jitgrad.jit_grad(lambda x: np.sum(np.sin(x)))(np.ones(3)).tolist() == [2.0, 2.0, 2.0]


def test_rule_for_a_class_function_covers_bound_methods(restore_rules):
    class Model:
        def __init__(self, k):
            self.k = k

        def energy(self, x):
            raise AssertionError("the registered rule runs instead")

    @jitgrad.register(Model.energy)
    def _energy(model, x):
        return model.k * np.sum(x ** 2)

    grad = jitgrad.jit_grad(lambda x: Model(3.0).energy(x))(np.array([1.0, -2.0]))
    np.testing.assert_allclose(grad, [6.0, -12.0])


def test_library_rules_load_when_the_library_is_imported():
    """jitgrad never imports SciPy itself: a NumPy-only program does not pay for it, and SciPy's rules
    are there as soon as the program imports it (even after the first trace)."""
    program = textwrap.dedent("""
        import sys
        import numpy as np
        import jitgrad
        g = jitgrad.jit_grad(lambda x: np.sum(np.tanh(x) @ x))
        g(np.ones((40, 40)))
        assert not {"scipy.special", "scipy.stats", "scipy.signal", "scipy.spatial"} & set(sys.modules)
        import scipy.special
        x = np.array([0.1, 0.5])
        assert np.allclose(jitgrad.jit_grad(lambda x: np.sum(scipy.special.erf(x)))(x),
                           2 / np.sqrt(np.pi) * np.exp(-x ** 2))
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
