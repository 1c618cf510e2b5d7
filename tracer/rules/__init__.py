"""The built-in call rules, one module per family; importing this package registers them all."""
from . import builtins, impure, math_funcs, ndarray_methods, numpy_funcs, operators, ufuncs  # noqa: F401
from . import linalg, sort_scan, special, special_incomplete  # noqa: F401
from . import scipy_linalg, scipy_spatial, scipy_stats  # noqa: F401
from . import nan_functions, numpy_library, signal  # noqa: F401
from . import fft  # noqa: F401
from . import inplace  # noqa: F401  (after numpy_funcs: its creation rules replace theirs)
