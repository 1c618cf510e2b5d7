"""Rolling Python loops into `loop` ops while tracing, and fast-forwarding them.

A loop header is the FOR_ITER of a `for` over a `range` in one interpreted frame (or over a traced
array, `enumerate` or `zip` of them: seqloops.py).  At each arrival there the frame's state is snapshot
(`Header`: fast locals, cells and value stack, flattened through tuples and lists by loopstate.py, and
the builder's node count); the nodes recorded between two arrivals are one iteration
(loopbody.Iteration).  When two consecutive iterations have the same fingerprint and the frame's
non-traced state is the same at their three headers, the later iteration becomes the body of a `loop`
op: the remaining iterations are run on concrete values (fastforward.py) instead of being interpreted,
one `loop` node is recorded from the first header's carries (the two matched iterations, and the loop's
first one when it can (opening.py), are its first ones: their guards are dropped, their other nodes are
dead), the frame's traced values are rebound to its results, the range iterator is advanced past them
and FOR_ITER resumes (it leaves the loop, or interprets on from an iteration whose guard failed, which
may roll again).

Branches on data.  Two consecutive iterations that part at a bool guard (an `if` on data taking the
other side) roll too, their paths joined into one body by a `cond` (looptree.py).  When a guard fails
during the fast-forward and the iteration interpreted then comes back to the header, it is joined into
the body as a new path (`_join`): the loop recorded so far and that iteration are replaced by one loop
of the grown body, which runs on.  So a branch whose side varies is one loop, not one per run of a side.

Soundness: while a loop is watched its counter is a LoopIndex (loopindex.py: affine arithmetic and
indexing traced arrays become IR on the iteration's counter, any other use marks the loop not
rollable), ints stepping with it (`k += 1`) become LoopIndex too and floats it changes traced values
(stepping.py), the attributes of objects the trace made that the frame holds are state as its
variables are (loopattrs.py), and an iteration changing anything outside that state (stores to other
attributes, globals, other frames' cells and non-traced containers, compiled calls not known to be
pure (effects.py), exceptions, consuming iterators made before it) is kept out of every loop op
(`taint`); in-place writes into traced arrays the frame does not hold, and TAINTED_LIMIT such iterations
in a row, keep the loop unrolled as before (correct, slower), and `report()` says why.
"""
import collections
import math
import operator
import os

import numpy as np

from .appends import ListAppends, is_list_append, refill
from .effects import impure_call
from .fastforward import concrete_values, fast_forward
from ...ir.loops import COUNTER_DTYPE
from .loopattrs import Objects, note_read, place_name, store_refusal
from .loopbody import Iteration, exits_cleanly, with_exit
from .loopreport import describe
from .looptree import Split, emit_loop, join, known_values, single
from .loopstate import Header, flatten_frame, rebuild, same_state
from .opening import rewound
from ..arrays.loopindex import LoopIndex, plain
from .stepping import step_variables
from .sizedloops import after_sized, note_swap, sized_loop, sizes_plain
from ..arrays.values import TracedArray
from ..recording.context import _is_library_file

RANGE_ITERATOR = type(iter(range(0)))


def enabled():
    """Rolling is on unless JITGRAD_ROLL=0."""
    return os.environ.get("JITGRAD_ROLL", "1") != "0"


def exits_enabled():
    """A guard failing during the fast-forward ends the loop op there at run time (its count a result),
    unless JITGRAD_ROLL_EXITS=0 (then the loop op takes the iterations run, a static count)."""
    return os.environ.get("JITGRAD_ROLL_EXITS", "1") != "0"


TAINTED_LIMIT = 8              # iterations in a row changing outside state that make a loop not rolled (`taint`)
MAX_PATHS = 16                 # a body joins at most this many recorded paths (an int decision: its values)


