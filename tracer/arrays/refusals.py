"""Refusals: `refuse` raises UnsupportedError at the user's `file:line` in the active trace, and the
error for a traced value used after its trace finished (stored in outside data while tracing), and
`STALE`: the IR of a view taken before its array was written, whose every use refuses."""
import sys

from ...ir.errors import TraceError, UnsupportedError
from ...ir.value import Value
from ..recording import context


def finished_trace_error():
    """The error for a traced value used outside any trace: one stored in outside data while tracing
    and used after its jit_grad call returned.  Located at the first frame outside jitgrad."""
    frame, loc = sys._getframe(1), None
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).split(".")[0] != "jitgrad":
            loc = loc or f"{frame.f_code.co_filename}:{frame.f_lineno}"     # (the first outside jitgrad)
            if not context._is_library_file(frame.f_code.co_filename):
                loc = f"{frame.f_code.co_filename}:{frame.f_lineno}"
                break
        frame = frame.f_back
    return TraceError("a traced value of a jit_grad call that has returned is used here: it was stored "
                      "outside the traced function while tracing (in a global, an object or a container "
                      "not rebuilt per call); store a plain copy (float(v), np.array(v)) or return it as "
                      "aux data (has_aux=True)", loc=loc)


def location():
    """The user's `file:line` in the active trace (None outside one)."""
    ctx = context.current()
    return ctx.user_location() if ctx is not None else None


def refuse(message):
    """Raise UnsupportedError with the user's location (outside any trace: the finished-trace error)."""
    if context.current() is None:
        raise finished_trace_error()
    raise UnsupportedError(message, loc=location())


def refuse_options(what, **options):
    """Refuse keyword options (out=, where=, ...) that a rule does not translate, when given."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        refuse(f"{what}: the option(s) {', '.join(given)}= are not supported while tracing; "
               "compute without them (or register a rule with jitgrad.register)")


_STALE_MESSAGE = ("this view (a slice, reshape, .T, iteration row...) was taken before its array was "
                  "written in place; using it afterwards is not supported yet (aliasing is a later issue): "
                  "copy the view (v = x[i].copy()) or index the array again after the write")


def _stale(self):
    refuse(_STALE_MESSAGE)


class StaleView(Value):
    """The IR of a view whose base array was written after the view was taken: every use refuses."""

    __slots__ = ()
    op = args = params = shape = dtype = property(_stale)

    def __init__(self):
        pass

    def __repr__(self):
        return "<stale view>"


STALE = StaleView()
