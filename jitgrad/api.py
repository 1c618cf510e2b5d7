"""The public API: `jit_grad` and `value_and_grad`, and `Transformed`, the compiled and cached machinery
every transform shares (jitgrad/transforms.py holds the others).

Each wraps an unmodified Python function.  A call computes the signature key of the arguments, asks the
function's cache for a compiled trace whose assumptions hold, and otherwise traces the function (the
tracer interprets its bytecode on the concrete arguments), differentiates the trace, compiles it and
caches it under the key.
"""
import contextlib
import functools
import gc
import itertools
import operator
import time
import warnings

import numpy as np

from . import backend, explain, fastentry, persist
from .aliases import aliased_write
from .cache import CacheEntry, FunctionCache, PathInfo
from .ir import autodiff, passes
from .ir.builder import Builder
from .ir.errors import GuardFailed, JitgradError, JitgradWarning, TraceError
from .ir.evaluate import run_trace
from .ir.value import Trace
from .pytree import flatten, leaf_count, unflatten
from .signature import as_input_array, describe_key, is_differentiable, is_dynamic, leaf_key, normalize_argnums
from .nested import call_in_trace, reads_enclosing_trace, splice
from .tracer import MISSING, TracedArray, contains_traced, current, error_mode_raises, error_mode_reader
from .tracer import primal, quiet_error_mode, size_positions
from .tracing import effect_outputs, function_location, replaying, run_traced, trace_outputs


class Signature:
    """What one signature key implies: which leaves are inputs and which inputs are differentiated."""

    __slots__ = ("dynamic", "wrt", "grad_trees", "description", "positional_arrays", "statics", "ints")

    def __init__(self, fn, leaves, keys, treedef, argnums, runtime_ints=False):
        self.dynamic = [i for i, k in enumerate(keys) if is_dynamic(k)]
        # int leaves that may be run-time trip counts (tracer/arrays/sizeint.py)
        self.ints = tuple(i for i, k in enumerate(keys) if runtime_ints and k[0] == "static" and k[1] is int)
        # every argument a plain ndarray or a static scalar, passed positionally: the fast path may
        # serve such calls; `statics` lists (position, type, value) of the static ones
        self.positional_arrays = (not treedef[2][1][2] and all(c is None for c in treedef[2][0][2])
                                  and all(k[0] in ("array", "static") for k in keys))
        self.statics = tuple((i, k[1], k[2]) for i, k in enumerate(keys) if k[0] == "static")
        input_index = {pos: i for i, pos in enumerate(self.dynamic)}
        args_def = treedef[2][0]
        offsets = [0]
        for child in args_def[2]:
            offsets.append(offsets[-1] + leaf_count(child))
        self.wrt, self.grad_trees = [], []
        for a in argnums:
            if not -len(args_def[2]) <= a < len(args_def[2]):
                raise TraceError(f"argnums={a} but {fn.__name__} was called with {len(args_def[2])} positional "
                                 "argument(s)", function_location(fn))
            a %= len(args_def[2])
            positions = range(offsets[a], offsets[a + 1])
            for pos in positions:
                if not is_differentiable(keys[pos]):
                    what = type(leaves[pos]).__name__
                    if isinstance(leaves[pos], np.ndarray):
                        what = f"array of dtype {leaves[pos].dtype}"
                    raise TraceError(f"cannot differentiate with respect to argument {a} of {fn.__name__}: it "
                                     f"is or contains a {what}; jitgrad differentiates floating arrays and "
                                     "floats (pass ints and strings in arguments not listed in argnums)",
                                     function_location(fn))
            self.wrt.extend(input_index[pos] for pos in positions)
            self.grad_trees.append((args_def[2][a], [leaves[pos] for pos in positions]))
        self.description = ", ".join(describe_key(k) for k in keys)


def _grad_leaf(template, value):
    """A gradient leaf of the same kind as the argument leaf it belongs to."""
    if type(value) is TracedArray:   # nested use: already of the right kind (see nested.py)
        return value
    if type(template) is float:
        return float(value)
    if isinstance(template, np.generic):
        return type(template)(value)
    return np.asarray(value)


