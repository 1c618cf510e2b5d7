"""Executors of traces: the LLVM JIT (default) or the NumPy reference evaluation.

`compile_trace(trace, use_jit, about) -> (kernel, backend_name, note)`: `kernel(inputs) -> outputs`
raises GuardFailed(k) when guard k fails; `about` (function, location, signature, kind) is what the
on-disk cache of machine code records next to the object (jit/diskcache.py).  The reference executor is
selected with `JITGRAD_DISABLE_JIT=1` or
`jit=False`; when the JIT cannot lower a trace the reference executor runs it and `note` says why
(cache_info shows it: nothing falls back silently).

`start_kernel(trace, use_jit, about, info)` is what a new trace of the dispatcher gets: tiered
execution.  The trace's first calls are answered by the reference executor (the IR's definition,
which every kernel is tested against) while its kernel compiles in a background thread (llvmlite
releases the GIL in LLVM), started once the first answer is computed; calls switch to the kernel once
it is ready.  A trace the reference
executor would run slowly, and for longer than its kernel takes to compile (both estimated:
`reference_cost`, `compile_cost`), compiles before its first call instead, and so does every trace with
`JITGRAD_SYNC_COMPILE=1` (the test suite and the benchmarks' cached-call timings use it) or without the
JIT.  `wait_compiled()` waits for the background compiles.
"""
import functools
import os
import threading

from .ir import loop_tape, run_trace
from .ir.loops import runtime_rows


def jit_enabled_by_default():
    return os.environ.get("JITGRAD_DISABLE_JIT", "") in ("", "0")


def loop_runner(use_jit):
    """What the tracer fast-forwards long rolled loops with (tracer/interpretation/rolling.py): `run(trace, inputs) ->
    outputs` compiling `trace` (precise math, as close to NumPy as the JIT gets); None without the JIT.
    It raises LoweringUnsupported or GuardFailed where the tracer then uses the reference evaluation."""
    if not use_jit:
        return None

    def run(trace, inputs):
        from . import jit     # (imported on first use: a first call whose kernel compiles in the background
        return jit.compile_trace(trace, precise_math=True)(inputs)   # may never need it in this thread)
    return run


def compile_trace(trace, use_jit, about=None):
    if use_jit:
        from . import jit
        try:
            return jit.compile_trace(trace, about=about), "llvm", ""
        except jit.LoweringUnsupported as e:
            return functools.partial(run_trace, trace), "reference", f"JIT cannot lower this trace: {e}"
    return functools.partial(run_trace, trace), "reference", "JIT disabled"


def tiered():
    """Whether new traces compile in the background (JITGRAD_SYNC_COMPILE unset or 0)."""
    return os.environ.get("JITGRAD_SYNC_COMPILE", "") in ("", "0")


# The reference executor's cost model (~3 us per op dispatch, ~4 ns per element: bench/first_call_phases.py's
# cases run by run_trace on the 2-core dev box, 2026-12-07), and the most a first call may spend in it
# before compiling first can be the better deal.
US_PER_OP, US_PER_ELEMENT, MAX_REFERENCE_US = 3.0, 0.004, 50_000.0
RUNTIME_TRIP_GUESS = 10_000     # the iterations reference_cost counts for a loop of a run-time trip count
# The compile's cost model (lowering + LLVM, thread CPU, same cases): ~10 ms per module, ~2 ms per array
# op (each a loop nest for LLVM's loop passes and vectorizer, inside a loop body or not), ~50 us per 0-d op
# (straight-line code).  It ranks the two tiers; it does not promise a time.
COMPILE_US_BASE, COMPILE_US_PER_ARRAY_OP, COMPILE_US_PER_SCALAR_OP = 10_000.0, 2_000.0, 50.0


def reference_cost(trace):
    """Estimated microseconds the reference executor takes on `trace` (a loop: trip x its body; one
    ending on a flag with room for CONTINUED_ROWS iterations or more, a nested `while` loop: one
    segment's share, the tracer's capacity being SEGMENTS x 4x the iterations it saw; one of a run-time
    trip count, a `while` loop of no bound too: RUNTIME_TRIP_GUESS iterations)."""
    total = 0.0
    for node in trace.nodes:
        if node.op == "loop":
            trip = node.params["trip"]
            if trip is None:                    # a run-time trip count: estimated as RUNTIME_TRIP_GUESS
                trip = RUNTIME_TRIP_GUESS
            elif node.params["exit"] is not None and trip >= loop_tape.CONTINUED_ROWS:
                trip //= loop_tape.SEGMENTS
            total += trip * reference_cost(node.params["body"])
        else:
            total += US_PER_OP + US_PER_ELEMENT * (0 if runtime_rows(node) else node.size)
    return total


