"""API breadth: every real-valued numpy/scipy function and ndarray method that autograd's test suites
(test_systematic.py, test_numpy.py, test_linalg.py, test_scipy.py) and JAX's numpy tests (the records
checked in reverse mode) differentiate, called as the libraries ship them with their own keywords.

One table, name -> (function, arguments[, argnums]).  Each function's output (array, scalar, or a
tuple/list of arrays) is contracted with fixed, distinct weights, so permutations and misplaced entries
change the loss.  The test calls the compiled gradient twice (the second call runs the cached native
kernel) and checks that kernel's gradient against central finite differences of the unmodified code run
by CPython (tests/gradcheck.py).  Inputs keep away from kinks (ties, zeros of abs, integer jumps).
"""
import operator

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.signal as ss
import scipy.special as sc
import scipy.stats as st

import jitgrad
from gradcheck import check_vjp

_RNG = np.random.default_rng(2024)


def R(*shape):
    """Standard normal entries of `shape`."""
    return _RNG.standard_normal(shape)


def U(low, high, *shape):
    """Uniform entries in [low, high)."""
    return _RNG.uniform(low, high, shape)


def _weights(value):
    """Fixed distinct weights shaped like `value` (a plain NumPy array or scalar)."""
    shape = np.shape(value)
    return np.cos(np.arange(1.0, np.prod(shape, dtype=int) + 1.0)).reshape(shape) + 1.5


