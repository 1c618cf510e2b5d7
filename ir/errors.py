"""The one exception hierarchy of jitgrad.

Every error a user can see derives from `JitgradError` and carries the source location (`file:line`)
of the user code that caused it, when one is known.  It lives in `ir` because `ir` is the bottom layer:
the tracer, the JIT and the facade all import it, and `jitgrad` re-exports it.
"""


class JitgradError(Exception):
    """Base class of jitgrad's errors; `loc` is the user's `file:line` (or None)."""

    def __init__(self, message, loc=None):
        self.message = message
        self.loc = loc
        super().__init__(f"{loc}: {message}" if loc else message)


class UnsupportedError(JitgradError):
    """A construct or callee that jitgrad cannot trace soundly (it refuses rather than guess)."""


class TraceError(JitgradError):
    """The traced function did something invalid while tracing (bad output, bad arguments...)."""


class IRError(JitgradError):
    """A malformed trace: a verifier or parser failure, or an op used with invalid operands."""


class GuardFailed(Exception):
    """Raised by an executor when guard number `index` (in trace order) does not hold.

    Internal: the dispatcher catches it and retraces.  Not a JitgradError because users never see it.
    """

    def __init__(self, index):
        self.index = index
        super().__init__(f"guard {index} failed")


class JitgradWarning(UserWarning):
    """Warnings about jitgrad's cache (e.g. the recompile limit) and side effects it cannot repeat."""
