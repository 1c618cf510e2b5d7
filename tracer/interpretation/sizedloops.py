"""Loops bounded by an int argument (tracer/arrays/sizeint.py): a `for` over a SizedRange whose loop op
runs to the end of the range may take its trip count from the argument at run time.

The trace is recorded as before (each loop op of the count traced: the exact call's kernel is today's),
and each such loop op is noted as a `Swap`.  `runtime_trace` then gives the trace's other form, which
answers any value of the arguments used only that way (jitgrad/api.py compiles it once a call with
another value comes): those arguments are 0-d intp inputs after the traced leaves, and each swapped
loop op a loop of a run-time trip count (ir/loops.py's trip=None, its count n + c minus the iterations
interpreted before the loop op): no capacity, its reverse-mode tape sized from the count at entry (up to
the tape budget, then checkpointed segments: ir/loop_tape.py).  A
guard before the loop checks the count is not negative (a call whose range is shorter than the
iterations interpreted before the loop op retraces; a count of 0 runs no iteration: its carries pass
through).  After the loop the counter `i` (and ints stepping with it) is
`n + c`, a SizeInt.  Everything else a SizedRange, its iterator or the int does marks the argument
static (keyed as before), and so does a loop op recorded while another loop is watched (it may end up
inside that loop's body, where no swap reaches).
"""
import numpy as np

from ...ir import Builder, passes
from ...ir.loops import COUNTER_DTYPE
from ..arrays.sizeint import SIZED, SizeInt, plain as plain_size
from .loopbody import with_count


def sized_loop(watch, joined, split, done):
    """The SizedRange bounding `watch`'s loop when the loop op about to be recorded can take its trip
    count from the int argument at run time: the loop's only loop op, running to the end of the range
    (`done` iterations fast-forwarded), its body only carries, no other loop watched around it; else
    None (the argument is then marked static at the end of the trace: `finish_sizes`)."""
    found = watch.rolling.sized_iterators.get(id(watch.iterator))
    if found is None or found[0] is not watch.iterator:
        return None
    rng = found[1]
    if (watch.rolls or found[2] or done != watch.remaining() or split.step != 1 or rng.stop.arg.static
            or len(joined.body.outputs) != len(joined.items) or rng.stop.value - split.first != split.done
            or any(w is not watch and w.refused is None for w in watch.rolling.active)):
        return None
    found[2] = True
    return rng


class Swap:
    """A loop op over `range(first, n + offset)` (its counter from `first`) recorded with the count
    traced, `trip`, and how to emit it with the count read at run time (`emit`)."""

    __slots__ = ("loop", "offset", "trip", "loc", "location")

    def __init__(self, loop, offset, trip, loc, location):
        self.loop, self.offset, self.trip, self.loc, self.location = loop, offset, trip, loc, location

    def emit(self, b, args, n):
        """Into builder `b`, on operands `args`, with `n` the argument's IR input: the loop of a run-time
        trip count standing for the loop op; the values of its results."""
        count = b.add(n, b.const(np.asarray(self.offset, COUNTER_DTYPE)))
        b.guard(b.greater_equal(count, b.const(np.asarray(0, COUNTER_DTYPE))), True, loc=self.loc,
                why=f"the loop at {self.location} runs 0 or more iterations after those interpreted before it (its "
                    "range's bound is an int argument)")
        body, n_carry = self.loop.params["body"], self.loop.params["n_carry"]
        loop = b.emit("loop", *args, count, body=with_count(body), trip=None, n_carry=n_carry)
        return [b.loop_result(loop, index=k) for k in range(len(body.outputs))]


def note_swap(watch, rng, loop, first):
    """Loop op `loop` over SizedRange `rng` (its counter from `first`) may read its count at run time."""
    stop = rng.stop
    stop.arg.swaps.append(Swap(loop, stop.offset - first, loop.params["trip"], watch.rolling.ctx.user_location(),
                               watch.location))


def runtime_trace(builder, n_leaves, args, outputs):
    """The trace of `builder`'s recording with `outputs` whose loop ops bounded by the SizeArgs `args`
    (every one with swaps, none static) read their trip counts at run time: its inputs are the first
    `n_leaves` (the traced leaves), then one 0-d intp per argument of `args`, then the others."""
    b = Builder()
    env = {id(v): b.input(v.shape, v.dtype) for v in builder.inputs[:n_leaves]}
    swaps = {}
    for a in args:
        n = b.input((), COUNTER_DTYPE)
        swaps.update((id(s.loop), (s, n)) for s in a.swaps)
    env.update((id(v), b.input(v.shape, v.dtype)) for v in builder.inputs[n_leaves:])

    results = {}              # id(swapped loop) -> the values of its results

    def rule(bb, node, operands):
        if node.op == "loop_result" and id(node.args[0]) in results:
            return results[id(node.args[0])][node.params["index"]]
        found = swaps.get(id(node))
        if found is None:
            return None
        results[id(node)] = found[0].emit(bb, operands, found[1])
        return bb.const(np.asarray(0, COUNTER_DTYPE))      # (stands for the loop: only its results are read)
    passes.replay(b, builder.nodes, env, rule)
    return b.build([env[id(v)] for v in outputs])


def after_sized(arg, a, value):
    """A counter `a * i + b` after a loop op over a SizedRange of `arg` ran to its end: `n + c` (a
    SizeInt) when a is 1, else the int, with `arg` marked static."""
    if a == 1:
        return SizeInt(arg, value - arg.value)
    arg.mark("a multiple of the counter of a loop over range(n) is used after it")
    return value


def sized_note(arg):
    """What cache_info says of a loop op bounded by int argument `arg`."""
    if arg.static is None:
        return (f", bounded by int argument {arg.position}: other values of it reuse this trace (its loop ops "
                "then read the trip count at run time)")
    return f", bounded by int argument {arg.position}, which is keyed: {arg.static}"


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
