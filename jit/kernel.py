"""compile_trace and Kernel: the compiled form of a trace and its Python calling convention.

`Kernel.fast_call(*arrays)` calls the kernel's METH_FASTCALL wrapper (pywrapper.py), which checks every
array's type, shape, dtype, byte order and flags before native code touches memory and allocates the
fresh outputs; anything unusual (non-contiguous or negatively strided inputs, other dtypes)
falls back to the checked ctypes path, which copies inputs to contiguous form and raises TypeError on
a shape/dtype mismatch.  `Kernel(inputs)` is fast_call(*inputs).  Exit codes become GuardFailed(k),
IndexError, or a rerun of the libm twin (PRECISE_EXIT).
"""
import ctypes
import re
import threading
import time
import types

import numpy as np

from ..ir.errors import GuardFailed
from . import blas, fftcall, hostcall, pywrapper
from .abi import HOST_ERROR, MEMORY_EXIT, OOB_EXIT, PRECISE_EXIT, SUCCESS
from .engine import compile_ir, generated, load_module
from .lower import lower

ENTRY_PLACEHOLDER = "jg_kernel_entry"     # the engine renames it after the module's content hash
_KERNEL_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)
_BLAS = re.compile(r"@jg_blas_(\w+)")


def _contiguous(x):
    """x as a row-major contiguous, aligned, native-byte-order array (copied only if it is not one)."""
    a = np.asarray(x)
    if not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a if a.flags.c_contiguous and a.flags.aligned else a.copy(order="C")