def _pieces(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _loss_of(fn, weights):
    def loss(*args):
        total = 0.0
        for piece, w in zip(_pieces(fn(*args)), weights):
            total = total + np.sum(np.asarray(piece, dtype=np.float64) * w)
        return total
    return loss


SQ = R(4, 4)
T234 = R(2, 3, 4)
BOOL3 = [R(2, 3) > 0 for _ in range(3)]
SPD = SQ @ SQ.T + 4 * np.eye(4)

# -- reductions as autograd's stat_check calls them (axis, keepdims, 0-d and Python scalars) -----------
REDUCERS = {"sum": np.sum, "mean": np.mean, "prod": np.prod, "var": np.var, "std": np.std, "max": np.max,
            "min": np.min, "amax": np.amax, "amin": np.amin, "all": np.all, "any": np.any}
CASES = {}
for _name, _fn in REDUCERS.items():
    CASES.update({
        f"{_name}_flat": (lambda x, f=_fn: f(x), (R(2, 3),)),
        f"{_name}_axis0_keepdims": (lambda x, f=_fn: f(x, axis=0, keepdims=True), (R(2, 3),)),
        f"{_name}_axis1": (lambda x, f=_fn: f(x, 1), (R(2, 3),)),
        f"{_name}_row_axis0": (lambda x, f=_fn: f(x, axis=0), (R(1, 3),)),
        f"{_name}_python_float": (lambda x, f=_fn: f(x), (3.5,)),
        f"{_name}_0d": (lambda x, f=_fn: f(x, axis=None, keepdims=True), (R(),)),
    })
CASES.update({
    "var_ddof": (lambda x: np.var(x, axis=1, ddof=1), (R(2, 3),)),
    "std_ddof_tuple_axis": (lambda x: np.std(x, axis=(0, 2), ddof=1), (T234,)),
    "sum_tuple_axis": (lambda x: np.sum(x, axis=(0, 2)), (T234,)),
    "mean_of_list_of_traced": (lambda x: np.mean([x, 2 * x, x ** 2]), (1.5,)),
    "var_of_list_of_traced": (lambda x: np.var([x, 2 * x, x ** 2]), (1.5,)),
    "std_of_list_of_traced": (lambda x: np.std([x, 2 * x, x ** 2]), (1.5,)),
    "sum_dtype": (lambda x: np.sum(x, axis=0, dtype=np.float64), (R(2, 3).astype(np.float32),)),
    "mean_dtype": (lambda x: np.mean(x, dtype=np.float64), (R(2, 3).astype(np.float32),)),
    "sum_initial_where": (lambda x: np.sum(x, axis=1, initial=2.0, where=[True, False, True]), (R(2, 3),)),
    "prod_where_traced_mask": (lambda x: np.prod(x, axis=0, where=x > 0), (R(2, 3),)),
    "max_initial": (lambda x: np.max(x, axis=0, initial=0.1), (R(3, 4),)),
    "min_initial_where": (lambda x: np.min(x, initial=5.0, where=np.eye(3, 4, dtype=bool)), (R(3, 4),)),
    "method_sum_where": (lambda x: x.sum(where=x < 1.0), (R(3, 4),)),
    "ptp": (lambda x: np.ptp(x, axis=0), (R(3, 4),)),
    "cumsum_flat": (lambda x: np.cumsum(x), (R(3, 4),)),
    "cumsum_axis0": (lambda x: np.cumsum(x, axis=0), (R(3, 4),)),
    "cumsum_axis1": (lambda x: np.cumsum(x, axis=1), (R(3, 4),)),
    "cumprod_axis": (lambda x: np.cumprod(x, axis=1), (R(3, 4),)),
    "max_equal_values": (lambda x: np.max(np.array([x, x, 2 * x - x])), (0.7,)),
    "ufunc_of_list_of_traced": (lambda x: np.sin([x, 2 * x]), (R(2),)),
})

# -- unary ufuncs (autograd's unary_ufunc_check domains; JAX's reverse-mode records) --------------------
UNARY = {  # name -> (function, (low, high))
    "sin": (np.sin, (-2, 2)), "cos": (np.cos, (-2, 2)), "tan": (np.tan, (-1.1, 1.1)),
    "arcsin": (np.arcsin, (-0.9, 0.9)), "arccos": (np.arccos, (-0.9, 0.9)), "arctan": (np.arctan, (-2, 2)),
    "sinh": (np.sinh, (-2, 2)), "cosh": (np.cosh, (-2, 2)), "tanh": (np.tanh, (-2, 2)),
    "arcsinh": (np.arcsinh, (-0.9, 0.9)), "arccosh": (np.arccosh, (1.1, 4.0)), "arctanh": (np.arctanh, (-0.9, 0.9)),
    "asin": (np.asin, (-0.9, 0.9)), "acos": (np.acos, (-0.9, 0.9)), "atan": (np.atan, (-2, 2)),
    "asinh": (np.asinh, (-2, 2)), "acosh": (np.acosh, (1.1, 4.0)), "atanh": (np.atanh, (-0.9, 0.9)),
    "exp": (np.exp, (-2, 2)), "exp2": (np.exp2, (-2, 2)), "expm1": (np.expm1, (-2, 2)),
    "log": (np.log, (0.2, 2.0)), "log2": (np.log2, (0.2, 2.0)), "log10": (np.log10, (0.2, 2.0)),
    "log1p": (np.log1p, (0.2, 2.0)), "sqrt": (np.sqrt, (1.0, 3.0)), "cbrt": (np.cbrt, (0.3, 3.0)),
    "square": (np.square, (-2, 2)), "reciprocal": (np.reciprocal, (0.5, 2.0)),
    "abs": (np.abs, (0.1, 4.0)), "absolute": (np.absolute, (0.1, 4.0)), "fabs": (np.fabs, (-4.0, -0.1)),
    "negative": (np.negative, (-2, 2)), "positive": (np.positive, (-2, 2)),
    "sign": (np.sign, (0.1, 2)), "ceil": (np.ceil, (0.1, 0.9)), "floor": (np.floor, (-0.9, -0.1)),
    "trunc": (np.trunc, (0.1, 0.9)), "rint": (np.rint, (0.1, 0.4)), "fix": (np.fix, (-0.9, -0.1)),
    "round": (np.round, (0.1, 0.4)), "around_decimals": (lambda x: np.around(x, decimals=1), (0.11, 0.14)),
    "deg2rad": (np.deg2rad, (-2, 2)), "rad2deg": (lambda x: np.rad2deg(x) / 50.0, (-2, 2)),
    "radians": (np.radians, (-2, 2)), "degrees": (lambda x: np.degrees(x) / 50.0, (-2, 2)),
    "sinc": (np.sinc, (-2, 2)), "i0": (np.i0, (-2, 2)),
    "real": (np.real, (-2, 2)), "imag": (np.imag, (-2, 2)), "conj": (np.conj, (-2, 2)),
    "conjugate": (np.conjugate, (-2, 2)), "real_if_close": (np.real_if_close, (-2, 2)),
    "angle_negative": (np.angle, (-2, -0.5)), "angle_deg": (lambda x: np.angle(x, deg=True), (0.5, 2)),
    "nan_to_num": (np.nan_to_num, (-2, 2)), "unwrap": (np.unwrap, (-2, 2)),
    "modf_fraction": (lambda x: np.modf(x)[0], (0.1, 0.9)),
}
for _name, (_fn, (_lo, _hi)) in UNARY.items():
    CASES[_name] = (_fn, (U(_lo, _hi, 3, 2),))
CASES.update({f"{n}_python_float": (UNARY[n][0], (float(U(*UNARY[n][1])),))
              for n in ("sin", "exp", "log", "sqrt", "tanh", "arctan", "abs", "square")})

# -- binary ufuncs and operators, broadcasting matrix x row and matrix x Python float ------------------
BINARY = {  # name -> (function, domain of x, domain of y)
    "add": (np.add, (-2, 2), (-2, 2)), "subtract": (np.subtract, (-2, 2), (-2, 2)),
    "multiply": (np.multiply, (-2, 2), (-2, 2)), "divide": (np.divide, (-2, 2), (0.3, 2.0)),
    "true_divide": (np.true_divide, (-2, 2), (0.8, 1.2)), "true_divide_neg": (np.true_divide, (-2, 2), (-2.0, -0.3)),
    "power": (np.power, (0.7, 2.0), (-2, 2)), "pow": (np.pow, (0.7, 2.0), (-2, 2)),
    "float_power": (np.float_power, (0.7, 2.0), (-2, 2)),
    "logaddexp": (np.logaddexp, (-2, 2), (-2, 2)), "logaddexp2": (np.logaddexp2, (-2, 2), (-2, 2)),
    "remainder": (np.remainder, (-0.9, 0.9), (0.7, 1.9)), "mod": (np.mod, (0.1, 0.7), (0.8, 2.1)),
    "mod_neg": (np.mod, (0.1, 0.7), (-2.0, -0.8)), "fmod": (np.fmod, (0.1, 0.7), (0.8, 2.1)),
    "floor_divide": (np.floor_divide, (0.1, 0.7), (0.8, 2.1)),
    "arctan2": (np.arctan2, (-2, 2), (0.5, 2)), "atan2": (np.atan2, (0.5, 2), (-2, 2)),
    "hypot": (np.hypot, (0.5, 2), (-2, -0.5)), "copysign": (np.copysign, (0.5, 2), (-2, 2)),
    "maximum": (np.maximum, (-2, 2), (-2, 2)), "minimum": (np.minimum, (-2, 2), (-2, 2)),
    "fmax": (np.fmax, (-2, 2), (-2, 2)), "fmin": (np.fmin, (-2, 2), (-2, 2)),
    "heaviside": (np.heaviside, (0.5, 2), (-2, 2)),
    "divmod_quotient_remainder": (lambda x, y: np.divmod(x, y), (0.1, 0.7), (0.8, 2.1)),
    "op_add": (operator.add, (-2, 2), (-2, 2)), "op_sub": (operator.sub, (-2, 2), (-2, 2)),
    "op_mul": (operator.mul, (-2, 2), (-2, 2)), "op_truediv": (operator.truediv, (-2, 2), (0.5, 2.0)),
    "op_mod": (operator.mod, (-0.9, 0.9), (0.3, 2.0)), "op_mod_neg": (operator.mod, (-0.9, 0.9), (-2.0, -0.3)),
    "op_pow": (operator.pow, (0.7, 2.0), (-2, 2)), "op_floordiv": (operator.floordiv, (0.1, 0.7), (0.8, 2.1)),
}
for _name, (_fn, _dx, _dy) in BINARY.items():
    CASES[_name] = (_fn, (U(*_dx, 3, 2), U(*_dy, 3, 2)), (0, 1))
    CASES[f"{_name}_broadcast_row"] = (_fn, (U(*_dx, 3, 2), U(*_dy, 1, 2)), (0, 1))
    CASES[f"{_name}_python_float"] = (_fn, (U(*_dx, 2), float(U(*_dy))), (0, 1))
CASES["ldexp"] = (lambda x: np.ldexp(x, np.array([1, -2, 3])), (R(3),))
CASES["maximum_ties_of_scalars"] = (lambda x: np.maximum(x, np.array([-5.0, 5.0])), (R(2),))

# -- products and contractions --------------------------------------------------------------------------
CASES.update({
    "dot_scalars": (np.dot, (1.5, 0.3), (0, 1)),
    "dot_vec_vec": (np.dot, (R(3), R(3)), (0, 1)),
    "dot_mat_mat": (np.dot, (R(2, 3), R(3, 4)), (0, 1)),
    "dot_3d_3d": (np.dot, (R(2, 2, 3), R(2, 3, 4)), (0, 1)),
    "dot_scalar_mat": (np.dot, (1.5, R(3, 4)), (0, 1)),
    "inner_vec": (np.inner, (R(3), R(3)), (0, 1)),
    "inner_mat": (np.inner, (R(2, 3), R(4, 3)), (0, 1)),
    "inner_scalar": (np.inner, (1.5, R(4, 3)), (0, 1)),
    "outer": (np.outer, (R(3), R(2, 2)), (0, 1)),
    "matmul_vec_vec": (np.matmul, (R(3), R(3)), (0, 1)),
    "matmul_vec_mat": (np.matmul, (R(3), R(3, 4)), (0, 1)),
    "matmul_mat_vec": (np.matmul, (R(2, 3), R(3)), (0, 1)),
    "matmul_batched": (np.matmul, (R(2, 2, 3), R(2, 3, 4)), (0, 1)),
    "matmul_broadcast": (np.matmul, (R(2, 3), R(2, 3, 4)), (0, 1)),
    "matmul_operator": (operator.matmul, (R(2, 2, 3), R(3, 4)), (0, 1)),
    "tensordot_1": (lambda a, b: np.tensordot(a, b, axes=[(1,), (0,)]), (R(2, 3, 2), R(3, 4, 2)), (0, 1)),
    "tensordot_2": (lambda a, b: np.tensordot(a, b, axes=[(0,), (1,)]), (R(3, 4, 2), R(2, 3, 2)), (0, 1)),
    "tensordot_3": (lambda a, b: np.tensordot(a, b, axes=[(1, 0), (2, 1)]), (R(2, 3, 4), R(2, 2, 3, 4)), (0, 1)),
    "tensordot_int_axes": (lambda a, b: np.tensordot(a, b, axes=2), (R(4, 2, 2), R(2, 2, 4)), (0, 1)),
    "tensordot_axes_0": (lambda a, b: np.tensordot(a, b, axes=0), (R(4), R(3)), (0, 1)),
    "tensordot_negative_axis": (lambda a, b: np.tensordot(a, b, axes=[[-1], [0]]), (R(2, 6), R(6, 3)), (0, 1)),
    "tensordot_positional_axes": (lambda a, b: np.tensordot(a, b, 1), (R(2, 3), R(3, 4)), (0, 1)),
    "kron": (np.kron, (R(3, 3), R(2, 2)), (0, 1)),
    "cross_3": (np.cross, (R(3, 3), R(3, 3)), (0, 1)),
    "cross_axes": (lambda a, b: np.cross(a, b, axisa=0, axisb=1, axisc=0), (R(3, 4), R(4, 3)), (0, 1)),
    "cross_axis": (lambda a, b: np.cross(a, b, axis=0), (R(3, 3), R(3, 3)), (0, 1)),
    "cross_broadcast": (np.cross, (R(4, 3), R(3)), (0, 1)),
    "einsum_transpose": (lambda a: np.einsum("ij->ji", a), (R(3, 4),)),
    "einsum_matmul": (lambda a, b: np.einsum("ij,jk->ik", a, b), (R(2, 3), R(3, 4)), (0, 1)),
    "einsum_matmul_broadcast": (lambda a, b: np.einsum("...ij,...jk->...ik", a, b), (R(2, 3), R(2, 3, 4)), (0, 1)),
    "einsum_leading_zero_broadcast": (lambda a, b: np.einsum("...ij,...jk->...ik", a, b),
                                      (R(1, 2, 3), R(2, 3, 4)), (0, 1)),
    "einsum_covsum": (lambda a, b: np.einsum("ijk,lji->lki", a, b), (R(3, 4, 4), R(4, 4, 3)), (0, 1)),
    "einsum_ellipses": (lambda a, b: np.einsum("...jk,...lj->...lk", a, b), (R(3, 4, 4), R(4, 4)), (0, 1)),
    "einsum_ellipses_elementwise": (lambda a, b: np.einsum("...,...->...", a, b), (R(3, 4, 4), R(4, 4)), (0, 1)),
    "einsum_ellipses_tail": (lambda a, b: np.einsum("jk...,lj...->lk...", a, b), (R(3, 2, 4), R(2, 3, 4)), (0, 1)),
    "einsum_ellipses_center": (lambda a, b: np.einsum("j...k,lj...->lk...", a, b), (R(2, 2, 2), R(2, 2, 2)),
                               (0, 1)),
    "einsum_three_args": (lambda a, b, c: np.einsum("ijk,lji,lli->lki", a, b, c),
                          (R(3, 4, 4), R(4, 4, 3), R(4, 4, 3)), (0, 1, 2)),
    "einsum_naked_sum": (lambda a: np.einsum("k,nk", a, np.ones((4, 3))), (R(3),)),
    "einsum_naked_sum_ellipsis": (lambda a: np.einsum("...k,...nk", a, np.ones((2, 4, 3))), (R(2, 3),)),
    "einsum_no_output_indices": (lambda a, b: np.einsum("ij,k", a, b), (R(2, 3), R(4)), (0, 1)),
    "einsum_sublists_transpose": (lambda a: np.einsum(a, [0, 1], [1, 0]), (R(3, 4),)),
    "einsum_sublists_matmul": (lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), (R(2, 3), R(3, 4)), (0, 1)),
    "einsum_sublists_broadcast": (lambda a, b: np.einsum(a, [Ellipsis, 0, 1], b, [Ellipsis, 1, 2], [Ellipsis, 0, 2]),
                                  (R(2, 2, 3), R(3, 4)), (0, 1)),
    "einsum_sublists_three_args": (lambda a, b, c: np.einsum(a, [0, 1, 2], b, [3, 1, 0], c, [3, 3, 0], [3, 2, 0]),
                                   (R(3, 4, 4), R(4, 4, 3), R(4, 4, 3)), (0, 1, 2)),
    "vdot": (np.vdot, (R(2, 3), R(2, 3)), (0, 1)),
    "trace": (np.trace, (R(4, 5),)),
    "trace_offset": (lambda x: np.trace(x, offset=-1), (R(5, 4),)),
    "trace_3d": (lambda x: np.trace(x, offset=1), (R(3, 4, 5),)),
    "trace_axes": (lambda x: np.trace(x, axis1=1, axis2=2), (R(2, 3, 3),)),
})

