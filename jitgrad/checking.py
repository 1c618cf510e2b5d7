"""`check_grads`: a user's test that jitgrad's derivatives of a function agree with central finite
differences of the same function run by CPython, in forward and reverse mode and to higher orders.

For random directions v (in the arguments) and u (in the outputs) it checks, in float64:
  fwd:  jvp(f, x, v)                 against (f(x + eps v) - f(x - eps v)) / 2 eps, output by output;
  rev:  <v, vjp_fn(u)>               against <u, (f(x + eps v) - f(x - eps v)) / 2 eps>;
and for order > 1 the same of the derivative functions x -> jvp(f, x, v) and x -> vjp_fn(u) (their
derivatives are taken by jitgrad again, through the compiled transforms nested in traced functions).
Tolerances and steps follow the least precise float dtype among the arguments and outputs (TOLERANCES).
A disagreement raises AssertionError saying which mode, order, output and direction, and by how much.
"""
import numpy as np

from .pytree import flatten, unflatten
from .transforms import jvp, vjp

# (relative tolerance, absolute tolerance, finite-difference step) by the least precise float dtype
TOLERANCES = {np.dtype(np.float64): (1e-5, 1e-8, 1e-6), np.dtype(np.float32): (2e-3, 1e-4, 1e-3),
              np.dtype(np.float16): (5e-2, 5e-2, 1e-2)}


def check_grads(f, args, order=2, modes=("fwd", "rev"), *, rtol=None, atol=None, eps=None, seed=0):
    """Assert that jitgrad's derivatives of `f` at `args` (a tuple of arguments, each an array, a float or
    a pytree of them; all are differentiated: close over integer arguments, `lambda x: f(x, 3)`) agree
    with central differences, up to `order`, in each of `modes` ("fwd", "rev").  `rtol`, `atol`, `eps`
    override the per-dtype defaults."""
    if not isinstance(args, (tuple, list)):
        raise TypeError("check_grads(f, args, ...): args must be a tuple of arguments")
    unknown = set(modes) - {"fwd", "rev"}
    if unknown or not modes:
        raise ValueError(f"check_grads: modes must be among 'fwd' and 'rev', got {modes!r}")
    rng = np.random.default_rng(seed)
    _check(f, tuple(args), order, tuple(modes), (rtol, atol, eps), rng, getattr(f, "__name__", repr(f)))


def _check(f, args, order, modes, overrides, rng, name):
    if order < 1:
        return
    outs = f(*args)
    rtol, atol, eps = _tolerances(args, outs, overrides)
    v = _random_like(rng, args)
    fd = _central_difference(f, args, v, eps)
    if "fwd" in modes:
        _, tangent = jvp(f, args, v)
        pairs = [(np.asarray(t, np.float64), d) for t, d in zip(flatten(tangent)[0], flatten(fd)[0]) if _is_float(d)]
        for k, (t, d) in enumerate(pairs):
            err = float(np.max(np.abs(t - d), initial=0.0))
            bound = rtol * float(np.max(np.abs(d), initial=0.0)) + atol
            if not err <= bound:
                raise AssertionError(_report(name, "forward (jvp)", order, f"output leaf {k}", err, bound,
                                             f"jvp:\n{np.asarray(t)}\nfinite differences:\n{np.asarray(d)}"))
        if order > 1:
            _check(lambda *x: jvp(f, x, v)[1], args, order - 1, modes, overrides, rng, f"jvp of {name}")
    if "rev" in modes:
        u = _random_like(rng, outs)
        _, vjp_fn = vjp(f, *args)
        cotangents = vjp_fn(u)
        lhs = sum(_dot(a, b) for a, b in zip(_float_leaves(u), _float_leaves(fd)))
        rhs = sum(_dot(a, b) for a, b in zip(_float_leaves(v), _float_leaves(cotangents)))
        scale = sum(_dot(a, b, absolute=True) for a, b in zip(_float_leaves(u), _float_leaves(fd))) + sum(
            _dot(a, b, absolute=True) for a, b in zip(_float_leaves(v), _float_leaves(cotangents)))
        if not abs(lhs - rhs) <= rtol * scale + atol:
            raise AssertionError(_report(name, "reverse (vjp)", order, "<u, J v>", abs(lhs - rhs),
                                         rtol * scale + atol,
                                         f"<v, vjp_fn(u)> = {rhs!r}, <u, finite differences> = {lhs!r}"))
        if order > 1:
            _check(lambda *x: vjp(f, *x)[1](u), args, order - 1, modes, overrides, rng, f"vjp of {name}")


def _report(name, mode, order, what, err, bound, detail):
    return (f"check_grads: the {mode} derivative of {name} (order {order}) disagrees with central finite "
            f"differences on {what}: error {err:.3g} > tolerance {bound:.3g}\n{detail}")


def _float_leaves(tree):
    """The float leaves of `tree` as float64 arrays (ints and other leaves carry no derivative)."""
    return [np.asarray(leaf, dtype=np.float64) for leaf in flatten(tree)[0] if _is_float(leaf)]


def _is_float(leaf):
    return isinstance(leaf, (float, np.floating)) or isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f"


def _tolerances(args, outs, overrides):
    dtypes = [np.asarray(leaf).dtype for leaf in flatten((args, outs))[0] if _is_float(leaf)]
    least = max(dtypes, key=lambda d: np.finfo(d).eps) if dtypes else np.dtype(np.float64)
    defaults = TOLERANCES.get(np.dtype(least), TOLERANCES[np.dtype(np.float64)])
    return tuple(d if o is None else o for d, o in zip(defaults, overrides))


def _random_like(rng, tree):
    """Random normal directions shaped and typed like the float leaves of `tree` (zeros elsewhere)."""
    leaves, treedef = flatten(tree)
    return unflatten(treedef, [_direction(rng, leaf) for leaf in leaves])


def _direction(rng, leaf):
    if type(leaf) is float or isinstance(leaf, np.floating):
        return type(leaf)(rng.standard_normal())
    if _is_float(leaf):
        return rng.standard_normal(leaf.shape).astype(leaf.dtype)
    return leaf


def _central_difference(f, args, v, eps):
    """(f(x + eps v) - f(x - eps v)) / 2 eps, leaf by leaf of the output (differences in float64; the
    shifted arguments keep their dtypes, so that f sees arguments of the kinds it was given)."""
    leaves, treedef = flatten(args)
    directions = flatten(v)[0]

    def shifted(sign):
        moved = [_like(x, np.asarray(x, np.float64) + sign * eps * np.asarray(d, np.float64)) if _is_float(x)
                 else x for x, d in zip(leaves, directions)]
        with np.errstate(all="ignore"):
            return flatten(f(*unflatten(treedef, moved)))
    plus, out_def = shifted(1)
    minus, _ = shifted(-1)
    return unflatten(out_def, [(np.asarray(p, np.float64) - np.asarray(m, np.float64)) / (2 * eps) if _is_float(p)
                               else p for p, m in zip(plus, minus)])


def _like(leaf, value):
    """`value` as a leaf of the kind and dtype of `leaf`."""
    if type(leaf) is float or isinstance(leaf, np.floating):
        return type(leaf)(value)
    return value.astype(leaf.dtype)


def _dot(a, b, absolute=False):
    product = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    return float(np.sum(np.abs(product) if absolute else product))
