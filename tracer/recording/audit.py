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
places; integers and booleans must be equal.
"""
import os

import numpy as np

from ...ir.errors import TraceError
from ...ir.evaluate import EVAL
from . import context

_enabled = os.environ.get("JITGRAD_AUDIT", "") not in ("", "0")
_RTOL = {2: 2e-2, 4: 2e-4, 8: 1e-8}     # bytes of float precision -> relative tolerance


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
    skipped)."""
    if not ctx.audit:
        return
    computed = {id(ir): value for ir, value, _ in ctx.audit if ir.op == "input"}
    precision = {id(ir): _precision(ir.dtype) for ir in ctx.builder.inputs}
    with np.errstate(all="ignore"):
        for node in ctx.builder.nodes:
            args = [computed.get(id(a)) for a in node.args]
            precision[id(node)] = min([_precision(node.dtype)] + [precision[id(a)] for a in node.args])
            if node.op != "guard" and all(a is not None for a in args):
                computed[id(node)] = EVAL[node.op](args, node.params)
    for ir, expected, loc in ctx.audit:
        got = computed.get(id(ir))
        if got is not None and not _agrees(np.asarray(got), expected, precision[id(ir)]):
            raise TraceError(
                f"internal: the IR recorded for the operation here ({ir.op} -> {ir.dtype}{list(ir.shape)}) "
                f"computes values different from what NumPy computed (largest difference "
                f"{_largest_difference(np.asarray(got), expected)}); please report this jitgrad bug", loc)


def _precision(dtype):
    """Bytes of float precision of `dtype` (complex: per part); 8 for exact kinds."""
    return dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize if dtype.kind == "f" else 8


def _agrees(got, expected, precision=8):
    """Whether `got` equals `expected`, floats to a tolerance for the `precision` (bytes) they were
    computed in (a float64 value computed from float32 ones carries float32 rounding)."""
    if got.shape != expected.shape:
        return False
    if expected.dtype.kind not in "fc":
        return bool(np.array_equal(got, expected))
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
    return bool(np.all(difference <= rtol * (np.abs(expected[finite]) + scale)))


def _largest_difference(got, expected):
    if got.shape != expected.shape:
        return f"shape {got.shape} vs {expected.shape}"
    with np.errstate(all="ignore"):
        return np.max(np.abs(got.astype(np.result_type(got, float)) - expected), initial=0)