def compile_cost(trace):
    """Estimated microseconds compiling `trace` takes (lowering and LLVM): each op once, those of loop
    bodies and branches too (their code is emitted once, whatever the trip count)."""
    total, pending = COMPILE_US_BASE, [trace]
    while pending:
        for node in pending.pop().nodes:
            if node.op == "loop":
                pending.append(node.params["body"])
            elif node.op == "cond":
                pending.extend(node.params["branches"])
            total += COMPILE_US_PER_ARRAY_OP if node.size > 1 else COMPILE_US_PER_SCALAR_OP
    return total


def compiles_first(trace):
    """Whether a new trace's first call waits for its kernel (tiered mode): when the reference executor
    would take long (over MAX_REFERENCE_US) and longer than the compile (a Kalman filter over 100 steps of
    2x2 matrices: ~35 ms on the reference executor, ~230 ms to compile: the reference executor answers)."""
    cost = reference_cost(trace)
    return cost > MAX_REFERENCE_US and cost > compile_cost(trace)


def start_kernel(trace, use_jit, about, info):
    """The kernel of a new trace of the dispatcher (see the module): compiled now, or a TieredKernel
    compiling in the background.  Sets `info.backend` and `info.note` (a PathInfo) to what runs it,
    now or when the background compile ends."""
    if not use_jit or not tiered() or compiles_first(trace):
        kernel, info.backend, info.note = compile_trace(trace, use_jit, about)
        return kernel
    info.backend, info.note = "llvm", "compiling in the background (the reference executor answers meanwhile)"
    return TieredKernel(trace, about, info)


_pending = set()              # TieredKernels whose compile has not ended
_pending_lock = threading.Lock()


class TieredKernel:
    """A trace's kernel while it compiles in a background thread: calls run the reference executor
    until the compiled kernel is ready, then that kernel (`fast_call` appears then, and the
    dispatcher's fast path with it).  A compile that fails leaves the reference executor answering,
    with the reason in `info.note`."""

    def __init__(self, trace, about, info):
        self.trace, self._about, self._info = trace, about, info
        self._compiled, self._then = None, []
        self.done = threading.Event()
        # not a daemon: an interpreter exiting meanwhile waits for LLVM to finish rather than unload
        # under it (and the on-disk cache gets the machine code for the next process)
        self._thread = threading.Thread(target=self._compile, name="jitgrad-compile")
        with _pending_lock:
            _pending.add(self)

    def start(self):
        """Start the background compile (once).  The first call starts it after its answer: lowering
        is Python code too, and sharing the GIL with it made W2's first answer ~1.6x slower."""
        with _pending_lock:
            if self._thread is None:
                return
            thread, self._thread = self._thread, None
        thread.start()

    def _compile(self):
        try:
            kernel, backend, note = compile_trace(self.trace, True, self._about)
            if backend == "llvm":     # here, not in the user's thread on the first cached call
                from . import jit
                jit.prepare_native_entry()
        except Exception as e:    # the reference executor keeps answering; cache_info says why
            kernel, backend, note = None, "reference", f"JIT failed in the background: {type(e).__name__}: {e}"
        self._info.backend, self._info.note = backend, note
        if backend == "llvm":
            self._compiled = kernel
        with _pending_lock:
            self.done.set()
            _pending.discard(self)
            then, self._then = self._then, []
        for action in then:
            action(kernel)

    def then(self, action):
        """Run `action(kernel compiled, or None)` once the compile has ended (now, if it has)."""
        with _pending_lock:
            if not self.done.is_set():
                self._then.append(action)
                return
        action(self._compiled)

    def __call__(self, inputs):
        compiled = self._compiled
        if compiled is not None:
            return compiled(inputs)
        try:
            return run_trace(self.trace, inputs)
        finally:
            if self._thread is not None:
                self.start()

    @property
    def fast_call(self):
        compiled = self._compiled
        return None if compiled is None else compiled.fast_call

    def direct(self):
        compiled = self._compiled
        return None if compiled is None else compiled.direct()

    def native(self):
        compiled = self._compiled
        return None if compiled is None else compiled.native()

    @property
    def machine_code(self):
        compiled = self._compiled
        if compiled is None:
            return "" if self.done.is_set() else "pending"
        return getattr(compiled, "machine_code", "")


def when_compiled(kernel, action):
    """Run `action(kernel)` now, or for a TieredKernel once its compile has ended (with the compiled
    kernel, or None when it failed: its PathInfo says why)."""
    if type(kernel) is TieredKernel:
        kernel.then(action)
    else:
        action(kernel)


def wait_compiled(timeout=None):
    """Wait until every background compile started so far has ended (True), or `timeout` seconds
    passed (False)."""
    with _pending_lock:
        pending = list(_pending)
    for kernel in pending:       # (one made but never called yet)
        kernel.start()
    return all(k.done.wait(timeout) for k in pending)
