"""LLVM IR as text: dtype -> LLVM type tables, constant literals, and FunctionText, the instruction
emitter every lowering rule writes into (fresh SSA names, basic blocks, counted loops, allocas).

IR is emitted as f-string text rather than with llvmlite.ir: the notes measured llvmlite.ir at 7-35x
slower, which matters for 10k-op scalar traces.  Registers hold bools as i1; memory holds them as i8.
"""
import itertools
import math
import struct

import numpy as np

from .errors import LoweringUnsupported

# Loop nests of at most this many iterations are emitted as straight-line code (small fixed-shape ops: 2x2
# matrix products, 2-vectors): LLVM's loop passes cost more on such nests than unrolling them in Python
# (Kalman filter over 20 steps of 2x2 matrices: LLVM 148 -> 119 ms CPU, whole first call 179 -> 162 ms).
UNROLL_ELEMENTS = 4

# numpy dtype -> (register type, memory type, kind) ; kind: 'f' float, 'i' signed int, 'b' bool, 'c' complex
DTYPES = {
    np.dtype(np.float64): ("double", "double", "f"),
    np.dtype(np.float32): ("float", "float", "f"),
    np.dtype(np.int64): ("i64", "i64", "i"),
    np.dtype(np.int32): ("i32", "i32", "i"),
    np.dtype(np.int16): ("i16", "i16", "i"),
    np.dtype(np.int8): ("i8", "i8", "i"),
    np.dtype(np.bool_): ("i1", "i8", "b"),
    np.dtype(np.complex128): ("{ double, double }", "{ double, double }", "c"),   # complexops.py
    np.dtype(np.complex64): ("{ float, float }", "{ float, float }", "c"),
}


def dtype_info(dtype):
    """(register type, memory type, kind) of a numpy dtype, or LoweringUnsupported."""
    info = DTYPES.get(np.dtype(dtype))
    if info is None:
        raise LoweringUnsupported(f"dtype {dtype} is not supported by the JIT")
    return info


def reg_type(dtype):
    return dtype_info(dtype)[0]


def mem_type(dtype):
    return dtype_info(dtype)[1]


def kind(dtype):
    return dtype_info(dtype)[2]


def literal(value, dtype):
    """The LLVM literal of a Python/numpy scalar `value` as `dtype` (register form)."""
    k = kind(dtype)
    if k == "c":
        z = complex(np.asarray(value).astype(dtype))
        part = np.dtype(dtype).type(0).real.dtype
        pt = reg_type(part)
        return f"{{ {pt} {literal(z.real, part)}, {pt} {literal(z.imag, part)} }}"
    if k == "f":
        # LLVM writes float and double constants as the hex bits of the double value
        v = float(np.asarray(value).astype(dtype))
        return "0x%016X" % struct.unpack("<Q", struct.pack("<d", v))[0]
    if k == "b":
        return "true" if bool(value) else "false"
    return str(int(np.asarray(value).astype(dtype)))


class FunctionText:
    """The body of one LLVM function under construction."""

    def __init__(self, header, precise_math=False):
        self.header = header
        self.lines = []
        self.allocas = []
        self.counter = 0
        self.block = "entry"
        self.precise_math = precise_math    # libm for every math function (the twin kernel)
        self.iterations = 1                 # iterations of the loop nest being emitted (product of trips)
        self.most_iterations = 0            # the largest loop nest's iteration count
        self.loop_depth = 0                 # straight-line code (depth 0) calls libm: nothing to
                                            # vectorize, and inline polynomials cost compile time
        self.math_flag = None               # i1 slot: a fast math function met an argument it
        self.math_flag_raised = False       # cannot do accurately (see polymath)
        self.sin_cos_calls = {}             # libm sin/cos calls a sincos call may replace (mathfns)

    def fresh(self, prefix="t"):
        self.counter += 1
        return f"%{prefix}{self.counter}"

    def emit(self, text):
        """Append `%r = text` and return %r."""
        r = self.fresh()
        self.lines.append(f"  {r} = {text}")
        return r

    def stmt(self, text):
        """Append an instruction without a result."""
        self.lines.append(f"  {text}")

    def new_label(self, prefix="L"):
        return self.fresh(prefix)[1:]

    def start_block(self, label):
        self.lines.append(f"{label}:")
        self.block = label

    def alloca(self, llty):
        """A stack slot in the entry block (mem2reg promotes it to registers)."""
        r = self.fresh("a")
        self.allocas.append(f"  {r} = alloca {llty}, align 8")
        return r

    def raise_math_flag(self, cond):
        """OR i1 `cond` into this function's math flag (checked by the lowering after each node)."""
        if self.math_flag is None:
            self.math_flag = self.fresh("mf")
            self.allocas += [f"  {self.math_flag} = alloca i1", f"  store i1 false, ptr {self.math_flag}"]
        old = self.emit(f"load i1, ptr {self.math_flag}")
        self.stmt(f"store i1 {self.emit(f'or i1 {old}, {cond}')}, ptr {self.math_flag}")
        self.math_flag_raised = True

    def loop(self, trip, body):
        """Emit `for i in range(trip): body(i)`; trip is a static int > 1, i an i64 SSA name."""
        pre = self.block
        head, done = self.new_label("loop"), self.new_label("done")
        self.stmt(f"br label %{head}")
        self.start_block(head)
        i = self.fresh("i")
        phi_at = len(self.lines)
        self.lines.append(None)
        self.loop_depth += 1
        self.iterations *= trip
        self.most_iterations = max(self.most_iterations, self.iterations)
        body(i)
        self.iterations //= trip
        self.loop_depth -= 1
        nxt = self.emit(f"add nuw nsw i64 {i}, 1")
        more = self.emit(f"icmp ult i64 {nxt}, {trip}")
        self.stmt(f"br i1 {more}, label %{head}, label %{done}")
        self.lines[phi_at] = f"  {i} = phi i64 [ 0, %{pre} ], [ {nxt}, %{self.block} ]"
        self.start_block(done)

    def loop_nest(self, dims, body, prefix=()):
        """Nested loops over static `dims` (outermost first); body(idx) with idx a list of i64 names or
        ints (0 for size-1 dims).  Emits nothing if any dim is 0.  A nest of at most UNROLL_ELEMENTS
        iterations is straight-line code: body once per index, with int indices."""
        if any(d == 0 for d in dims):
            return
        if math.prod(dims) <= UNROLL_ELEMENTS:
            for idx in itertools.product(*(range(d) for d in dims)):
                body(list(prefix) + list(idx))
            return
        if not dims:
            body(list(prefix))
            return
        rest = dims[1:]
        if dims[0] == 1:
            self.loop_nest(rest, body, prefix + (0,))
        else:
            self.loop(dims[0], lambda i: self.loop_nest(rest, body, prefix + (i,)))

    def text(self):
        body = "\n".join(self.lines)
        allocas = "\n".join(self.allocas)
        return f"{self.header} {{\nentry:\n{allocas}\n{body}\n}}\n"
