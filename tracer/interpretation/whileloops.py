"""Rolling `while` loops: a loop closed by a backward jump whose target is not a FOR_ITER (`while
cond:`, `while True: ... break`), watched as a `for` over a range is (tracer/rolling.py).

The header is the backward jump's target; an arrival is the jump taken (the end of one iteration, the
start of the next).  There is no range: the counter is the number of iterations run (ints stepping by
a constant with it, `k += 1`, are counters as in a `for`), and the frame's whole value stack is part of
its state.  Once two consecutive iterations match, the rest is fast-forwarded until a guard of the body
fails (the loop's condition turning false, a `break` on data): the loop op then ends on that guard's
flag at run time (ir/loops.py's `exit`), with no bound (a loop of a run-time trip count, UNBOUNDED: a
call running any number of iterations uses the trace; reverse mode tapes as many rows as it takes, a
stack that grows, or above the tape budget checkpoints: ir/loop_tape.py; in a trace spliced into an
enclosing one, a capacity: `WhileWatch.capacity`), and the interpreter runs the iteration that left.
The first PROBE iterations are fast-forwarded by the reference evaluation, the rest natively
(fastforward.py).  A fast-forward running FAST_FORWARD_LIMIT
iterations without a guard failing records that many (a counted loop) and interprets on.  The watch
ends when the frame jumps (or falls through) out of the loop's instructions.

`Rolling` here is rolling.py's with the interpreter's jump hook: jitgrad/tracing.py makes it.
"""
from . import rolling
from ...ir import loop_tape
from ..recording.context import enclosing
from .fastforward import NATIVE_MIN_TRIP
from .rolling import LoopWatch

FAST_FORWARD_LIMIT = 10 ** 8
MIN_CAPACITY = 64
CAPACITY_FACTOR = 4


class WhileWatch(LoopWatch):
    """One `while` loop of one frame, its header at `pc` and its backward jump at `source`."""

    STACK_TOP = 0
    OPENING = False               # (its first arrival is after the first iteration)
    PROBE = NATIVE_MIN_TRIP       # a `while` loop may end soon: no compilation for the first iterations
    END = "the capacity its trace gave it"

    def __init__(self, rolling, frame, pc, source):
        super().__init__(rolling, frame, pc, None)
        self.source = source
        self.offset = 0           # iterations fast-forwarded (each one arrival that did not happen)

    def state(self):
        return self.arrivals + self.offset, 1

    def remaining(self):
        return FAST_FORWARD_LIMIT

    def advance(self, n):
        self.offset += n

    def capacity(self, first, done, remaining):
        """None (no bound: a loop of a run-time trip count), but SEGMENTS x CAPACITY_FACTOR x the
        iterations traced (at least SEGMENTS x MIN_CAPACITY; a guard after the loop checks a call stays
        within it, else it retraces; reverse mode then continues it in segments: ir/loop_tape.py) where
        a stack of a run-time number of rows (its tape) could not be: in a trace spliced into an
        enclosing one (a jit_grad called inside a traced function: differentiated again), in one whose
        tapes pass from one kernel to another (`bounded`: jitgrad.vjp), and inside another loop watched
        (the body of its loop op, whose tape would stack the inner loop's)."""
        rolling = self.rolling
        if enclosing(rolling.ctx) is None and not rolling.bounded and \
                not any(w is not self and w.refused is None for w in rolling.active):
            return None
        return max(MIN_CAPACITY, CAPACITY_FACTOR * (first + done)) * loop_tape.SEGMENTS


def _is_for_iter(frame, target):
    return frame.decoded.ops[target].__name__ == "op_FOR_ITER"


class Rolling(rolling.Rolling):
    """rolling.Rolling watching `while` loops too."""

    def __init__(self, ctx, runner=None, bounded=False):
        super().__init__(ctx, runner)
        self.bounded = bounded    # `while` loops keep a capacity (WhileWatch.capacity)
        self.whiles = {}          # id(frame) -> its `while` loops watched

    def jumped(self, interpreter, frame, source):
        """After a jump instruction at `source` ran (taken or not; frame.pc is where it goes): a backward
        jump to a non-FOR_ITER is an arrival at a `while` header; leaving a watched `while` loop's
        instructions ends its watch."""
        pc = frame.pc
        whiles = self.whiles.get(id(frame))
        if whiles:
            for watch in [w for w in whiles if not w.pc <= pc <= w.source]:
                whiles.remove(watch)
                self.finish(watch)
        if pc > source or _is_for_iter(frame, pc):
            return
        key = (id(frame), pc)
        watch = self.watches.get(key)
        if watch is None:
            watch = self.watches[key] = WhileWatch(self, frame, pc, source)
            self.whiles.setdefault(id(frame), []).append(watch)
            self.start(watch)
        if watch.refused is None:
            watch.arrive(interpreter)
            watch.current = watch.state()[0]
        else:
            watch.pin()

    def _prune(self):
        super()._prune()
        frames = {id(f) for f in self.ctx.frames}
        self.whiles = {k: ws for k, ws in self.whiles.items() if k in frames}