def unroll_ops():
    """Loops whose remaining iterations record fewer operations than this (an op on an array weighted by its
    elements: _work) stay unrolled (`JITGRAD_UNROLL_OPS`, default 1,000).  Measured sweep (2026-12-07,
    loaded 2-core box, cached gradient calls, rolled against unrolled interleaved in one process): the
    Rosenbrock loop 1.01x / 1.05x / 1.00x / 1.00x / 0.88x / 0.89x at n = 5 / 10 / 20 / 50 / 100 / 200 (~20
    operations per iteration), the W1 pendulum 1.00x / 1.00x / 0.95x / 0.83x at 10 / 30 / 100 / 300 steps
    (~10 per step); so below ~1,000 operations both run alike (a call's fixed cost dominates) and the
    unrolled form only costs compile time, above it the rolled one is faster.  (Before rolled backward loops
    scattered into their accumulators in place, ir/autodiff.sum_cotangents, the Rosenbrock loop at n=100
    ran 1.7-2.5 us unrolled against 5.8-8.4 us rolled, and the default was 4,000.)
    A loop whose last two iterations took both sides of a branch on data rolls whatever its length:
    unrolled, its trace holds for one pattern of sides (the quickstart's 8 rows: 8 traces over 20 weight
    vectors, 3.3 s; rolled, one trace and cached calls 0.93-0.96x the unrolled ones at 200 rows)."""
    return int(os.environ.get("JITGRAD_UNROLL_OPS", "1000"))


ELEMENT_WEIGHT = 16     # an op on an array counts as min(its elements, this) operations in unroll_ops()


def _work(nodes):
    """The operations an iteration's `nodes` count for as in unroll_ops(): an op on n elements counts as
    min(n, ELEMENT_WEIGHT). Unrolling pays off for scalar code (registers, static indices); an op on an array
    is a loop nest either way, and rolled loops of small-matrix ops measured faster: the Kalman filter over
    100 measurements (3,880 ops: 2x2 to 4x4 matrices) cached 23.8 us rolled against 67.9 us unrolled, first
    call 194 ms against 414 ms (bench/first_calls.py, 2026-12-07)."""
    return sum(min(math.prod(n.shape), ELEMENT_WEIGHT) or 1 for n in nodes)


def _range_state(iterator):
    """(the value a range iterator yields next, its step).  (3.11 pickles the whole range and an index,
    3.12+ the rest of the range.)"""
    _, (rng,), index = iterator.__reduce__()
    return rng.start + rng.step * (index or 0), rng.step


def _setstate_is_relative():
    probe = iter(range(3))
    next(probe)
    probe.__setstate__(1)
    return next(probe) == 2


_SETSTATE_RELATIVE = _setstate_is_relative()     # 3.12+: __setstate__(n) skips n more; 3.11: goes to index n


def _advance(iterator, n):
    """Skip the next `n` values of a range iterator (as `n` calls of next() would)."""
    index = iterator.__reduce__()[2]
    iterator.__setstate__(n if _SETSTATE_RELATIVE else index + n)


def _peel(paths):
    """1 when the last iteration is left to the interpreter: a view read afresh in each iteration
    (`row = x[i]`) is then a view linked to its base after the loop (a loop op's result would not be:
    writes through it would be refused), else 0."""
    return int(any(p.peel for p in paths))


