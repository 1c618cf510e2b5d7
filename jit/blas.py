"""dot_general through BLAS gemm: scipy.linalg.cython_blas's dgemm/sgemm (Fortran ABI, LP64, every
argument by pointer), the one BLAS jitgrad calls, as the measurement notes recommend.

A dot_general goes to BLAS when it is float32/float64 throughout, its batch axes lead both operands
in order, each operand is row-major as [batch, free, contract] or [batch, contract, free] (transposed
gemm), and the work M*N*K is at least BLAS_MIN_WORK (the plan records such nodes in Plan.gemm);
otherwise rules.py emits loops.  Products with
M or N equal to 1 call gemv instead.  Operands of a
BLAS product are always materialized (plan.py).  Row-major C = A.B is computed as the
column-major C^T = B^T.A^T, so no operand is copied.
"""
import ctypes
import importlib.machinery
import importlib.util
import math
import os

import numpy as np

from . import engine

BLAS_MIN_WORK = 4096
_GEMM = {np.dtype(np.float64): ("dgemm", "double"), np.dtype(np.float32): ("sgemm", "float")}
_GEMV = {np.dtype(np.float64): "dgemv", np.dtype(np.float32): "sgemv"}
_ARITY = {"gemm": 13, "gemv": 11}
_registered = set()


def _blas_address(name):
    """The address of SciPy's BLAS routine `name` (the one scipy.linalg.cython_blas wraps).

    Importing scipy.linalg costs ~0.15 s (most of a small kernel's first call), so the routine is
    first looked up in the library cython_blas's extension file links to, opened with ctypes (which
    loads it and its BLAS without running any Python, nor initialising the module): SciPy's wheels
    name the Fortran symbols `scipy_<name>_`, other builds `<name>_`.  The capsule of the imported
    cython_blas (whose `name` only forwards its arguments to that symbol) is the fallback."""
    spec = importlib.util.find_spec("scipy")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "linalg", "cython_blas" + suffix)
            if os.path.exists(path):
                library = ctypes.CDLL(path)
                for symbol in (f"scipy_{name}_", f"{name}_"):
                    if hasattr(library, symbol):
                        return ctypes.cast(getattr(library, symbol), ctypes.c_void_p).value
    return _capsule_address(name)


def _capsule_address(name):
    from scipy.linalg import cython_blas
    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


def _symbol(name):
    """The IR name of BLAS routine `name`, registered with the engine on first use."""
    if name not in _registered:
        engine.register_symbol(f"jg_blas_{name}", _blas_address(name))
        _registered.add(name)
    return f"@jg_blas_{name}"


def declaration(name):
    return f"declare void @jg_blas_{name}({', '.join(['ptr'] * _ARITY[name[1:]])})"


def gemm_layout(node):
    """(batch, M, N, K, x transposed?, y transposed?) if `node` maps onto gemm, else None."""
    x, y = node.args
    if node.dtype not in _GEMM or x.dtype != node.dtype or y.dtype != node.dtype:
        return None
    (xc, yc), (xb, yb) = node.params["contract"], node.params["batch"]
    nb = len(xb)
    if tuple(xb) != tuple(range(nb)) or tuple(yb) != tuple(range(nb)) or not xc:
        return None
    pairs = sorted(zip(xc, yc))
    xcs, ycs = [p[0] for p in pairs], [p[1] for p in pairs]
    if ycs != sorted(ycs):
        return None
    xfree = [a for a in range(nb, x.ndim) if a not in xc]
    yfree = [a for a in range(nb, y.ndim) if a not in yc]
    x_trans = _transposed(list(range(nb, x.ndim)), xfree, xcs, contract_last=True)
    y_trans = _transposed(list(range(nb, y.ndim)), yfree, ycs, contract_last=False)
    if x_trans is None or y_trans is None:
        return None
    dims = lambda shape, axes: math.prod(shape[a] for a in axes)
    batch, m, k, n = dims(x.shape, range(nb)), dims(x.shape, xfree), dims(x.shape, xcs), dims(y.shape, yfree)
    if min(batch, m, n, k) == 0 or m * n * k < BLAS_MIN_WORK:
        return None
    return batch, m, n, k, x_trans, y_trans


def _transposed(axes, free, contract, contract_last):
    """Whether an operand with row-major `axes` is the transpose of its gemm orientation ([free,
    contract] for the left operand, [contract, free] for the right); None if it is neither."""
    normal, swapped = (free + contract, contract + free) if contract_last else (contract + free, free + contract)
    return False if axes == normal else True if axes == swapped else None


def emit_gemm(em, node):
    """Call gemm once per batch element: C^T (N x M) = op(B)^T-ish (N x K) . op(A) (K x M); gemv
    when M or N is 1 (OpenBLAS's gemm is 2.5-9x slower than its gemv on such shapes)."""
    batch, m, n, k, x_trans, y_trans = gemm_layout(node)
    _, fty = _GEMM[node.dtype]
    f = em.f
    x, y = node.args

    def scalar(ty, value):
        slot = f.alloca(ty)
        f.stmt(f"store {ty} {value}, ptr {slot}")
        return slot

    # column-major view: B is (N x K) as 'N' with ld N when y is [K, N] row-major, else 'T' with ld K
    trans_b, ldb = (ord("T"), k) if y_trans else (ord("N"), n)
    trans_a, lda = (ord("T"), m) if x_trans else (ord("N"), k)
    one, zero, step = scalar(fty, "1.0"), scalar(fty, "0.0"), scalar("i32", 1)
    if m == 1:      # C^T (N) = op(B) (N x K) . a (K)
        routine = _GEMV[node.dtype]
        rows, cols = (k, n) if y_trans else (n, k)
        head, ld = [scalar("i8", trans_b), scalar("i32", rows), scalar("i32", cols), one], scalar("i32", ldb)
        plan = lambda a, b, c: head + [b, ld, a, step, zero, c, step]
    elif n == 1:    # C (M) = op(A)^T (M x K) . b (K)
        routine = _GEMV[node.dtype]
        rows, cols = (m, k) if x_trans else (k, m)
        head = [scalar("i8", ord("N") if x_trans else ord("T")), scalar("i32", rows), scalar("i32", cols), one]
        ld = scalar("i32", lda)
        plan = lambda a, b, c: head + [a, ld, b, step, zero, c, step]
    else:
        routine = _GEMM[node.dtype][0]
        head = [scalar("i8", trans_b), scalar("i8", trans_a), scalar("i32", n), scalar("i32", m),
                scalar("i32", k), one]
        ld_b, ld_a, ld_c = scalar("i32", ldb), scalar("i32", lda), scalar("i32", n)
        plan = lambda a, b, c: head + [b, ld_b, a, ld_a, zero, c, ld_c]
    fn = _symbol(routine)
    em.declare(declaration(routine))
    item = node.dtype.itemsize

    def call(bidx):
        b = bidx[0] if bidx else 0
        operands = plan(_offset_ptr(em, x, b, m * k * item), _offset_ptr(em, y, b, n * k * item),
                        _offset_ptr(em, node, b, m * n * item))
        f.stmt(f"call void {fn}({', '.join(f'ptr {o}' for o in operands)})")
    em.loops([batch] if batch > 1 else [], call)


def _offset_ptr(em, value, b, nbytes):
    """The address of batch element b (an int or i64 name) of materialized `value`."""
    base = em.pointer(em.plan.loc[id(value)])
    if isinstance(b, int):
        return base if b == 0 else em.f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {b * nbytes}")
    off = em.f.emit(f"mul nsw i64 {b}, {nbytes}")
    return em.f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {off}")