# -- shapes, joins, splits, rearrangements ------------------------------------------------------------
CASES.update({
    **{f"transpose_{''.join(map(str, p))}": (lambda x, p=p: np.transpose(x, axes=p), (T234,))
       for p in ([0, 1, 2], [0, 2, 1], [2, 0, 1], [2, 1, 0], [1, 0, 2], [1, 2, 0])},
    "transpose_default": (np.transpose, (T234,)),
    "moveaxis": (lambda x: np.moveaxis(x, 0, -1), (T234,)),
    "moveaxis_many": (lambda x: np.moveaxis(x, [0, 1], [2, 0]), (T234,)),
    "rollaxis": (lambda x: np.rollaxis(x, 2, 0), (T234,)),
    "rollaxis_start": (lambda x: np.rollaxis(x, 0, 3), (T234,)),
    "swapaxes": (lambda x: np.swapaxes(x, 0, 2), (T234,)),
    "reshape": (lambda x: np.reshape(x, (4, -1)), (T234,)),
    "reshape_order_F": (lambda x: np.reshape(x, (6, 4), order="F"), (T234,)),
    "ravel": (np.ravel, (T234,)),
    "ravel_order_F": (lambda x: np.ravel(x, order="F"), (T234,)),
    "squeeze": (np.squeeze, (R(3, 1, 2, 1),)),
    "squeeze_axis": (lambda x: np.squeeze(x, axis=1), (R(3, 1, 2, 1),)),
    "expand_dims": (lambda x: np.expand_dims(x, 1), (R(3, 2),)),
    "expand_dims_tuple": (lambda x: np.expand_dims(x, (0, 3)), (R(3, 2),)),
    "atleast_1d_float": (np.atleast_1d, (1.2,)),
    "atleast_1d": (np.atleast_1d, (R(2, 4, 5),)),
    "atleast_2d_vector": (np.atleast_2d, (R(7),)),
    "atleast_2d_float": (np.atleast_2d, (1.2,)),
    "atleast_3d_vector": (np.atleast_3d, (R(7),)),
    "atleast_3d_matrix": (np.atleast_3d, (R(2, 4),)),
    "atleast_3d_4d": (np.atleast_3d, (R(2, 4, 3, 5),)),
    "broadcast_to": (lambda x: np.broadcast_to(x, (3, 2, 4)), (R(2, 1),)),
    "repeat_flat": (lambda x: np.repeat(x, 2), (R(2, 3, 4),)),
    "repeat_axis0": (lambda x: np.repeat(x, 2, axis=0), (R(2, 3, 4),)),
    "repeat_zero_axis1": (lambda x: np.repeat(x, 0, axis=1), (R(3, 1),)),
    "repeat_one": (lambda x: np.repeat(x, 1, axis=0), (R(3, 1),)),
    "repeat_counts": (lambda x: np.repeat(x, [1, 0, 3], axis=0), (R(3, 2),)),
    "tile_4d": (lambda x: np.tile(x, (1, 4, 1, 2)), (R(2, 1, 3, 1),)),
    "tile_more_reps": (lambda x: np.tile(x, (3, 2, 1)), (R(1, 2),)),
    "tile_int": (lambda x: np.tile(x, 2), (R(1),)),
    "diff": (lambda x: np.diff(x), (R(5, 5),)),
    "diff_n2_axis0": (lambda x: np.diff(x, n=2, axis=0), (R(5, 5, 5),)),
    "diff_single_element": (lambda x: np.diff(x, axis=0), (R(1, 1),)),
    "ediff1d": (np.ediff1d, (R(3, 2),)),
    "ediff1d_to_begin_end": (lambda x: np.ediff1d(x, to_end=[1.0, 2.0], to_begin=-1.0), (R(4),)),
    "gradient_1d": (np.gradient, (R(5),)),
    "gradient_2d": (np.gradient, (R(4, 5),)),
    "gradient_axis_spacing": (lambda x: np.gradient(x, 0.5, axis=1), (R(4, 5),)),
    "gradient_edge_order_2": (lambda x: np.gradient(x, edge_order=2), (R(6),)),
    "gradient_coordinates": (lambda x: np.gradient(x, np.array([0.0, 0.5, 1.5, 1.7, 3.0])), (R(5),)),
    "sort": (np.sort, (R(7),)),
    "sort_axis0": (lambda x: np.sort(x, axis=0), (R(4, 3),)),
    "sort_none": (lambda x: np.sort(x, axis=None), (R(4, 3),)),
    "partition": (lambda x: np.partition(x, 3), (R(7),)),
    "partition_kth_list": (lambda x: (np.partition(x, [0, 6])[[0, 6]], np.partition(x, [0, 6])[1:6].sum()), (R(7),)),
    "partition_axis0": (lambda x: np.partition(x, 1, axis=0), (R(4, 3),)),
    "flip": (lambda x: np.flip(x, axis=(0, 2)), (T234,)),
    "flipud": (np.flipud, (R(3, 4),)),
    "fliplr": (np.fliplr, (R(3, 4),)),
    "rot90": (np.rot90, (R(3, 4),)),
    "rot90_k_axes": (lambda x: np.rot90(x, k=3, axes=(2, 0)), (T234,)),
    "roll": (lambda x: np.roll(x, 2, axis=1), (R(3, 4),)),
    "roll_no_axis": (lambda x: np.roll(x, -5), (R(3, 4),)),
    "roll_tuple": (lambda x: np.roll(x, (1, -1), axis=(0, 2)), (T234,)),
    "diag_k": (lambda x: np.diag(x, k=-1), (R(5, 5),)),
    "diag_upper": (lambda x: np.diag(x, 1), (R(5, 5),)),
    "diag_flat_k": (lambda x: np.diag(x, k=1), (R(5),)),
    "diagflat": (np.diagflat, (R(2, 2),)),
    "diagonal": (lambda x: np.diagonal(x, offset=1, axis1=0, axis2=2), (R(3, 2, 4),)),
    "tril": (lambda x: np.tril(x, k=-1), (R(5, 5),)),
    "triu": (lambda x: np.triu(x, k=1), (R(5, 5),)),
    "tril_3d": (lambda x: np.tril(x), (R(5, 5, 4),)),
    "triu_3d": (lambda x: np.triu(x, -1), (R(5, 5, 4),)),
    "concatenate_list": (lambda x, y: np.concatenate([x, y], axis=0), (R(1), R(3)), (0, 1)),
    "concatenate_tuple_axis1": (lambda x, y: np.concatenate((x, y), axis=1), (R(2, 2), R(2, 3)), (0, 1)),
    "concatenate_3d_axis2": (lambda x, y: np.concatenate((x, y), 2), (R(2, 2, 2), R(2, 2, 2)), (0, 1)),
    "concatenate_axis_none": (lambda x, y: np.concatenate((x, y), axis=None), (R(2, 2), R(3)), (0, 1)),
    "append": (lambda x, y: np.append(x, y), (R(2, 2), R(3)), (0, 1)),
    "append_axis": (lambda x, y: np.append(x, y, axis=0), (R(2, 2), R(1, 2)), (0, 1)),
    "vstack_1d": (lambda x, y: np.vstack((x, y)), (R(2), R(2)), (0, 1)),
    "vstack_2d": (lambda x, y: np.vstack([x, y]), (R(2, 4), R(1, 4)), (0, 1)),
    "vstack_3d": (lambda x, y: np.vstack((x, y)), (R(2, 3, 4), R(1, 3, 4)), (0, 1)),
    "vstack_single": (np.vstack, (R(2, 3),)),
    "hstack_1d": (lambda x, y: np.hstack((x, y)), (R(2), R(3)), (0, 1)),
    "hstack_2d": (lambda x, y: np.hstack((x, y)), (R(3, 4), R(3, 5)), (0, 1)),
    "hstack_3d": (lambda x, y: np.hstack((x, y)), (R(2, 1, 4), R(2, 5, 4)), (0, 1)),
    "dstack": (lambda x, y: np.dstack((x, y)), (R(2, 3), R(2, 3)), (0, 1)),
    "stack_axis0": (lambda x, y: np.stack((x, y)), (R(2), R(2)), (0, 1)),
    "stack_axis1": (lambda x, y: np.stack((x, y), axis=1), (R(2), R(2)), (0, 1)),
    "stack_negative_axis": (lambda x, y: np.stack([x, y], axis=-1), (R(2, 3), R(2, 3)), (0, 1)),
    "row_stack": (lambda x, y: np.vstack((x, y)), (R(2, 4), R(1, 4)), (0, 1)),
    "column_stack_1d": (lambda x, y: np.column_stack((x, y)), (R(2), R(2)), (0, 1)),
    "column_stack_2d": (lambda x, y: np.column_stack((x, y)), (R(2, 2), R(2, 2)), (0, 1)),
    "split_1d": (lambda x: np.split(x, 1, axis=0), (R(7),)),
    "split_2d_sections": (lambda x: np.split(x, 4, axis=1), (R(4, 8),)),
    "split_3d_indices": (lambda x: np.split(x, [1, 2], axis=2), (R(4, 4, 4),)),
    "array_split_1d": (lambda x: np.array_split(x, 3), (R(7),)),
    "array_split_2d": (lambda x: np.array_split(x, 4, axis=1), (R(7, 7),)),
    "array_split_3d_indices": (lambda x: np.array_split(x, [3, 5], axis=2), (R(7, 7, 7),)),
    "vsplit_2d": (lambda x: np.vsplit(x, 4), (R(4, 8),)),
    "vsplit_3d": (lambda x: np.vsplit(x, [1, 2]), (R(4, 4, 4),)),
    "hsplit_2d": (lambda x: np.hsplit(x, [1, 2]), (R(4, 8),)),
    "hsplit_3d": (lambda x: np.hsplit(x, 2), (R(4, 4, 4),)),
    "dsplit_3d": (lambda x: np.dsplit(x, [1, 2]), (R(4, 4, 4),)),
    "select": (lambda a, b, c: np.select(BOOL3, [a, b, c], default=1.1), (R(2, 3), R(2, 3), R(2, 3)), (0, 1, 2)),
    "select_default_zero": (lambda a: np.select(BOOL3[:2], [a, a ** 2]), (R(2, 3),)),
    "pad_constant": (lambda x: np.pad(x, ((1, 2), (0, 1))), (R(3, 2),)),
    "pad_constant_values": (lambda x: np.pad(x, 2, constant_values=3.0), (R(3, 2),)),
    "pad_edge": (lambda x: np.pad(x, (1, 2), mode="edge"), (R(3, 2),)),
    "pad_reflect": (lambda x: np.pad(x, 2, mode="reflect"), (R(3, 4),)),
    "pad_wrap": (lambda x: np.pad(x, 1, mode="wrap"), (R(3, 2),)),
    "pad_symmetric": (lambda x: np.pad(x, ((0, 2), (1, 0)), mode="symmetric"), (R(3, 2),)),
    "clip": (lambda x: np.clip(x, -0.5, 0.5), (np.array([-1.3, -0.2, 0.1, 0.4, 0.9, 2.0]),)),
    "clip_arrays": (lambda x: np.clip(x, a_min=-np.ones(6) * 0.3, a_max=None), (np.linspace(-1.1, 1.3, 6),)),
    "where": (lambda x, y: np.where(x > 0, x, y), (R(3, 4), R(3, 4)), (0, 1)),
    "where_scalar_branch": (lambda x: np.where(x > 0, x ** 2, 0.5), (R(3, 4),)),
    "take_axis": (lambda x: np.take(x, [2, 0, 2], axis=1), (R(3, 4),)),
    "take_flat": (lambda x: np.take(x, [[5, 0], [11, 5]]), (R(3, 4),)),
    "take_along_axis": (lambda x: np.take_along_axis(x, np.array([[0, 2], [1, 1], [3, 0]]), axis=1), (R(3, 4),)),
    "compress": (lambda x: np.compress([True, False, True], x, axis=0), (R(3, 4),)),
    "extract": (lambda x: np.extract(np.arange(12).reshape(3, 4) % 3 == 0, x), (R(3, 4),)),
    "copy": (np.copy, (R(3, 4),)),
    "array_of_traced_scalars": (lambda x, y: np.array([x, y, x * y]), (0.7, -1.3), (0, 1)),
    "array_of_arrays": (lambda x, y: np.array([x, y]), (R(2, 3), R(2, 3)), (0, 1)),
    "array_of_traced_fanout": (lambda x: np.array([[x, x], [1.0, x ** 2]]), (0.7,)),
    "asarray": (lambda x: np.asarray(x) * 2, (R(3),)),
    "astype_float32": (lambda x: np.astype(x, np.float64) * 2.0, (R(3).astype(np.float32),)),
    "r_": (lambda x, y: np.r_[x, 1.0, y], (R(2), R(3)), (0, 1)),
    "r_slicing": (lambda x: np.r_[x[:2], x[1:], x[::-1]], (R(4),)),
    "c_": (lambda x, y: np.c_[x, y], (R(3), R(3)), (0, 1)),
    "c_mixed": (lambda x: np.c_[x, np.ones(3), 2 * x], (R(3),)),
    "meshgrid": (lambda x, y: np.meshgrid(x, y), (R(3), R(2)), (0, 1)),
    "polyval": (np.polyval, (R(4), R(3, 2)), (0, 1)),
    "interp": (lambda x: np.interp(x, [-3.0, 0.0, 1.0, 3.0], [0.0, 2.0, 1.0, 4.0]), (U(-2.9, 2.9, 5),)),
    "average": (lambda x, w: np.average(x, axis=1, weights=w), (R(3, 4), U(0.5, 2, 4)), (0, 1)),
    "median": (lambda x: np.median(x, axis=0), (R(5, 3),)),
    "percentile": (lambda x: np.percentile(x, [20, 70]), (R(7),)),
    "quantile": (lambda x: np.quantile(x, 0.3, axis=1, keepdims=True), (R(2, 7),)),
    "convolve": (np.convolve, (R(5), R(3)), (0, 1)),
    "correlate": (lambda a, v: np.correlate(a, v, mode="full"), (R(5), R(3)), (0, 1)),
    "cov": (np.cov, (R(3, 5),)),
    "corrcoef": (np.corrcoef, (R(3, 5),)),
    "trapezoid": (np.trapezoid, (R(6),)),
    "nansum": (lambda x: np.nansum(x, axis=0), (R(3, 4),)),
    "nanprod": (lambda x: np.nanprod(x, axis=1), (R(3, 4),)),
    "nanmean": (lambda x: np.nanmean(x, axis=0, keepdims=True), (R(3, 4),)),
    "nanvar_ddof": (lambda x: np.nanvar(x, axis=1, ddof=1), (R(3, 4),)),
    "nanstd": (np.nanstd, (R(3, 4),)),
    "nanmax": (lambda x: np.nanmax(x, axis=0), (R(3, 4),)),
    "nanmin": (lambda x: np.nanmin(x, axis=1), (R(3, 4),)),
    "nancumsum": (lambda x: np.nancumsum(x, axis=1), (R(3, 4),)),
    "nancumprod": (np.nancumprod, (R(3, 4),)),
})

