"""The whole suite runs with the value audit on: every IR value a rule records is checked against the
value NumPy computed while tracing (tracer/recording/audit.py), so a rule that translates a library call wrongly
fails here even where no gradient test covers that exact input."""
import atexit
import os
import shutil
import tempfile

os.environ["JITGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="jitgrad-test-cache-")  # never the user's cache
atexit.register(shutil.rmtree, os.environ["JITGRAD_CACHE_DIR"], True)
from jitgrad.tracer.recording import audit  # noqa: E402

audit.enable()
