"""Lists a rolled loop appends to (`traj.append(x)` in the body of a loop rolled by rolling.py).

A list that exists before the loop, is held by one local variable of the loop's function and by nothing
else, and is only appended to inside the loop (every read of that variable in the loop's bytecode is the
receiver of `.append`, `append_slots`) does not stop the loop from rolling: what an iteration appends
becomes part of what it computes.  Traced values appended are per-iteration outputs of the loop op,
stacked over the iterations (ir/loops.py); plain numbers appended must be the same in every iteration.
After the loop op the real list holds, after what it held before the loop, one traced value per value
appended, in order: a row of the stacked output (`ListAppends.refill`).  Anything else keeps the loop
unrolled and says why: the list read in the loop (`len(traj)`, `traj[-1]`, passing it on), held elsewhere,
an appended value that is a view or is written in place later, a tuple or other container appended.
"""
import dis
import gc
import sys
import types

import numpy as np

from ..arrays.loopindex import LoopIndex
from ..arrays.values import TracedArray
from .sideeffects import _instrs

_LOADS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"})
_CALLS = frozenset({"PRECALL", "CALL"})
_BACKWARD = frozenset({"JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE",      # (3.11 closes a
                       "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE",             # `while cond:`
                       "POP_JUMP_BACKWARD_IF_NONE", "POP_JUMP_BACKWARD_IF_NOT_NONE"})         # by these)
_METHOD_LOAD = sys.version_info >= (3, 12)      # LOAD_ATTR with the low bit set loads a method
_STATIC = (int, float, complex, bool, str, type(None))


def _references(slots, k):
    return sys.getrefcount(slots[k])


_ONLY_SLOT = _references([[]], 0)      # the count of a list held by one list slot and nothing else


def _held_only_by(slots, k, others):
    """Whether the list `slots[k]` is held by nothing but that slot, the `others` dicts (by id), bound
    `append` methods (which can only append to it) and the trace's notes of containers stored into
    (TraceContext.outside_stores: a tuple ("container", it, None)).  The reference count decides at once
    when it is the slot's and the others' alone; else the holders are looked at."""
    if _references(slots, k) == _ONLY_SLOT + sum(id(slots[k]) in o for o in others):
        return True
    if [id(x) for x in slots].count(id(slots[k])) != 1:        # another variable of the frame holds it
        return False
    allowed = {id(slots), *(id(o) for o in others)}
    for holder in gc.get_referrers(slots[k]):      # (no closure may hold it meanwhile: it would be one)
        if id(holder) in allowed or type(holder) is types.BuiltinMethodType and holder.__name__ == "append" \
                or type(holder) is tuple and len(holder) == 3 and holder[0] == "container" and holder[2] is None:
            continue
        return False
    return True


def _is_append(instr):
    if instr.argval != "append":
        return False
    return instr.opname == "LOAD_METHOD" or instr.opname == "LOAD_ATTR" and _METHOD_LOAD and instr.arg & 1


def _body_range(instrs, header):
    """The instructions of the loop whose header is instruction `header`: up to the last backward jump to
    it, and on to the last jump placed after that back into the loop (a block the compiler moved to the
    end); None when no jump goes back to the header."""
    index = {i.offset: k for k, i in enumerate(instrs)}
    ends = [k for k, i in enumerate(instrs) if i.opname in _BACKWARD and index.get(i.argval) == header]
    if not ends:
        return None
    end = max(ends) + 1
    back = [k for k in range(end, len(instrs)) if header <= index.get(instrs[k].argval, -1) < end
            and instrs[k].opcode in dis.hasjrel + dis.hasjabs]
    return header + 1, max(back, default=end - 1) + 1


def _read_kind(instrs, k):
    """How the load of a list at instruction `k` reads it: "len" (`len(lst)`), "last" (`lst[-1]`), or None."""
    before, after = instrs[k - 1] if k else None, instrs[k + 1:k + 3]
    if before is not None and before.opname == "LOAD_GLOBAL" and before.argval == "len" and after \
            and after[0].opname in _CALLS and after[0].arg == 1:
        return "len"
    if len(after) == 2 and after[0].opname == "LOAD_CONST" and after[0].argval == -1 \
            and type(after[0].argval) is int and after[1].opname == "BINARY_SUBSCR":
        return "last"
    return None


def append_slots(code, header):
    """{fast-local number: the ways it is read} of `code`'s variables that the loop at instruction `header`
    only uses as the receiver of `.append` (at least once) and in `len(lst)` and `lst[-1]` ("len",
    "last": see ListAppends), and never stores."""
    instrs = _instrs(code)
    span = _body_range(instrs, header)
    if span is None:
        return {}
    names = set(code.co_varnames) - set(code.co_cellvars)
    good, bad, reads = set(), set(), {}
    for k in range(*span):
        instr = instrs[k]
        argval = instr.argval
        if isinstance(argval, tuple):       # (3.13 LOAD_FAST_LOAD_FAST, STORE_FAST_STORE_FAST...)
            bad.update(a for a in argval if isinstance(a, str))
        elif instr.opcode in dis.haslocal and argval in names:     # a store or delete: not only appended
            read = _read_kind(instrs, k) if instr.opname in _LOADS else None
            if read is not None:
                reads.setdefault(argval, set()).add(read)
                continue
            ok = instr.opname in _LOADS and k + 1 < len(instrs) and _is_append(instrs[k + 1])
            (good if ok else bad).add(argval)
    return {code.co_varnames.index(n): reads.get(n, set()) for n in good - bad}


