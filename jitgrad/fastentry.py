"""The plan of the native cached-call entry (jit/entry.py) for one cache entry: what a call must match
for the entry's kernel to answer, written as words the native code reads.

Every native check is at least as strict as the Python fast path's (jitgrad/api.py `_fast_path`), which
stays the fallback: a call the native entry declines runs the Python fast path with the same
arguments.  Values read from the environment are checked by identity: a namespace name against the
module it was bound to (or its absence), a global or closure variable against the very object that
holds now (an immutable scalar, or a function, whose code is pinned too), after checking at build
time that the entry's own predicate accepts that object; arrays read there are passed to the kernel,
whose wrapper checks them as it checks arguments; an attribute of a module (`helpers.f(x)`,
`config.SCALE`) is read as a name of the module's dict.  Entries reading other places (other objects'
attributes, items, container lengths) or writing into an argument get no native entry.
"""
import contextvars
import types

import numpy as np

from . import persist
from .ir.errors import GuardFailed
from .jit import entry as native
from .jit.pywrapper import FALLBACK
from .tracer import AttrGetter, CellGetter, GlobalGetter, NamespaceGetter, error_mode_reader

_PINNABLE = (int, float, complex, bool, str, bytes, type(None))   # immutable: identity implies the value
_ABSENT = object()      # the expected "value" of a name that must be missing (a null pointer natively)


def _environment_reads(env):
    """(reads, objects to keep) of the environment entries `env`: native read tuples (kind, container,
    key, expected), or None when some entry cannot be checked natively."""
    reads, keep = [], []
    for e in env:
        g = e.getter
        if type(g) is NamespaceGetter:
            if type(g.namespace) is not dict:
                return None
            reads += [(native.READ_DICT, g.namespace, name, _ABSENT) for name in sorted(g.absent)]
            reads += [(native.READ_DICT, g.namespace, name, module) for name, module in sorted(g.modules.items())]
            continue
        if type(g) is GlobalGetter and type(g.namespace) is dict:
            place = (native.READ_DICT, g.namespace, g.name)
        elif type(g) is AttrGetter and type(g.obj) is types.ModuleType and type(vars(g.obj)) is dict:
            place = (native.READ_DICT, vars(g.obj), g.name)   # `module.name`: its dict (exactly a module:
            #                  no __getattribute__ of a subclass; a module __getattr__ only answers a name absent there)
        elif type(g) is CellGetter:
            place = (native.READ_CELL, g.cell, _ABSENT)
        else:
            return None
        if e.kind == "array":
            reads.append((*place, native.AS_INPUT))
            continue
        try:
            now = g.get()
            holds = e.holds(now)
        except Exception:
            return None
        if not holds or e.kind not in ("value", "identity") or e.kind == "value" and type(now) not in _PINNABLE:
            return None
        reads.append((*place, now))
        keep.append(now)
        if type(now) is types.FunctionType:       # the function's code, as the entry's predicate checks it
            reads.append((native.READ_CODE, now, _ABSENT, now.__code__))
            keep.append(now.__code__)
    return reads, keep


def _address(obj):
    """The plan word of `obj`: its address, or the markers' words (absent: 0)."""
    return 0 if obj is _ABSENT else native.AS_INPUT if obj is native.AS_INPUT else id(obj)


def native_entry(fn, code, sig, entry, cache, n_args, fallback, slow, quiet):
    """The native entry builtin for calls of `fn` served by cache `entry` (n_args positional arguments,
    signature `sig`), declining to `fallback` (the Python fast path) and resuming kernel exit codes on
    the way `slow` (the full path) would take them; None when the entry cannot be served natively.
    `quiet` is NumPy's current error-mode object, known not to raise."""
    parts = entry.kernel.native() if hasattr(entry.kernel, "native") else None
    mode_var = getattr(error_mode_reader(), "__self__", None)
    if parts is None or quiet is None or type(mode_var) is not contextvars.ContextVar or entry.written \
            or n_args > native.MAX_INPUTS:
        return None
    env = _environment_reads(entry.env)
    if env is None or code is not None and type(fn) is not types.FunctionType:
        return None
    reads, keep = env
    if code is not None:
        reads.insert(0, (native.READ_CODE, fn, _ABSENT, code))
    address, wrapper_self, n_out, settle = parts
    package = None if entry.package is persist.only_output else entry.package
    statics = [s for s in sig.statics if s[0] not in entry.sizes]     # (an int trip count: passed as it is)
    static_positions = [i for i, _, _ in sig.statics]
    arrays = [i for i in range(n_args) if i not in static_positions] + list(entry.sizes)
    if len(arrays) + sum(r[3] is native.AS_INPUT for r in reads) > native.MAX_INPUTS:
        return None
    resume = _resumer(entry, arrays, settle, fallback, slow, cache)
    words = [0] * native.HEADER
    words[native.COUNTER] = cache.native_hits.ctypes.data
    words[native.NARGS], words[native.FALLBACK], words[native.RESUME] = n_args, id(fallback), id(resume)
    words[native.MODE_VAR], words[native.QUIET] = id(mode_var), id(quiet)
    words[native.WRAPPER], words[native.WRAPPER_SELF] = address, id(wrapper_self)
    words[native.PACKAGE] = 0 if package is None else id(package)
    words[native.N_OUT], words[native.N_ARRAYS], words[native.ARRAYS_AT] = n_out, len(arrays), native.HEADER
    words += arrays
    words[native.N_STATIC], words[native.STATIC_AT] = len(statics), len(words)
    for i, t, value in statics:
        words += [i, id(t), id(value)]
        keep += [t, value]
    words[native.N_READS], words[native.READS_AT] = len(reads), len(words)
    for kind, container, key, expected in reads:
        words += [kind, _address(container), _address(key), _address(expected)]
        keep += [container, key, expected]
    keep += [fn, code, fallback, resume, mode_var, quiet, wrapper_self, package, cache.native_hits]
    return native.make_entry(getattr(fn, "__name__", "transformed"), words, keep)


def _resumer(entry, arrays, settle, fallback, slow, cache):
    """resume(code, *args): the answer after the kernel wrapper returned `code` on the call `args`, as
    the Python fast path would give it: `fallback(*args)` when the wrapper declined the arrays (it
    checks their types, which may be no arrays at all), else the exit code settled (a failed guard,
    ...)."""
    package, environment, reads = entry.package, entry.environment_inputs, entry.reads
    only_output = package is persist.only_output

    def resume(code, *given):
        if code == FALLBACK:
            return fallback(*given)
        extra = environment() if reads else []
        if type(extra) is not list:
            return slow(given, {})
        try:
            outputs = settle(code, [given[i] for i in arrays] + extra)
        except (TypeError, GuardFailed, np.linalg.LinAlgError):
            return slow(given, {})
        cache.hits += 1
        return outputs[0] if only_output else package(outputs)
    return resume
