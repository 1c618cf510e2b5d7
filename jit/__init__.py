"""jitgrad.jit: lowering of traces to native kernels with llvmlite.

Interface (used by the dispatcher):
  compile_trace(trace) -> Kernel          raises LoweringUnsupported at compile time for a trace it
                                          cannot lower (then use jitgrad.ir.run_trace instead).
  Kernel(inputs: list[np.ndarray]) -> list[np.ndarray]
                                          outputs are fresh arrays the caller owns (0-d for scalars);
                                          inputs may be non-contiguous / negatively strided (copied);
                                          shapes and dtypes are checked before native code runs
                                          (TypeError on mismatch).  Raises jitgrad.ir.GuardFailed(k)
                                          when the k-th guard (trace.guards order) fails, IndexError
                                          when an index array holds an out-of-range index, and the
                                          op's own exception when a host-called op (e.g. cholesky)
                                          raises.
  Kernel.fast_call(*arrays)               the same with positional arrays (no list packing).
  Kernel.timings                          {'lower': s, 'compile': s} of this kernel.
  prepare_native_entry()                  compiles (or loads) the native cached-call entry now
                                          (entry.py; once per process) instead of on the first cached call.

Environment: JITGRAD_LOG=llvm logs the optimized LLVM IR and assembly of each kernel (logger
`jitgrad.llvm`, logs.py: to stderr, or to the file named by JITGRAD_LOG_FILE).

Modules: abi (entry calling convention, argument order, exit codes), engine (LLVM target, pass
pipeline, MCJIT), llvmtext (IR text emitter, dtype tables), scalar_ops (per-op scalar code),
mathfns/polymath (inline vectorizable math with stated ulp bounds), indexing (index maps), plan (the
pure planning step: registers / buffers / fused values, workspace offsets, horizontal groups, chunks,
nested plans), emit (the Emitter: chunk functions, driver, the rule API, fused values by an explicit
stack), lower (plan + emit), rules (per-op lowering tables), fusion (horizontal loop groups), blas
(dot_general via BLAS gemm), hostcall (ops without native code: argsort, special functions, linalg,
called back in NumPy), loops (the loop op: its body compiled once, called from a counted
loop), pywrapper (METH_FASTCALL entry), kernel (compile_trace, Kernel).  Imports
point one way (a test checks there is no cycle): kernel -> lower -> emit -> plan -> rules -> abi.

Measured on the 2-core dev box (loaded, load average 4-6, so absolute times are inflated): straight
-line traces compile in ~26 ms per 180 ops, ~50 ms per 1.75k ops, ~0.35 s per 17.5k ops (1000-op
functions, fast code generator); array kernels 10-60 ms.  A cached call of a tiny kernel costs ~0.5-0.9 us
(np.empty of the outputs dominates; the FASTCALL wrapper itself ~40-70 ns).  The W3 bench gradient
(tanh/sin/exp over 1e6 elements) runs ~13x faster than a hand-written NumPy gradient and ~0.8x the
hand-written C with libmvec; see bench/RESULTS.md for the current figures.
"""
from .entry import compiled_address as prepare_native_entry
from .errors import LoweringUnsupported
from .kernel import Kernel, compile_trace, generated_code, restore_kernel

__all__ = ["compile_trace", "restore_kernel", "Kernel", "LoweringUnsupported", "prepare_native_entry"]
