"""Executors of traces: the LLVM JIT (default) or the NumPy reference evaluation.

`compile_trace(trace, use_jit, about) -> (kernel, backend_name, note)`: `kernel(inputs) -> outputs`
raises GuardFailed(k) when guard k fails; `about` (function, location, signature, kind) is what the
on-disk cache of machine code records next to the object (jit/diskcache.py).  The reference executor is
selected with `JITGRAD_DISABLE_JIT=1` or
`jit=False`; when the JIT cannot lower a trace the reference executor runs it and `note` says why
(cache_info shows it: nothing falls back silently).
"""
import functools
import os

from .ir import run_trace


def jit_enabled_by_default():
    return os.environ.get("JITGRAD_DISABLE_JIT", "") in ("", "0")


def loop_runner(use_jit):
    """What the tracer fast-forwards long rolled loops with (tracer/interpretation/rolling.py): `run(trace, inputs) ->
    outputs` compiling `trace` (precise math, as close to NumPy as the JIT gets); None without the JIT.
    It raises LoweringUnsupported or GuardFailed where the tracer then uses the reference evaluation."""
    if not use_jit:
        return None
    from . import jit

    def run(trace, inputs):
        return jit.compile_trace(trace, precise_math=True)(inputs)
    return run


def compile_trace(trace, use_jit, about=None):
    if use_jit:
        from . import jit
        try:
            return jit.compile_trace(trace, about=about), "llvm", ""
        except jit.LoweringUnsupported as e:
            return functools.partial(run_trace, trace), "reference", f"JIT cannot lower this trace: {e}"
    return functools.partial(run_trace, trace), "reference", "JIT disabled"
