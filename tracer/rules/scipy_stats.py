"""Rules for scipy.stats continuous distributions: `rv_continuous.pdf/logpdf/cdf/logcdf/sf/logsf/ppf/isf`.

SciPy's public methods fill a plain output array made inside the library (`np.zeros`, `np.place`), which
jitgrad cannot trace, so the rule replays the method's own recipe on traced values: the distribution's
Python-level pieces (`_parse_args`, `_argcheck`, `_support_mask`, `_get_support` and the private density,
e.g. `_logpdf`) are interpreted on the standardized x = (x - loc) / scale; the masks deciding which entries
are NaN (bad parameters), at the support's edge or evaluated are guarded to keep their values; the
evaluated entries come from the private method on those entries only (as SciPy's `argsreduce` does), the
others are the constants SciPy wrote.  The concrete result is the real method's.  Every subclass that
overrides only the private methods (norm, t, gamma, beta, expon, lognorm, logistic, laplace, cauchy,
uniform, chi2, ...) is covered; frozen distributions call these methods.
ppf and isf are replayed the same way on the probability q (not standardized): NaN where the parameters
are bad or q is outside [0, 1], the support's bounds _a * scale + loc and _b * scale + loc (as traced
values: derivative 1 w.r.t. loc, the bound w.r.t. scale, 0 w.r.t. q; an infinite bound is a constant) at
q = 0 and 1, and
_ppf(q) * scale + loc (_isf) inside.
"""
import numpy as np

from ..interpretation import interpreter
from ..arrays.array_api import astype_, broadcast_to, reshape_
from ..arrays.indexing import setitem
from ..recording.registry import register
from ..arrays.values import TracedArray, builder, const, guard, unwrap

try:
    from scipy.stats import rv_continuous
except ImportError:       # SciPy is optional
    rv_continuous = None


def _log_scaled(value, scale):
    return value - interpreter.call(np.log, (scale,))


def _divided(value, scale):
    return value / scale


def _at_upper_edge(x, lower, upper):
    return x >= upper


def _at_lower_edge(x, lower, upper):
    return x <= lower


# method -> (private method, support mask, the entries SciPy sets to a constant at the edge of the support
# (or None), rescaling of the private method's result by the scale (or None))
_METHODS = {
    "pdf": ("_pdf", "_support_mask", None, _divided),
    "logpdf": ("_logpdf", "_support_mask", None, _log_scaled),
    "cdf": ("_cdf", "_open_support_mask", _at_upper_edge, None),
    "logcdf": ("_logcdf", "_open_support_mask", _at_upper_edge, None),
    "sf": ("_sf", "_open_support_mask", _at_lower_edge, None),
    "logsf": ("_logsf", "_open_support_mask", _at_lower_edge, None),
}


# rv_continuous's generic _logcdf / _logsf: (the method whose log is taken below the median for _logcdf,
# above it for _logsf; the one taken as log1p(-that) on the other side)
_GENERIC_LOG = {"_logcdf": ("_cdf", "_sf"), "_logsf": ("_sf", "_cdf")}


def _private_method(dist, private, args):
    """dist.<private>(*args), interpreted.  rv_continuous's generic _logcdf / _logsf are replayed without
    the median they compute with _ppf (an inverse CDF: no rule for traced shape parameters) only to choose,
    entry by entry, between log(cdf) below the median and log1p(-sf) above it: the same choice is made on
    the probability (cdf < 0.5), and the unused branch sees 0.5 so that its derivatives stay finite."""
    call = interpreter.call
    if private not in _GENERIC_LOG or getattr(type(dist), private) is not getattr(rv_continuous, private):
        return call(getattr(dist, private), args)
    near, far = (call(getattr(dist, method), args) for method in _GENERIC_LOG[private])
    use_near = near < 0.5
    logs = (call(np.log, (call(np.where, (use_near, near, 0.5)),)),
            call(np.log1p, (-call(np.where, (use_near, 0.5, far)),)))
    return call(np.where, (use_near,) + logs)


def _guard_mask(mask, what):
    """A boolean mask (traced or not), guarded to keep its concrete value; returns the concrete mask."""
    concrete = np.asarray(unwrap(mask), dtype=bool)
    if type(mask) is TracedArray:
        b = builder()
        differs = b.not_equal(astype_(mask, bool).ir, const(concrete))
        guard(b.sum(differs, axis=tuple(range(concrete.ndim)), keepdims=False), 0, what)
    return concrete


def _flat_entries(values, shape, mask):
    """Each value broadcast to `shape`, flattened, at the true entries of flat `mask` (as argsreduce)."""
    return [reshape_(broadcast_to(v, shape), -1)[mask] if type(v) is TracedArray
            else np.broadcast_to(v, shape).reshape(-1)[mask] for v in values]


