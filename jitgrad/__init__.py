"""jitgrad: exact gradients of unmodified Python + NumPy functions, compiled to native kernels."""
from .ir.errors import GuardFailed, IRError, JitgradError, TraceError, UnsupportedError