# -- indexing (autograd's test_numpy) ---------------------------------------------------------------------
CASES.update({
    "index_ints": (lambda x: x[1, 2], (R(3, 4),)),
    "index_slice": (lambda x: x[::-1, 1:3], (R(3, 4),)),
    "index_lists": (lambda x: x[[0, 2, 2], :], (R(3, 4),)),
    "index_mixed": (lambda x: x[1, [0, 3, 3]], (R(3, 4),)),
    "index_multi": (lambda x: x[[0, 2], [1, 3]], (R(3, 4),)),
    "index_fanout": (lambda x: x[0] * x[1] + x[0] ** 2, (R(3, 4),)),
    "index_multiple_slices": (lambda x: x[1:][:2, ::2][0], (R(4, 4),)),
    "index_newaxis_ellipsis": (lambda x: x[..., None, 1], (T234,)),
    "index_boolean_mask": (lambda x: x[x > 0], (R(3, 4),)),
    "index_dot_slices": (lambda x: np.dot(x[:2], x[1:].T), (R(3, 4),)),
    "index_by_cast_to_int": (lambda w: w[:, :-1][np.int64(w[:, -1])],
                             (np.column_stack([R(5, 3), [0.5, 2.5, 1.5, 4.5, 3.5]]),)),
})

# -- ndarray methods ------------------------------------------------------------------------------------
CASES.update({
    "method_sum": (lambda x: x.sum(axis=1), (R(3, 4),)),
    "method_mean": (lambda x: x.mean(0, keepdims=True), (R(3, 4),)),
    "method_var_ddof": (lambda x: x.var(ddof=1), (R(3, 4),)),
    "method_std_axis": (lambda x: x.std(axis=0, ddof=1), (R(3, 4),)),
    "method_prod": (lambda x: x.prod(axis=0), (R(3, 4),)),
    "method_max": (lambda x: x.max(axis=1, keepdims=True), (R(3, 4),)),
    "method_min": (lambda x: x.min(), (R(3, 4),)),
    "method_cumsum": (lambda x: x.cumsum(axis=0), (R(3, 4),)),
    "method_cumprod": (lambda x: x.cumprod(axis=1), (R(3, 4),)),
    "method_any_all": (lambda x: x.any(axis=0) * x.all(axis=0) * x[0], (R(3, 4),)),
    "method_dot": (lambda x, y: x.dot(y), (R(3, 4), R(4, 2)), (0, 1)),
    "method_T": (lambda x: x.T, (R(3, 4),)),
    "method_transpose": (lambda x: x.transpose(2, 0, 1), (T234,)),
    "method_transpose_tuple": (lambda x: x.transpose((1, 0, 2)), (T234,)),
    "method_swapaxes": (lambda x: x.swapaxes(0, 1), (T234,)),
    "method_reshape": (lambda x: x.reshape((4, 6)), (T234,)),
    "method_reshape_nolist": (lambda x: x.reshape(6, -1), (T234,)),
    "method_ravel": (lambda x: x.ravel(), (T234,)),
    "method_flatten": (lambda x: x.flatten(), (T234,)),
    "method_flatten_F": (lambda x: x.flatten("F"), (T234,)),
    "method_squeeze": (lambda x: x.squeeze(), (R(3, 1, 2),)),
    "method_clip": (lambda x: x.clip(-0.5, 0.5), (np.array([-1.3, -0.2, 0.1, 0.4, 0.9, 2.0]),)),
    "method_round": (lambda x: x.round(1), (U(0.11, 0.14, 4),)),
    "method_trace": (lambda x: x.trace(), (R(4, 4),)),
    "method_diagonal": (lambda x: x.diagonal(1), (R(4, 4),)),
    "method_repeat": (lambda x: x.repeat(2, axis=1), (R(3, 4),)),
    "method_take": (lambda x: x.take([1, 1, 0], axis=0), (R(3, 4),)),
    "method_astype": (lambda x: x.astype(np.float64) * 2.0, (R(3).astype(np.float32),)),
    "method_copy": (lambda x: x.copy() * 2.0, (R(3),)),
    "method_conj_real_imag": (lambda x: x.conj() + x.real + x.imag, (R(3),)),
    "method_item": (lambda x: x.item() * 3.0, (R(),)),
    "method_sort_of_copy": (lambda x: (lambda y: (y.sort(axis=0), y)[1])(x.copy()), (R(4, 3),)),
    "method_argsort_gather": (lambda x: x[x.argsort()], (R(5),)),
    "method_argmax_gather": (lambda x: x[x.argmax()], (R(5),)),
    "method_nonzero_gather": (lambda x: x[(x > 0).nonzero()], (R(6),)),
    "method_fill_diagonal_copy": (lambda x: (lambda y: (np.fill_diagonal(y, 0.0), y)[1])(x.copy()), (R(3, 3),)),
    "method_len_iter": (lambda x: [row * i for i, row in enumerate(x)][len(x) - 1], (R(3, 4),)),
})

