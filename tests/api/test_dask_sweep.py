"""examples/dask_sweep.py on a LocalCluster of worker processes sharing one cache directory: the right
fits, and through each worker's cache counters, one trace in all (the first worker's); every other
worker warm-starts from the disk cache without tracing."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _reference_fit(ridge):
    """The same gradient descent with the hand-written gradient of the ridge least-squares loss."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import sweep_model as m
    finally:
        sys.path.remove(str(EXAMPLES))
    w = np.zeros(m.X.shape[1])
    for _ in range(m.STEPS):
        w = w - m.RATE * (2 / len(m.Y) * m.X.T @ (m.X @ w - m.Y) + 2 * ridge * w)
    return w


def test_dask_sweep_workers_warm_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JITGRAD_SYNC_COMPILE"}
    done = subprocess.run([sys.executable, str(EXAMPLES / "dask_sweep.py"), "--workers", "2", "--points", "6",
                           "--cache-dir", str(tmp_path / "cache"), "--json"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    workers = report["workers"].values()
    assert len(workers) == 2
    assert sorted(c["traces"] for c in workers) == [0, 1]           # one trace in the whole cluster
    assert all(c["restored"] == 1 for c in workers if c["traces"] == 0)
    assert len({fit["worker"]["pid"] for fit in report["fits"]}) == 2   # both workers ran fits
    assert len(report["fits"]) == 6
    for fit in report["fits"]:
        np.testing.assert_allclose(fit["w"], _reference_fit(fit["ridge"]), rtol=1e-10, atol=1e-12)
