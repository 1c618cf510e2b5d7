"""Rules for scipy.linalg routines beyond those in `linalg` (solve_triangular, cholesky, cho_*): expm maps
to the IR's `expm` op (derivatives by the block-matrix Fréchet derivative, ir/linalg_rules.py); norm is
numpy.linalg.norm's rule (SciPy calls BLAS nrm2 for vectors, which cannot be traced).
"""
from ..registry import register
from ..values import builder, make, unwrap
from .linalg import _operand, norm as numpy_norm

try:
    import scipy.linalg as sl
except ImportError:       # SciPy is optional
    sl = None


def expm(A):
    """scipy.linalg.expm of a real (stack of) square matrices."""
    concrete = sl.expm(unwrap(A))
    return make(builder().expm(_operand(A, concrete.dtype)), concrete)


def norm(a, ord=None, axis=None, keepdims=False, check_finite=True):
    """scipy.linalg.norm: numpy.linalg.norm's rule (check_finite only raises, as SciPy does)."""
    if check_finite:
        sl.norm(unwrap(a), ord=ord, axis=axis, keepdims=keepdims)       # SciPy's errors for inf/nan
    return numpy_norm(a, ord=ord, axis=axis, keepdims=keepdims)


if sl is not None:
    register(sl.expm)(expm)
    register(sl.norm)(norm)
