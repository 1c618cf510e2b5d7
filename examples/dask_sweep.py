"""A parameter sweep whose gradients run on Dask workers: one gradient-descent fit per ridge weight
(examples/sweep_model.py), spread over the worker processes of a cluster.

Run:  python examples/dask_sweep.py                      (a LocalCluster of 2 worker processes)
      python examples/dask_sweep.py tcp://HOST:8786      (a running cluster, unchanged)
Options: --workers N (LocalCluster size), --points N (ridge weights), --cache-dir DIR (the jitgrad cache
the workers share: a shared filesystem on a real cluster), --json (the results and each worker's
counters as JSON).  Needs `pip install 'jitgrad[dask]'`; on a real cluster the workers must import
sweep_model from the same path as here (a shared filesystem or the same installed package: the code's
file name is part of what a warm start checks).

The first fit traces and compiles once; every other worker process finds the trace record and the
machine code in the shared cache and warm-starts: `traces` stays 0 there (`restored` 1), which this
script prints and tests/api/test_dask_sweep.py asserts.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _prepare_worker(folder, cache_dir):
    """Run on every worker: sweep_model importable, and the shared cache directory (when given)."""
    if folder not in sys.path:
        sys.path.insert(0, folder)
    if cache_dir:
        os.environ["JITGRAD_CACHE_DIR"] = cache_dir


def sweep(client, points):
    """Fit every ridge weight of `points` on the cluster of `client`: the results in order and each
    worker's counters ({worker address: counters})."""
    import sweep_model
    workers = sorted(client.scheduler_info()["workers"])
    first = client.submit(sweep_model.fit, points[0], workers=workers[:1], pure=False).result()
    # one fit pinned on each other worker, so that every worker process is seen to warm-start
    pinned = [client.submit(sweep_model.fit, p, workers=[w], pure=False) for p, w in zip(points[1:], workers[1:])]
    rest = client.map(sweep_model.fit, points[1 + len(pinned):], pure=False)
    results = [first] + client.gather(pinned) + client.gather(rest)
    return results, client.run(sweep_model.counters)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="scheduler address of a running cluster (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--points", type=int, default=8, help="ridge weights swept (default 8)")
    parser.add_argument("--cache-dir", help="the jitgrad cache directory the workers share")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    from dask.distributed import Client, LocalCluster
    if args.cache_dir:
        os.environ["JITGRAD_CACHE_DIR"] = args.cache_dir          # (inherited by LocalCluster workers)
    sys.path.insert(0, HERE)
    cluster = None
    if args.address is None:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        with Client(args.address or cluster) as client:
            client.run(_prepare_worker, HERE, args.cache_dir)
            results, per_worker = sweep(client, list(np.geomspace(1e-3, 1.0, args.points)))
    finally:
        if cluster is not None:
            cluster.close()
    report = {"fits": [{"ridge": r, "w": w.tolist(), "loss": value, "worker": c}
                       for r, w, value, c in results], "workers": per_worker}
    if args.json:
        print(json.dumps(report))
    else:
        for fit in report["fits"]:
            print(f"ridge {fit['ridge']:.4f}: loss {fit['loss']:.4f} (worker pid {fit['worker']['pid']})")
        for address, c in sorted(per_worker.items()):
            print(f"{address}: traced {c['traces']}, restored from the disk cache {c['restored']}, hits {c['hits']}")
    return report


if __name__ == "__main__":
    main()
