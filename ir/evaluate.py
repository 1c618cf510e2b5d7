"""EVAL: the NumPy reference evaluation of every op, and the reference executor of whole traces.

A rule is `rule(args, params) -> np.ndarray` on concrete NumPy operands.  This table *defines* what
each op means (DESIGN invariant 3): the tracer computes concrete values with it, and compiled kernels
are tested against it.  `run_trace` executes a trace, raising GuardFailed at the first failing guard.
The ops of the families ufunc, float_parts (their spec's `numpy`), special and bessel (the scipy.special
ufunc their spec names) and incomplete (ir/incomplete.py) get their family's rule; every other op has its
own.  Importing the module checks that every op of the spec (ir/ops.py) has a rule.
"""
import math
import sys

import numpy as np

from . import custom_ops, incomplete, polygamma
from .errors import GuardFailed
from .conditional import run_cond
from .loops import node_guards, run_loop
from .ops import SPECS, check_table, family, special_function
from .spec import index_tuple

EVAL = {}


def _ufunc(fn):
    def rule(args, params):
        return np.asarray(fn(*args))
    return rule


for _name in family("ufunc", "float_parts"):
    EVAL[_name] = _ufunc(SPECS[_name].numpy)

EVAL["where"] = lambda args, params: np.asarray(np.where(*args))
EVAL["astype"] = lambda args, params: np.asarray(args[0]).astype(params["dtype"])


def _reduction(fn):
    def rule(args, params):
        return np.asarray(fn(args[0], axis=tuple(params["axis"]), keepdims=params["keepdims"]))
    return rule


def empty_extreme(op, dtype):
    """What `max`/`min` (op) of no elements of `dtype` is in the IR: the identity of maximum/minimum
    (-inf/+inf, the integer extremes, False/True), so that combining it with NumPy's `initial=` gives
    NumPy's result (and an empty `any`/`all` is False/True)."""
    dtype = np.dtype(dtype)
    low = op == "max"
    if dtype.kind == "b":
        return not low
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if low else info.max
    return -np.inf if low else np.inf


def _extreme(op, fn):
    plain = _reduction(fn)

    def rule(args, params):
        x = np.asarray(args[0])
        if x.size:
            return plain(args, params)
        return np.asarray(fn(x, axis=tuple(params["axis"]), keepdims=params["keepdims"],
                             initial=empty_extreme(op, x.dtype)))
    return rule


for _name in family("reduction"):     # max/min of no elements: their identity (empty_extreme)
    EVAL[_name] = _extreme(_name, SPECS[_name].numpy) if _name in ("max", "min") else _reduction(SPECS[_name].numpy)

EVAL["argmax"] = lambda args, params: np.asarray(np.argmax(args[0], axis=params["axis"]))
EVAL["argmin"] = lambda args, params: np.asarray(np.argmin(args[0], axis=params["axis"]))
EVAL["cumsum"] = lambda args, params: np.cumsum(args[0], axis=params["axis"])
EVAL["reshape"] = lambda args, params: np.reshape(args[0], params["shape"])
EVAL["transpose"] = lambda args, params: np.transpose(args[0], params["perm"])
EVAL["broadcast_to"] = lambda args, params: np.broadcast_to(args[0], params["shape"])
EVAL["concatenate"] = lambda args, params: np.concatenate(args, axis=params["axis"])
EVAL["index"] = lambda args, params: np.asarray(args[0][index_tuple(params["spec"], args[1:])])


def _index_set(args, params):
    x, v, *arrays = args
    out = np.array(x, copy=True)
    out[index_tuple(params["spec"], arrays)] = v
    return out


def _index_add(args, params):
    x, v, *arrays = args
    out = np.array(x, copy=True)
    np.add.at(out, index_tuple(params["spec"], arrays), v)
    return out


