"""NumPy's floating-point error mode as the dispatcher sees it.  Compiled kernels compute infinities and
NaNs without raising, so a call made while the mode raises (or calls a handler) on some error is traced
afresh and answered by the reference executor, never by a cached kernel: NumPy raises where it would
have without jitgrad.  `raising()` decides it; `quiet_mode()`/`current_mode()` let the cached-call
path confirm in tens of nanoseconds that the mode is still one known not to raise.
"""
import numpy as np

HANDLED = ("raise", "call", "log")      # modes compiled code cannot honour (a warning it skips, as NumPy's)

try:        # NumPy 2: the mode is an immutable object in a context variable (per thread and context)
    from numpy._core._ufunc_config import _extobj_contextvar
    _current_mode = _extobj_contextvar.get
except ImportError:     # NumPy 1.x: the mode is read in full on every call
    _current_mode = None
_known = {}     # id(mode object) -> (the object, whether it raises); a few objects, kept alive


def current_mode():
    """The object standing for NumPy's current error mode (None with NumPy 1.x)."""
    return _current_mode() if _current_mode is not None else None


def mode_reader():
    """`current_mode` itself as a C-level callable where NumPy allows (what a hot path should call)."""
    return _current_mode if _current_mode is not None else current_mode


def is_mode_variable(obj):
    """Whether `obj` is the context variable holding NumPy's error mode (entering and leaving an
    `np.errstate` sets and resets it)."""
    return _current_mode is not None and obj is _extobj_contextvar


def mode_state():
    """What tells two moments' error modes apart: the mode object (NumPy 2: `np.errstate` left restores
    the object it found), or the modes themselves (NumPy 1.x)."""
    return current_mode() if _current_mode is not None else np.geterr()


def quiet_mode():
    """The current mode object if it raises on no error, else None (also with NumPy 1.x): a later
    `current_mode() is quiet` (quiet not None) tells that the mode is still that one."""
    mode = current_mode()
    return None if mode is None or raising() else mode


def raising():
    """Whether NumPy's current floating-point error mode raises (or calls a handler) on some error."""
    if _current_mode is None:
        return _raises(np.geterr())
    mode = _current_mode()
    known = _known.get(id(mode))
    if known is not None and known[0] is mode:
        return known[1]
    answer = _raises(np.geterr())
    if len(_known) < 64:
        _known[id(mode)] = (mode, answer)
    return answer


def _raises(modes):
    return any(mode in HANDLED for mode in modes.values())
