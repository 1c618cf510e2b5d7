"""Impure callables (random numbers, clocks, input/open): `always` rules that refuse them, because
their result would be frozen into the compiled trace.  Methods of random generators (NumPy's
Generator/RandomState/BitGenerator, Python's random.Random, hence the `random.*` functions) are found by
the registry through `IMPURE_OWNERS`."""
import builtins
import os
import random
import time
import types

import numpy as np

from ..interpretation.calls import qualified_name
from ..recording import hooks
from ..recording.registry import IMPURE_OWNERS, register
from ..arrays.refusals import refuse


def impure(fn):
    """A handler refusing the call of `fn`."""
    def handler(*args, **kwargs):
        refuse(f"{qualified_name(fn)} is impure: its result would be frozen into the compiled trace; "
               "pass random numbers (or times, or data) in as arguments instead")
    return handler


def _module_callables(module):
    return [obj for name, obj in vars(module).items()
            if not name.startswith("_") and callable(obj) and not isinstance(obj, (type, types.ModuleType))]


_IMPURE = (_module_callables(np.random) + _module_callables(random)
           + [getattr(time, name) for name in ("time", "time_ns", "perf_counter", "perf_counter_ns",
                                               "monotonic", "monotonic_ns", "process_time", "process_time_ns",
                                               "thread_time", "thread_time_ns", "localtime", "gmtime",
                                               "ctime", "asctime", "strftime")]
           + [builtins.input, builtins.open, os.urandom])
for _fn in _IMPURE:
    register(_fn, always=True)(impure(_fn))
IMPURE_OWNERS.extend([np.random.Generator, np.random.RandomState, np.random.BitGenerator, random.Random])
hooks.impure_rule = impure