def _parsed(dist, name, x, args, kwds):
    """(the real method's result, x, shape parameters, loc, scale, support) as the public method parses
    them (traced where the arguments are)."""
    call = interpreter.call
    concrete = getattr(rv_continuous, name)(dist, unwrap(x), *unwrap(args), **unwrap(kwds))
    args, loc, scale = call(dist._parse_args, args, kwds)
    x, loc, scale = (call(np.asarray, (v,)) for v in (x, loc, scale))
    args = tuple(call(np.asarray, (a,)) for a in args)
    return concrete, x, args, loc, scale, call(dist._get_support, args)


def _assembled(output, pieces):
    """`output` (SciPy's concrete result) with the entries of each (flat mask, function, operands) of
    `pieces` replaced by the function of the operands' entries there (traced); 0-d results as scalars."""
    out = TracedArray(const(output.reshape(-1)), output.reshape(-1))
    for mask, fn, operands in pieces:
        mask = mask.reshape(-1)
        if mask.any():
            setitem(out, mask, fn(*_flat_entries(operands, output.shape, mask)))
    out = reshape_(out, output.shape)
    return out[()] if out.ndim == 0 else out


def _bound(bound, scale, loc):
    """bound * scale + loc; an infinite bound as the constant it is (derivatives 0, not 0 * inf = NaN)."""
    call = interpreter.call
    infinite = call(np.isinf, (bound,))
    finite_bound = call(np.where, (infinite, 0.0, bound))
    return call(np.where, (infinite, bound, finite_bound * scale + loc))


def _quantile_rule(name):
    """rv_continuous.ppf / isf (`name`), replayed: the private method on 0 < q < 1, the support's bounds
    at q = 0 and 1 (ppf: lower at 0; isf: lower at 1), NaN elsewhere, as SciPy's public method."""
    private, lower_at = "_" + name, 0 if name == "ppf" else 1

    def rule(dist, q, *args, **kwds):
        concrete, q, args, loc, scale, (lower, upper) = _parsed(dist, name, q, args, kwds)
        cond0 = interpreter.call(dist._argcheck, args) & (scale > 0) & (loc == loc)
        at_lower = _guard_mask(cond0 & (q == lower_at), f"scipy.stats {name}: entries at the lower bound")
        at_upper = _guard_mask(cond0 & (q == 1 - lower_at), f"scipy.stats {name}: entries at the upper bound")
        inside = _guard_mask(cond0 & (0 < q) & (q < 1), f"scipy.stats {name}: entries with 0 < q < 1")

        def evaluated(q, *args_scale_loc):
            *args, scale, loc = args_scale_loc
            return interpreter.call(getattr(dist, private), (q, *args)) * scale + loc
        return _assembled(np.array(concrete), [(at_lower, _bound, (lower, scale, loc)),
                                               (at_upper, _bound, (upper, scale, loc)),
                                               (inside, evaluated, (q,) + args + (scale, loc))])
    rule.__name__ = name
    rule.__doc__ = f"rv_continuous.{name}, replayed on traced values (see the module docstring)."
    return rule


def _method_rule(name):
    private, support, edge, rescale = _METHODS[name]

    def rule(dist, x, *args, **kwds):
        call = interpreter.call
        concrete, x, args, loc, scale, (lower, upper) = _parsed(dist, name, x, args, kwds)
        dtype = np.promote_types(np.asarray(unwrap(x)).dtype, np.float64)
        x = call(np.asarray, ((x - loc) / scale,), {"dtype": dtype})
        cond0 = call(dist._argcheck, args) & (scale > 0)
        cond = cond0 & call(getattr(dist, support), (x,) + args) & (scale > 0)
        _guard_mask((1 - cond0) + call(np.isnan, (x,)), f"scipy.stats {name}: which entries are NaN")
        if edge is not None:
            _guard_mask(edge(x, lower, upper) & cond0, f"scipy.stats {name}: which entries are at the edge")
        mask = _guard_mask(cond, f"scipy.stats {name}: which entries are inside the support")

        def evaluated(x, *args_and_scale):
            value = _private_method(dist, private, (x,) + args_and_scale[:-1])
            return value if rescale is None else rescale(value, args_and_scale[-1])
        return _assembled(np.array(concrete, dtype=dtype), [(mask, evaluated, (x,) + args + (scale,))])
    rule.__name__ = name
    rule.__doc__ = f"rv_continuous.{name}, replayed on traced values (see the module docstring)."
    return rule


if rv_continuous is not None:
    for _name in _METHODS:
        register(getattr(rv_continuous, _name))(_method_rule(_name))
    for _name in ("ppf", "isf"):
        register(getattr(rv_continuous, _name))(_quantile_rule(_name))
