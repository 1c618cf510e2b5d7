"""Side effects of traced code on outside state, replayed by every cached call.

A traced function may change state that outlives its call: a counter (`global calls; calls += 1`,
`self.n_fe += 1`), a log list (`history.append(float(loss))`), a global or attribute it stores
(`self.last = loss`), or the terminal (`print("loss", loss)`).  The tracing run does these as Python
does; a cached call runs a compiled kernel, so a `Recorder` notes each effect while tracing (in order,
with what it stores: traced values become extra outputs of the trace) and the compiled call replays them
with that call's values (jitgrad/tracing.py `Replay`).  Only effects of user code are replayed (what
library code caches in its own modules is its business).

State the trace only writes, or reads only to write it back, is not an input of the computation, so it
is not guarded (a guard on it would fail on every call):
- a place read only to be the receiver of a mutating method or of an item store (`history.append(x)`,
  `best["loss"] = x`: `history` and `best` are guarded by identity, not by their contents);
- a place read only to be combined in place with a constant or a local variable and stored back
  (`calls += 1`, `self.total += loss`): no guard; the replay reads the place afresh and applies the
  operation, so the counter counts calls whatever its value.
Both are recognised from the bytecode around the read (`write_only_use`).  Should the trace read such a
place in any other way later, the guard it skipped is recorded then (with the value at the first read).

What cannot be replayed (a store of an object created in the call, text formatted from a traced value and
printed, any effect of a transform nested in a traced call) happens while tracing only, and jitgrad
warns once naming the line.
"""
import collections
import dis
import operator
import sys
import warnings
import weakref

import numpy as np

from ...ir.errors import JitgradWarning
from ..recording.context import _is_library_file, _is_plain_data, _snapshot

RECEIVER = "receiver"
_RECEIVER_METHODS = frozenset({"append", "extend", "insert", "add", "update", "appendleft", "extendleft"})
_MUTATING = _RECEIVER_METHODS | {"pop", "remove", "clear", "sort", "reverse", "setdefault", "popitem", "discard",
                                 "difference_update", "intersection_update", "symmetric_difference_update",
                                 "popleft", "rotate", "__setitem__", "__delitem__"}
_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
            "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "|=": operator.ior,
            "&=": operator.iand, "^=": operator.ixor, "<<=": operator.ilshift, ">>=": operator.irshift,
            "@=": operator.imatmul}
_LOCAL_PUSH = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"})
_CONST_PUSH = frozenset({"LOAD_CONST", "LOAD_SMALL_INT"})
_STORE_OF = {"LOAD_GLOBAL": "STORE_GLOBAL", "LOAD_DEREF": "STORE_DEREF", "LOAD_ATTR": "STORE_ATTR"}
_CONTAINERS = (list, dict, set, collections.deque)
_SCALARS = (int, float, complex, bool, str, bytes, type(None), np.generic)
_METHOD_FLAG = sys.version_info >= (3, 12)      # LOAD_ATTR's low bit: a method load (pushes NULL|self)
_UNGUARDABLE = object()     # the snapshot of a container whose contents no value guard can check
_instructions = weakref.WeakKeyDictionary()   # code -> its instructions (freed with the code)
_warned = set()


def _instrs(code):
    """`code`'s instructions indexed as the interpreter's frames count them (no EXTENDED_ARG)."""
    found = _instructions.get(code)
    if found is None:
        found = _instructions[code] = [i for i in dis.get_instructions(code) if i.opname != "EXTENDED_ARG"]
    return found


def _pushes_null(instr):
    """A global loaded for a call, or an attribute loaded as a method (3.12+): not a plain read."""
    return instr.opname == "LOAD_GLOBAL" and instr.arg & 1 or instr.opname == "LOAD_ATTR" and _METHOD_FLAG \
        and instr.arg & 1


class Update:
    """`place op= delta` recognised at a read: the store ends it at instruction `store` of the frame."""
    __slots__ = ("op", "delta", "store")

    def __init__(self, op, delta, store):
        self.op, self.delta, self.store = op, delta, store


