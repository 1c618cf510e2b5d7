"""Random programs (tests/random_programs.py) run compiled against CPython + NumPy: values equal NumPy's,
gradients equal central finite differences and the reference executor's, over inputs that flip the
programs' branches, with aliased arguments (the same array passed as x and y) and cached calls (each
dropping the last call's arrays, so that the kernel reuses them).

JITGRAD_RANDOM_PROGRAMS=N runs programs 0..N-1 instead of the CI's 300 (larger runs are for before a
release, see tests/README.md: programs are seeded by their number, so a failure names its program)."""
import os
import warnings

import numpy as np
import pytest

import jitgrad
from random_programs import compile_program, inputs, program

COUNT = int(os.environ.get("JITGRAD_RANDOM_PROGRAMS", "300"))
CALLS = 4


def _finite_differences(f, args, eps=1e-6):
    """Central differences of f with respect to x, y (elementwise) and s."""
    x, y, s = args
    grads = []
    for k in (0, 1):
        g = np.zeros_like(args[k])
        for i in range(g.size):
            plus, minus = [a.copy() if isinstance(a, np.ndarray) else a for a in args], \
                [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            plus[k][i] += eps
            minus[k][i] -= eps
            g[i] = (f(*plus) - f(*minus)) / (2 * eps)
        grads.append(g)
    grads.append((f(x, y, s + eps) - f(x, y, s - eps)) / (2 * eps))
    return grads


def _close(got, expected, rtol, atol):
    return all(np.allclose(g, e, rtol=rtol, atol=atol) for g, e in zip(got, expected))


@pytest.mark.parametrize("seed", range(COUNT))
def test_random_program(seed):
    source = program(seed)
    f = compile_program(source, seed)
    compiled = jitgrad.value_and_grad(f, argnums=(0, 1, 2), max_traces=64)
    reference = jitgrad.value_and_grad(f, argnums=(0, 1, 2), jit=False, max_traces=64)
    rng = np.random.default_rng(seed + 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for call in range(CALLS):
            args = inputs(rng)
            if call == CALLS - 1:
                args = (args[0], args[0], args[2])          # aliased: the same array as x and y
            before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            value, grads = compiled(*args)
            ref_value, ref_grads = reference(*args)
            expected = f(*before)
            assert np.isclose(value, expected, rtol=1e-9, atol=1e-12), source
            assert _close(grads, ref_grads, 1e-8, 1e-10), source
            atol = 1e-6 + 1e-8 * abs(expected)    # central differences' own rounding: ~eps |f| / h, h = 1e-6
            if call < CALLS - 1:
                assert _close(grads, _finite_differences(f, before), 1e-5, atol), source
            else:       # x is y: only derivatives along x = y exist where a step such as np.maximum(x, y) ties
                along = _finite_differences(lambda x, y, s: f(x, x.copy(), s), before)
                assert _close([grads[0] + grads[1], grads[2]], [along[0], along[2]], 1e-5, atol), source
            assert all(np.array_equal(a, b) for a, b in zip(args[:2], before[:2])), source   # not written
            del value, grads        # the next call hands these arrays back (kept outputs, jit/pywrapper.py)
    assert compiled.cache_info().traces <= CALLS
