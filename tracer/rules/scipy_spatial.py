"""Rules for scipy.spatial.distance.cdist and pdist, whose metrics run in compiled code: with traced
inputs, the distance of every pair is the metric's own Python function (`distance.euclidean`, ...,
or the user's callable) interpreted on the two rows, after SciPy's own input validation (which fills
in defaults such as seuclidean's V and mahalanobis's VI from the data, traced).  The trace grows with
the number of pairs: one metric call per pair.  The 1-d metric functions themselves are plain NumPy
and are traced without rules.
squareform's Python code runs traced (its checks of a matrix included); the compiled helpers it calls to
copy between the condensed vector and the square matrix are gathers and scatters at the (constant)
positions of the upper triangle.
"""
import numpy as np

from ..interpretation import interpreter
from ..arrays.aliasing import adopt_for_write
from ..arrays.array_api import as_traced, stack_nested
from ..recording.registry import register
from ..arrays.values import TracedArray, astype, builder, const, make, rebind, reshape, unwrap
from ..arrays.refusals import refuse, refuse_options

try:
    import scipy.spatial.distance as sd
    from scipy.spatial import _distance_wrap
except ImportError:       # SciPy is optional
    sd = None


def _metric(metric, validate, kwargs):
    """The 1-d distance function for `metric` and its validated keyword arguments."""
    if callable(metric):
        info = sd._METRIC_ALIAS.get(getattr(metric, "__name__", None))
        return metric, (kwargs if info is None else validate(info))
    info = sd._METRIC_ALIAS.get(metric.lower()) if isinstance(metric, str) else None
    if info is None:
        refuse(f"scipy.spatial.distance: metric {metric!r} is not traced (known names or a callable only)")
    return info.dist_func, validate(info)


def _distances(fn, pairs, kwargs, concrete):
    """The traced array of fn(u, v, **kwargs) over `pairs`, shaped and typed as `concrete`."""
    values = [interpreter.call(fn, (u, v), kwargs) for u, v in pairs]
    return make(reshape(astype(stack_nested(values), concrete.dtype), concrete.shape), concrete)


def cdist(XA, XB, metric="euclidean", *, out=None, **kwargs):
    """scipy.spatial.distance.cdist: the (mA, mB) distances of the rows of XA and XB."""
    refuse_options("scipy.spatial.distance.cdist", out=out)
    concrete = sd.cdist(unwrap(XA), unwrap(XB), metric, **unwrap(kwargs))
    XA, XB = as_traced(XA), as_traced(XB)
    (mA, n), mB = XA.shape, XB.shape[0]

    def validate(info):
        return interpreter.call(sd._validate_cdist_input, (XA, XB, mA, mB, n, info), kwargs)[3]
    fn, kw = _metric(metric, validate, kwargs)
    pairs = [(XA[i], XB[j]) for i in range(mA) for j in range(mB)]
    return _distances(fn, pairs, kw, concrete) if concrete.size else concrete


def pdist(X, metric="euclidean", *, out=None, **kwargs):
    """scipy.spatial.distance.pdist: the condensed distances of the pairs i < j of X's rows."""
    refuse_options("scipy.spatial.distance.pdist", out=out)
    concrete = sd.pdist(unwrap(X), metric, **unwrap(kwargs))
    X = as_traced(X)
    m, n = X.shape

    def validate(info):
        return interpreter.call(sd._validate_pdist_input, (X, m, n, info), kwargs)[2]
    fn, kw = _metric(metric, validate, kwargs)
    pairs = [(X[i], X[j]) for i in range(m) for j in range(i + 1, m)]
    return _distances(fn, pairs, kw, concrete) if concrete.size else concrete


def _triangle_copy(helper, to_vector):
    """The rule for squareform's compiled helper `helper(matrix, vector)`, which sets the vector from the
    upper triangle of the matrix (`to_vector`), or both triangles of the matrix from the vector; traced
    when the array written was made while tracing."""
    def rule(matrix, vector):
        source, target = (matrix, vector) if to_vector else (vector, matrix)
        written = target if type(target) is TracedArray else adopt_for_write(
            target, "scipy.spatial.distance.squareform", source)
        if written is None:
            return helper(unwrap(matrix), unwrap(vector))
        new_value = written.value.copy()
        concrete = [np.ascontiguousarray(unwrap(source)), new_value]       # (source, target)
        helper(*(concrete if to_vector else concrete[::-1]))
        rows, cols = np.triu_indices(np.shape(unwrap(matrix))[0], 1)
        b, spec = builder(), (("array", 0), ("array", 1))
        if to_vector:
            new_ir = b.index(as_traced(source).ir, const(rows), const(cols), spec=spec)
        else:
            v, new_ir = astype(as_traced(source).ir, written.ir.dtype), written.ir
            for i, j in ((rows, cols), (cols, rows)):
                new_ir = b.index_set(new_ir, v, const(i), const(j), spec=spec)
        rebind(written, astype(new_ir, written.ir.dtype), new_value)
    return rule


if sd is not None:
    register(sd.cdist)(cdist)
    register(sd.pdist)(pdist)
    for _helper, _to_vector in ((_distance_wrap.to_squareform_from_vector_wrap, False),
                                (_distance_wrap.to_vector_from_squareform_wrap, True)):
        register(_helper)(_triangle_copy(_helper, _to_vector))