# -- linear algebra (autograd's test_linalg; tests/tracer/test_linalg.py covers the options) ---------------------
CASES.update({
    "linalg_inv": (np.linalg.inv, (SPD,)),
    "linalg_inv_3d": (np.linalg.inv, (np.stack([SPD, SPD.T + np.eye(4)]),)),
    "linalg_pinv": (np.linalg.pinv, (R(4, 3),)),
    "linalg_solve": (np.linalg.solve, (SPD, R(4, 2)), (0, 1)),
    "linalg_solve_1d": (np.linalg.solve, (SPD, R(4)), (0, 1)),
    "linalg_solve_3d_3d": (np.linalg.solve, (np.stack([SPD, 2 * SPD]), R(2, 4, 3)), (0, 1)),
    "linalg_det": (np.linalg.det, (SPD / 4,)),
    "linalg_det_3d": (np.linalg.det, (np.stack([SPD, 2 * SPD]) / 4,)),
    "linalg_slogdet": (lambda a: np.linalg.slogdet(a)[1], (SPD,)),
    "linalg_slogdet_3d": (lambda a: np.linalg.slogdet(a).logabsdet, (np.stack([SPD, -SPD]),)),
    "linalg_norm_vector_2": (np.linalg.norm, (R(5),)),
    "linalg_norm_list_of_traced": (lambda x, y: np.linalg.norm([x, y]), (0.7, -1.3), (0, 1)),
    "linalg_norm_fro": (lambda x: np.linalg.norm(x, "fro"), (R(3, 4),)),
    "linalg_norm_fro_axis": (lambda x: np.linalg.norm(x, "fro", axis=(0, 2)), (T234,)),
    "linalg_norm_ord_3": (lambda x: np.linalg.norm(x, 3), (R(5),)),
    "linalg_norm_axis": (lambda x: np.linalg.norm(x, axis=0), (R(3, 4),)),
    "linalg_norm_nuclear": (lambda x: np.linalg.norm(x, "nuc"), (R(3, 4),)),
    "linalg_norm_nuclear_axis": (lambda x: np.linalg.norm(x, "nuc", axis=(1, 2)), (T234,)),
    "linalg_eigh_lower": (lambda a: np.linalg.eigh(a), (SPD,)),
    "linalg_eigh_upper": (lambda a: (np.linalg.eigh(np.triu(a), UPLO="U")[0], np.linalg.eigh(a, UPLO="U")[1] ** 2),
                          (SPD,)),
    "linalg_eigh_broadcast": (lambda a: np.linalg.eigh(a), (np.stack([SPD, SPD ** 2]),)),
    "linalg_eigvalsh": (np.linalg.eigvalsh, (SPD,)),
    "linalg_cholesky": (np.linalg.cholesky, (SPD,)),
    "linalg_cholesky_broadcast": (np.linalg.cholesky, (np.stack([SPD, SPD + np.eye(4)]),)),
    "linalg_cholesky_reparameterization": (lambda a, e: np.linalg.cholesky(a) @ e, (SPD, R(4)), (0, 1)),
    "linalg_svd_wide": (lambda a: np.linalg.svd(a, full_matrices=False), (R(3, 5),)),
    "linalg_svd_tall_3d": (lambda a: np.linalg.svd(a, full_matrices=False), (R(2, 4, 3),)),
    "linalg_svd_square": (np.linalg.svd, (R(3, 3),)),
    "linalg_svd_only_s": (lambda a: np.linalg.svd(a, compute_uv=False), (R(2, 3, 5),)),
    "linalg_matrix_power": (lambda a: np.linalg.matrix_power(a, 3), (R(3, 3) / 2,)),
    "linalg_multi_dot": (lambda a, b: np.linalg.multi_dot([a, b, a.T]), (R(2, 3), R(3, 3)), (0, 1)),
    "linalg_qr": (np.linalg.qr, (R(4, 3),)),
})

