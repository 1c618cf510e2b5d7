"""The arrays layer: the traced value type (`values.TracedArray`, complete in its class) with the helpers
every rule shares, refusals, Python's float errors (`pyerrors`), aliasing by identity, indexing, in-place
writes, the array API, contractions, reordering, sorts and scans, loop counters (`loopindex`) and the
settling of traced values that escape a trace (`escape`).  It imports only the recording layer (and ir).

TracedArray's methods call the modules above `values` through `values.IMPLEMENTATIONS`, which they
fill when imported: importing this package imports them all and checks that nothing is missing."""
from . import aliasing, array_api, contractions, escape, indexing, inplace, pyerrors, reorder, sort_scan, values

_missing = sorted(set(values.NEEDED) - set(values.IMPLEMENTATIONS))
assert not _missing, f"TracedArray has no implementation of {_missing}"
assert all(getattr(values.TracedArray, name).__name__ == name for name in values.NDARRAY_METHODS)
__all__ = ["aliasing", "array_api", "contractions", "escape", "indexing", "inplace", "pyerrors", "reorder",
           "sort_scan", "values"]
