"""The built-in call rules, one module per family.  Importing this package registers the rules for
Python, `math` and NumPy; `load_library_rules()` registers those for SciPy's subpackages that have been
imported (rules for a library are loaded once its module exists, so jitgrad never imports SciPy itself:
a NumPy-only program does not pay SciPy's import time)."""
import importlib
import sys

from . import builtins, impure, math_funcs, ndarray_methods, numpy_funcs, operators, ufuncs  # noqa: F401
from . import linalg  # noqa: F401
from . import nan_functions, numpy_library, signal  # noqa: F401
from . import errstate, fft  # noqa: F401
from . import inplace  # noqa: F401  (after numpy_funcs: its creation rules replace theirs)

# library module -> rule modules registering rules for its callables (loaded once it is imported)
LIBRARY_RULES = {
    "scipy.special": ("special", "special_incomplete"),
    "scipy.linalg": ("scipy_linalg",),
    "scipy.signal": ("scipy_signal",),
    "scipy.spatial": ("scipy_spatial",),
    "scipy.interpolate": ("scipy_interpolate",),
    "scipy.ndimage": ("scipy_ndimage",),
    "scipy.stats": ("scipy_stats",),
    "scipy.integrate": ("scipy_integrate",),
}
_pending = dict(LIBRARY_RULES)


def load_library_rules():
    """Register the rules of every library in LIBRARY_RULES that has been imported since the last call."""
    ready = [_pending.pop(name) for name in list(_pending) if name in sys.modules]
    for modules in ready:
        for module in modules:
            importlib.import_module(f"{__name__}.{module}")