def _dot_general(args, params):
    """As jax.lax.dot_general: x and y brought to (batch, free, contracted) and (batch, contracted,
    free) and multiplied by np.matmul (BLAS for floats: einsum's own loops are ~30x slower on a 256^3
    product, and the tiered first calls run this; tiny products stay cheap: no work for identity
    permutations, shapes by math.prod)."""
    x, y = args
    (xc, yc), (xb, yb) = params["contract"], params["batch"]
    xfree = [i for i in range(x.ndim) if i not in xc and i not in xb]
    yfree = [j for j in range(y.ndim) if j not in yc and j not in yb]
    x_shape, y_shape = x.shape, y.shape
    nb, nk = math.prod(x_shape[i] for i in xb), math.prod(x_shape[i] for i in xc)
    lhs = _permuted(x, [*xb, *xfree, *xc]).reshape(nb, math.prod(x_shape[i] for i in xfree), nk)
    rhs = _permuted(y, [*yb, *yc, *yfree]).reshape(nb, nk, math.prod(y_shape[j] for j in yfree))
    shape = [x_shape[i] for i in xb] + [x_shape[i] for i in xfree] + [y_shape[j] for j in yfree]
    return np.asarray(np.matmul(lhs, rhs).reshape(shape))


def _permuted(a, perm):
    return a if perm == list(range(a.ndim)) else a.transpose(perm)


EVAL.update(index_set=_index_set, index_add=_index_add, dot_general=_dot_general)
EVAL["const"] = lambda args, params: params["value"]
EVAL["fill"] = lambda args, params: np.full(params["shape"], params["value"], dtype=params["dtype"])
EVAL["input"] = None  # inputs are bound by the executor, never evaluated
EVAL["guard"] = lambda args, params: np.asarray(args[0] == params["expected"])


EVAL["argsort"] = lambda args, params: np.argsort(args[0], axis=params["axis"], kind="stable")


def _special(op):
    return lambda args, params: np.asarray(special_function(op)(*args))


def _polygamma(args, params):
    """polygamma(x, order=k): digamma for k = 0, else scipy's polygamma (float64) cast to digamma's dtype;
    while SciPy is not loaded (math.lgamma's derivatives), ir/polygamma.py's in float64."""
    (x,) = args
    if "scipy.special" not in sys.modules:
        return polygamma.polygamma(params["order"], x).astype(x.dtype if x.dtype.kind == "f" else np.float64)
    import scipy.special
    digamma_dtype = scipy.special.psi(np.ones(1, dtype=x.dtype)).dtype
    if params["order"] == 0:
        return np.asarray(scipy.special.psi(x))
    return np.asarray(scipy.special.polygamma(params["order"], x)).astype(digamma_dtype)


EVAL.update({op: _special(op) for op in family("special", "bessel")})
EVAL["polygamma"] = _polygamma


def _incomplete(op):
    return lambda args, params: incomplete.evaluate(op, args)


EVAL.update({op: _incomplete(op) for op in family("incomplete")})


def _triangular_solve(args, params):
    """scipy.linalg.solve_triangular on the broadcast batch (it reads only the `lower` triangle of a)."""
    import scipy.linalg
    a, b = args
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    dtype = np.result_type(a.dtype, b.dtype)
    if a.size == 0 or b.size == 0:
        return np.zeros(b.shape, dtype)
    return np.asarray(scipy.linalg.solve_triangular(a, b, lower=params["lower"]), dtype=dtype)


def _linalg(fn, part=None):
    """A linalg rule: `fn(a)` (its field `part` for multi-output routines)."""
    def rule(args, params):
        result = fn(*args)
        return np.asarray(result if part is None else result[part])
    return rule


def _eig_parts(a):
    """(eigenvalues in np.linalg.eigvals' order, eigenvectors V as columns in that order, V^-1)."""
    w = np.linalg.eigvals(a)
    found, v = np.linalg.eig(a)
    order = np.argmin(np.abs(w[..., :, None] - found[..., None, :]), axis=-1)
    v = np.take_along_axis(v, order[..., None, :], axis=-1)
    return w, v, np.linalg.inv(v)


def _eig_values_vjp(args, params):
    """Re(W^T diag(conj g) V^T): the cotangent of the real matrix."""
    a, g = args
    _, v, w_inv = _eig_parts(a)
    return np.real(np.einsum("...ij,...i,...ki->...jk", w_inv, np.conj(g), v)).astype(a.dtype)


