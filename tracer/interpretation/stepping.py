"""Python variables a watched loop steps from one iteration to the next (rolling.py's LoopWatch, at each
header): ints stepping with the counter (`k += 1`) become LoopIndex of the loop (loopindex.py) and
floats that changed (`t += dt`) become traced values, so that the iterations that follow record what
they do with them (and the decisions on them) and can match.  The attributes of the objects whose
attributes are loop state (`self.n += 1`, `self.t += self.dt`: loopattrs.py) are stepped alike.
"""
from ..arrays.loopindex import LoopIndex
from ..arrays.values import TracedArray, const
from .loopattrs import places


def step_variables(watch):
    """Replace, in `watch`'s frame, the variables its last iterations stepped (see the module)."""
    _counts(watch)
    _induction_variables(watch)
    _float_carries(watch)


def _counts(watch):
    """Int attributes the iteration that ended changed and read only to add to them (loopattrs.py) are
    traced from here on (an int64 carry of the loop op)."""
    counts, watch.counts = watch.counts, {}
    if not watch.headers:
        return
    before = watch.headers[-1].ints
    for k, holder, slot in places(watch.frame, watch.headers[-1].objects):
        value = holder[slot]
        if type(value) is int and counts.get(k) and k in before and before[k] != value:
            holder[slot] = TracedArray(const(value), value)


def _induction_variables(watch):
    """Plain int variables that changed by the same multiple of the step in the last two iterations
    (`k += 1` next to the counter) become LoopIndex of this loop from here on: decisions on them are
    seen, and the iterations that follow can match."""
    if len(watch.headers) < 2:
        return
    nxt, step = watch.state()
    last = nxt - step
    before, after = watch.headers[-2].ints, watch.headers[-1].ints
    for k, holder, slot in places(watch.frame, watch.headers[-1].objects):
        value = holder[slot]
        if type(value) is int and k in before and k in after:
            d = value - after[k]
            if d and d == after[k] - before[k] and d % step == 0:
                holder[slot] = LoopIndex(watch, last, d // step, value - d // step * last)


def _float_carries(watch):
    """Plain float variables that changed in the iteration that ended (`t += dt`) are traced from here
    on: the iterations that follow record their arithmetic and the decisions on them (`while t < t_end`
    with a traced `t_end` compared a different constant in every iteration), so they can match, and the
    loop op carries them.  Their values stay Python's: one IEEE operation per Python operation, in order."""
    if not watch.headers:
        return
    before = watch.headers[-1].floats
    for k, holder, slot in places(watch.frame, watch.headers[-1].objects):
        value = holder[slot]
        if type(value) is float and k in before and before[k] is not value:
            holder[slot] = TracedArray(const(value), value)
