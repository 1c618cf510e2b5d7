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
import sys

import numpy as np

from ..arrays.values import TracedArray
from .looptree import like_value
from .sideeffects import _instrs

_LOADS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"})
_BACKWARD = frozenset({"JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE"})
_METHOD_LOAD = sys.version_info >= (3, 12)      # LOAD_ATTR with the low bit set loads a method
_STATIC = (int, float, complex, bool, str, type(None))


def _references(slots, k):
    return sys.getrefcount(slots[k])


_ONLY_SLOT = _references([[]], 0)      # the count of a list held by one list slot and nothing else


def _is_append(instr):
    if instr.argval != "append":
        return False
    return instr.opname == "LOAD_METHOD" or instr.opname == "LOAD_ATTR" and _METHOD_LOAD and instr.arg & 1


def _body_range(instrs, header):
    """The instructions of the loop whose header is instruction `header`: up to the last backward jump to
    it (None when there is none)."""
    index = {i.offset: k for k, i in enumerate(instrs)}
    ends = [k for k, i in enumerate(instrs) if i.opname in _BACKWARD and index.get(i.argval) == header]
    return (header + 1, max(ends) + 1) if ends else None


def append_slots(code, header):
    """The fast-local numbers of `code` whose variable the loop at instruction `header` only uses as the
    receiver of `.append` (at least once), and never stores."""
    instrs = _instrs(code)
    span = _body_range(instrs, header)
    if span is None:
        return set()
    names = set(code.co_varnames) - set(code.co_cellvars)
    good, bad = set(), set()
    for k in range(*span):
        instr = instrs[k]
        argval = instr.argval
        if isinstance(argval, tuple):       # (3.13 LOAD_FAST_LOAD_FAST, STORE_FAST_STORE_FAST...)
            bad.update(a for a in argval if isinstance(a, str))
        elif instr.opcode in dis.haslocal and argval in names:     # a store or delete: not only appended
            ok = instr.opname in _LOADS and k + 1 < len(instrs) and _is_append(instrs[k + 1])
            (good if ok else bad).add(argval)
    return {code.co_varnames.index(n) for n in good - bad}


class ListAppends:
    """The lists one watched loop may append to (`lists`: id -> list, by fast-local slot), and what the
    running iteration appended (`running`: (list number, value) in order)."""

    def __init__(self, frame, header):
        self.lists = {}
        self.running = []
        self.first = None          # what the first iteration appended (opening.py compares it)
        fast = frame.fast
        for k in sorted(append_slots(frame.code, header)):
            if type(fast[k]) is list and _references(fast, k) == _ONLY_SLOT:
                self.lists[id(fast[k])] = fast[k]
        self.order = {i: n for n, i in enumerate(self.lists)}

    def __bool__(self):
        return bool(self.lists)

    def lengths(self):
        """The length of each list (a header's)."""
        return [len(x) for x in self.lists.values()]

    def append(self, owner, value):
        """`owner.append(value)` in the running iteration: why the loop cannot roll, or None."""
        if id(owner) not in self.lists:
            return ("a call of list.append() on a list the loop also reads, or that other code holds "
                    "(a list only appended to in the loop rolls)")
        if type(value) is TracedArray:
            if value.base is not None:
                return "an append of a view of an array (append a copy)"
        elif type(value) not in _STATIC:
            return f"an append of a {type(value).__name__} (traced arrays and numbers roll)"
        self.running.append((self.order[id(owner)], value))
        return None

    def written(self, target):
        """Whether TracedArray `target`, about to be written in place, is in one of the lists."""
        return any(x is target for lst in self.lists.values() for x in lst)

    def take(self):
        """What the iteration that ended appended (and a fresh record for the next)."""
        done, self.running = self.running, []
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
        columns[k] = (result, concrete)
    for t in range(done):
        for k, (n, v) in enumerate(emits):
            if k not in columns:
                lists[n].append(v)
                continue
            result, concrete = columns[k]
            lists[n].append(TracedArray(b.index(result, spec=(("int", t),)), like_value(v.value, concrete[t])))
