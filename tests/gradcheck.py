"""The project's one gradient checker: derivatives against central finite differences.

Functions are `f(args) -> array or list of arrays`, `args` a list of arrays.  Only float operands are
perturbed (`wrt`, default: every float operand); integer, bool and index operands stay fixed.

  check_vjp(f, vjp, args, rng)  vjp(args, cotangents) -> one cotangent (array or None) per arg.
      For random output cotangents u and input directions v it checks
      sum_k <u_k, (f(x + eps v) - f(x - eps v))_k / 2 eps>  ==  sum_i <v_i, vjp(x, u)_i>.
  check_jvp(f, jvp, args, rng)  jvp(args, tangents) -> one tangent per output (tangents: array or None
      per arg); checks jvp(x, v) against the same central difference, output by output.
Finite differences are always computed in float64 (float32 operands are upcast), and the tolerance and
step follow the least precise float dtype among the operands, outputs and derivatives (TOLERANCES).

Traces: `trace_function(trace)` runs a Trace with the reference evaluator; `reverse_trace(trace)` and
`forward_trace(trace)` are minimal reverse and forward sweeps applying the VJP / JVP tables (the real AD
transform lives in ir/autodiff.py); `trace_vjp` / `trace_jvp` wrap them as the callables above, and
`check_trace(trace, args, rng, order=1)` checks both modes; order=2 checks the backward trace itself
(reverse-over-reverse and forward-over-reverse), i.e. second derivatives by the same rules.

Complex values: `realified(trace)` is the same computation with every complex input taken as two real
inputs (real and imaginary part) and every complex output given as two real outputs, so that finite
differences apply; `check_trace` checks traces with complex inputs or outputs through it (the wrapper's
own ops, astype/multiply/add/real/imag, are checked along).  Complex values carry derivatives
(`is_float`); only real floats are perturbed.
"""
import numpy as np

from jitgrad.ir import Builder, run_trace
from jitgrad.ir.jvp import JVP
from jitgrad.ir.partials import cast
from jitgrad.ir.vjp import cotangents, unbroadcast

# (relative tolerance, absolute tolerance, finite-difference step) by the least precise float dtype.
TOLERANCES = {
    np.dtype(np.float64): (1e-5, 1e-8, 1e-6),
    np.dtype(np.float32): (1e-3, 1e-4, 1e-3),
}


def is_float(dtype):
    """True for the dtypes that carry derivatives (floating and complex)."""
    return np.dtype(dtype).kind in "fc"


def _real_dtype(dtype):
    return np.empty(0, dtype).real.dtype


def _as_list(out):
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def _least_precise(arrays):
    dtypes = [_real_dtype(a.dtype) for a in arrays if a is not None and is_float(a.dtype)]
    return max(dtypes, key=lambda d: np.finfo(d).eps) if dtypes else np.dtype(np.float64)


def _tolerances(arrays):
    return TOLERANCES[np.dtype(_least_precise(arrays))]


def _random_like(rng, a):
    return rng.standard_normal(a.shape)


def _central_difference(f, args, wrt, directions, eps):
    """(f(x + eps v) - f(x - eps v)) / 2 eps per output, evaluated in float64."""
    def shifted(sign):
        moved = list(args)
        for i, v in zip(wrt, directions):
            moved[i] = args[i].astype(np.float64) + sign * eps * v
        with np.errstate(all="ignore"):
            return [o.astype(np.float64) for o in _as_list(f(moved))]
    return [(p - m) / (2 * eps) for p, m in zip(shifted(1), shifted(-1))]


def _default_wrt(args, wrt):
    return [i for i, a in enumerate(args) if a.dtype.kind == "f"] if wrt is None else list(wrt)