def write_only_use(frame, name):
    """How the instruction being run in `frame`, a read of place `name`, uses the value: RECEIVER, an
    Update, or None (any other use).  See the module docstring."""
    instrs = _instrs(frame.code)
    at = frame.pc - 1
    read = instrs[at] if 0 <= at < len(instrs) else None
    if read is None or read.opname not in _STORE_OF or read.argval != name or _pushes_null(read):
        return None
    after = instrs[at + 1:at + 5]
    if after and after[0].argval in _RECEIVER_METHODS and (after[0].opname == "LOAD_METHOD" or _pushes_null(after[0])):
        return RECEIVER
    if len(after) >= 2 and after[1].opname == "STORE_SUBSCR" and after[0].opname in _CONST_PUSH | _LOCAL_PUSH:
        return RECEIVER             # `log[key] = value`
    if len(after) < 3 or after[1].opname != "BINARY_OP" or after[1].argrepr not in _INPLACE:
        return None
    store = [after[2]]
    if read.opname == "LOAD_ATTR":      # owner; COPY 1; LOAD_ATTR; delta; BINARY_OP; SWAP 2; STORE_ATTR
        if at == 0 or instrs[at - 1].opname != "COPY" or instrs[at - 1].arg != 1 or after[2].opname != "SWAP" \
                or after[2].arg != 2 or len(after) < 4:
            return None
        store = [after[3]]
    if store[0].opname != _STORE_OF[read.opname] or store[0].argval != name:
        return None
    push = after[0]
    if push.opname in _CONST_PUSH:
        delta = push.argval
    elif push.opname in _LOCAL_PUSH and push.argval in frame.code.co_varnames:
        delta = frame.fast[frame.code.co_varnames.index(push.argval)]
    else:
        return None
    return Update(_INPLACE[after[1].argrepr], delta, at + 1 + after.index(store[0]))


class Effect:
    """One change of outside state: `apply(payload)` does it; `payload` (a tree of traced values and plain
    leaves) is what it stores, taken from the outputs of each cached call."""
    __slots__ = ("apply", "payload", "what")

    def __init__(self, apply, payload, what):
        self.apply, self.payload, self.what = apply, payload, what


def _set_item(holder, key):
    return lambda value: holder.__setitem__(key, value)


def _set_attr(holder, name):
    return lambda value: setattr(holder, name, value)


def _set_cell(cell, _):
    def apply(value):
        cell.cell_contents = value
    return apply


_SETTERS = {"item": _set_item, "attr": _set_attr, "cell": _set_cell}
_GETTERS = {"item": lambda holder, key: lambda: holder[key],
            "attr": lambda holder, name: lambda: getattr(holder, name),
            "cell": lambda cell, _: lambda: cell.cell_contents}


def _updating(kind, holder, key, op):
    get, put = _GETTERS[kind](holder, key), _SETTERS[kind](holder, key)
    return lambda delta: put(op(get(), delta))


def _calling(method):
    return lambda payload: method(*payload[0], **payload[1])


