"""The rule for scipy.integrate.quad, called as SciPy ships it (`quad(f, a, b, args=(p,))`, or an integrand
closing over traced values), differentiable w.r.t. what the integrand reads and w.r.t. the limits.

QUADPACK calls the integrand with C floats, so it cannot be traced through.  Instead the integrand is
traced once, inline, on a traced placeholder for the integration variable t (at the middle of the range):
the nodes it records that depend on t are taken back out of the trace and closed into the integrand trace
`f(t, *q)`, whose inputs q are the traced values those nodes read (from `args`, closures, attributes or
values computed inside the integrand without t); the nodes that do not depend on t stay in the trace (so
do their guards).  quad becomes one custom_call node `Integral(f)(a, b, *q)` (tracer/rules/quad_integral.py:
a host call running SciPy's quad on the reference evaluation of f, differentiated under the integral sign),
and returns its (value, abserr) as traced floats.  Equal integrand traces share one rule.

Guarded: whether each traced limit is finite (infinite limits have no derivative).  Refused: a decision on
t inside the integrand (a branch, int(), a mask: the pieces of a piecewise integrand would be baked in;
write it with np.where), traced tolerances, points or weight parameters, and full_output or complex_func
with traced values.  Guards on t that only say Python does not raise (`t ** 2`, `1 / t`) are dropped:
where Python would raise, the integrand trace gives an inf or a NaN.  Without traced values the result is
a constant (the integral of the integrand trace), or with full_output SciPy's quad runs as before.
"""
import numpy as np

from ...ir.evaluate import evaluate
from ...ir.value import Trace, Value
from ...ir import Builder, passes
from ..arrays.pyerrors import only_says_no_raise
from ..arrays.refusals import refuse
from ..arrays.values import TracedArray, builder, const, contains_traced, guard, make, unwrap
from ..interpretation import interpreter
from ..interpretation.loopbody import body_key
from ..recording import context
from ..recording.registry import register
from .quad_integral import Integral

try:
    from scipy import integrate as _integrate
except ImportError:       # SciPy is optional
    _integrate = None

_RULES = {}     # (integrand trace fingerprint, options, finite limits) -> Integral
_CHEAP = ("const", "fill")


def quad(func, a, b, args=(), full_output=0, epsabs=1.49e-8, epsrel=1.49e-8, limit=50, points=None,
         weight=None, wvar=None, wopts=None, maxp1=50, limlst=50, complex_func=False):
    """scipy.integrate.quad(func, a, b, args, ...) -> (value, abserr) (see the module docstring)."""
    args = args if isinstance(args, tuple) else (args,)
    options = dict(epsabs=epsabs, epsrel=epsrel, limit=limit, points=points, weight=weight, wvar=wvar,
                   wopts=wopts, maxp1=maxp1, limlst=limlst)
    limits = (float(unwrap(a)), float(unwrap(b)))
    body, captured, out = _trace_integrand(func, args, limits)
    traced_limits = [type(x) is TracedArray for x in (a, b)]
    if not captured and not any(traced_limits):                  # nothing traced: as before
        if full_output or complex_func:
            return _integrate.quad(func, a, b, args, full_output, *options.values(), complex_func)
        return tuple(float(v) for v in Integral(body, options, (True, True)).evaluate([*limits])[:, 0])
    if full_output or complex_func or contains_traced(list(options.values())):
        refuse("scipy.integrate.quad with traced values: full_output, complex_func and traced tolerances, "
               "points or weight parameters are not supported (the integrand and the limits may be traced)")
    finite = tuple(bool(np.isfinite(x)) for x in limits)
    bld = builder()
    for x, is_traced, ok in zip((a, b), traced_limits, finite):
        if is_traced:
            guard(bld.less(bld.absolute(x.ir), const(np.inf, x.ir.dtype)), ok, "quad limit finite")
    key = (body_key(body), repr(sorted(options.items())), finite) if wopts is None else None   # (wopts: arrays)
    rule = _RULES.get(key)
    if rule is None:
        rule = Integral(body, options, finite)
        if key is not None:
            _RULES[key] = rule
    lims = [_float64(bld, x.ir) if t else const(v, np.float64) for x, t, v in zip((a, b), traced_limits, limits)]
    concrete = rule.evaluate([*limits, *_concrete(captured, func, args)])
    node = bld.emit("custom_call", *lims, *captured, rule=rule)
    return tuple(make(bld.index(node, spec=(("int", row), ("int", 0))), float(concrete[row, 0])) for row in (0, 1))


