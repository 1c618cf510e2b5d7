"""`jitgrad.custom_jvp`: a function with a forward-mode rule its author gives (see jitgrad/custom.py for
custom_vjp and the custom_call machinery both share).

    @jitgrad.custom_jvp
    def f(x, y): ...
    @f.defjvp
    def f_jvp(primals, tangents):           # tangents: one per argument (None for non-float ones)
        x, y = primals; tx, ty = tangents
        return f(x, y), tangent_out         # linear in the tangents

On traced values `f` is one custom_call node.  Its JVP node runs `f_jvp(primals, tangents)[1]`; its VJP
node the transpose of that map in the tangents, computed by jitgrad's vjp of `f_jvp` (so `f_jvp` must be
traceable NumPy code for reverse mode; it may call `f` itself).  Second derivatives (hessian = forward
over reverse, grad of grad, jvp of jvp) differentiate `f_jvp` with jitgrad's jvp/vjp: every argument
must then be a float or float array; third derivatives are refused.
"""
import numpy as np

from .custom import CustomFunction, concatenated, cut, rule_name, second_order_ok, too_deep
from .ir.custom_ops import CustomRule


class custom_jvp(CustomFunction):
    """Decorator: `fn` with a forward-mode derivative rule set by `defjvp(jvp_rule)` (see the module)."""

    decorator = "custom_jvp"
    setter = "defjvp(jvp_rule)"

    def __init__(self, fn):
        super().__init__(fn)
        self.jvp_rule = None

    def defjvp(self, jvp_rule):
        """Set the rule `jvp_rule(primals, tangents) -> (output, tangent of the output)`; usable as a
        decorator (returns the rule)."""
        self.jvp_rule = jvp_rule
        self._rules.clear()
        return jvp_rule

    def _has_rule(self):
        return self.jvp_rule is not None

    def _primal_rule(self, call, out):
        return _Primal(self, call, out)


def _primals_and_tangents(call, arrays, n_tangents):
    """The user's (primals, tangents) tuples from operands then `n_tangents` tangents of the floating ones."""
    n = len(call.dynamic)
    primals = call.args(arrays[:n])
    tangents = [None] * len(primals)
    for k, t in zip(call.floating, arrays[n:n + n_tangents]):
        tangents[k] = np.array(t) if call.kinds[k][1] is np.ndarray else call.kinds[k][1](t)
    return tuple(primals), tuple(tangents)


def _zero_like(value):
    return np.zeros_like(value) if isinstance(value, np.ndarray) else 0.0


def _zeros_for(b, node, tangents):
    return [t if t is not None else b.fill(a.shape, a.dtype, 0) for a, t in zip(node.args, tangents)]


def _flat_size_dtype(call, *dtypes):
    size = sum(int(np.prod(call.kinds[k][2], dtype=np.int64)) for k in call.floating)
    return (size,), np.result_type(*[call.kinds[k][3] for k in call.floating], *dtypes)


class _Rule(CustomRule):
    """A custom_call rule of custom_jvp function `cf` for the argument layout `call`."""

    def __init__(self, cf, call, part, out):
        super().__init__(rule_name(cf, part), out)
        self.cf, self.call = cf, call

    def vjp(self, b, node, g):
        raise too_deep(self.cf)

    def jvp(self, b, node, tangents):
        raise too_deep(self.cf)


class _Primal(_Rule):
    """custom_call(*x): f itself."""

    def __init__(self, cf, call, out):
        super().__init__(cf, call, "primal", out)
        self.tangent = _Tangent(self)
        self.transpose = _Transpose(self)

    def evaluate(self, arrays):
        return self.cf.fn(*self.call.args(arrays))

    def jvp(self, b, node, tangents):
        ts = _zeros_for(b, node, tangents)
        return b.custom_call(*node.args, *[ts[k] for k in self.call.float_operands()], rule=self.tangent)

    def vjp(self, b, node, g):
        floats = self.call.float_operands()
        flat = b.custom_call(*node.args, g, rule=self.transpose)
        cts = [None] * len(node.args)
        for k, ct in zip(floats, cut(b, flat, [node.args[k] for k in floats])):
            cts[k] = ct
        return tuple(cts)


class _Tangent(_Rule):
    """custom_call(*x, *t): jvp_rule(x, t)[1], t the tangents of the floating operands."""

    def __init__(self, primal):
        super().__init__(primal.cf, primal.call, "jvp", primal.out)
        self.primal = primal
        self._second = {}

    def evaluate(self, arrays):
        primals, tangents = _primals_and_tangents(self.call, arrays, len(self.call.floating))
        return self.cf.jvp_rule(primals, tangents)[1]

    def _rule(self, part, out, compute):
        if part not in self._second:
            self._second[part] = _Computed(self, part, out, compute)
        return self._second[part]

    def jvp(self, b, node, tangents):
        second_order_ok(self.cf, self.call)
        rule = self._rule("jvp2", self.out, _tangent_of_tangent)
        return b.custom_call(*node.args, *_zeros_for(b, node, tangents), rule=rule)

    def vjp(self, b, node, c):
        second_order_ok(self.cf, self.call)
        size, dtype = _flat_size_dtype(self.call, self.out[1])
        rule = self._rule("vjp2", ((2 * size[0],), dtype), _cotangent_of_tangent)
        return tuple(cut(b, b.custom_call(*node.args, c, rule=rule), node.args))