def _eig_values_jvp(args, params):
    """diag(W t V): the tangents of the eigenvalues."""
    a, t = args
    _, v, w_inv = _eig_parts(a)
    return np.einsum("...ij,...jk,...ki->...i", w_inv, t, v)


def _svd(a):
    return np.linalg.svd(a, full_matrices=False)


def _expm(a):
    import scipy.linalg          # SciPy is optional: imported when an expm op is evaluated
    return scipy.linalg.expm(a)


EVAL.update({
    "cholesky": _linalg(np.linalg.cholesky), "inv": _linalg(np.linalg.inv), "det": _linalg(np.linalg.det),
    "solve": _linalg(np.linalg.solve), "triangular_solve": _triangular_solve,
    "slogdet_sign": _linalg(np.linalg.slogdet, 0), "slogdet_logabs": _linalg(np.linalg.slogdet, 1),
    "eigh_values": _linalg(np.linalg.eigh, 0), "eigh_vectors": _linalg(np.linalg.eigh, 1),
    "svd_u": _linalg(_svd, 0), "svd_s": _linalg(_svd, 1), "svd_vh": _linalg(_svd, 2),
    "qr_q": _linalg(np.linalg.qr, 0), "qr_r": _linalg(np.linalg.qr, 1), "expm": _linalg(_expm),
    "eig_values": _linalg(np.linalg.eigvals), "eig_values_vjp": _eig_values_vjp, "eig_values_jvp": _eig_values_jvp,
})


def evaluate(op, args, params):
    """Evaluate one op on concrete operands, with NumPy's floating-point warnings silenced."""
    with np.errstate(all="ignore"):
        return EVAL[op](args, params)


def run_trace(trace, inputs):
    """Run `trace` on concrete `inputs` with the reference evaluation; return the list of outputs.

    Raises GuardFailed(k) if the k-th guard of the trace (`Trace.guards` order, loop bodies and cond
    branches included) does not hold.
    """
    env = {id(v): np.asarray(x) for v, x in zip(trace.inputs, inputs)}
    guard_index = 0
    with np.errstate(all="ignore"):
        for node in trace.nodes:
            vals = [env[id(a)] for a in node.args]
            if node.op in _OWNING:
                try:
                    result = _OWNING[node.op](vals, node.params, run_trace)
                except GuardFailed as failed:        # numbered inside the body: renumber
                    raise GuardFailed(guard_index + failed.index) from None
                guard_index += node_guards(node)
            else:
                result = EVAL[node.op](vals, node.params)
            if node.op == "guard":
                if not bool(result):
                    raise GuardFailed(guard_index)
                guard_index += 1
            env[id(node)] = result
    return [env[id(v)] for v in trace.outputs]


_OWNING = {"loop": run_loop, "cond": run_cond}      # ops owning traces: run with run_trace
EVAL["loop"] = lambda args, params: run_loop(args, params, run_trace)
EVAL["cond"] = lambda args, params: run_cond(args, params, run_trace)
EVAL["loop_result"] = EVAL["cond_result"] = lambda args, params: args[0][params["index"]]


# -- complex parts and Fourier transforms (numpy.fft, which computes them in the operand's precision) --
def _fft(args, params):
    transform = np.fft.ifft if params["inverse"] else np.fft.fft
    return transform(args[0], axis=params["axis"], norm=params["norm"])


EVAL.update({
    "real": lambda args, params: np.asarray(np.real(args[0])).copy(),
    "imag": lambda args, params: np.asarray(np.imag(args[0])).copy(),
    "conj": lambda args, params: np.conjugate(args[0]),
    "fft": _fft,
    "rfft": lambda args, params: np.fft.rfft(args[0], axis=params["axis"], norm=params["norm"]),
    "irfft": lambda args, params: np.fft.irfft(args[0], n=params["n"], axis=params["axis"], norm=params["norm"]),
})
EVAL["custom_call"] = custom_ops.evaluate
check_table("EVAL (ir/evaluate.py)", EVAL, SPECS, "give the op a family with a generic rule, or an evaluation rule",
            specs=SPECS)
