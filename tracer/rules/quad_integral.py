"""The custom_call rule of a definite integral (scipy.integrate.quad, tracer/rules/scipy_integrate.py) and
its derivatives: differentiation under the integral sign.

`Integral(body, options, finite)` stands for `custom_call(a, b, *q)` = a (2, m) float64 array: row 0 the
integrals over [a, b] of the m components of `body(t, *q)` (a closed trace of the integration variable t
and the values q the integrand reads; its one output is a float64 vector of length m), each computed by
SciPy's quad with `options` on the reference evaluation of `body` (a host call), row 1 quad's error
estimates.  Its derivatives are again integrals (Leibniz's rule), with the same quadrature and options:

    d/dq  int_a^b f(t, q) dt = int_a^b df/dq (t, q) dt     an Integral of body's VJP (or JVP) trace
    d/db = f(b, q),  d/da = -f(a, q)                      body replayed inline at the limit

so every order of derivative is an Integral of a derivative trace plus inline replays (grad of grad,
hessians).  Infinite limits (`finite` says which limits are finite; the caller guards it) have no boundary
term.  The error estimates carry no derivative (a cotangent reaching them is dropped).
"""
import itertools

import numpy as np

from ...ir import Builder, autodiff, passes
from ...ir.custom_ops import CustomRule
from ...ir.evaluate import run_trace
from ...ir.value import Trace

_names = itertools.count()


class Integral(CustomRule):
    """custom_call(a, b, *q): the integrals of `body`'s components over [a, b] and their error estimates."""

    def __init__(self, body, options, finite):
        self.body, self.options, self.finite = body, options, finite
        self.m = body.outputs[0].shape[0]
        super().__init__(f"quad{next(_names)}", ((2, self.m), np.float64))
        self._derived = {}

    def evaluate(self, arrays):
        from scipy.integrate import quad
        a, b, q = float(arrays[0]), float(arrays[1]), [np.array(v) for v in arrays[2:]]
        memo = {}       # t -> body(t, q): quad integrates the components one by one at the same points

        def integrand(t):
            found = memo.get(t)
            if found is None:
                found = memo[t] = np.asarray(run_trace(self.body, [np.float64(t), *q])[0], np.float64)
            return found
        out = np.empty((2, self.m))
        for j in range(self.m):
            out[:, j] = quad(lambda t: integrand(t)[j], a, b, **self.options)[:2]
        return out

    def at(self, b, limit, q):
        """IR: body(limit, *q) replayed inline into builder `b` (an (m,) vector)."""
        env = {id(self.body.inputs[0]): limit, **{id(i): v for i, v in zip(self.body.inputs[1:], q)}}
        passes.replay(b, self.body.nodes, env)
        return env[id(self.body.outputs[0])]

    def derived(self, key, make_body):
        """The Integral of the derivative trace `make_body()` (made once per `key`)."""
        rule = self._derived.get(key)
        if rule is None:
            rule = self._derived[key] = Integral(make_body(), self.options, self.finite)
        return rule

    def vjp(self, b, node, g):
        a, lim_b, q = node.args[0], node.args[1], node.args[2:]
        g_integral = b.index(g, spec=(("int", 0), ("slice", 0, self.m, 1)))
        cts = [None] * len(node.args)
        floats = [k for k, v in enumerate(q) if v.dtype.kind == "f"]
        if floats:
            rule = self.derived(("vjp", tuple(floats)), lambda: _vjp_body(self.body, floats))
            flat = b.custom_call(a, lim_b, *q, g_integral, rule=rule)
            start = 0
            for k in floats:
                piece = b.index(flat, spec=(("int", 0), ("slice", start, q[k].size, 1)))
                cts[2 + k] = _as(b, b.reshape(piece, shape=q[k].shape), q[k].dtype)
                start += q[k].size
        for side, limit in enumerate((a, lim_b)):
            if self.finite[side]:
                term = b.sum(b.multiply(self.at(b, limit, q), g_integral), axis=(0,), keepdims=False)
                cts[side] = term if side else b.negative(term)
        return tuple(cts)

    def jvp(self, b, node, tangents):
        a, lim_b, q = node.args[0], node.args[1], node.args[2:]
        moving = [k for k, t in enumerate(tangents[2:]) if t is not None and q[k].dtype.kind == "f"]
        parts = []
        if moving:
            rule = self.derived(("jvp", tuple(moving)), lambda: _jvp_body(self.body, moving))
            integral = b.custom_call(a, lim_b, *q, *[tangents[2 + k] for k in moving], rule=rule)
            parts.append(b.index(integral, spec=(("int", 0), ("slice", 0, self.m, 1))))
        for side, limit in enumerate((a, lim_b)):
            if self.finite[side] and tangents[side] is not None:
                term = b.multiply(self.at(b, limit, q), tangents[side])
                parts.append(term if side else b.negative(term))
        total = parts[0] if parts else b.fill((self.m,), np.float64, 0.0)
        for part in parts[1:]:
            total = b.add(total, part)
        return b.concatenate(b.reshape(total, shape=(1, self.m)), b.fill((1, self.m), np.float64, 0.0), axis=0)


def _as(b, v, dtype):
    return v if v.dtype == dtype else b.astype(v, dtype=dtype)


def _flat(b, values):
    """IR: `values` flattened to float64 and concatenated into one vector."""
    pieces = [_as(b, b.reshape(v, shape=(v.size,)), np.float64) for v in values]
    return pieces[0] if len(pieces) == 1 else b.concatenate(*pieces, axis=0)


def _vjp_body(body, floats):
    """The trace (t, *q, g) -> d<g, body(t, q)>/dq_k for k in `floats`, flattened into one vector."""
    b = Builder()
    env = passes.copy_inputs(b, body.inputs)
    g = b.input(body.outputs[0].shape, np.float64)
    passes.replay(b, body.nodes, env)
    inner = b.sum(b.multiply(env[id(body.outputs[0])], g), axis=(0,), keepdims=False)
    joint = autodiff.value_and_grad(b.build([inner]), [1 + k for k in floats])
    out = Builder()
    env = passes.copy_inputs(out, joint.inputs)
    passes.replay(out, joint.nodes, env)
    return passes.optimize(out.build([_flat(out, [env[id(v)] for v in joint.outputs[1:]])]))


def _jvp_body(body, moving):
    """The trace (t, *q, *tangents of q_k for k in `moving`) -> the tangent of body(t, q)."""
    joint = autodiff.jvp(body, [1 + k for k in moving])
    return passes.optimize(Trace(joint.inputs, joint.nodes, [joint.outputs[1]]))
