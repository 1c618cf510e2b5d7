"""Value audit: does every traced value's IR compute what NumPy computed while tracing?

A rule translates a library call into IR, and `values.make` checks the translation's shape and dtype
against the concrete result, not its values: a rule whose IR means something slightly different from
what the library computed would pass unnoticed and give a wrong gradient.  With the audit on
(`JITGRAD_AUDIT=1` in the environment, or `enable()`; the test suite turns it on), every pairing of an
IR value with its concrete value made while tracing is remembered (`note`), and once the trace is
complete `check` runs the reference evaluation on the concrete inputs and compares each pair, failing
at the user's line that produced the value.

Floats are compared to a tolerance scaled by the array's magnitude (rules may round differently from
the library: another summation order, a fused formula); NaN and infinities must sit at the same
places; integers and booleans must be equal.  A value that cancels (RK45's error norms, 1e-20 where
terms of order 1 cancel) is rounding noise, whatever the order it is summed in: a value outside the
tolerance is compared again allowing its measured rounding noise (a second, perturbed evaluation:
`_noise`), so only differences far above what rounding can explain are reported.
"""
import os

import numpy as np

from ...ir.errors import TraceError
from ...ir.evaluate import EVAL
from . import context

_enabled = os.environ.get("JITGRAD_AUDIT", "") not in ("", "0")
_RTOL = {2: 2e-2, 4: 2e-4, 8: 1e-8}     # bytes of float precision -> relative tolerance
_DELTA = {2: 5e-3, 4: 5e-5, 8: 1e-12}   # bytes of float precision -> perturbation measuring rounding noise


def enable(on=True):
    """Turn the audit on (or off) for the traces recorded from now on."""
    global _enabled
    _enabled = bool(on)


def enabled():
    """Whether traces are being audited."""
    return _enabled


def note(ir_value, concrete):
    """Remember that `ir_value` stands for `concrete` (called where traced values are made)."""
    ctx = context.current() if _enabled else None
    if ctx is not None:
        ctx.audit.append((ir_value, np.array(concrete, copy=True), ctx.user_location()))


def check(ctx):
    """Raise TraceError at the first noted value whose IR evaluates to something else than its
    concrete value (inputs come from the noted inputs; values depending on an unnoted input are
    skipped).  A value that differs by more than the tolerance is checked again against its rounding
    noise (`_noise`), so values that cancel to rounding noise are not reported."""
    if not ctx.audit:
        return
    precision = {id(ir): _precision(ir.dtype) for ir in ctx.builder.inputs}
    inputs = {id(ir): value for ir, value, _ in ctx.audit if id(ir) in precision}   # the trace's inputs
    computed = _evaluate(ctx.builder.nodes, dict(inputs), precision)
    suspects = [(ir, np.asarray(computed[id(ir)]), expected, loc) for ir, expected, loc in ctx.audit
                if computed.get(id(ir)) is not None
                and not _agrees(np.asarray(computed[id(ir)]), expected, precision[id(ir)])]
    if not suspects:
        return
    noise = _noise(ctx.builder.nodes, inputs, computed, precision)
    for ir, got, expected, loc in suspects:
        if not _agrees(got, expected, precision[id(ir)], noise.get(id(ir))):
            raise TraceError(
                f"internal: the IR recorded for the operation here ({ir.op} -> {ir.dtype}{list(ir.shape)}) "
                f"computes values different from what NumPy computed (largest difference "
                f"{_largest_difference(got, expected)}); please report this jitgrad bug", loc)


def _evaluate(nodes, computed, precision, perturb=None):
    """The reference evaluation of `nodes` from `computed` (id -> value of the inputs; extended and
    returned), with `precision` filled in; `perturb(node, value)`, when given, alters each result."""
    with np.errstate(all="ignore"):
        for node in nodes:
            args = [computed.get(id(a)) for a in node.args]
            precision[id(node)] = min([_precision(node.dtype)] + [precision[id(a)] for a in node.args])
            if node.op != "guard" and all(a is not None for a in args):
                if perturb is None:
                    computed[id(node)] = EVAL[node.op](args, node.params)
                    continue
                try:
                    computed[id(node)] = perturb(node, EVAL[node.op](args, node.params))
                except Exception:      # a perturbed index out of range, a singular matrix...: unknown
                    computed[id(node)] = None
    return computed


def _noise(nodes, inputs, computed, precision):
    """id -> the rounding noise of each float value: how far it moves when every float the evaluation
    makes (inputs and each op's result) is moved by a relative `_DELTA`, thousands of rounding errors,
    with random signs (stochastic arithmetic).  Values that cancel inside an op (a difference, a dot
    product of terms that nearly cancel) move by about their operands' magnitude times `_DELTA`; a
    mistranslation differs by much more.  Elements whose perturbed value is unknown or NaN: inf."""
    rng = np.random.default_rng(0)

    def perturb(node, value):
        value = np.asarray(value)
        if value.dtype.kind not in "fc":
            return value
        signs = rng.choice(np.array([-1.0, 1.0]), size=value.shape)
        return (value * (1 + _DELTA[_precision(value.dtype)] * signs)).astype(value.dtype)
    moved = _evaluate(nodes, {k: perturb(None, v) for k, v in inputs.items()}, dict(precision), perturb)
    noise = {}
    with np.errstate(all="ignore"):
        for key, value in computed.items():
            other = moved.get(key)
            if value is None or type(value) in (list, tuple) or np.asarray(value).dtype.kind not in "fc":
                continue                # (a loop's or cond's outputs: their `loop_result`s are checked)
            if other is None or np.shape(other) != np.shape(value):
                noise[key] = np.full(np.shape(value), np.inf)
                continue
            difference = np.abs(np.asarray(other, np.complex128) - np.asarray(value, np.complex128))
            noise[key] = np.where(np.isnan(difference), np.inf, difference)
    return noise


def _precision(dtype):
    """Bytes of float precision of `dtype` (complex: per part); 8 for exact kinds."""
    return dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize if dtype.kind == "f" else 8


def _agrees(got, expected, precision=8, noise=None):
    """Whether `got` equals `expected`, floats to a tolerance for the `precision` (bytes) they were
    computed in (a float64 value computed from float32 ones carries float32 rounding) plus their
    rounding `noise` (elementwise, see `_noise`; elements with infinite noise are not compared)."""
    if got.shape != expected.shape:
        return False
    if expected.dtype.kind not in "fc":
        return bool(np.array_equal(got, expected))
    if noise is not None:
        known = np.broadcast_to(np.isfinite(noise), expected.shape)
        got, expected, noise = got[known], expected[known], np.broadcast_to(noise, known.shape)[known]
    if not np.array_equal(np.isnan(got), np.isnan(expected)):
        return False
    finite = np.isfinite(expected)
    if not np.array_equal(got[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)]):
        return False
    if not finite.any():
        return True
    rtol = _RTOL[min(precision, _precision(expected.dtype))]
    scale = np.max(np.abs(expected[finite]))
    difference = np.abs(got[finite].astype(expected.dtype) - expected[finite])
    allowed = rtol * (np.abs(expected[finite]) + scale) + (0 if noise is None else noise[finite])
    return bool(np.all(difference <= allowed))


def _largest_difference(got, expected):
    if got.shape != expected.shape:
        return f"shape {got.shape} vs {expected.shape}"
    with np.errstate(all="ignore"):
        return np.max(np.abs(got.astype(np.result_type(got, float)) - expected), initial=0)
