"""jitgrad.ir: the trace IR (values, ops and their per-concern tables, printer/parser, verifier,
passes) and the AD transforms.  Imports neither the tracer nor the JIT."""
from .builder import Builder
from .errors import GuardFailed, IRError, JitgradError, TraceError, UnsupportedError
from .evaluate import EVAL, evaluate, run_trace
from .ops import ALL_OPS
from .shapes import SHAPE
from .value import Trace, Value
