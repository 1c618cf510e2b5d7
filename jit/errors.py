"""The JIT's own exception: a trace (or one op/dtype in it) that the lowering cannot compile.

The dispatcher catches it and runs the trace with the NumPy reference executor instead (and says so in
cache_info); it is raised at compile time only, never from a running kernel.
"""
from jitgrad.ir.errors import JitgradError


class LoweringUnsupported(JitgradError):
    """compile_trace cannot lower this trace; use jitgrad.ir.run_trace for it."""
