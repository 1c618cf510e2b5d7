"""The per-function cache: signature keys -> the traced paths seen under each, and the statistics.

Under each signature key sits a list of CacheEntry, one per branch path traced (a trace tree flattened:
each entry's guards describe its path).  An entry answers a call only if its environment assumptions
hold (checked here, in Python) and its value guards hold (checked inside the kernel).

Threads: lookups take no lock (a cached call is lock-free); insertions do, so that threads missing the
same signature at once, each tracing it, leave one entry per path (see `FunctionCache.add`).  The
hit/miss counters are statistics, not synchronised.
"""
import dataclasses
import threading

import numpy as np

from .aliases import aliased_write
from .explain import Retrace
from .ir.errors import GuardFailed
from .ir.printer import format_trace
from .tracer import NamespaceGetter


@dataclasses.dataclass
class PathInfo:
    """One cached trace, as `cache_info()` reports it."""
    signature: str
    backend: str
    note: str
    guards: list            # (why, loc, expected) per value guard, in check order
    environment: list       # descriptions of the environment assumptions
    ops: int                # nodes in the compiled trace
    trace: object = dataclasses.field(repr=False, default=None)   # the compiled trace (`text` prints it)
    machine_code: str = ""  # where the kernels' machine code came from: "compiled", "disk" (the on-disk
                            # cache), "memory" (an equal module of this process); "" for the reference
    loops: list = dataclasses.field(default_factory=list)   # each loop rolled (trip, carries) or not (why)


    @property
    def text(self):
        """The compiled trace, printed (on demand: printing a long trace costs as much as optimizing it)."""
        return format_trace(self.trace) if self.trace is not None else ""


@dataclasses.dataclass
class CacheInfo:
    """Statistics of one jitgrad function: `traces` run, cache `hits`, `misses`, the cached `paths`,
    and `retraces`: why each trace after the first of its signature happened."""
    traces: int
    hits: int
    misses: int
    paths: list
    retraces: list
    uncached_calls: int
    restored: int = 0       # paths restored from the disk cache (traced by another process)
    disk_rejected: list = dataclasses.field(default_factory=list)   # why records on disk were not reused
    promoted: int = 0       # paths compiled, without tracing, in a form reading int arguments as trip counts


class CacheEntry:
    """A compiled trace for one signature and one branch path.  `written` lists the inputs (arguments)
    the trace writes into: calls where one of them shares memory with another input are declined.
    `sizes` lists the int argument leaves the kernel reads (as 0-d intp inputs after the arguments'
    arrays: loop trip counts, tracer/arrays/sizeint.py)."""

    __slots__ = ("kernel", "env", "guards", "package", "info", "written", "environment_inputs", "name_checks",
                 "name_lookups", "reads", "fast", "sizes")

    def __init__(self, kernel, env, guards, package, info, written=(), sizes=()):
        self.sizes = tuple(sizes)
        self.kernel = kernel
        self.env = env
        self.guards = guards
        self.package = package
        self.info = info
        self.written = tuple(written)
        self.fast = None       # (what it was made for, the cached-call entry): jitgrad/api.py _fast_path
        # the names checks of module namespaces (each `check()` says whether it holds; it may raise; or
        # for a few names, `name_lookups`: see NamespaceGetter.lookups), then the other entries (`reads`,
        # whether any) read by environment_inputs()
        namespaces = [e.getter for e in env if type(e.getter) is NamespaceGetter]
        self.name_checks = tuple(g.get for g in namespaces if not g.lookups)
        self.name_lookups = tuple(check for g in namespaces for check in g.lookups)   # the others' names
        self.reads = any(type(e.getter) is not NamespaceGetter for e in env)
        self.environment_inputs = _environment_reader([e for e in env if type(e.getter) is not NamespaceGetter])

    def failed_name_check(self):
        """The EnvEntry of the first namespace whose names no longer resolve as traced, else None."""
        for e in self.env:
            if type(e.getter) is NamespaceGetter:
                try:
                    if not e.getter.get():
                        return e
                except Exception:
                    return e
        return None