def _dot(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def _abs_dot(a, b):
    return float(np.sum(np.abs(np.asarray(a, np.float64) * np.asarray(b, np.float64))))


def check_vjp(f, vjp, args, rng, wrt=None, directions=2):
    """Assert that `vjp` is the reverse-mode derivative of `f` at `args` (see the module docstring)."""
    args = [np.asarray(a) for a in args]
    wrt = _default_wrt(args, wrt)
    outs = _as_list(f(args))
    us = [_random_like(rng, o) for o in outs]
    cts = [u.astype(o.dtype if is_float(o.dtype) else np.float64) for u, o in zip(us, outs)]
    grads = list(vjp(args, cts))
    assert len(grads) == len(args), f"vjp returned {len(grads)} cotangents for {len(args)} args"
    for i, g in enumerate(grads):
        if g is not None:
            assert np.shape(g) == args[i].shape, f"cotangent {i}: shape {np.shape(g)} != {args[i].shape}"
    rtol, atol, eps = _tolerances([args[i] for i in wrt] + outs + [np.asarray(g) for g in grads if g is not None])
    for _ in range(directions):
        vs = [_random_like(rng, args[i]) for i in wrt]
        fd = _central_difference(f, args, wrt, vs, eps)
        lhs = sum(_dot(u, d) for u, d in zip(us, fd))
        pairs = [(v, grads[i]) for v, i in zip(vs, wrt) if grads[i] is not None]
        rhs = sum(_dot(v, g) for v, g in pairs)
        scale = sum(_abs_dot(u, d) for u, d in zip(us, fd)) + sum(_abs_dot(v, g) for v, g in pairs)
        assert abs(lhs - rhs) <= rtol * scale + atol, \
            f"VJP mismatch: <u, J v> by finite differences {lhs!r} vs <v, vjp(u)> {rhs!r} (scale {scale:.3g})"


def check_jvp(f, jvp, args, rng, wrt=None, directions=2):
    """Assert that `jvp` is the forward-mode derivative of `f` at `args` (see the module docstring)."""
    args = [np.asarray(a) for a in args]
    wrt = _default_wrt(args, wrt)
    outs = _as_list(f(args))
    for _ in range(directions):
        vs = [_random_like(rng, args[i]) for i in wrt]
        tangents = [None] * len(args)
        for i, v in zip(wrt, vs):
            tangents[i] = v.astype(args[i].dtype)
        jv = _as_list(jvp(args, tangents))
        assert len(jv) == len(outs), f"jvp returned {len(jv)} tangents for {len(outs)} outputs"
        rtol, atol, eps = _tolerances([args[i] for i in wrt] + outs + jv)
        fd = _central_difference(f, args, wrt, vs, eps)
        for k, (t, d) in enumerate(zip(jv, fd)):
            assert t.shape == d.shape, f"tangent {k}: shape {t.shape} != output shape {d.shape}"
            err = float(np.max(np.abs(t.astype(np.float64) - d), initial=0.0))
            bound = rtol * float(np.max(np.abs(d), initial=0.0)) + atol
            assert err <= bound, f"JVP mismatch on output {k}: max error {err:.3g} > {bound:.3g}\n{t}\nvs\n{d}"


# ---------------------------------------------------------------------------------------------------
# Minimal sweeps over traces, for testing the rule tables (the real transform is ir/autodiff.py).

def _replay(b, trace):
    """Copy `trace`'s inputs and nodes into builder `b`; return the map id(old value) -> new value."""
    env = {id(v): b.input(v.shape, v.dtype) for v in trace.inputs}
    for n in trace.nodes:
        env[id(n)] = b.emit(n.op, *[env[id(a)] for a in n.args], **n.params)
    return env


def _derivative_dtype(v):
    return v.dtype if is_float(v.dtype) else np.dtype(np.float64)


def _derivatives_of(b, values, env, derivatives):
    """The derivative recorded for each of `values` (old-trace Values), zeros where none flows."""
    found = [derivatives.get(id(env[id(v)])) for v in values]
    return [d if d is not None else b.fill(v.shape, _derivative_dtype(v), 0) for v, d in zip(values, found)]


def _active(trace, env):
    """ids of the (new) values that depend on a float input through float values: every float input is
    differentiated, so the rules are asked for exactly these operands' derivatives."""
    active = set()
    for v in trace.inputs + trace.nodes:
        new = env[id(v)]
        if is_float(v.dtype) and (v.op == "input" or any(id(a) in active for a in new.args)):
            active.add(id(new))
    return active


def reverse_trace(trace):
    """The backward trace: inputs are trace's inputs then one cotangent per output; outputs are one
    cotangent per input (zeros where none flows)."""
    b = Builder()
    env = _replay(b, trace)
    cts = {}

    def accumulate(value, ct):
        key = id(value)
        cts[key] = ct if key not in cts else b.add(cts[key], ct)

    for out in trace.outputs:
        accumulate(env[id(out)], b.input(out.shape, _derivative_dtype(out)))
    active = _active(trace, env)
    for n in reversed(trace.nodes):
        node = env[id(n)]
        g = cts.get(id(node))
        if g is None:
            continue
        for a, ct in zip(node.args, cotangents(b, node, g, [id(a) in active for a in node.args])):
            if ct is not None:
                accumulate(a, unbroadcast(b, ct, a.shape, a.dtype))
    return b.build(_derivatives_of(b, trace.inputs, env, cts))


def forward_trace(trace):
    """The tangent trace: inputs are trace's inputs then one tangent per float input; outputs are the
    primal outputs' tangents (zeros where none flows)."""
    b = Builder()
    env = _replay(b, trace)
    tangents = {id(env[id(v)]): b.input(v.shape, v.dtype) for v in trace.inputs if is_float(v.dtype)}
    for n in trace.nodes:
        node = env[id(n)]
        ts = [tangents.get(id(a)) for a in node.args]
        if all(t is None for t in ts):
            continue
        t = JVP[node.op](b, node, ts)
        if t is None:
            continue
        assert is_float(node.dtype), f"JVP[{node.op}] gave a tangent to a {node.dtype} result"
        if t.shape != node.shape:
            t = b.broadcast_to(t, shape=node.shape)
        tangents[id(node)] = cast(b, t, node.dtype)
    return b.build(_derivatives_of(b, trace.outputs, env, tangents))


def trace_function(trace):
    """`trace` as a function of a list of arrays (reference evaluation)."""
    return lambda args: run_trace(trace, args)


def trace_vjp(trace):
    """The vjp callable of `trace`, computed by running reverse_trace(trace)."""
    backward = reverse_trace(trace)
    return lambda args, cts: run_trace(backward, list(args) + list(cts))


def trace_jvp(trace):
    """The jvp callable of `trace`, computed by running forward_trace(trace)."""
    tangent = forward_trace(trace)

    def jvp(args, tangents):
        ts = [t if t is not None else np.zeros(a.shape, a.dtype)
              for a, t in zip(args, tangents) if is_float(a.dtype)]
        return run_trace(tangent, list(args) + ts)
    return jvp


def _is_complex(v):
    return v.dtype.kind == "c"


def realified(trace):
    """`trace` with each complex input taken as two real inputs (real part, imaginary part) and each
    complex output given as two real outputs (real part, imaginary part)."""
    b = Builder()
    env = {}
    for v in trace.inputs:
        if _is_complex(v):
            re, im = (b.astype(b.input(v.shape, _real_dtype(v.dtype)), dtype=v.dtype) for _ in range(2))
            env[id(v)] = b.add(re, b.multiply(im, b.fill((), v.dtype, 1j)))
        else:
            env[id(v)] = b.input(v.shape, v.dtype)
    for n in trace.nodes:
        env[id(n)] = b.emit(n.op, *[env[id(a)] for a in n.args], **n.params)
    outputs = []
    for v in trace.outputs:
        out = env[id(v)]
        outputs += [b.real(out), b.imag(out)] if _is_complex(v) else [out]
    return b.build(outputs)


def realified_args(args):
    """The arguments of `realified(trace)` for the arguments `args` of `trace`."""
    split = []
    for a in map(np.asarray, args):
        split += [a.real.copy(), a.imag.copy()] if a.dtype.kind == "c" else [a]
    return split


def check_trace(trace, args, rng, order=1, directions=2):
    """Check the VJP and JVP rules on `trace` at `args`; order=2 also checks them on the backward trace
    (second derivatives), at args plus random output cotangents.  Traces with complex inputs or
    outputs are checked as `realified(trace)`."""
    if any(_is_complex(v) for v in trace.inputs + trace.outputs):
        return check_trace(realified(trace), realified_args(args), rng, order, directions)
    check_vjp(trace_function(trace), trace_vjp(trace), args, rng, directions=directions)
    check_jvp(trace_function(trace), trace_jvp(trace), args, rng, directions=directions)
    if order >= 2:
        backward = reverse_trace(trace)
        cts = [rng.standard_normal(v.shape).astype(v.dtype) for v in backward.inputs[len(args):]]
        check_trace(backward, list(args) + cts, rng, order - 1, directions)