# -- scipy (autograd's test_scipy) ----------------------------------------------------------------------
X4 = np.array([0.3, 0.7, 1.5, 2.2])
CASES.update({
    "special_erf": (sc.erf, (R(4),)),
    "special_erfc": (sc.erfc, (R(4),)),
    "special_gamma": (sc.gamma, (U(0.5, 3, 4),)),
    "special_gammaln": (sc.gammaln, (U(0.5, 3, 4),)),
    "special_psi": (sc.psi, (U(0.5, 3, 4),)),
    "special_digamma": (sc.digamma, (U(0.5, 3, 4),)),
    "special_polygamma": (lambda x: sc.polygamma(2, x), (U(0.5, 3, 4),)),
    "special_betaln": (sc.betaln, (U(0.5, 3, 4), U(0.5, 3, 4)), (0, 1)),
    "special_multigammaln": (lambda x: sc.multigammaln(x, 3), (U(2.1, 4, 4),)),
    "special_expit": (sc.expit, (R(4),)),
    "special_logit": (sc.logit, (U(0.1, 0.9, 4),)),
    "special_logsumexp": (sc.logsumexp, (R(3, 4),)),
    "special_logsumexp_axis_keepdims": (lambda x: sc.logsumexp(x, axis=1, keepdims=True), (R(3, 4),)),
    "special_logsumexp_b": (lambda x, b: sc.logsumexp(x, axis=0, b=b), (R(3, 4), U(0.5, 2, 3, 4)), (0, 1)),
    "special_logsumexp_return_sign": (lambda x: sc.logsumexp(x, b=-np.ones(4), return_sign=True)[0], (R(4),)),
    "stats_norm": (lambda x, m, s: (st.norm.pdf(x, m, s), st.norm.cdf(x, m, s), st.norm.logpdf(x, m, s),
                                    st.norm.logcdf(x, m, s), st.norm.sf(x, m, s), st.norm.logsf(x, loc=m, scale=s)),
                   (X4, R(4), U(0.5, 2, 4)), (0, 1, 2)),
    "stats_norm_broadcast": (lambda x, m: st.norm.logpdf(x[:, None], m, 1.5), (X4, R(3)), (0, 1)),
    "stats_t": (lambda x, df: (st.t.pdf(x, df), st.t.logpdf(x, df)), (X4, U(2, 5, 4)), (0,)),
    "stats_t_cdf": (lambda x: (st.t.cdf(x, 3.5), st.t.logcdf(x, 3.5)), (X4,)),
    "stats_gamma": (lambda x: (st.gamma.pdf(x, 2.5), st.gamma.logpdf(x, 2.5), st.gamma.cdf(x, 2.5)), (X4,)),
    "stats_beta": (lambda x: (st.beta.pdf(x, 2.0, 3.0), st.beta.logpdf(x, 2.0, 3.0), st.beta.cdf(x, 2.0, 3.0)),
                   (X4 / 3,)),
    "stats_chi2": (lambda x: (st.chi2.pdf(x, 3.0), st.chi2.logpdf(x, 3.0), st.chi2.cdf(x, 3.0)), (X4,)),
    "stats_poisson_pmf_mu": (lambda mu: st.poisson.pmf(np.array([0, 2, 5]), mu), (U(0.5, 3, 3),)),
    "stats_dirichlet_pdf_alpha": (lambda a: st.dirichlet.pdf(np.array([0.2, 0.3, 0.5]), a), (U(1, 3, 3),)),
    "stats_mvn_pdf": (lambda x: st.multivariate_normal.pdf(x, np.zeros(4), SPD / 4), (R(4) / 2,)),
    "special_betainc": (lambda x: sc.betainc(2.0, 3.0, x), (U(0.1, 0.9, 4),)),
    "special_gammainc_gammaincc": (lambda x: (sc.gammainc(2.0, x), sc.gammaincc(1.5, x)), (U(0.5, 3, 4),)),
    "special_ndtri": (sc.ndtri, (U(0.05, 0.95, 4),)),
    "special_gammaincinv": (sc.gammaincinv, (U(0.5, 3, 4), U(0.05, 0.95, 4)), (0, 1)),
    "special_betaincinv": (sc.betaincinv, (U(0.5, 3, 4), U(0.5, 3, 4), U(0.05, 0.95, 4)), (0, 1, 2)),
    "special_stdtrit": (sc.stdtrit, (U(1, 5, 4), U(0.05, 0.95, 4)), (0, 1)),
    "special_binom": (sc.binom, (U(3, 6, 4), U(0.5, 2.5, 4)), (0, 1)),
    "stats_ppf_isf": (lambda q, m, s: (st.norm.ppf(q, m, s), st.t.isf(q, 3.5, m, s), st.gamma.ppf(q, 2.5),
                                       st.beta.isf(q, 2.0, 3.0), st.chi2.ppf(q, 3.0)),
                      (U(0.05, 0.95, 4), 0.3, 1.7), (0, 1, 2)),
    "stats_mvn_logpdf": (lambda x: st.multivariate_normal.logpdf(x, np.zeros(4), SPD), (R(4),)),
    "stats_mvn_logpdf_wrt_cov": (lambda c: st.multivariate_normal.logpdf(X4, np.ones(4), c @ c.T + np.eye(4)),
                                 (SQ / 3,)),
    "stats_mvn_entropy": (lambda c: st.multivariate_normal.entropy(np.zeros(4), c @ c.T + np.eye(4)), (SQ,)),
    "stats_dirichlet_logpdf_x": (lambda a: st.dirichlet.logpdf(np.array([0.2, 0.3, 0.5]), a), (U(1, 3, 3),)),
    "stats_poisson_logpmf_mu": (lambda mu: st.poisson.logpmf(np.array([0, 2, 5]), mu), (U(0.5, 3, 3),)),
    "signal_convolve_full": (ss.convolve, (R(5), R(3)), (0, 1)),
    "signal_convolve_valid_2d": (lambda a, b: ss.convolve(a, b, mode="valid"), (R(4, 5), R(2, 3)), (0, 1)),
    "linalg_solve_triangular": (lambda a, b: sl.solve_triangular(a, b, lower=True), (SPD, R(4)), (0, 1)),
    "linalg_cho_solve": (lambda a, b: sl.cho_solve(sl.cho_factor(a), b), (SPD, R(4)), (0, 1)),
    "linalg_expm": (sl.expm, (R(3, 3) / 2,)),
    "linalg_scipy_eigh": (lambda a: (sl.eigh(a)[0], sl.eigh(a, lower=False)[1] ** 2, sl.eigh(a, eigvals_only=True)),
                          (SPD,)),
    "linalg_solve_banded": (lambda ab, b: sl.solve_banded((1, 2), ab, b),
                            (np.vstack([R(2, 5), U(4, 5, 5)[None], R(1, 5)]), R(5, 2)), (0, 1)),
    "linalg_solve_sylvester": (sl.solve_sylvester, (SPD, R(3, 3) + 4 * np.eye(3), R(4, 3)), (0, 1, 2)),
})

