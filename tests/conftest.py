"""The whole suite runs with the value audit on: every IR value a rule records is checked against the
value NumPy computed while tracing (tracer/recording/audit.py), so a rule that translates a library call wrongly
fails here even where no gradient test covers that exact input.

The tests are grouped by the folder they test (tracer/, ir/, jit/, and api/ for jitgrad/'s facade);
the shared helpers (gradcheck.py, op_cases.py, e2e.py, ...) stay here, and test modules of one group
may import helpers from another's (test_jit_loops from test_loop_ir): every group is on the path."""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent / group) for group in ("api", "ir", "jit", "tracer")]

os.environ["JITGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="jitgrad-test-cache-")  # never the user's cache
atexit.register(shutil.rmtree, os.environ["JITGRAD_CACHE_DIR"], True)
os.environ.setdefault("JITGRAD_SYNC_COMPILE", "1")   # kernels compile before first calls (test_tiered.py: not)
from jitgrad.tracer.recording import audit  # noqa: E402

audit.enable()
