"""Math functions in kernels: inside loops, inline polynomial code where polymath has it (it
vectorizes); libm calls otherwise: in straight-line scalar code (the unrolled-loop regime, where
polynomials would only multiply compile time), for the other functions, and everywhere in a kernel's
precise twin (FunctionText.precise_math).  float32 arguments are computed in double and rounded once (at least
as accurate as NumPy's
float32 loops).  PREAMBLE declares the libm entry points (registered by the engine under `jg_libm_*`)
and the LLVM intrinsics the lowering uses; every `libm` name of the op spec (ir/ops.py) is among them
(checked when imported).

sin and cos of one operand in one basic block (a forward-mode tangent needs cos where the value needs sin)
cost one libm `sincos` call: the second call rewrites the first one's line (`_fuse_sin_cos`).  Measured
in C on the pendulum's tangent step (a dependent chain through sin, as in the jvp of bench/transforms.py):
17.3-17.7 ns/step against 18.7-19.2 for separate sin and cos calls (sin alone: 13); the jvp kernel of
the 1,000-step pendulum itself ran alike either way (15.7-15.8 us, the out-of-order core overlaps the
two calls).  The polynomial forms need no fusion: sin's and cos's shared reduction and kernels are the
same instructions, which LLVM's CSE merges.
"""
from . import polymath
from .engine import LIBM, SINCOS
from ..ir.ops import SPECS, check_table, ops_where

_ARITY = {"pow": 2, "atan2": 2, "fmod": 2}

PREAMBLE = "\n".join(
    [f"declare double @jg_libm_{n}({', '.join(['double'] * _ARITY.get(n, 1))}) #0" for n in LIBM]
    + [f"declare void @jg_libm_{SINCOS}(double, ptr, ptr) #5",
       "attributes #0 = { nounwind willreturn memory(none) }",
       "attributes #5 = { nounwind willreturn memory(argmem: write) }"]) + "\n"
_PARTNER = {"sin": "cos", "cos": "sin"}


check_table("engine.LIBM (jit/engine.py)", LIBM, [SPECS[op].libm for op in ops_where(lambda s: s.libm)],
            "add the libm function the op's spec names (ir/ops.py)")


def call(f, name, xs, ty):
    """Emit `name(*xs)` (libm name) on register values of LLVM float type `ty`; return the result."""
    if ty == "float":
        xs = [f.emit(f"fpext float {x} to double") for x in xs]
    poly = None if f.precise_math or not f.loop_depth else polymath.POLY.get(name)
    if poly is not None:
        r = poly(f, *xs)
    elif name in _PARTNER:
        r = _fuse_sin_cos(f, name, xs[0])
    else:
        operands = ", ".join(f"double {x}" for x in xs)
        r = f.emit(f"call double @jg_libm_{name}({operands})")
    if ty == "float":
        r = f.emit(f"fptrunc double {r} to float")
    return r


def _fuse_sin_cos(f, name, x):
    """libm sin or cos of register `x`; when the other one of `x` was called earlier in the current basic
    block (so it dominates this point), its call becomes one `sincos` call and both results are loads."""
    calls = f.sin_cos_calls             # (x, block, name) -> (line index, its result, or (sin, cos) once fused)
    earlier = calls.get((x, f.block, _PARTNER[name]))
    if earlier is None:
        r = f.emit(f"call double @jg_libm_{name}(double {x})")
        calls[(x, f.block, name)] = (len(f.lines) - 1, r)
        return r
    at, other = earlier
    if isinstance(other, tuple):        # fused already
        return other[name == "cos"]
    slots = {"sin": f.alloca("double"), "cos": f.alloca("double")}
    r = f.fresh()
    f.lines[at] = "\n".join([f"  call void @jg_libm_{SINCOS}(double {x}, ptr {slots['sin']}, ptr {slots['cos']}) #5",
                             f"  {other} = load double, ptr {slots[_PARTNER[name]]}",
                             f"  {r} = load double, ptr {slots[name]}"])
    pair = (other, r) if name == "cos" else (r, other)
    calls[(x, f.block, "sin")] = calls[(x, f.block, "cos")] = (at, pair)
    return r