class Staged:
    """One traced call, turned into what a transform runs.  `ctx` is the TraceContext of the traced
    function; `trace` (inputs: the call's dynamic leaves in order, then the environment arrays `ctx`
    read) is compiled, guarded and cached, and `package(outputs)` makes the user's result of its
    outputs.  `splice_form()` gives (trace, kinds, package) for use inside an enclosing trace
    (nested.py): the outputs there are traced values of the types `kinds` (often the same trace and
    package; a Jacobian's differs: its passes are assembled in the IR)."""

    __slots__ = ("ctx", "trace", "package", "_splice_form", "first_package", "result")

    def __init__(self, ctx, trace, package, splice_form, first_package=None, result=MISSING):
        self.ctx, self.trace, self.package, self._splice_form = ctx, trace, package, splice_form
        self.first_package = package if first_package is None else first_package   # for the tracing call
        self.result = result      # what the traced call returned, for a stage(traced=...) of the same call

    def splice_form(self):
        return self._splice_form()


class Transformed:
    """A transformed function (jit_grad, jvp, jacobian, ...), compiled and cached per signature.

    A call computes the signature key of its arguments, asks the cache for a compiled trace whose
    assumptions hold, and otherwise traces, transforms (`stage`, which subclasses define), compiles and
    caches.  Inside a traced function the staged trace is spliced into the enclosing one instead."""

    kind = "transform"   # what the on-disk cache of machine code records as the kind
    runtime_ints = False  # whether int arguments may become run-time trip counts (tracer/arrays/sizeint.py)

    def __init__(self, fn, argnums, jit, max_traces):
        if not callable(fn):
            raise TraceError(f"expected a function to transform, got {type(fn).__name__}")
        self.fn = fn
        self.argnums, self._tuple_argnums = normalize_argnums(argnums)
        self.jit = backend.jit_enabled_by_default() if jit is None else bool(jit)
        self._cache = FunctionCache(max_traces)
        self._signatures = {}
        self._wildcards = set()      # tuples of int leaf positions some cache key holds as wildcards
        self._promotions = {}        # wildcard key -> what _promote compiles for it (a recorded call)
        self._set_fast(None)
        functools.update_wrapper(self, fn, updated=())   # never copy a wrapped function's state

    # A call `self(*args, **kwargs)` runs `self._entry`, looked up by a C-level getter: the cached-call
    # path's own function (one Python frame per call: W4 measures this path), or `_slow_entry`.
    __call__ = property(operator.attrgetter("_entry"), doc="Call the transformed function.")

    def _slow_entry(self, *args, **kwargs):
        return self._call(args, kwargs)

    def _set_fast(self, fast):
        """Install `fast` (made by _fast_path, or None) as what a call runs first."""
        self._fast = fast
        self._entry = self._slow_entry if fast is None else fast

    def signature(self, leaves, keys, treedef):
        """The Signature of a call with these argument leaves (differentiated: `argnums`)."""
        return Signature(self.fn, leaves, keys, treedef, self.argnums, self.runtime_ints)

    def stage(self, sig, leaves, treedef, traced=None):
        """Trace fn on `leaves` and transform: a Staged.  `traced`: the (ctx, result) of a call recorded
        before (its `Staged.result`), transformed in its form reading int arguments at run time
        (tracer.primal); transforms whose Staged has no result never get one."""
        raise NotImplementedError

    def _call(self, args, kwargs):
        if current() is not None and contains_traced(args, kwargs):
            return call_in_trace(self, args, kwargs)   # applied inside a traced function
        leaves, treedef = flatten((args, kwargs))
        keys = tuple(leaf_key(leaf) for leaf in leaves)
        key = (getattr(self.fn, "__code__", None), treedef, keys)
        sig = self._signatures.get(key)
        if sig is None:
            sig = self._signatures[key] = self.signature(leaves, keys, treedef)
        inputs = [as_input_array(leaves[i]) for i in sig.dynamic]
        seen = self._cache.seen(key)
        if error_mode_raises():      # NumPy raises on floating-point errors, compiled kernels cannot
            with _collector_paused():
                return self._trace_and_run(key, sig, leaves, treedef, inputs, reason=None, seen=seen)
        outputs, found = self._cache.lookup(key, inputs, leaves)
        if outputs is None and self._cache.restore(key, lambda: persist.restore(self, key, sig, leaves)):
            outputs, found = self._cache.lookup(key, inputs, leaves)   # paths traced by another process
        if outputs is None and self._wildcards:
            outputs, found = self._wildcard_lookup(key, inputs, leaves, found)
        if outputs is None and sig.ints:
            outputs, found = self._restore_wildcards(key, sig, inputs, leaves, found)
        if outputs is not None:
            self._set_fast(_fast_path(self.fn, key[0], sig, found, self._cache, len(args), self._call))
            return found.package(outputs)
        with _collector_paused():
            return self._trace_and_run(key, sig, leaves, treedef, inputs, reason=found, seen=seen)

    def _wildcard_lookup(self, key, inputs, leaves, found):
        """A call missing its exact key, answered by a path whose int arguments are run-time trip counts
        (tracer/arrays/sizeint.py): such a path is compiled when first asked for (`_promote`)."""
        for positions in list(self._wildcards):
            wild = _wildcard(key, positions)
            if wild is None:
                continue
            recipe = self._promotions.pop(wild, None)
            if recipe is not None:
                with _collector_paused():
                    self._promote(wild, *recipe)
            if wild in self._cache.entries:
                outputs, tried = self._cache.lookup(wild, inputs, leaves, again=True)
                found = tried or found
                if outputs is not None:
                    return outputs, found
        return None, found

    def _restore_wildcards(self, key, sig, inputs, leaves, found):
        """A call missing its exact key, answered by a record on disk of a form reading some of its int
        arguments at run time (each set of them asked once: up to 3 ints, every set; more, all of them)."""
        ints = sig.ints
        sets = [c for k in range(len(ints), 0, -1) for c in itertools.combinations(ints, k)] if len(ints) <= 3 \
            else [ints]
        for positions in sets:
            wild = _wildcard(key, positions)
            if wild is not None and self._cache.restore(
                    wild, lambda: persist.restore(self, wild, sig, leaves, positions)):
                self._wildcards.add(positions)
                outputs, tried = self._cache.lookup(wild, inputs, leaves, again=True)
                found = tried or found
                if outputs is not None:
                    return outputs, found
        return None, found

    def _promote(self, key, sig, leaves, treedef, traced):
        """Cache under wildcard `key` the form of a recorded call (`traced`: its (ctx, result)) whose loops
        read their trip counts from its int arguments at run time (tracer.primal)."""
        started = time.perf_counter()
        staged = self.stage(sig, leaves, treedef, traced=traced)
        sizes = tuple(p for p, k in enumerate(key[2]) if k[0] == "size")
        self._add_entry(key, sig, staged, None, self._cache.seen(key), None, leaves, time.perf_counter() - started,
                        sizes)

    def _trace_and_run(self, key, sig, leaves, treedef, inputs, reason, seen=0):
        started = time.perf_counter()
        staged = self.stage(sig, leaves, treedef)
        traced_s = time.perf_counter() - started
        ctx, trace, first = staged.ctx, staged.trace, staged.first_package
        if reads_enclosing_trace(ctx):   # called inside a traced function, closing over its values
            return splice(sig, leaves, leaves, staged)
        env_inputs = [e.getter.get() for e in ctx.env if e.kind == "array"]
        if self._cache.full() or ctx.uncacheable is not None:
            if ctx.uncacheable is None:
                self._warn_limit(reason)
            else:
                self._cache.retraces.append(f"not cached: {ctx.uncacheable}")
            self._cache.uncached_calls += 1
            return first(run_trace(trace, inputs + env_inputs))
        entry, cached = self._add_entry(key, sig, staged, reason, seen, inputs, leaves, traced_s)
        wild = size_positions(ctx) if staged.result is not MISSING else ()
        if wild and not getattr(ctx.replay, "effects", None):  # another value of these ints: see _promote
            self._promotions[_wildcard(key, wild)] = (sig, leaves, treedef, (ctx, staged.result))
            self._wildcards.add(wild)
        self._set_fast(_fast_path(self.fn, key[0], sig, cached, self._cache, len(leaves), self._call))
        try:
            return first(entry.kernel(inputs + env_inputs))
        except GuardFailed as e:
            return self._rounded_otherwise(entry, e.index, inputs + env_inputs, first)

    def _add_entry(self, key, sig, staged, reason, seen, inputs, leaves, traced_s, sizes=()):
        """Compile `staged` and cache it under `key`: (its CacheEntry, the entry cached: another
        thread's for this path, or it).  `sizes`: int leaves the kernel reads (after the arrays)."""
        ctx, trace = staged.ctx, staged.trace
        about = {"function": getattr(self.fn, "__qualname__", repr(self.fn)), "location": function_location(self.fn),
                 "signature": sig.description, "kind": self.kind}
        guards = trace.guards
        info = PathInfo(", ".join(describe_key(k) for k in key[2]) if sizes else sig.description, "", "",
                        [(g.params["why"], g.params["loc"], g.params["expected"]) for g in guards],
                        [e.describe() for e in ctx.env], len(trace.nodes), trace,
                        loops=ctx.loops.report() if ctx.loops is not None else [])
        if not sizes:
            explain.traced(self, sig, trace, ctx.env, reason, traced_s)      # (JITGRAD_LOG=recompiles,guards,trace)
        kernel = backend.start_kernel(trace, self.jit, about, info)   # (sets info.backend and info.note)
        entry = CacheEntry(kernel, ctx.env, guards, staged.package, info, ctx.written_inputs, sizes)
        cached = self._cache.add(key, entry, reason, seen, inputs, leaves, traced=not sizes)
        if cached is entry:    # (a kernel compiling in the background is recorded once it is ready)
            backend.when_compiled(kernel, lambda compiled: persist.store(
                self, key, sig, staged, compiled, info.backend, info.note, reason, traced_s))
        return entry, cached

    def _rounded_otherwise(self, entry, index, inputs, package):
        """The fresh kernel of `entry` decided its guard `index` otherwise than NumPy did while tracing:
        compiled code computes the value deciding it in another order (a sum of terms that cancel, a
        value pinned exactly).  The path is answered by the reference executor, whose decisions are
        NumPy's, from this call on; cache_info says so."""
        g = entry.guards[index]
        why = f"compiled code rounds the value of {g.params['why']!r} at {g.params['loc']} otherwise than NumPy"
        entry.kernel = functools.partial(run_trace, entry.info.trace)
        entry.info.backend, entry.info.note = "reference", f"{why}: this path runs on the reference executor"
        self._set_fast(None)
        self._cache.retraces.append(entry.info.note)
        try:
            return package(entry.kernel(inputs))
        except GuardFailed as e:
            raise JitgradError("internal error: a fresh trace failed its own guard "
                               f"{entry.guards[e.index].params['why']!r} in the reference executor; "
                               "please report this") from e

    def _warn_limit(self, reason):
        if not self._cache.warned:
            self._cache.warned = True
            warnings.warn(f"jitgrad: {self.fn.__name__} was traced {self._cache.traces} times (the limit); "
                          f"last retrace because {reason}. Further new paths are traced and evaluated on "
                          "every call without caching.", JitgradWarning, stacklevel=4)

    def cache_info(self):
        """Traces, hits, misses, the cached paths (with their guards) and the reason for each retrace."""
        return self._cache.info()


