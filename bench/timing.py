"""Timing primitives: a wall-clock limit, gradient comparison, and interleaved repeated measurement."""
import contextlib
import signal
import time

import numpy as np


class TimeLimitExceeded(Exception):
    """Raised inside the guarded block when its time limit passes."""


@contextlib.contextmanager
def time_limit(seconds):
    """Interrupt the block (SIGALRM, main thread only) after `seconds`; no limit if None."""
    if not seconds:
        yield
        return

    def on_alarm(_signum, _frame):
        raise TimeLimitExceeded(f"> {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def gradient_error(leaves, reference):
    """max |g - ref| / max |ref| over all leaves; inf if the structure or shapes differ."""
    if len(leaves) != len(reference):
        return float("inf")
    worst, scale = 0.0, 1e-300
    for got, want in zip(leaves, reference):
        got = np.asarray(got, dtype=np.float64)
        if got.shape != np.shape(want):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(got - want), initial=0.0)))
        scale = max(scale, float(np.max(np.abs(want), initial=0.0)))
    return worst / scale


def summarize(samples):
    """Median, quartiles and extremes of per-call times (seconds)."""
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return {"median_s": float(median), "q1_s": float(q1), "q3_s": float(q3),
            "min_s": float(np.min(samples)), "max_s": float(np.max(samples)), "reps": len(samples)}


def calls_per_sample(call, target_s, probes=3):
    """How many back-to-back calls make one sample of about target_s: (number, seconds per call), from
    the fastest of up to 1 + `probes` timed calls (a first call may do one-off work, e.g. a lazily built
    entry, that would otherwise make every sample a single cold call; a call slower than target_s is
    timed twice only)."""
    once = _seconds(call)
    for probe in range(probes):
        if probe and once > target_s:
            break
        once = min(once, _seconds(call))
    return max(1, int(target_s / max(once, 1e-9))), once


def _seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def interleaved(calls, reps, target_s, budget_s, seed=0, clock=time.perf_counter):
    """Time every call in `calls` ({key: zero-arg fn}) `reps` times, in a shuffled order per round.

    Each sample runs the call `number` times back to back (about target_s) and records the mean.
    A call slower than budget_s/reps gets fewer rounds (at least 3, or 1 if one call exceeds the
    budget). `clock` times the samples (time.thread_time: CPU time, steadier on a shared machine).
    Returns {key: summarize(...) plus "number"}.
    """
    plan = {}
    for key, call in calls.items():
        number, once = calls_per_sample(call, target_s)
        rounds = reps if once * number * reps <= budget_s else max(1 if once > budget_s else 3,
                                                                    int(budget_s / (once * number)))
        plan[key] = (number, min(reps, rounds))
    samples = {key: [] for key in calls}
    order = np.random.default_rng(seed)
    for round_index in range(reps):
        for key in order.permutation(list(calls)):
            number, rounds = plan[key]
            if round_index >= rounds:
                continue
            call = calls[key]
            start = clock()
            for _ in range(number):
                call()
            samples[key].append((clock() - start) / number)
    return {key: {**summarize(samples[key]), "number": plan[key][0]} for key in calls}