class Kernel:
    """A compiled trace: call it with the list of input arrays; returns the list of output arrays."""

    def __init__(self, trace, module, lowering, consts, timings, wrapper, about, signatures=None, form=None):
        self._trace = trace                # (or a function making it: a kernel restored from its form)
        self._module = module
        self.origin = module.origin
        self._about = about
        self._fn = _KERNEL_TYPE(module.address(module.name))
        self._precise_twin = None if lowering.precise_math else ...
        self._in_sig, self._out_sig = signatures or ([(v.shape, v.dtype) for v in trace.inputs],
                                                     [(v.shape, v.dtype) for v in trace.outputs])
        self.form = form     # what restore_kernel needs to load this kernel in another process, or None
        self._consts = consts              # the wrapper reads their addresses: keep them alive
        self._const_ptrs = [c.ctypes.data for c in self._consts]
        self._workspace_bytes = lowering.ws_size if lowering.caller_workspace else 0
        self._workspaces = threading.local()
        self._wrapper_self = pywrapper.WrapperSelf.make(self._const_ptrs, len(self._out_sig))
        self._wrapper_address = module.address(f"{module.name}_py") if wrapper else None
        self._wrapper_self.held += [module, consts]       # what the wrapper runs, kept by the builtin
        self._wrapper = pywrapper.make_builtin(self._wrapper_address, module.name, self._wrapper_self,
                                               self._wrapper_self.held) if wrapper else None
        self.timings = timings
        self.fast_call = self._make_fast_call()

    @property
    def trace(self):
        """The compiled trace (made on first use for a kernel restored from its form)."""
        if callable(self._trace):
            self._trace = self._trace()
        return self._trace

    def __call__(self, inputs):
        """Run the kernel on a list of input arrays; returns the list of fresh output arrays."""
        return self.fast_call(*inputs)

    def _make_fast_call(self):
        """fast_call(*arrays) -> list of fresh outputs: call the FASTCALL wrapper (it checks every array
        before native code runs and allocates the outputs), take the checked path when it declines.
        A closure over locals: this is the cached-call path, every attribute lookup counts."""
        wrapper, settle, n_out, workspace = self._wrapper, self._settle, len(self._out_sig), self._workspace
        if wrapper is None:
            return lambda *inputs: self._checked_call(inputs, self._fresh_outputs())
        needs_workspace = bool(self._workspace_bytes)

        def fast_call(*inputs):
            result = wrapper(*inputs, workspace()) if needs_workspace else wrapper(*inputs)
            if type(result) is int:
                return settle(result, inputs)
            return [result] if n_out == 1 else result
        return fast_call

    def direct(self):
        """The parts of the fastest call, for a caller that makes it inline (the dispatcher's fast
        path, where a Python call more counts): (wrapper, settle).  `result = wrapper(*inputs)` is the
        one output unless it is an int, and then `settle(result, inputs)` gives the outputs or raises.
        None unless the kernel has a FASTCALL wrapper, one output and no workspace."""
        if self._wrapper is None or len(self._out_sig) != 1 or self._workspace_bytes:
            return None
        return self._wrapper, self._settle

    def native(self):
        """(address of the FASTCALL wrapper's C function, its `self` object, number of outputs, settle)
        for a native caller (jit/entry.py; `settle` as in `direct`), or None unless the kernel has a
        wrapper and no workspace."""
        if self._wrapper is None or self._workspace_bytes:
            return None
        return self._wrapper_address, self._wrapper_self, len(self._out_sig), self._settle

    def _fresh_outputs(self):
        return [np.empty(s, d) for s, d in self._out_sig]

    def _settle(self, rc, inputs):
        """The outputs after the FASTCALL wrapper returned exit code `rc` (not SUCCESS): the checked
        path when it declined the arrays, else the exit code's meaning."""
        return self._checked_call(inputs, self._fresh_outputs()) if rc == pywrapper.FALLBACK else self._exit(rc, inputs)

    def _checked_call(self, inputs, outs):
        """Check shapes and dtypes, copy inputs to contiguous, call through ctypes."""
        if len(inputs) != len(self._in_sig):
            raise TypeError(f"kernel takes {len(self._in_sig)} inputs, got {len(inputs)}")
        arrays = []
        for x, (shape, dtype) in zip(inputs, self._in_sig):
            a = _contiguous(x)
            if a.shape != shape or a.dtype != dtype:
                raise TypeError(f"kernel input mismatch: expected {dtype}{list(shape)}, got {a.dtype}{list(a.shape)}")
            arrays.append(a)
        ptrs = [a.ctypes.data for a in arrays] + [o.ctypes.data for o in outs] + self._const_ptrs
        if self._workspace_bytes:
            ptrs.append(self._workspace().ctypes.data)
        rc = self._fn(np.array(ptrs, dtype=np.uintp).ctypes.data)
        return outs if rc == SUCCESS else self._exit(rc, arrays)

    def _exit(self, rc, inputs):
        """Turn a kernel exit code into a rerun of the precise twin or an exception."""
        if rc == PRECISE_EXIT:
            return self._precise()._checked_call(inputs, self._fresh_outputs())
        if rc == OOB_EXIT:
            raise IndexError("index out of bounds in a compiled kernel")
        if rc == HOST_ERROR:
            raise hostcall.take_error()
        if rc == MEMORY_EXIT:
            raise MemoryError("a compiled kernel could not allocate the tape of a loop")
        raise GuardFailed(rc)

    @property
    def machine_code(self):
        """Where this kernel's machine code came from ("compiled", "disk", "memory": an equal module
        of this process), with its precise twin's origin once the twin exists."""
        twin = self._precise_twin
        return self.origin if twin in (None, ...) else f"{self.origin}; precise twin: {twin.origin}"

    def _workspace(self):
        """This thread's workspace (64-byte aligned bytes; allocated on its first call, then reused)."""
        ws = getattr(self._workspaces, "array", None)
        if ws is None:
            raw = np.empty(self._workspace_bytes + 64, dtype=np.uint8)
            start = -raw.ctypes.data % 64
            ws = self._workspaces.array = raw[start:start + self._workspace_bytes]
        return ws

    def _precise(self):
        """The twin kernel with libm math, compiled on first need (same ABI, same constants)."""
        if self._precise_twin is ...:
            about = dict(self._about, kind=f"{self._about.get('kind', 'kernel')} (precise twin)")
            self._precise_twin = compile_trace(self.trace, precise_math=True, about=about)
        return self._precise_twin


