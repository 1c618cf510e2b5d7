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
                                          when an index array holds an out-of-range index.
  Kernel.fast_call(*arrays)               the same with positional arrays (no list packing).
  Kernel.timings                          {'lower': s, 'compile': s} of this kernel.

Environment: JITGRAD_LOG=llvm dumps the optimized LLVM IR and assembly of each kernel to stderr (or
to the file named by JITGRAD_LOG_FILE).

Modules: engine (LLVM target, pass pipeline, MCJIT), llvmtext (IR text emitter, dtype tables),
scalar_ops (per-op scalar code), mathfns/polymath (vectorizable inline math), indexing (index maps),
lower (plan, fusion, chunks, driver ABI), rules (per-op lowering tables), blas (dot_general via BLAS),
kernel (compile_trace, Kernel).
"""
from .errors import LoweringUnsupported
from .kernel import Kernel, compile_trace

__all__ = ["compile_trace", "Kernel", "LoweringUnsupported"]