# -- the remaining gaps of the audit: scipy.special compositions and ops, mT, apply_along_axis ----------


def _row_with_a_branch(row):
    return np.sum(row ** 2) if row[0] > 0 else np.sum(np.sin(row)) * row[-1]


CASES.update({
    "stats_mvn_exp_logpdf_wrt_cov": (lambda c: np.exp(st.multivariate_normal.logpdf(X4, np.ones(4),
                                                                                     c @ c.T + np.eye(4))),
                                     (SQ / 3,)),
    "special_beta": (sc.beta, (U(0.5, 3, 4), U(-1.8, -1.2, 4)), (0, 1)),
    "special_rgamma": (sc.rgamma, (U(-2.8, 3, 5),)),
    "special_gammasgn_times_x": (lambda x: sc.gammasgn(x) * x, (U(-2.8, 3, 5),)),
    "special_pdtr": (lambda mu: (sc.pdtr(np.array([0, 1, 3, 2.5]), mu), sc.pdtrc(2, mu)), (U(0.5, 4, 4),)),
    "stats_poisson_cdf_mu": (lambda mu: st.poisson.cdf(np.array([0, 2, 5]), mu), (U(0.5, 3, 3),)),
    "special_exprel": (sc.exprel, (np.array([-1.5, -1e-4, 0.0, 2e-4, 0.7]),)),
    "special_cbrt_exp2_exp10": (lambda x: (sc.cbrt(x), sc.exp2(x), sc.exp10(x)), (U(0.3, 1.5, 4),)),
    "special_erfinv_erfcinv": (lambda x: (sc.erfinv(x), sc.erfcinv(x + 1)), (U(-0.9, 0.9, 4),)),
    "special_bessel_integer_order": (lambda x: (sc.j0(x), sc.j1(x), sc.y0(x), sc.y1(x), sc.i0(x), sc.i1(x),
                                                sc.i0e(x), sc.i1e(x), sc.k0(x), sc.k1(x)), (U(0.3, 3, 4),)),
    "special_bessel_order_v": (lambda x: (sc.jv(1.5, x), sc.yv(2, x), sc.iv(0.5, x), sc.ive(-1.3, x),
                                          sc.kv(np.array([0.0, 1.0, 2.5, 3.0]), x)), (U(0.3, 3, 4),)),
    "special_i0e_negative": (lambda x: (sc.i0e(x), sc.i1e(x), sc.ive(2, x)), (U(-3, -0.3, 4),)),
    "method_mT": (lambda x: x.mT, (T234,)),
    "frexp": (np.frexp, (U(0.6, 0.9, 4) * np.array([1.0, -2.0, 4.0, 0.5]),)),
    "spacing_plus_x": (lambda x: np.spacing(x) + x, (U(0.6, 0.9, 4),)),
    "nextafter": (np.nextafter, (R(4), R(4)), (0, 1)),
    "apply_along_axis_branch": (lambda x: np.apply_along_axis(_row_with_a_branch, 1, x),
                                (np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 0.2], [0.5, -0.7, 0.1]]),)),
    "apply_along_axis_vector_result": (lambda x: np.apply_along_axis(lambda c: c[::-1] * c, 0, x), (R(3, 2),)),
})


