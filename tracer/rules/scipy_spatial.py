"""Rules for scipy.spatial.distance.cdist and pdist, whose metrics run in compiled code: with traced
inputs, the distance of every pair is the metric's own Python function (`distance.euclidean`, ...,
or the user's callable) interpreted on the two rows, after SciPy's own input validation (which fills
in defaults such as seuclidean's V and mahalanobis's VI from the data, traced).  The trace grows with
the number of pairs: one metric call per pair.  The 1-d metric functions themselves are plain NumPy
and are traced without rules.
"""
from ..interpretation import interpreter
from ..arrays.array_api import as_traced, stack_nested
from ..recording.registry import register
from ..arrays.values import astype, make, reshape, unwrap
from ..arrays.refusals import refuse, refuse_options

try:
    import scipy.spatial.distance as sd
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


if sd is not None:
    register(sd.cdist)(cdist)
    register(sd.pdist)(pdist)