class Recorder:
    """The side effects of one outermost tracing run of a function whose cached calls replay them
    (TraceContext.replay), and the reads deferred because they only serve them.  A `nested` recorder
    (of a transform called inside a traced call: jit_grad of jit_grad, hessian) replays nothing: its
    effects happen while tracing only, and it warns once naming the line."""

    def __init__(self, ctx, nested=False):
        self.ctx, self.nested = ctx, nested
        self.effects = []       # Effect list, in the order the call made them
        self.deferred = {}      # environment key -> (getter, snapshot) of a read not guarded (yet)
        self.updates = {}       # (id(frame), store index) -> Update recognised at its read
        self.texts = {}         # id -> str formatted from a traced value (kept alive)

    # -- reads ------------------------------------------------------------------------------------
    def defer(self, getter, value, key):
        """Whether the read of `value` from place `getter` (environment key `key`) only serves a side
        effect, so it records no guard; otherwise the guard a deferred read of the place skipped is
        recorded now."""
        frame = self.ctx.frames[-1] if self.ctx.frames else None
        name = getattr(getter, "name", None)
        use = None
        if frame is not None and name is not None and (_is_plain_data(value) or type(value) in _CONTAINERS):
            use = write_only_use(frame, name)
        if use is None or use is RECEIVER and type(value) not in _CONTAINERS:
            pending = self.deferred.pop(key, None)
            if pending is not None:
                self._materialize(key, *pending)
            return False
        if key not in self.deferred and key not in self.ctx._env_recorded:
            self.deferred[key] = (getter, _snapshot(value) if _is_plain_data(value) else _UNGUARDABLE)
        if use is RECEIVER:
            self.ctx._record(("receiver",) + key, getter, "identity", value)
        else:
            self.updates[(id(frame), use.store)] = (use, key)
        return True

    def finish(self):
        """The traced call has returned: an update whose store never happened (its operation raised and
        the exception was handled) read the place for the path taken after all: guard it."""
        for _, key in self.updates.values():
            pending = self.deferred.pop(key, None)
            if pending is not None:
                self._materialize(key, *pending)
        self.updates = {}

    def _materialize(self, key, getter, snapshot):
        if snapshot is _UNGUARDABLE:    # a container too large or holding objects: its contents cannot be guarded
            self.ctx.uncacheable = self.ctx.uncacheable or f"{getter.describe()} is appended to and read"
        else:
            self.ctx._record(key, getter, "value", snapshot)

    # -- writes -----------------------------------------------------------------------------------
    def stored(self, kind, holder, key, value):
        """`value` was stored into place `key` of `holder` ("item", "attr" or "cell")."""
        frame = self._user_frame()
        if frame is None:
            return
        update, _ = self.updates.pop((id(frame), frame.pc - 1), (None, None))
        if update is not None:
            self._note(_updating(kind, holder, key, update.op), update.delta, f"an update of {key!r}")
        else:
            self._note(_SETTERS[kind](holder, key), value, f"a store to {key!r}" if key else "a store")

    def called(self, method, owner, args, kwargs):
        """Native `method` (of an outside container `owner`, or `print`) was called with `args`/`kwargs`."""
        name = getattr(method, "__name__", "")
        frame = self._user_frame()
        if frame is None or owner is not None and name not in _MUTATING:
            return
        if owner is None and any(id(a) in self.texts for a in args):
            self._warn(f"print() of text formatted from a traced value at {self.ctx.user_location()} is not "
                       "repeated by cached calls (print the value itself: print('loss', loss))")
            return
        plain = {k: v for k, v in kwargs.items() if k != "file"}     # (print's stream: by reference)
        self._note(_calling(method), (list(args), dict(kwargs)), f"{name}()", check=(args, plain))

    def note_text(self, text):
        """`text` was formatted from a traced value."""
        self.texts[id(text)] = text
        return text

    def _user_frame(self):
        frames = self.ctx.frames
        if not frames or _is_library_file(frames[-1].code.co_filename):
            return None
        return frames[-1]

    def _note(self, apply, payload, what, check=None):
        if self.nested:
            self._warn(f"{what} at {self.ctx.user_location()} is inside a jitgrad transform called from traced "
                       "code (jit_grad of jit_grad, hessian...); it happens only when the function is traced")
        elif _replayable(payload if check is None else check):
            self.effects.append(Effect(apply, payload, what))
        else:
            self._warn(f"{what} at {self.ctx.user_location()} stores an object a cached call cannot remake; it "
                       "happens only when the function is traced")

    def _warn(self, message):
        """Warn once per message, attributed to the user's line."""
        if message not in _warned:
            _warned.add(message)
            filename, _, line = (self.ctx.user_location() or "?:0").rpartition(":")
            warnings.warn_explicit(f"jitgrad: {message}", JitgradWarning, filename, int(line))


def _replayable(payload):
    """Traced values, plain scalars and arrays, in tuples, lists and dicts."""
    from ..arrays.values import TracedArray
    if type(payload) is TracedArray or isinstance(payload, _SCALARS) or type(payload) is np.ndarray:
        return True
    if type(payload) in (tuple, list):
        return all(_replayable(v) for v in payload)
    if type(payload) is dict:
        return all(isinstance(k, _SCALARS) and _replayable(v) for k, v in payload.items())
    return False