def _split(name):
    fn, args, *argnums = CASES[name]
    return fn, args, (argnums[0] if argnums else (0,))


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_gradient_matches_finite_differences(name):
    fn, args, argnums = _split(name)
    loss = _loss_of(fn, [_weights(np.asarray(p, dtype=np.float64)) for p in _pieces(fn(*args))])
    grad = jitgrad.jit_grad(loss, argnums=argnums)
    grad(*args)                                               # the tracing run
    grads = grad(*args)                                       # the cached, compiled kernel

    def f(arrays):
        call = list(args)
        for i, a in zip(argnums, arrays):
            call[i] = type(args[i])(a) if isinstance(args[i], float) else a
        return np.asarray(loss(*call), dtype=np.float64)

    def vjp(arrays, cotangents):
        return [np.asarray(cotangents[0]) * np.asarray(g, dtype=np.float64) for g in grads]

    for g, i in zip(grads, argnums):
        assert np.shape(g) == np.shape(args[i])
    check_vjp(f, vjp, [np.asarray(args[i], dtype=np.result_type(args[i], np.float32)) for i in argnums],
              np.random.default_rng(0))


@pytest.mark.parametrize("eig", [np.linalg.eig, sl.eig, sl.eigvals])     # (np.linalg.eigvals is traced)
def test_eig_of_a_traced_matrix_is_refused_at_the_users_line(eig):
    def f(a):
        return np.sum(np.real(eig(a)[0]))
    with pytest.raises(jitgrad.UnsupportedError, match=r"test_api_breadth\.py:\d+: .*eig.*eigh"):
        jitgrad.jit_grad(f)(SQ)


def test_mT_of_a_vector_raises_numpys_error():
    with pytest.raises(ValueError, match="ndim < 2"):
        jitgrad.jit_grad(lambda x: np.sum(x.mT))(R(3))


def test_apply_along_axis_retraces_when_a_row_takes_the_other_branch():
    grad = jitgrad.jit_grad(lambda x: np.sum(np.apply_along_axis(_row_with_a_branch, 1, x)))
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(grad(x), [[2.0, 4.0],
                                         [np.cos(-1.0) * 0.5, np.cos(0.5) * 0.5 + np.sin(-1.0) + np.sin(0.5)]])
    x[1, 0] = 3.0
    np.testing.assert_allclose(grad(x), 2 * x)