def _environment_reader(env):
    """environment_inputs() -> the arrays read from the environment `env` (a list of EnvEntry), or the
    EnvEntry that no longer holds.  Each place is read once per call; this runs on every cached call."""
    reads = [(e.getter.get, e.holds, e.kind == "array", e) for e in env]

    def environment_inputs():
        arrays = []
        for get, holds, is_array, e in reads:
            try:
                value = get()
            except Exception:
                return e
            if not holds(value):
                return e
            if is_array:
                arrays.append(value)
        return arrays
    return environment_inputs


class FunctionCache:
    """All cache entries of one function, with statistics and the recompile limit."""

    def __init__(self, max_traces):
        self.max_traces = max_traces
        self.entries = {}
        self.traces = self.hits = self.misses = self.uncached_calls = 0
        self.native_hits = np.zeros(1, np.int64)    # hits counted by native entries (jit/entry.py)
        self.retraces = []
        self.warned = False
        self.restored = 0
        self.promoted = 0
        self.disk_rejected = []
        self._disk_tried = set()
        self._lock = threading.Lock()

    def seen(self, key):
        """How many entries `key` has now (pass it to `add` after tracing a miss)."""
        return len(self.entries.get(key, ()))

    def lookup(self, key, inputs, leaves=(), again=False):
        """Run the first entry under `key` whose assumptions hold (`leaves`: the call's argument leaves);
        (outputs, entry) or (None, reason).  `again`: a second lookup for the call (its miss counted)."""
        outputs, found = self._first_holding(self.entries.get(key, ()), inputs, leaves)
        if outputs is not None:
            self.hits += 1
            self.misses -= again
        elif not again:
            self.misses += 1
        return outputs, found

    @staticmethod
    def _first_holding(entries, inputs, leaves=()):
        tried = []                   # why each path did not answer (the last is the retrace's reason)
        for entry in entries:
            changed = entry.failed_name_check()
            if changed is not None:
                tried.append(Retrace.of_entry(changed))
                continue
            extra = entry.environment_inputs()
            if not isinstance(extra, list):
                tried.append(Retrace.of_entry(extra))
                continue
            if entry.written and aliased_write(inputs + extra, entry.written):
                tried.append(Retrace("an argument written in place shares memory with another input"))
                continue
            try:
                sizes = [np.asarray(leaves[p], np.intp) for p in entry.sizes] if entry.sizes else []
                outputs = entry.kernel(inputs + sizes + extra)
            except GuardFailed as failed:
                g = entry.guards[failed.index]
                tried.append(Retrace.of_guard(g.params["why"], g.params["loc"], g.params["expected"]))
                continue
            except np.linalg.LinAlgError as e:   # the data makes a routine raise: that path is not this one
                tried.append(Retrace(f"LinAlgError on this path: {e}"))
                continue
            return outputs, entry
        if not tried:
            return None, None
        tried[-1].tried = tried
        return None, tried[-1]

    def restore(self, key, load):
        """Add the entries `load()` restores from disk under `key` (asked once per key); whether any."""
        with self._lock:
            if key in self._disk_tried:
                return False
            self._disk_tried.add(key)
        restored = load()
        with self._lock:
            self.entries.setdefault(key, []).extend(restored)
            self.restored += len(restored)
        return bool(restored)

    def full(self):
        return self.traces >= self.max_traces

    def add(self, key, entry, reason, seen=0, inputs=None, leaves=(), traced=True):
        """Cache `entry` (traced after a miss of `key` that had `seen` entries) and return it; or, when
        another thread cached an entry under `key` since that answers `inputs` (the arguments' arrays),
        return that one instead and drop `entry`: the same path is never cached twice."""
        with self._lock:
            entries = self.entries.setdefault(key, [])
            if inputs is not None and len(entries) > seen:
                outputs, peer = self._first_holding(entries[seen:], inputs, leaves)
                if outputs is not None:
                    return peer
            self.traces += traced         # (else a form of a trace compiled for other int values)
            self.promoted += not traced
            if reason is not None:
                self.retraces.append(reason)
            entries.append(entry)
            return entry

    def info(self):
        paths = []
        with self._lock:
            cached = [list(entries) for entries in self.entries.values()]
        for entries in cached:
            for e in entries:
                e.info.machine_code = getattr(e.kernel, "machine_code", "")
                paths.append(e.info)
        hits = self.hits + int(self.native_hits[0])
        return CacheInfo(self.traces, hits, self.misses, paths, list(self.retraces), self.uncached_calls,
                         self.restored, list(self.disk_rejected), self.promoted)
