"""jitgrad.ir: the trace IR (values, ops and their per-concern tables, printer/parser, verifier,
passes) and the AD transforms.  Imports neither the tracer nor the JIT.

The loop modules fill the hook tables of the generic passes and AD transforms (passes.LOOP_PASSES,
autodiff.LOOP_*) when imported; importing them here fills the tables whenever any part of jitgrad.ir is
imported (a submodule's import runs this package's __init__ first).
"""
from . import cond_ad, cond_passes, loop_ad, loop_passes, loop_tape  # they fill the hook tables of passes and autodiff
from .builder import Builder
from .errors import GuardFailed, IRError, JitgradError, TraceError, UnsupportedError
from .evaluate import EVAL, evaluate, run_trace
from .ops import ALL_OPS
from .shapes import SHAPE
from .value import Trace, Value