def is_list_append(fn, args, kwargs):
    """Whether `fn(*args, **kwargs)` is `a_list.append(value)`."""
    return getattr(fn, "__name__", None) == "append" and type(getattr(fn, "__self__", None)) is list \
        and len(args) == 1 and not kwargs


def _appendable(value):
    """Why appending `value` keeps a loop unrolled, or None."""
    if type(value) is TracedArray:
        return "an append of a view of an array (append a copy)" if value.base is not None else None
    return None if type(value) in _STATIC else f"an append of a {type(value).__name__} (traced arrays and numbers roll)"


class _Marker:
    """A list in a flattened frame state (loopstate.flatten_frame), by identity without a reference;
    `last`: the loop reads `lst[-1]`, so its last item follows it there (a carry)."""
    __slots__ = ("last",)

    def __init__(self, last):
        self.last = last


class ListAppends:
    """The lists one watched loop may append to (`lists`: id -> list, by fast-local slot; `markers`: id ->
    what stands for it in a flattened frame state), their lengths where the running iteration started."""

    def __init__(self, frame, header, others=()):
        """`others`: dicts by id that may hold the lists (the other watches' `lists`, the trace's local
        objects)."""
        self.lists = {}
        self.reads = {}            # id -> how the loop reads it: "len" and "last" (`length`, the markers)
        self.first = None          # what the first iteration appended (opening.py compares it)
        fast = frame.fast
        for k, reads in sorted(append_slots(frame.code, header).items()):
            if type(fast[k]) is list and _held_only_by(fast, k, others):
                self.lists[id(fast[k])] = fast[k]
                self.reads[id(fast[k])] = reads
        self.markers = {i: _Marker("last" in self.reads[i]) for i in self.lists}
        self.started = self.lengths()
        self.counts = None         # per list, the values appended in the iteration that ended (`take`)

    def __bool__(self):
        return bool(self.lists)

    def lengths(self):
        """The length of each list (a header's)."""
        return [len(x) for x in self.lists.values()]

    def append(self, owner, value):
        """`owner.append(value)` in the running iteration: why the loop cannot roll, or None."""
        if id(owner) not in self.lists:
            return ("a call of list.append() may change its object: the list is read in the loop or held "
                    "elsewhere (a list held by one local variable and only appended to in the loop rolls)")
        return _appendable(value)

    def length(self, lst, watch):
        """`len(lst)` read in the running iteration of `watch` (`lst` one of its lists): a LoopIndex stepping
        by what the iteration before appended (two iterations match only if they read it alike and
        append as much: then it is the list's length in every iteration of the loop op), or None."""
        if id(lst) not in self.lists or self.counts is None or watch.current is None:
            return None
        a = self.counts[list(self.lists).index(id(lst))]
        return LoopIndex(watch, watch.current, a, len(lst) - a * watch.current)

    def written(self, target):
        """Whether TracedArray `target`, about to be written in place, is in one of the lists."""
        return any(x is target for lst in self.lists.values() for x in lst)

    def take(self):
        """What the lists gained since the running iteration started, as (list number, value) (an inner
        loop that rolled replaced what its iterations appended by rows of its loop op), or a reason not
        to roll (a value appended other than by a call of `append` this module saw: `map(traj.append,
        ...)`); the next iteration starts here."""
        done = [(n, v) for n, (lst, length) in enumerate(zip(self.lists.values(), self.started))
                for v in lst[length:]]
        self.counts = [len(lst) - length for lst, length in zip(self.lists.values(), self.started)]
        self.started = self.lengths()
        for _, v in done:
            why = _appendable(v)
            if why is not None:
                return why
        return done


def refill(b, appends, start_lengths, loop, emits, counts, stacked):
    """After loop op `loop` ((its node, its carries): `counts` = (its iterations, of which the first were
    interpreted before it), started at a header whose list lengths were `start_lengths`): each list cut back
    to that length and given, per iteration, what the iteration appended (`emits`, as one iteration did):
    a traced value is the row of the loop's stacked output (concrete rows: those interpreted, then
    `stacked`, the fast-forward's), a number as appended."""
    (node, n_carry), (done, interpreted) = loop, counts
    lists = list(appends.lists.values())
    tails = [iter(lst[length:]) for lst, length in zip(lists, start_lengths)]
    traced = [k for k, (_, v) in enumerate(emits) if type(v) is TracedArray]
    rows = {k: [] for k in traced}
    for _ in range(interpreted):
        for k, (n, _) in enumerate(emits):
            value = next(tails[n])
            if k in rows:
                rows[k].append(np.asarray(value.value))
    for lst, length in zip(lists, start_lengths):
        del lst[length:]
    columns = {}
    for j, k in enumerate(traced):
        result = b.loop_result(node, index=n_carry + j)
        concrete = np.concatenate([np.asarray(rows[k], result.dtype).reshape((-1,) + result.shape[1:]), stacked[j]])
        columns[k] = zip(b.rows(result, done), _row_values(emits[k][1].value, concrete))
    for _ in range(done):
        for k, (n, v) in enumerate(emits):
            lists[n].append(TracedArray(*next(columns[k])) if k in columns else v)
    appends.take()


def _row_values(template, stacked):
    """The rows of concrete `stacked`, each in the kind of `template` (an array, a NumPy scalar, a Python
    number), as looptree.like_value makes one, made in bulk."""
    if isinstance(template, np.ndarray):
        return [np.array(row, dtype=template.dtype).reshape(template.shape) for row in stacked]
    if isinstance(template, np.generic):
        return list(np.asarray(stacked, template.dtype).reshape(-1))
    return list(map(type(template), np.asarray(stacked).reshape(-1).tolist()))
