"""NumPy's floating-point error modes.  Compiled traces compute infinities and NaNs without raising, so
a trace recorded while `np.errstate`/`np.seterr` makes NumPy raise (or call a handler) on division by
zero, overflow or invalid operations cannot tell later calls where NumPy would have raised: when user
code (not NumPy's own, whose handlers belong to routines that have rules) sets such a mode, the trace is
run for its call only and not cached.  An `np.errstate` object made while tracing is the trace's own
(entering and leaving it reads no environment), so functions with errstate blocks cache normally.

The mode in force when a call starts is checked by the dispatcher (tracer/recording/errormode.py).
"""
import numpy as np

from ..recording import context
from ..recording.errormode import HANDLED
from ..recording.registry import register

_ERROR_KINDS = ("all", "divide", "over", "under", "invalid")


def _raising_modes(fn):
    def handler(*args, **kwargs):
        ctx = context.current()
        raises = any(kwargs.get(kind) in HANDLED for kind in _ERROR_KINDS)
        if raises and ctx.user_location() == ctx.location():
            ctx.forbid_caching(f"np.{fn.__name__} sets an error mode that raises")
        if raises and ctx.loops is not None:     # where NumPy raises is decided by interpreting each iteration
            ctx.loops.effect(f"np.{fn.__name__} with an error mode that raises")
        result = fn(*args, **kwargs)
        if isinstance(result, np.errstate):
            ctx.mark_local(result)
            if ctx.loops is not None:        # entered and left in one loop iteration: no outside state
                ctx.loops.made(result)
        return result
    return handler


for _fn in (np.errstate, np.seterr):
    register(_fn, always=True)(_raising_modes(_fn))
