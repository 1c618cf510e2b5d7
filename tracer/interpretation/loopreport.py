"""What `cache_info().paths[k].loops` says of each loop of a trace (rolling.Rolling.report): a loop op
recorded (its trip count, iterations fast-forwarded, carries, whether it leaves on data, paths joined,
a run-time trip count, values appended) or why a loop was not rolled."""
from .sizedloops import sized_note


def describe(rolled, unrolled):
    """The lines for the loop ops `rolled` (tuples as Rolling.rolled holds them) and the loops `unrolled`
    (location -> why)."""
    lines = [f"loop at {loc}: rolled, {trip} iterations in one loop op ({done} fast-forwarded), {carries} carried "
             f"values" + (", leaves on data at run time" if leaves else "")
             + (f", {paths} paths joined by conds (branches on data)" if paths > 1 else "")
             + (sized_note(sized) if sized is not None else "")
             + (f", {emits} values appended to lists per iteration (stacked)" if emits else "")
             for loc, trip, done, carries, leaves, paths, sized, emits in rolled]
    return lines + [f"loop at {loc}: not rolled: {why}" for loc, why in unrolled.items()]
