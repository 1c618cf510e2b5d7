"""Runs cases over the peers: first call (with a time limit), gradient check, interleaved timing.

Rows are plain dicts (one per case and implementation) so that report.py and the JSON need no classes.
"""
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import peers
from .trees import flatten
from .timing import TimeLimitExceeded, gradient_error, interleaved, time_limit

TOLERANCE = 1e-7       # relative gradient error above which a row is "wrong gradient" (float64)

SETTINGS = {  # per mode: rounds, seconds per sample, seconds per row, first-call limit, probe processes
    "tiny": {"mode": "tiny", "reps": 2, "target_s": 0.0, "budget_s": 1.0, "first_call_limit_s": 30.0,
             "probe": False},   # tiny sizes cannot blow up; W5 still exercises coldstart.py
    "quick": {"mode": "quick", "reps": 5, "target_s": 0.02, "budget_s": 2.0, "first_call_limit_s": 20.0,
              "probe": True},
    "full": {"mode": "full", "reps": 21, "target_s": 0.05, "budget_s": 10.0, "first_call_limit_s": 120.0,
             "probe": True},
}
COLDSTART_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coldstart.py")


def cold_process(mode, label, impl, timeout_s, env=None):
    """Run bench/coldstart.py in a fresh process: its JSON dict, or a failure status string."""
    try:
        done = subprocess.run([sys.executable, COLDSTART_SCRIPT, mode, label, impl], capture_output=True,
                              text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return f"first call > {timeout_s:g} s (fresh process)"
    if done.returncode != 0:
        last_line = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"error: {last_line}"[:160]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _disk_hits(results):
    """'hits/lookups' of jitgrad's on-disk machine-code cache summed over `results` (None for peers)."""
    counters = [r["jitgrad_disk"] for r in results if "jitgrad_disk" in r]
    if not counters:
        return None
    hits = sum(c["hits"] for c in counters)
    return f"{hits}/{hits + sum(c['misses'] for c in counters)}"


def _probe(case, impl, settings):
    """For PROBED peers: a row decided by a probe process (failure, wrong, too slow), else None."""
    outcome = cold_process(settings["mode"], case.label, impl, settings["first_call_limit_s"])
    if isinstance(outcome, str):
        return _row(case, impl, outcome)
    if not outcome["grad_err"] <= TOLERANCE:
        return _row(case, impl, f"wrong gradient (rel err {outcome['grad_err']:.1e})",
                    grad_err=outcome["grad_err"])
    if outcome["second_call_s"] * 3 > settings["budget_s"]:
        return _row(case, impl, "ok (timed once, in the probe process)", grad_err=outcome["grad_err"],
                    first_call_s=outcome["first_call_s"], median_s=outcome["second_call_s"], reps=1,
                    number=1, q1_s=outcome["second_call_s"], q3_s=outcome["second_call_s"])
    return None


def _row(case, impl, status, **fields):
    return {"workload": case.workload, "case": case.name, "impl": impl, "scale": case.scale,
            "status": status, "median_s": None, "q1_s": None, "q3_s": None, "min_s": None,
            "max_s": None, "reps": 0, "number": 0, "first_call_s": None, "grad_err": None,
            "ratio_numpy": None, "ratio_c": None, "note": "", **fields}


def _first_call(case, impl, limit_s):
    """Prepare and call once: (prepared, result, seconds) or raises.

    The peer's module is imported before the clock and the time limit start: import time is not
    first-call time (W5 reports it), and an import interrupted half-way would break the peer for the
    rest of the process.  jitgrad's first call is answered while its kernel compiles in the background
    (tiered): the timed calls start once the kernel is ready.
    """
    importlib.import_module(peers.PEERS[impl][0])
    start = time.perf_counter()
    with time_limit(limit_s):
        prepared = peers.PEERS[impl][1](case)
        result = prepared.call()
    first = time.perf_counter() - start
    if impl == "jitgrad":     # tiered first calls: time the compiled kernel, not the reference executor
        import jitgrad
        jitgrad.wait_compiled()
    return prepared, result, first


def _caused_by_time_limit(exc):
    """True if the time limit fired, possibly wrapped by the peer (torch wraps it in InductorError)."""
    while exc is not None:
        if isinstance(exc, TimeLimitExceeded) or "TimeLimitExceeded" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _failure_status(impl, exc, limit_s):
    if isinstance(exc, peers.NotApplicable):
        return f"n/a: {exc}"
    if _caused_by_time_limit(exc):
        return f"{'compile' if impl == 'torch.compile' else 'first call'} > {limit_s:g} s"
    message = " ".join(str(exc).split())
    return f"error: {type(exc).__name__}: {message}"[:160]


def run_case(case, impls, settings, skip=None):
    """Measure `case` for every implementation in `impls`; returns the rows in `impls` order.

    `skip` maps implementation -> status for rows decided beforehand (e.g. projected too slow).
    """
    skip = skip or {}
    reference = [np.asarray(leaf) for leaf in flatten(case.grad_numpy(*case.args))]
    rows, calls = {}, {}
    for impl in impls:
        if impl in skip:
            rows[impl] = _row(case, impl, skip[impl])
            continue
        if not peers.installed(impl):
            rows[impl] = _row(case, impl, "not installed")
            continue
        limit_s = settings["first_call_limit_s"]
        decided = _probe(case, impl, settings) if settings["probe"] and impl in peers.PROBED else None
        if decided:
            rows[impl] = decided
            continue
        try:
            prepared, result, first_s = _first_call(case, impl, limit_s)
            error = gradient_error(prepared.leaves(result), reference)
        except Exception as exc:  # every failure becomes a status; the run goes on
            rows[impl] = _row(case, impl, _failure_status(impl, exc, limit_s))
            continue
        ok = error <= TOLERANCE
        rows[impl] = _row(case, impl, "ok" if ok else f"wrong gradient (rel err {error:.1e})",
                          first_call_s=first_s, grad_err=error, note=prepared.note)
        if ok:
            calls[impl] = prepared.call
    stats = interleaved(calls, settings["reps"], settings["target_s"], settings["budget_s"])
    for impl, summary in stats.items():
        rows[impl].update(summary)
    for ratio, base in (("ratio_numpy", peers.REFERENCE), ("ratio_c", peers.LIMIT)):
        base_median = rows.get(base, {}).get("median_s")
        for row in rows.values():
            if base_median and row["median_s"] is not None:
                row[ratio] = row["median_s"] / base_median
    return [rows[impl] for impl in impls]


def _projected_skip(previous, case, settings):
    """Status if the row of `case` (larger than previous's) should be skipped, else None.

    Run time is projected linearly in size; the one-off part of the first call (first call minus one
    call) too for tracing peers when the traced program grows with the size (unrolled loops).
    """
    status = previous["status"]
    if not status.startswith("ok"):
        inherited = status.startswith(("skipped", "not installed", "n/a"))
        return status if inherited else f"skipped: {status.split(' (')[0]} at n={previous['scale']}"
    growth = case.scale / previous["scale"]
    one_off = max(0.0, previous["first_call_s"] - previous["median_s"])
    unrolled = case.trace_grows and previous["impl"] in peers.TRACERS
    if one_off * (growth if unrolled else 1.0) + previous["median_s"] * growth \
            > settings["first_call_limit_s"]:
        return f"skipped: projected first call > {settings['first_call_limit_s']:g} s"
    if previous["median_s"] * growth > settings["budget_s"]:
        return f"skipped: projected call > {settings['budget_s']:g} s"
    return None


def projected_skips(previous_rows, case, settings):
    """{impl: status} for implementations whose row at the previous, smaller size of the same
    family (`previous_rows`) failed, or projects (linearly in size) past the time limits."""
    skips = {}
    for row in previous_rows or ():
        status = _projected_skip(row, case, settings)
        if status:
            skips[row["impl"]] = status
    return skips


def run_series(cases, impls, settings, measured):
    """Scaling sweep: run_case per size, reusing rows of identical main-table cases (`measured`
    maps case label -> rows) and skipping implementations projected to exceed the limits."""
    rows, last = [], None
    for case in cases:
        last = measured.get(case.label) or run_case(case, impls, settings, projected_skips(last, case, settings))
        rows += [dict(row) for row in last]
    return rows


COLD_IMPLS = ("numpy (hand)", "numba (hand)", "jitgrad", "jax.jit(grad)", "torch.compile")


def run_coldstart(labels, impls, processes, settings, measured):
    """W5: first-call cost in fresh processes, `processes` times for jitgrad (and for every peer in
    full mode), once otherwise.

    Process 1 starts with empty caches; later processes find the on-disk caches it left (jitgrad's
    machine code, torch inductor's). Rows hold the first process's figures and the median of the others.
    Implementations whose in-process row (in `measured`: label -> rows) failed are not rerun.
    """
    rows = []
    for label in labels:
        in_process = {row["impl"]: row["status"] for row in measured.get(label, ())}
        for impl in impls:
            row = {"case": label, "impl": impl, "status": "ok", "import_s": None, "first_call_s": None,
                   "later_first_call_s": None, "second_call_s": None, "processes": 0}
            status = "not installed" if not peers.installed(impl) else in_process.get(impl, "ok")
            if not status.startswith("ok"):
                rows.append({**row, "status": f"skipped: in-process {status}"[:160]})
                continue
            results = []
            # fresh on-disk caches per group (torch inductor's, jitgrad's machine code): process 1
            # compiles, later ones find the cache
            scratch = tempfile.mkdtemp(prefix="jitgrad-bench-w5-")
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": os.path.join(scratch, "inductor"),
                   "JITGRAD_CACHE_DIR": os.path.join(scratch, "jitgrad")}
            for _ in range(processes if impl == "jitgrad" or settings["mode"] == "full" else 1):
                outcome = cold_process(settings["mode"], label, impl, settings["first_call_limit_s"] + 30, env)
                if isinstance(outcome, str):
                    row["status"] = outcome
                    break
                results.append(outcome)
            if results:
                row.update(import_s=results[0]["import_s"], first_call_s=results[0]["first_call_s"],
                           second_call_s=results[0]["second_call_s"], processes=len(results))
                if len(results) > 1:
                    later = [r["first_call_s"] for r in results[1:]]
                    row.update(later_first_call_s=float(np.median(later)), later_range_s=[min(later), max(later)])
                row["disk"] = _disk_hits(results[1:])
            rows.append(row)
    return rows
