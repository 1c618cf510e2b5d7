"""The bytecode interpreter of the tracer: runs Python functions instruction by instruction.

`call(fn, args, kwargs)` is the entry point (an active TraceContext is required): it applies the call
policy (calls.py) to `fn`, interpreting Python code inline at any depth.  The Interpreter class gathers
the opcode handlers from the mixins `opcodes_*.py` into one dispatch table built once; the run loop
here executes a frame, unwinds exceptions through the exception table of each instruction and keeps
`ctx.frames` current for `file:line`.  JitgradErrors bypass interpreted `except` clauses.
"""
import sys

from ...ir.errors import JitgradError, TraceError, UnsupportedError
from ..recording import context
from ..arrays.aliasing import resolve_tree
from .calls import CallPolicy
from .decode import decode
from .opcodes_calls import CallOps
from .opcodes_data import DataOps
from .opcodes_flow import FlowOps
from .opcodes_ops import OperatorOps
from .protocols import Protocols


class Interpreter(CallPolicy, Protocols, DataOps, OperatorOps, FlowOps, CallOps):
    """Interprets bytecode for one TraceContext; `handled_exc` is the exception being handled (what a
    bare `raise` re-raises, and the `__context__` of exceptions raised meanwhile)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.handled_exc = None
        self.unwinding = None    # the exception last propagated out of an interpreted frame

    def decode(self, code):
        """The cached decoded form of a code object."""
        return decode(code, HANDLERS, _missing_handler)

    def run_frame(self, frame):
        """Run a fresh frame to its end and return its return value."""
        return self.resume(frame, None)

    def resume(self, frame, exc):
        """Run `frame` from its current instruction (raising `exc` there first if given) until it
        returns or yields; returns the returned/yielded value (`frame.done` tells which)."""
        frames = self.ctx.frames
        frames.append(frame)
        try:
            return self._execute(frame, exc)
        finally:
            frames.pop()

    def _execute(self, frame, pending):
        decoded = frame.decoded
        ops, args = decoded.ops, decoded.args
        while True:
            try:
                if pending is not None:
                    exc, pending = pending, None
                    raise exc
                while True:
                    pc = frame.pc
                    frame.pc = pc + 1
                    if ops[pc](self, frame, args[pc]) is not None:
                        return frame.retval
            except JitgradError:
                raise
            except BaseException as exc:
                if self.ctx.loops is not None:
                    self.ctx.loops.effect(f"an exception ({type(exc).__name__})")
                if type(exc) is RecursionError and _out_of_stack():
                    raise self._too_deep() from exc
                if exc is not self.unwinding:          # raised here, not passing up from a callee frame
                    handled = self.handled_exc
                    if handled is not None and handled is not exc and exc.__context__ is None:
                        exc.__context__ = handled
                entry = decoded.handlers[frame.pc - 1]
                if entry is None:
                    self.unwinding = exc
                    raise
                target, depth, push_lasti = entry
                stack = frame.stack
                del stack[depth:]
                if push_lasti:
                    stack.append(frame.pc - 1)
                stack.append(exc)
                frame.pc = target


    def _too_deep(self):
        """The error for running out of CPython's stack: never an exception of the traced code (which
        an interpreted `except` could catch and take another path)."""
        return UnsupportedError(
            f"recursion too deep to trace: {len(self.ctx.frames)} nested interpreted calls used up "
            f"CPython's recursion limit ({sys.getrecursionlimit()}; the interpreter takes several of "
            "CPython's frames per call); rewrite the recursion as a loop, or raise sys.setrecursionlimit",
            loc=self.ctx.user_location())


def _out_of_stack():
    """Whether the Python stack is within a few frames of the recursion limit (a RecursionError raised
    by CPython, not by the traced code)."""
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth > sys.getrecursionlimit() - 60


HANDLERS = {name[3:]: getattr(Interpreter, name) for name in dir(Interpreter) if name.startswith("op_")}


def _missing_handler(opname, reason):
    """The handler run for an opcode the version table refuses: refuses with the reason and location."""
    def refuse(interpreter, frame, arg):
        raise UnsupportedError(f"jitgrad's interpreter does not support the opcode {opname}: {reason}",
                               loc=interpreter.ctx.location())
    return refuse


def call(fn, args=(), kwargs=None):
    """Call `fn(*args, **kwargs)` under the interpreter in the active TraceContext; returns the result
    (plain arrays in it that stand for traced values replaced by them: `aliasing.resolve_tree`)."""
    ctx = context.current()
    if ctx is None:
        raise TraceError("jitgrad.tracer.interpretation.interpreter.call needs an active TraceContext")
    return resolve_tree(Interpreter(ctx).call(fn, tuple(args), dict(kwargs or {})))