class _Transpose(_Rule):
    """custom_call(*x, g): the transpose of t -> jvp_rule(x, t)[1] applied to g, flattened over the
    floating operands (jitgrad's vjp of jvp_rule in the tangents)."""

    def __init__(self, primal):
        super().__init__(primal.cf, primal.call, "vjp", _flat_size_dtype(primal.call, primal.out[1]))
        self.primal = primal
        self.second = _Computed(self, "vjp2x", self.out, _cotangent_of_primals)

    def evaluate(self, arrays):
        from .transforms import VjpFunction, _transform_of
        zeros = [np.zeros(self.call.kinds[k][2], self.call.kinds[k][3]) for k in self.call.floating]
        primals, zeros = _primals_and_tangents(self.call, arrays[:-1] + zeros, len(zeros))
        out, vjp_fn = _transform_of(self.cf.jvp_rule, VjpFunction, 2, (1,))(primals, zeros)
        (d_tangents,) = vjp_fn((_zero_like(out[0]), np.array(arrays[-1])))
        return concatenated([d_tangents[k] for k in self.call.floating], self.out[1])

    def vjp(self, b, node, c):
        """x-part: d/dx <g, J(x) c>; g-part: J c (the tangent rule along c)."""
        second_order_ok(self.cf, self.call)
        xs, g = node.args[:-1], node.args[-1]
        pieces = cut(b, c, xs)
        d_x = b.custom_call(*xs, *pieces, g, rule=self.second)
        return (*cut(b, d_x, xs), b.custom_call(*xs, *pieces, rule=self.primal.tangent))

    def jvp(self, b, node, tangents):
        """Along (tx, tg): J^T tg + d/dx <g, J(x) tx>."""
        second_order_ok(self.cf, self.call)
        ts = _zeros_for(b, node, tangents)
        xs, g = node.args[:-1], node.args[-1]
        return b.add(b.custom_call(*xs, ts[-1], rule=self), b.custom_call(*xs, *ts[:-1], g, rule=self.second))


class _Computed(_Rule):
    """A second derivative, `compute(base_rule, arrays)` with jitgrad's jvp/vjp of the jvp_rule."""

    def __init__(self, base, part, out, compute):
        super().__init__(base.cf, base.call, part, out)
        self.base, self.compute = base, compute

    def evaluate(self, arrays):
        return self.compute(self.base, arrays)


def _tangent_of_tangent(rule, arrays):
    """custom_call(*x, *t, *tx, *tt): the tangent of jvp_rule(x, t)[1] along (tx, tt)."""
    from .transforms import jvp
    n = len(rule.call.floating)
    primals, tangents = _primals_and_tangents(rule.call, arrays, n)
    t_primals, t_tangents = _primals_and_tangents(rule.call, arrays[2 * n:], n)
    return jvp(rule.cf.jvp_rule, (primals, tangents), (t_primals, t_tangents))[1][1]


def _cotangent_of_tangent(rule, arrays):
    """custom_call(*x, *t, c): the cotangents of (x, t) for cotangent c of jvp_rule(x, t)[1], flattened."""
    from .transforms import vjp
    n = len(rule.call.floating)
    primals, tangents = _primals_and_tangents(rule.call, arrays[:-1], n)
    out, vjp_fn = vjp(rule.cf.jvp_rule, primals, tangents)
    d_primals, d_tangents = vjp_fn((_zero_like(out[0]), np.array(arrays[-1])))
    return concatenated([d_primals[k] for k in rule.call.floating] + [d_tangents[k] for k in rule.call.floating],
                        rule.out[1])


def _cotangent_of_primals(rule, arrays):
    """custom_call(*x, *w, g): d/dx <g, jvp_rule(x, w)[1]>, flattened."""
    from .transforms import VjpFunction, _transform_of
    n = len(rule.call.floating)
    primals, tangents = _primals_and_tangents(rule.call, arrays[:-1], n)
    out, vjp_fn = _transform_of(rule.cf.jvp_rule, VjpFunction, 2, (0,))(primals, tangents)
    (d_primals,) = vjp_fn((_zero_like(out[0]), np.array(arrays[-1])))
    return concatenated([d_primals[k] for k in rule.call.floating], rule.out[1])