class GradFunction(Transformed):
    """The function returned by `jit_grad` / `value_and_grad`; call it like the original."""

    restorable = True       # jitgrad/persist.py restores its traces from disk (without has_aux)
    runtime_ints = True

    def __init__(self, fn, argnums, has_aux, with_value, jit, max_traces):
        super().__init__(fn, argnums, jit, max_traces)
        self.has_aux = has_aux
        self.with_value = with_value
        self.kind = "value_and_grad" if with_value else "grad"

    def __reduce__(self):
        """Pickled as its recipe (the function, by reference, and the options): a worker process gets a
        fresh one, whose first call of a signature warm-starts from the disk cache (jitgrad/persist.py)."""
        argnums = self.argnums if self._tuple_argnums else self.argnums[0]
        return GradFunction, (self.fn, argnums, self.has_aux, self.with_value, self.jit, self._cache.max_traces)

    def stage(self, sig, leaves, treedef, traced=None):
        """Trace fn and differentiate: the joint trace's outputs are the loss, the traced aux leaves,
        then the values side effects store, then one gradient per `sig.wrt`."""
        ctx, result = traced or run_traced(self.fn, leaves, treedef, sig.dynamic, backend.loop_runner(self.jit),
                                           replay=True, sizes=sig.ints)
        outputs, layout = trace_outputs(ctx, result, self.has_aux, self.fn)
        effect_values, replay = effect_outputs(ctx, len(outputs))
        outputs += effect_values
        joint = passes.optimize(autodiff.value_and_grad(primal(ctx, outputs, traced is not None), sig.wrt, out=0))
        n_primal = len(outputs)
        package = functools.partial(self._package, sig, layout, n_primal)
        kinds = [layout.loss_type] + [np.ndarray] * (n_primal - 1) + [
            type(t) for _, templates in sig.grad_trees for t in templates]
        trace, compiled_package = self._packager(sig, joint, n_primal, package, replay is None)
        return Staged(ctx, trace, compiled_package if replay is None else replaying(compiled_package, replay),
                      lambda: (joint, kinds, package), compiled_package, result)

    def _packager(self, sig, joint, n_primal, package, may_pick=True):
        """(trace to run, outputs -> what the user gets).  When the answer is one array gradient, the
        trace keeps only that output (no value computed or allocated for nothing) and the package
        is a direct pick."""
        simple = (may_pick and not self.has_aux and not self.with_value and not self._tuple_argnums
                  and sig.grad_trees[0][0] is None and type(sig.grad_trees[0][1][0]) is np.ndarray)
        if simple:
            return passes.dce(Trace(joint.inputs, joint.nodes, joint.outputs[n_primal:])), persist.only_output
        if not (self.has_aux or self.with_value):
            return _without_loss(joint), package
        return joint, package

    def _package(self, sig, layout, n_primal, outputs):
        grads = package_gradients(sig, outputs[n_primal:], self._tuple_argnums)
        value = layout.loss(outputs[0])
        if self.has_aux:
            value = (value, layout.aux(outputs))
        if self.with_value:
            return value, grads
        return (grads, value[1]) if self.has_aux else grads


