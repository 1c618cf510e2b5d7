"""Loops bounded by an int argument (tracer/arrays/sizeint.py): a `for` over a SizedRange whose loop op
runs to the end of the range takes its trip count from the argument at run time, as an IR input.

The loop op is then a loop ending on its flag (ir/loops.py's `exit`): its trip is a capacity, the most
iterations a call may ask for (`sized_capacity`, guarded before the loop with the count's lower bound:
a call whose range is shorter than the iterations interpreted before the loop op, or longer than the
capacity, retraces), and its body (loopbody.counted) runs the iteration only while the counter is below
the count.  After it, the loop's counter `i` (and ints stepping with it) is `n + c`, a SizeInt.
Everything else a SizedRange, its iterator or the int does marks the argument static (keyed as before).
"""
import numpy as np

from ...ir.loops import COUNTER_DTYPE
from ..arrays.sizeint import SIZED, SizeInt, plain as plain_size

SIZED_MIN_CAPACITY = 2 ** 14   # a loop op whose trip count is an int argument may run up to
SIZED_FACTOR = 128              # max(SIZED_MIN_CAPACITY, SIZED_FACTOR x the count traced) iterations


def sized_capacity(trip):
    """The most iterations a loop op taking its trip count from an int argument may run (a guard checks
    it; beyond it the call retraces): reverse mode tapes a share of it and checkpoints the rest
    (ir/loop_tape.py), as for a `while` loop."""
    return max(SIZED_MIN_CAPACITY, SIZED_FACTOR * trip)


def sized_loop(watch, joined, split, done):
    """The Rolling.sized_iterators entry of `watch`'s iterator when the loop op about to be recorded
    can take its trip count from the int argument bounding its range: the loop's only loop op, running
    to the end of the range (`done` iterations fast-forwarded), its body only carries; else None (the
    argument is then marked static at the end of the trace: Rolling.finish_sizes)."""
    found = watch.rolling.sized_iterators.get(id(watch.iterator))
    if found is None or found[0] is not watch.iterator:
        return None
    rng = found[1]
    if (watch.rolls or found[2] or done != watch.remaining() or split.step != 1 or rng.stop.arg.static
            or len(joined.body.outputs) != len(joined.items) or rng.stop.value - split.first != split.done):
        return None
    found[2] = True
    return found


def runtime_trip(watch, stop, first, trip):
    """The IR of the trip count `stop - first` of a loop op over a SizedRange (`stop` its SizeInt, `first`
    the loop op's first counter value), guarded to lie in [0, its capacity]; `trip` is the count traced."""
    ctx = watch.rolling.ctx
    b = ctx.builder
    count = b.add(stop.arg.ir(b), b.const(np.asarray(stop.offset - first, COUNTER_DTYPE)))
    most = sized_capacity(trip)
    held = b.logical_and(b.greater_equal(count, b.const(np.asarray(0, COUNTER_DTYPE))),
                         b.less_equal(count, b.const(np.asarray(most, COUNTER_DTYPE))))
    ctx.guard(held, True, f"the loop at {watch.location} runs 0 to {most} iterations (its range's bound is "
                          "an int argument)")
    return count


def after_sized(arg, a, value):
    """A counter `a * i + b` after a loop op over a SizedRange of `arg` ran to its end: `n + c` (a
    SizeInt) when a is 1, else the int, with `arg` marked static."""
    if a == 1:
        return SizeInt(arg, value - arg.value)
    arg.mark("a multiple of the counter of a loop over range(n) is used after it")
    return value


def sized_note(arg):
    """What cache_info says of a loop op reading its trip count from int argument `arg`."""
    if arg.static is None:
        return f", trip count a run-time value (int argument {arg.position}: not part of the cache key)"
    return f", trip count read from int argument {arg.position} at run time (keyed: {arg.static})"


def sizes_plain(rolling, fn, args, kwargs):
    """Arguments of compiled code `fn` with SizeInt/SizedRange made plain (the int argument marked static);
    an iterator of a SizedRange consumed there marks it too."""
    if fn is isinstance or fn is type:
        return tuple(a.value if type(a) is SizeInt else a for a in args), kwargs
    for a in (*args, getattr(fn, "__self__", None)):
        found = rolling.sized_iterators.get(id(a))
        if found is not None and found[0] is a:
            found[1].use("its iterator is consumed by compiled code")
    if any(type(a) in SIZED or type(a) in (tuple, list) for a in args):
        args = tuple(plain_size(a) for a in args)
    if any(type(v) in SIZED for v in kwargs.values()):
        kwargs = {k: plain_size(v) for k, v in kwargs.items()}
    return args, kwargs


def finish_sizes(rolling):
    """At the end of the trace: a SizedRange iterated otherwise than by one loop op to its end marks its
    argument static (the iterations interpreted depend on its value)."""
    for _, rng, taken in rolling.sized_iterators.values():
        if not taken:
            rng.use("as the bound of a loop not rolled to the end of its range")
