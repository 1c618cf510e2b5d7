"""The examples run and check themselves (they assert against finite differences / convergence)."""
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["quickstart.py", "scipy_minimize.py", "library_code.py", "newton.py"])
def test_example_runs(name):
    module = runpy.run_path(str(EXAMPLES / name))
    assert module["main"]() is not None