def _without_loss(joint):
    """`joint` with its output 0, the loss, a zero of the loss's type: the caller does not return the
    value, so nothing computes it (a softmax cross-entropy's row terms, for one)."""
    b = Builder()
    loss = joint.outputs[0]
    zero = b.fill(loss.shape, loss.dtype, 0)
    return passes.dce(Trace(joint.inputs, [zero, *joint.nodes], [zero, *joint.outputs[1:]]))


def package_gradients(sig, values, as_tuple, keep_arrays=False):
    """The gradient trees of `sig.grad_trees` made of `values` (one per leaf, in order): a tuple of
    trees when `as_tuple` (argnums was a tuple), else the one tree.  Leaves take the kind of their
    argument leaf (a float's gradient is a float), or stay as they are with `keep_arrays`."""
    grads = []
    k = 0
    for tree, templates in sig.grad_trees:
        leaves = values[k:k + len(templates)] if keep_arrays else [
            _grad_leaf(t, v) for t, v in zip(templates, values[k:k + len(templates)])]
        grads.append(unflatten(tree, leaves))
        k += len(templates)
    return tuple(grads) if as_tuple else grads[0]


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector while a trace is recorded, differentiated and compiled:
    those build hundreds of thousands of small objects (IR Values, LLVM text lines), and the
    collections their allocation triggers cost ~15% of a long first call.  Garbage is collected
    afterwards as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _wildcard(key, positions):
    """`key` with the int leaves at `positions` keyed as run-time trip counts (("size", int)), or None
    when one of them is not an int there."""
    keys = list(key[2])
    for p in positions:
        if keys[p][0] != "static" or keys[p][1] is not int:
            return None
        keys[p] = ("size", int)
    return key[0], key[1], tuple(keys)