def compile_trace(trace, precise_math=False, about=None):
    """Lower `trace` to LLVM, compile it (or load its machine code from the disk cache), and return its
    Kernel (LoweringUnsupported if it cannot).

    precise_math=True uses libm for every math function (slower, never needs a rerun).  `about`: what
    the disk cache's sidecar records (function, location, signature, kind); `Kernel.origin` says where
    the machine code came from."""
    t0 = time.perf_counter()
    text, lowering, wrapper, speed_level = module_text(trace, precise_math)
    consts = [_contiguous(c.params["value"]) for c in lowering.consts]
    t1 = time.perf_counter()
    about = dict(about or {}, ops=len(trace.nodes), precise_math=precise_math)
    module = compile_ir(text, lowering.name, speed_level=speed_level, about=about)
    t2 = time.perf_counter()
    form = None
    if module.key is not None and "@jg_host" not in text and not precise_math:
        form = {"key": module.key, "level": module.level, "consts": consts,
                "wrapper": pywrapper.CONVENTION if wrapper else 0,
                "workspace": lowering.ws_size if lowering.caller_workspace else 0,
                "blas": sorted(set(_BLAS.findall(text))),
                "pocketfft": fftcall.symbols_in(text),
                "signatures": ([(v.shape, v.dtype) for v in trace.inputs], [(v.shape, v.dtype) for v in trace.outputs])}
    return Kernel(trace, module, lowering, consts, {"lower": t1 - t0, "compile": t2 - t1}, wrapper, about,
                  form=form)


def module_text(trace, precise_math=False):
    """(LLVM module text, Lowering, whether it has the FASTCALL wrapper, speed level) of `trace`'s kernel."""
    text, lowering = lower(trace, ENTRY_PLACEHOLDER, precise_math)
    wrapper = pywrapper.layout_ok()
    if wrapper:
        text += pywrapper.wrapper_ir(lowering.name, [(v.shape, v.dtype) for v in trace.inputs],
                                     [(v.shape, v.dtype) for v in trace.outputs], len(lowering.consts),
                                     lowering.caller_workspace)
    fast = all(lowering.fast_codegen(c) for c in range(len(lowering.chunks)))
    return text, lowering, wrapper, 0 if fast else 2


def generated_code(trace):
    """(disk cache key, optimized LLVM IR, assembly) of the kernel `compile_trace(trace)` makes."""
    text, lowering, _, speed_level = module_text(trace)
    return generated(text, lowering.name, speed_level)


def restore_kernel(form, make_trace, about=None):
    """The Kernel of `form` (Kernel.form of a kernel of another process) with its machine code loaded
    from the disk cache, without lowering its trace (`make_trace()` makes it if ever needed: for the
    precise twin); None when the object is not on disk or this process cannot call it the same way."""
    t0 = time.perf_counter()
    if form["wrapper"] and (form["wrapper"] != pywrapper.CONVENTION or not pywrapper.layout_ok()):
        return None
    for name in form["blas"]:
        blas._symbol(name)
    if form.get("pocketfft") and not fftcall.available():
        return None
    for name in form.get("pocketfft", ()):
        fftcall.symbol(name)
    module = load_module(form["key"], form["level"])
    if module is None:
        return None
    lowering = types.SimpleNamespace(precise_math=False, ws_size=form["workspace"],
                                     caller_workspace=bool(form["workspace"]))
    return Kernel(make_trace, module, lowering, [_contiguous(c) for c in form["consts"]],
                  {"lower": 0.0, "compile": time.perf_counter() - t0}, form["wrapper"], about or {},
                  signatures=form["signatures"], form=form)
