"""One cold process that imports a peer, builds a case's gradient, calls it twice and checks it.

Used for W5 (first-call cost in a fresh process) and as the probe that runs a peer's first call under
a hard timeout when it cannot be interrupted in-process (XLA compiles and runs in C++).
Run as `python bench/coldstart.py MODE "CASE LABEL" IMPL`; prints one JSON line with the import time,
the first call (trace + compile, or a load from an on-disk cache), the second call (seconds) and the
relative gradient error against the hand-written NumPy gradient.  For jitgrad it also prints
`jitgrad_disk`: this process's on-disk cache counters (hits > 0: the machine code came from a warm
cache; JITGRAD_CACHE_DIR chooses the cache, JITGRAD_DISK_CACHE=0 turns it off).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()


def main(argv):
    """Measure one (mode, case label, implementation) in this fresh process and print JSON."""
    import importlib
    mode, label, impl = argv
    from bench import peers
    from bench.timing import gradient_error
    from bench.trees import flatten
    from bench.workloads import main_cases, scaling_cases
    every_case = main_cases(mode) + [c for series in scaling_cases(mode).values() for c in series]
    case = next(c for c in every_case if c.label == label)
    start = time.perf_counter()
    importlib.import_module(peers.PEERS[impl][0])
    imported = time.perf_counter()
    prepared = peers.PEERS[impl][1](case)
    result = prepared.call()
    first = time.perf_counter()
    prepared.call()
    second = time.perf_counter()
    error = gradient_error(prepared.leaves(result), flatten(case.grad_numpy(*case.args)))
    measured = {"import_s": imported - start, "first_call_s": first - imported, "second_call_s": second - first,
                "grad_err": error}
    if impl == "jitgrad":
        from jitgrad.jit import diskcache
        measured["jitgrad_disk"] = dict(diskcache.session)
    print(json.dumps(measured))


if __name__ == "__main__":
    main(sys.argv[1:])