def _fast_path(fn, code, sig, entry, cache, n_args, slow):
    """The cached-call path for the last entry hit, when its signature allows one (all arguments plain
    arrays or static scalars passed positionally, a JIT kernel): `fast(*args, **kwargs)`, which checks
    argument types, static values, that `fn` still runs `code` (None: fn has no `__code__`),
    environment assumptions and (for a trace writing into an argument) aliasing here, shapes, dtypes
    and value guards in the kernel; anything else goes to `slow(args, kwargs)` (the full path).
    Every Python-level call costs here (W4 is this path): the names of a namespace are looked up
    inline when they are few, NumPy's error mode is read by a C-level call, and a gradient that is the
    one output is returned without a package call."""
    fast_call = getattr(entry.kernel, "fast_call", None)
    if not sig.positional_arrays or fast_call is None:
        return None
    quiet = quiet_error_mode()
    sizes = entry.sizes             # int arguments passed as run-time trip counts (any int: 0-d intp inputs)
    statics = tuple(s for s in sig.statics if s[0] not in sizes)
    made_for = (n_args, code, quiet, entry.kernel, fast_call)     # (the fast path of each entry is kept)
    if entry.fast is not None and all(a is b for a, b in zip(entry.fast[0], made_for)) and entry.fast[2] == statics:
        return entry.fast[1]
    package, ndarray, environment = entry.package, np.ndarray, entry.environment_inputs
    written, name_checks, name_lookups, reads = entry.written, entry.name_checks, entry.name_lookups, entry.reads
    only_output, missing = package is persist.only_output, MISSING
    direct = entry.kernel.direct() if hasattr(entry.kernel, "direct") and not (reads or written) else None
    wrapper, settle = direct or (None, None)
    current_mode, raising = error_mode_reader(), error_mode_raises
    static_positions = {i for i, _, _ in statics} | set(sizes)
    array_positions = [i for i in range(n_args) if i not in static_positions]

    def fast(*given, **kwargs):
        if kwargs or len(given) != n_args or code is not None and fn.__code__ is not code:
            return slow(given, kwargs)
        if (quiet is None or current_mode() is not quiet) and raising():
            return slow(given, kwargs)
        args = given
        if static_positions:
            for i, t, value in statics:
                if type(given[i]) is not t or given[i] != value:
                    return slow(given, kwargs)
            args = [given[i] for i in array_positions]
        for a in args:
            if type(a) is not ndarray:
                return slow(given, kwargs)
        if sizes:
            if any(type(given[i]) is not int for i in sizes):
                return slow(given, kwargs)
            args = [*args, *(given[i] for i in sizes)]      # (the kernel's wrapper takes them as ints)
        for get, name, expected in name_lookups:
            if get(name, missing) is not expected:
                return slow(given, kwargs)
        if name_checks and not _names_hold(name_checks):
            return slow(given, kwargs)
        try:
            if wrapper is not None:      # the one-output fast_call, inline: one Python call less
                out = wrapper(*args)
                if type(out) is not int:
                    cache.hits += 1
                    return out if only_output else package([out])
                outputs = settle(out, args)
            elif reads:
                extra = environment()
                if type(extra) is not list or written and aliased_write([*args, *extra], written):
                    return slow(given, kwargs)
                outputs = fast_call(*args, *extra)
            elif written and aliased_write(args, written):
                return slow(given, kwargs)
            else:
                outputs = fast_call(*args)
        except (TypeError, GuardFailed, np.linalg.LinAlgError):
            return slow(given, kwargs)
        cache.hits += 1
        return outputs[0] if only_output else package(outputs)
    native = fastentry.native_entry(fn, code, sig, entry, cache, n_args, fast, slow, quiet)
    entry.fast = (made_for, native or fast, statics)
    return entry.fast[1]


