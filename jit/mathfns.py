"""Math functions in kernels: inside loops, inline polynomial code where polymath has it (it
vectorizes); libm calls otherwise: in straight-line scalar code (the unrolled-loop regime, where
polynomials would only multiply compile time), for the other functions, and everywhere in a kernel's
precise twin (FunctionText.precise_math).  float32 arguments are computed in double and rounded once (at least
as accurate as NumPy's
float32 loops).  PREAMBLE declares the libm entry points (registered by the engine under `jg_libm_*`)
and the LLVM intrinsics the lowering uses; every `libm` name of the op spec (ir/ops.py) is among them
(checked when imported).
"""
from . import polymath
from .engine import LIBM
from ..ir.ops import SPECS, check_table, ops_where

_ARITY = {"pow": 2, "atan2": 2, "fmod": 2}

PREAMBLE = "\n".join(
    [f"declare double @jg_libm_{n}({', '.join(['double'] * _ARITY.get(n, 1))}) #0" for n in LIBM]
    + ["attributes #0 = { nounwind willreturn memory(none) }"]) + "\n"


check_table("engine.LIBM (jit/engine.py)", LIBM, [SPECS[op].libm for op in ops_where(lambda s: s.libm)],
            "add the libm function the op's spec names (ir/ops.py)")


def call(f, name, xs, ty):
    """Emit `name(*xs)` (libm name) on register values of LLVM float type `ty`; return the result."""
    if ty == "float":
        xs = [f.emit(f"fpext float {x} to double") for x in xs]
    poly = None if f.precise_math or not f.loop_depth else polymath.POLY.get(name)
    if poly is not None:
        r = poly(f, *xs)
    else:
        operands = ", ".join(f"double {x}" for x in xs)
        r = f.emit(f"call double @jg_libm_{name}({operands})")
    if ty == "float":
        r = f.emit(f"fptrunc double {r} to float")
    return r
