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
        self.chain = None
        super().__init__(f"{loc}: {message}" if loc else message)

    def add_chain(self, chain):
        """Name the calls that led from the user's line to where the error arose, when library code lies
        in between (`chain`: `file:line` strings, the user's first); only the first chain given counts."""
        if self.chain is None and len(chain) > 1:
            self.chain = list(chain)
            self.args = (f"{self.args[0]}\n  (called as: {' -> '.join(chain)})",) + self.args[1:]


class UnsupportedError(JitgradError):
    """A construct or callee that jitgrad cannot trace soundly (it refuses rather than guess)."""


class RuntimeTripUnsupported(UnsupportedError):
    """A transform of a loop of a run-time trip count that only a loop of a static count supports (the
    caller then traces with the count as it is: jitgrad/api.py)."""


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