class LoopWatch:
    """One loop (a range iterator at one FOR_ITER of one frame) watched for rolling."""

    STACK_TOP = 1                 # the range iterator on top of the stack is not part of the state
    OPENING = True                # the first iteration may join the loop op (opening.py)
    PROBE = 0                     # iterations fast-forwarded by the reference evaluation before native code
    END = "the end of its range"

    def __init__(self, rolling, frame, pc, iterator):
        self.rolling, self.frame, self.pc, self.iterator = rolling, frame, pc, iterator
        self.location = f"{frame.code.co_filename}:{frame.decoded.linenos[pc]}"
        self.refused = None
        self.headers = collections.deque(maxlen=3)
        self.iterations = collections.deque(maxlen=2)
        self.rebound = []         # (TracedArray, its IR before) for in-place writes in this iteration
        self.fresh = {}           # id -> iterator or object made in this iteration
        self.counters = []        # the IR Values of the counter made in this iteration (one per value)
        self.counts = {}          # (id(object), attribute) -> read only to be counted, in this iteration (stepping.py)
        self.tainted = self.ended_tainted = self.why_tainted = None    # why the iteration running (ended, last
        self.taints = 0                                                # one ended so) changes outside state (`taint`)
        self.current = None       # the counter's value in the running iteration
        self.arrivals = self.rolls = 0
        self.short = None         # why a loop that could roll stays unrolled (too short), or None
        self.mismatch = None      # why two iterations last failed to match, when known
        self.exit = None          # after a loop op that left early: (its count, the count traced, the counter
                                  # value then, its IR on the count), until the counter is pinned
        self.split = None         # the rolled loop whose guard failed in the iteration running (looptree.Split)
        self.opening, self.first_counters = None, set()   # the first header, ids of the counter's IR in its iteration
        self.appends = ListAppends(frame, pc, [w.appends.lists for w in {*rolling.watches.values(), *rolling.active}]
                                   + [rolling.ctx.local_objects])       # the lists it may append to

    def counter_ir(self, base):
        """The IR Value standing for the counter when it equals `base` (LoopIndex.ir): one node per
        iteration, which a rolled body replaces by its counter."""
        if not self.counters or self.counters[-1][0] != base:
            b = self.rolling.ctx.builder
            exit_value = self.exit is not None and self.exit[2] == base
            self.counters.append((base, self.exit[3] if exit_value else b.const(np.asarray(base, COUNTER_DTYPE))))
        return self.counters[-1][1]

    def pin(self):
        """After a loop op that left early, the interpreter is about to depend on the number of iterations
        it took as a Python int (the loop goes on, or the counter is used as an int): guard it."""
        if self.exit is not None:
            count, done = self.exit[:2]
            self.exit = None
            ctx = self.rolling.ctx
            ctx.guard(ctx.builder.equal(count, ctx.builder.const(np.asarray(done, COUNTER_DTYPE))), True,
                      f"the loop at {self.location} took {done} iterations before its exit")

    # -- the range: interpretation/whileloops.py's WhileWatch counts iterations instead ----------------------------
    def state(self):
        """(the counter value of the iteration about to start, the counter's step)."""
        return _range_state(self.iterator)

    def remaining(self):
        return operator.length_hint(self.iterator)

    def advance(self, n):
        """Skip `n` iterations (fast-forwarded)."""
        _advance(self.iterator, n)

    def next_value(self):
        """The counter value of the iteration starting (StopIteration at the end)."""
        return next(self.iterator)

    def item(self, value, interpreter):
        """What FOR_ITER pushes for counter value `value` (an int, or a LoopIndex)."""
        return value

    def capacity(self, first, done, remaining):
        """The most iterations a loop op leaving on data may take: the rest of the range."""
        return remaining

    def refuse(self, why):
        """This loop is not rolled (from now on; `why` is reported)."""
        if self.refused is None:
            self.refused = why
            self.headers.clear()
            self.iterations.clear()

    def not_rolled(self):
        """Why the loop is not rolled (it was refused, or never rolled and changed outside state), or None."""
        return self.refused or (None if self.rolls else self.tainted or self.why_tainted)

    def taint(self, why):
        """The running iteration changes outside state (`why`): it is interpreted, never part of a loop op
        (nor its first iteration, nor joined); the others still roll, their fast-forward stopping where the
        path to such a change parts from theirs (a guard).  TAINTED_LIMIT in a row: the loop is not rolled."""
        self.tainted = self.tainted or why

    # -- one arrival at the header ---------------------------------------------------------------------
    def arrive(self, interpreter):
        """At the header, before FOR_ITER: note the iteration that ended; roll when it matches the one
        before."""
        ctx = self.rolling.ctx
        self.arrivals += 1
        emits = self.appends.take()
        if type(emits) is str:          # (a value no loop op appends: this iteration stays interpreted)
            self.tainted, emits = self.tainted or f"{emits}, at {self.location}", ()
        self.ended_tainted, self.tainted = self.tainted, None
        self.taints = self.taints + 1 if self.ended_tainted else 0
        if self.taints >= TAINTED_LIMIT:
            return self.refuse(self.ended_tainted)
        self.why_tainted = self.ended_tainted or self.why_tainted
        if self.arrivals == 2:
            self.first_counters = {id(v) for _, v in self.counters}
            self.appends.first = emits
        split, self.split = self.split, None
        if split is not None and self.headers and self._join(split):
            return
        self.pin()
        step_variables(self)
        header = Header(ctx, self.frame, self)
        if self.arrivals == 1 and self.OPENING or self.arrivals == 2 and self.ended_tainted:
            self.opening = None if self.ended_tainted else header
        if self.headers:
            self.iterations.append(self._iteration(self.headers[-1], header, emits))
        self.headers.append(header)
        self.rebound.clear()
        self.fresh.clear()
        self.counters.clear()
        paths = self._paths()
        if paths is not None:
            remaining = self.remaining() - _peel(paths)
            ops = remaining * _work(self.iterations[-1].nodes)
            if remaining > 0 and (ops >= unroll_ops() or len(paths) > 1):      # paths: a branch on data
                self._roll(*self.state(), remaining, paths)
            elif remaining > 0 and self.short is None:
                self.short = (f"short: its last {remaining} iterations record about {ops} operations, fewer "
                              f"than JITGRAD_UNROLL_OPS={unroll_ops()}; unrolled code runs faster")

    def _iteration(self, before, after, emits=()):
        """The Iteration between two headers, or None when it cannot be a loop body."""
        ctx = self.rolling.ctx
        if self.ended_tainted:
            return None
        if after.env != before.env or not same_state(before, after, self):
            changed = [place_name(self.frame.code, k) for k, v in after.ints.items() if before.ints.get(k, v) != v]
            changed = [name for name in changed if name is not None]
            if changed and self.arrivals > 2:
                self.mismatch = (f"the {changed[0]} changes between iterations other than as a counter (an "
                                 "int() of data kept in a variable, a count that differs between iterations)")
            return None
        if after.mode is not before.mode and after.mode != before.mode:
            self.refuse(f"the iteration changes NumPy's error mode (np.seterr, an np.errstate left open), at "
                        f"{self.location}")
            return None
        nodes = ctx.builder.nodes[before.n:after.n]
        made = {id(n) for n in nodes}
        held = {id(x) for x in after.items if type(x) is TracedArray}
        for target, old in self.rebound:
            if id(old) not in made and id(target) not in held:
                self.refuse(f"an in-place write into an array not held by a local variable of the loop's "
                            f"function, at {self.location}")
                return None
        inits, outs, pairs, views = [], [], {}, set()
        for a, b, t in zip(before.irs, after.irs, after.items):
            if a is not None and a is not b:
                if t.escaped or any(ref() is not None for ref in t.views):
                    return None            # an array with live views: not rolled yet
                if t.base is not None:     # a view read afresh in each iteration (`row = x[i]`)
                    views.add(id(a))
                if (id(a), id(b)) not in pairs:
                    pairs[(id(a), id(b))] = len(inits)
                    inits.append(a)
                    outs.append(b)
        if views and any(id(v) in views for n in nodes for v in n.args):
            self.refuse(f"a view (of an array) made in one iteration is read in the next, at {self.location}")
            return None
        iteration = Iteration(nodes, inits, outs, [v for _, v in self.counters], emits)
        iteration.peel = bool(views)
        iteration.positions = [None if a is None else pairs.get((id(a), id(b))) for a, b in zip(before.irs, after.irs)]
        iteration.starts = before.irs
        return iteration

    def _paths(self):
        """The recorded iterations the body is made of: the last one when the last two match, both when
        they differ (looptree.py joins them where they part at a decision on data), else None."""
        if len(self.iterations) < 2:
            return None
        a, b = self.iterations
        if a is None or b is None:
            return None
        if a.fingerprint == b.fingerprint and a.positions == b.positions:
            return [b]
        if a.emits or b.emits:
            self.mismatch = "iterations that append to a list differ (branches on data are not joined then)"
            return None
        return [a, b]

    # -- rolling ---------------------------------------------------------------------------------------
    @staticmethod
    def _body(paths, first, step):
        """The Joined body of `paths` whose counter starts at range value `first` (None: not joined)."""
        return single(paths[0], first, step) if len(paths) == 1 else join(paths, first, step)

    def _roll(self, first, step, remaining, paths):
        header = self.headers[-1]
        joined = self._body(paths, first, step)
        if joined is None:
            return
        known = known_values(self.rolling.ctx, header)
        invariants = concrete_values(joined.invariants, known)
        if invariants is None:
            self.refuse(f"a value the loop reads cannot be recovered, at {self.location}")
            return
        previous = {id(x) for x in self.headers[-2].items if type(x) is TracedArray}   # objects kept
        ran = fast_forward(joined.body, [known[id(header.irs[m])] for m in joined.items], invariants, remaining,
                           self.rolling.runner, self.PROBE)
        k, start = 0, header
        if ran[0] or (ran[2] is not None and exits_enabled()):
            k, start = rewound(self, paths, first, step, invariants, same_state)    # run again by the loop op
            self._rewind(start.n)
            joined = self._body(paths, first - step * k, step)
        split = Split(None, paths, start, k + ran[0], ran[0], first - step * k, step)
        self.headers.clear()
        self.iterations.clear()
        self._record(joined, split, header, ran + (previous, k + remaining))

    def _record(self, joined, split, header, run):
        """Record the loop of `split` (split.done iterations) when it ran any or leaves on data; the frame
        (at `header`) rebound to its results and the loop advanced past the iterations just run (`run`:
        how many, the carries after them, the guard that failed then, the ids of the traced objects kept
        across iterations, the iterations the loop op could take).  When a guard failed, the split stays
        pending: `_join` may join the iteration the interpreter runs next into the body."""
        ctx = self.rolling.ctx
        done, finals, failed, previous, most = run
        first, step = split.first, split.step
        emits = split.paths[0].emits        # (appended to lists: one path, a static count)
        leaves = failed is not None and exits_enabled() and not emits and exits_cleanly(joined.body, failed)
        split.start = len(ctx.builder.nodes)
        if split.done or leaves:
            body = with_exit(joined.body, [failed]) if leaves else joined.body
            trip = self.capacity(first, split.done, most) if leaves else split.done
            sized = None if leaves else sized_loop(self, joined, split, done)
            self.rolling.emitting = True     # (its in-place rebinds are no writes of the user's: `rebound`)
            replace = emit_loop(self.rolling.ctx.builder, joined, body, split, header, (trip, finals, previous, leaves))
            self.rolling.emitting = False
            loop = replace.pop("loop")
            if sized is not None:      # (sizedloops.py: another call's count may be read at run time)
                note_swap(self, sized, loop, first)
            if leaves:
                count = replace.pop("count")
                counter = self._exit_counter(count, first, step, trip)
                self.exit = (count, split.done, first + step * split.done, counter)
            ahead = step * done        # the counter stays a LoopIndex while the loop may go on or be joined

            def moved(i):
                if i.watch is not self:
                    return i
                if split.done < most:
                    return LoopIndex(self, i.base + ahead, i.a, i.b)
                value = i.a * (i.base + ahead) + i.b
                return value if sized is None else after_sized(sized.stop.arg, i.a, value)
            rebuild(self.frame, replace, moved, self.STACK_TOP, self.appends.lists, header.objects.values())
            if emits:      # (the lists hold the rows of its stacked outputs: appends.py)
                refill(ctx.builder, self.appends, split.header.lengths, (loop, len(joined.items)), emits,
                       (split.done, split.done - split.ran), finals[len(joined.items):])
            self.rebound.clear()       # (the rebinds above are no writes of the next iteration)
            self.advance(done)
            split.entry = len(self.rolling.rolled)
            self.rolling.rolled.append((self.location, split.done, split.ran, len(joined.items), leaves,
                                        len(split.paths), None if sized is None else sized.stop.arg, len(emits)))
            self.rolls += 1
        if split.done < most:
            self.split = split
        self.headers.append(Header(ctx, self.frame, self))

    def _join(self, split):
        """The iteration just interpreted after a guard of the rolled body failed (`split`) joined into
        the body as a new path: the loop recorded so far and that iteration replaced by one loop of the
        joined body, run on to the end or the next failing guard.  False when it cannot be joined."""
        header = Header(self.rolling.ctx, self.frame, self)        # (a loop appending to lists rolls again
        it = None if self.appends else self._iteration(self.headers[-1], header)   # instead: not joined)
        if it is None:
            return False
        paths = split.paths + ([it] if all(p.fingerprint != it.fingerprint for p in split.paths) else [])
        if len(paths) > MAX_PATHS:
            return False
        joined = join(paths, split.first, split.step)
        if joined is None:
            return False
        known = known_values(self.rolling.ctx, header)
        invariants = concrete_values(joined.invariants, known)
        if invariants is None:
            return False
        previous = {id(x) for x in self.headers[-1].items if type(x) is TracedArray}
        remaining = self.remaining() - _peel(paths)
        ahead = join(paths, self.state()[0], split.step).body      # its counter counting from here
        ran = fast_forward(ahead, [known[id(header.irs[m])] for m in joined.items], invariants, remaining,
                           self.rolling.runner, self.PROBE)
        del self.rolling.ctx.builder.nodes[split.start:]       # the loop so far and the interpreted iteration
        if split.entry is not None:
            del self.rolling.rolled[split.entry]
            self.rolls -= 1
        self.exit = None
        for state in (self.headers, self.iterations, self.rebound, self.fresh, self.counters):
            state.clear()
        grown = Split(None, paths, split.header, split.done + 1 + ran[0], split.ran + ran[0], split.first, split.step)
        self._record(joined, grown, header, ran + (previous, split.done + 1 + remaining))
        return True

    def _rewind(self, start):
        """The iterations recorded from node `start` become the loop op's first ones: their guards (the
        body's, which the loop op checks) are dropped; their other nodes are dead once the frame is
        rebound to the loop's results.  So a later call whose loop leaves in them uses this trace."""
        b = self.rolling.ctx.builder
        b.nodes[start:] = [n for n in b.nodes[start:] if n.op != "guard"]

    def _exit_counter(self, count, first, step, trip):
        """After a loop op that may leave early (`count` its iterations taken, of at most `trip`):
        guard that it left by its exit, and return the IR of the counter value there."""
        ctx = self.rolling.ctx
        b = ctx.builder
        if trip is not None:          # (None: a `while` loop, which leaves by its exit only)
            ctx.guard(b.less(count, b.const(np.asarray(trip, COUNTER_DTYPE))), True,
                      f"the loop at {self.location} left before {self.END}")
        value = count if step == 1 else b.multiply(count, b.const(np.asarray(step, COUNTER_DTYPE)))
        return b.add(value, b.const(np.asarray(first, COUNTER_DTYPE))) if first else value