def _names_hold(name_checks):
    """True if every namespace check holds (a name rebound to an object whose comparison raises
    does not)."""
    try:
        return all(check() for check in name_checks)
    except Exception:
        return False


def _decorator(with_value):
    def make(fn=None, argnums=0, has_aux=False, *, jit=None, max_traces=8):
        if fn is None:
            return lambda f: GradFunction(f, argnums, has_aux, with_value, jit, max_traces)
        return GradFunction(fn, argnums, has_aux, with_value, jit, max_traces)
    return make


jit_grad = _decorator(with_value=False)
jit_grad.__name__ = "jit_grad"
jit_grad.__doc__ = """Return a function computing the gradient of scalar-valued `fn`.

    `fn` is ordinary Python + NumPy code, used unmodified; the gradient is taken with respect to the
    positional argument(s) `argnums` (an int, or a tuple giving a tuple of gradients).  Arguments may be
    arrays, floats, and tuples/lists/dicts/namedtuples/dataclasses of them; each gradient has the
    structure of its argument.  With `has_aux=True`, `fn` returns `(loss, aux)` and the result is
    `(grads, aux)`.  `jit=False` (or `JITGRAD_DISABLE_JIT=1`) runs traces with the NumPy reference
    executor instead of compiled kernels.  After `max_traces` traces (default 8) jitgrad warns once
    and stops caching new paths (answers stay correct).  Usable as a decorator, with or without
    arguments: `@jit_grad` or `@jit_grad(argnums=(0, 1))`.
    """

value_and_grad = _decorator(with_value=True)
value_and_grad.__name__ = "value_and_grad"
value_and_grad.__doc__ = """Like `jit_grad`, but return `(value, grads)` (`((value, aux), grads)` with has_aux)."""