def _float64(b, v):
    return v if v.dtype == np.float64 else b.astype(v, dtype=np.float64)


def _trace_integrand(func, args, limits):
    """Trace `func(t, *args)` on a placeholder t; return (the closed integrand trace (t, *q) -> (1,)
    float64, the outer Values q it reads, its output)."""
    ctx = context.current()
    bld = ctx.builder
    start = len(bld.nodes)
    placeholder = Value("input", (), {"index": -1}, (), np.dtype(np.float64))
    result = interpreter.call(func, (make(placeholder, _midpoint(*limits)), *args), {})
    if np.size(unwrap(result)) != 1:
        refuse("scipy.integrate.quad: the integrand must return one number")
    out = result.ir if type(result) is TracedArray else const(np.asarray(unwrap(result), np.float64))
    recorded = bld.nodes[start:]
    dependent = {id(placeholder)}
    for node in recorded:
        if any(id(a) in dependent for a in node.args):
            if node.op == "guard" and only_says_no_raise(node.params["why"]):
                continue            # at other t: an inf or a NaN where Python would raise (t ** -1 at 0)
            if node.op == "guard":
                refuse(f"scipy.integrate.quad: the integrand takes a decision on the integration variable "
                       f"({node.params['why']} at {node.params['loc']}); a piecewise integrand cannot be "
                       "integrated as traced: write it with np.where, or split the range at the break")
            dependent.add(id(node))
    bld.nodes[start:] = [n for n in recorded if id(n) not in dependent and not (
        n.op == "guard" and any(id(a) in dependent for a in n.args))]
    return _close(placeholder, [n for n in recorded if id(n) in dependent], out, dependent)


def _close(placeholder, nodes, out, dependent):
    """The closed trace of `nodes` (which depend on `placeholder`), and the outer Values they read."""
    b = Builder()
    env = {id(placeholder): b.input((), np.float64)}
    captured = []
    for v in [a for n in nodes for a in n.args] + [out]:
        if id(v) in env or id(v) in dependent:
            continue
        if v.op in _CHEAP:
            env[id(v)] = passes.copy_node(b, v, [])
        else:
            env[id(v)] = b.input(v.shape, v.dtype)
            captured.append(v)
    passes.replay(b, nodes, env)
    result = env[id(out)]
    result = b.reshape(result, shape=(1,)) if result.shape != (1,) else result
    result = result if result.dtype == np.float64 else b.astype(result, dtype=np.float64)
    return passes.optimize(Trace(b.inputs, b.nodes, [result])), captured, out


def _midpoint(a, b):
    """Where the integrand is traced: the middle of [a, b] (a point quad evaluates), inside infinite ones."""
    if np.isfinite(a) and np.isfinite(b):
        return (a + b) / 2
    return a + 1.0 if np.isfinite(a) else b - 1.0 if np.isfinite(b) else 0.0


def _concrete(captured, func, args):
    """The concrete values of the outer Values `captured`: those of the traced values the integrand can
    reach (its arguments, closure, the trace's inputs), the rest evaluated from them (their cone of the
    trace, by the reference evaluation)."""
    ctx = context.current()
    known = {}
    cells = getattr(getattr(func, "__wrapped__", func), "__closure__", None) or ()
    reachable = [*args, *(c.cell_contents for c in cells if _filled(c))]
    reachable += ctx.traced_inputs()
    for x in reachable:
        if type(x) is TracedArray:
            known.setdefault(id(x.ir), np.asarray(x.value))
    needed, stack = {}, [v for v in captured if id(v) not in known]
    while stack:
        v = stack.pop()
        if id(v) in needed or id(v) in known:
            continue
        if v.op == "input":
            refuse("scipy.integrate.quad: the integrand reads a traced value jitgrad cannot evaluate here; "
                   "pass it to quad in args=(...)")
        needed[id(v)] = v
        stack.extend(v.args)
    for node in ctx.builder.nodes:
        if id(node) in needed:
            known[id(node)] = np.asarray(evaluate(node.op, [known[id(a)] for a in node.args], node.params))
    return [known[id(v)] for v in captured]


def _filled(cell):
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


if _integrate is not None:
    register(_integrate.quad, always=True)(quad)