class Rolling:
    """The loops of one trace (held by the TraceContext as `ctx.loops`): the watches, the hooks the
    interpreter calls, and what happened to each loop."""

    def __init__(self, ctx, runner=None):
        self.ctx = ctx
        self.runner = runner      # runs a whole loop trace natively (jitgrad.backend.loop_runner), or None
        self.watches = {}         # (id(frame), pc) -> LoopWatch
        self.active = []          # watches of loops whose iteration is running
        self.rolled = []          # (location, trip, fast-forwarded, carries, leaves early, paths) per loop op recorded
        self.unrolled = {}        # location -> why the loop there was not rolled
        self.seen = set()         # (code, pc) of the FOR_ITERs of loops no watch knows
        self.sizes = []           # SizeArg per int argument standing in as a SizeInt (arrays/sizeint.py)
        self.n_leaf_inputs = 0     # the traced leaves' inputs, first in the trace (sizedloops.runtime_trace)
        self.sized_iterators = {}  # id -> (iterator of a SizedRange, the SizedRange, whether a loop op took it)
        self.emitting = False      # a loop op's results are being bound (LoopWatch._record)

    def for_iter(self, interpreter, frame, target, exit_skip, kind=LoopWatch):
        """FOR_ITER over an iterator whose loops are watched by `kind` (a range iterator, or one of
        seqloops.py: the interpreter's hook)."""
        iterator = frame.stack[-1]
        key = (id(frame), frame.pc - 1)
        watch = self.watches.get(key)
        if watch is None or watch.iterator is not iterator:
            if watch is not None:
                self._finish(watch, key)
            watch = self.watches[key] = kind(self, frame, frame.pc - 1, iterator)
            self.start(watch)
        if watch.refused is None:
            watch.arrive(interpreter)
        else:
            watch.pin()
        try:
            value = watch.next_value()
        except StopIteration:
            frame.stack.pop()
            frame.pc = target + exit_skip
            self._finish(watch, key)
            return
        if watch.refused is not None or type(value) is not int:
            frame.stack.append(watch.item(value, interpreter))
            return
        watch.current = value
        frame.stack.append(watch.item(LoopIndex(watch, value), interpreter))

    def start(self, watch):
        """A new watch: its loop's iteration is running."""
        self._prune()
        self.active.append(watch)

    def finish(self, watch):
        """The loop of `watch` exited (see `_finish`)."""
        self._finish(watch, (id(watch.frame), watch.pc))

    def _finish(self, watch, key):
        """The loop exited: forget its watch; LoopIndex left in the frame become ints."""
        del self.watches[key]
        if watch in self.active:
            self.active.remove(watch)
        if watch.not_rolled() is not None:
            self.unrolled[watch.location] = watch.not_rolled()
        elif not watch.rolls and watch.short is not None:
            self.unrolled[watch.location] = watch.short
        elif not watch.rolls and watch.arrivals > 3:
            self.unrolled[watch.location] = (watch.mismatch or
                                             "no two consecutive iterations recorded the same operations")
        if watch.exit is None:        # else its counters stay LoopIndex: a use pins the count (`pin`)
            objects = Objects(self.ctx)
            flatten_frame(watch.frame, watch.STACK_TOP, watch.appends.markers, objects)
            rebuild(watch.frame, {}, lambda i: i.value if i.watch is watch else i, watch.STACK_TOP,
                    watch.appends.lists, objects.found.values())
        watch.appends.lists.clear()

    def _prune(self):
        frames = {id(f) for f in self.ctx.frames}
        self.active = [w for w in self.active if id(w.frame) in frames]

    def jumped(self, interpreter, frame, source):
        """The interpreter's hook after a jump instruction: `while` loops are watched by
        tracer/interpretation/whileloops.py's Rolling."""

    # -- effects (the interpreter's hooks) --------------------------------------------------------------
    def effect(self, why):
        """Something an iteration does that fast-forwarding would skip: every watched loop running is
        not rolled."""
        if self.active:
            why = f"{why} at {self.ctx.user_location()}"
            for watch in self.active:
                watch.taint(why)

    def store_cell(self, frame, name):
        """STORE_DEREF/DELETE_DEREF by `frame`: its own cells are its variables (part of the state the
        watches snapshot); another frame's are outside state."""
        for watch in self.active:
            if watch.frame is not frame:
                watch.taint(f"a store to the closure variable {name!r} at {self.ctx.user_location()}")

    def yielded(self, frame):
        """YIELD_VALUE in `frame`: a loop of that frame cannot skip its iterations."""
        for watch in self.active:
            if watch.frame is frame:
                watch.refuse(f"a yield in the loop at {self.ctx.user_location()}")

    def native_call(self, fn, args, kwargs, rule=False):
        """Before compiled code (or a rule, `rule`) runs: the arguments with LoopIndex made ints; an
        impure call refuses the watched loops."""
        if self.sizes:
            args, kwargs = sizes_plain(self, fn, args, kwargs)
        if any(type(a) is LoopIndex for a in args) or any(type(v) is LoopIndex for v in kwargs.values()):
            if fn is isinstance or fn is type:      # what they say does not depend on the counter's value
                args = tuple(a.value if type(a) is LoopIndex else a for a in args)
            args = tuple(plain(a) for a in args)
            kwargs = {k: plain(v) for k, v in kwargs.items()}
        if self.active and not rule:
            if fn is next and args:
                self.consume(args[0])
            elif is_list_append(fn, args, kwargs):
                self.appended(fn.__self__, args[0])
            else:
                why = impure_call(fn, args, kwargs)
                if why is not None:
                    self.effect(f"a call of {why}")
        return args, kwargs

    def appended(self, owner, value):
        """`owner.append(value)` (a list): a reason not to roll the loops not only appending to it (appends.py)."""
        for watch in self.active:
            why = watch.appends.append(owner, value)
            if why is not None:
                watch.taint(f"{why}, at {self.ctx.user_location()}")

    def list_length(self, lst):
        """`len(lst)`: a LoopIndex if one watched loop appends to `lst` (appends.py); else None (`taint`)."""
        holders = [w for w in self.active if id(lst) in w.appends.lists]
        found = holders[0].appends.length(lst, holders[0]) if len(holders) == 1 else None
        if found is None:
            for watch in holders:
                watch.taint(f"len() of a list the loop appends to, at {self.ctx.user_location()}")
        return found

    def native_result(self, result, args):
        """What compiled code returned: a new iterator (zip, map, enumerate...) is the iteration's own."""
        if self.active and hasattr(type(result), "__next__") and not any(result is a for a in args):
            self.made(result)

    def rebound(self, target):
        """TracedArray `target` is about to be rebound by an in-place write."""
        for watch in self.active:
            watch.rebound.append((target, target.ir))
            if watch.appends and watch.appends.written(target) and not self.emitting:
                watch.refuse(f"an array appended to a list is then written in place (the list holds that one "
                             f"array: append a copy), at {self.ctx.user_location()}")

    def made(self, obj):
        """`obj` (an iterator, an instance...) was made in the running iterations."""
        for watch in self.active:
            watch.fresh[id(obj)] = obj

    def store_attr(self, obj, name, what):
        """A store into (or deletion of) attribute `name` of `obj` (`what` says which): outside state for
        the watched loops but those whose running iteration made `obj` or whose state holds its
        attributes (loopattrs.py)."""
        for watch in self.active:
            why = store_refusal(watch, obj, name, what)
            if why is not None:
                watch.taint(f"{why} at {self.ctx.user_location()}")

    def read_attr(self, obj, name, frame):
        """Int attribute `name` of `obj` read by `frame` (loopattrs.note_read)."""
        for watch in self.active:
            note_read(watch, obj, name, frame)

    def consume(self, iterator):
        """FOR_ITER on a non-range iterator: it must have been made in the running iteration."""
        for watch in self.active:
            if id(iterator) not in watch.fresh:
                watch.taint(f"an iterator made before the iteration is advanced in it, at "
                             f"{self.ctx.user_location()}")

    def unwatched(self, frame, iterator):
        """FOR_ITER of a loop of user code over an iterator no watch knows: noted for `report`."""
        key = (frame.code, frame.pc)
        if key in self.seen:
            return
        self.seen.add(key)
        location = f"{frame.code.co_filename}:{frame.decoded.linenos[frame.pc - 1]}"
        if location not in self.unrolled and not _is_library_file(frame.code.co_filename):
            self.unrolled[location] = (f"it iterates over a {type(iterator).__name__} (loops over a range, a traced "
                                       "array, or enumerate/zip of traced arrays and ranges roll)")

    def report(self):
        """Strings describing each rolled loop and each loop left unrolled, with the reason (loopreport.py)."""
        unrolled = dict(self.unrolled)
        for watch in self.watches.values():     # loops left by `return` or `break`: never finished
            if watch.not_rolled() is not None and not watch.rolls:
                unrolled.setdefault(watch.location, watch.not_rolled())
        return describe(self.rolled, unrolled)
