"""Where the JIT's BLAS comes from: SciPy's routines, found without importing scipy.linalg (whose
import would dominate a small kernel's first call), with the cython_blas capsule as the fallback."""
import ctypes
import os
import subprocess
import sys

import numpy as np

from jitgrad.jit import blas

GEMM_PROGRAM = """
import sys
import numpy as np
import jitgrad
rng = np.random.default_rng(0)
X, W = rng.normal(size=(80, 70)), rng.normal(size=(70, 60))
g = jitgrad.jit_grad(lambda W: np.sum(np.tanh(X @ W)))
got = g(W)
want = X.T @ (1.0 - np.tanh(X @ W) ** 2)
assert np.allclose(got, want, rtol=1e-12, atol=1e-12), abs(got - want).max()
assert g.cache_info().paths[0].backend == "llvm"
print("scipy.linalg" in sys.modules)
"""


def test_matmul_kernel_does_not_import_scipy_linalg():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", JITGRAD_DISK_CACHE="0")
    out = subprocess.run([sys.executable, "-c", GEMM_PROGRAM], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.split() == ["False"]


def _dgemm(address, a, b):
    """C = A.B for row-major float64 A, B through the Fortran dgemm at `address` (C^T = B^T A^T)."""
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)(address)
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n))
    ints = [ctypes.c_int(v) for v in (n, m, k, n, k, n)]
    one, zero = ctypes.c_double(1.0), ctypes.c_double(0.0)
    trans = ctypes.c_char(b"N")
    fn(ctypes.addressof(trans), ctypes.addressof(trans), *[ctypes.addressof(v) for v in ints[:3]],
       ctypes.addressof(one), b.ctypes.data, ctypes.addressof(ints[3]), a.ctypes.data,
       ctypes.addressof(ints[4]), ctypes.addressof(zero), c.ctypes.data, ctypes.addressof(ints[5]))
    return c


def test_symbol_and_capsule_fallback_compute_the_same_product(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(9, 7)), rng.normal(size=(7, 5))
    direct = _dgemm(blas._blas_address("dgemm"), a, b)
    monkeypatch.setattr(blas.importlib.util, "find_spec", lambda name: None)   # no file: the capsule
    through_capsule = _dgemm(blas._blas_address("dgemm"), a, b)
    assert direct.tobytes() == through_capsule.tobytes()
    assert np.allclose(direct, a @ b, rtol=1e-13, atol=1e-13)
