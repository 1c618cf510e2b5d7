"""The lowering rules, two tables keyed by op; they write code through the Emitter's rule API (emit.py).

ACCESS[op](em, node, idx): the value of a fusable node at output index `idx`.  Leaf rules (fill,
const) return the register; the others are generators that yield `(operand, operand_idx)` for each
operand element they read, receive its register (fused, loaded or a register: the emitter decides),
and return the result's register.  Elementwise ops, where, astype, broadcasts, transposes, reshapes
and index (slices, ints, newaxis, gathers) are fusable.

MATERIALIZE[op](em, node): ops with their own loop structure, written into the node's buffer (or its
register when 0-d) with `em.store`: reductions (accumulator loops, `reassoc` so they vectorize),
argmax/argmin, cumsum, concatenate, index_set/index_add and dot_general (BLAS for float matrices of
real size, see blas.py; loops otherwise); loops (loops.py).

Ops the spec (ir/ops.py) declares `host` (argsort, special functions, linear algebra, Fourier
transforms: HOST_OPS) have neither: the emitter runs them as a call back into their reference
evaluation (hostcall.py), as every node with a complex value or operand whose op has no complex lowering
(`is_hosted`; complexops.py lowers complex arithmetic natively).  Importing this
module checks the tables against the spec (`check_lowerings`).  Index arrays are bounds-checked
(negative indices wrap, as NumPy); an out-of-range index makes the kernel exit with abi.OOB_EXIT, never
touch memory out of bounds.
"""
import numpy as np

from . import blas, complexops, conditional, fftcall, loops
from .abi import OOB_EXIT
from .errors import LoweringUnsupported
from ..ir.errors import IRError
from .indexing import IndexLayout, broadcast_index, iadd, linear, strides_of, unravel
from .llvmtext import kind, literal, reg_type
from .scalar_ops import SCALAR, cast, elementwise, where
from ..ir.ops import SPECS, check_table, ops_where

ACCESS = {}
MATERIALIZE = {}
MATERIALIZED_OPERANDS = ("dot_general",)   # consumers that read operands many times each


def _operands(node, idx):
    """Generator: the registers of every operand of `node` at output index `idx`."""
    regs = []
    for a in node.args:         # 0-d (the scalar regime): so is every operand, read at index []
        regs.append((yield a, broadcast_index(a.shape, node.shape, idx) if node.shape else []))
    return regs


def _elementwise(em, node, idx):
    xs = yield from _operands(node, idx)
    return elementwise(em.f, node.op, xs, [a.dtype for a in node.args], node.dtype)


def _where(em, node, idx):
    xs = yield from _operands(node, idx)
    return where(em.f, xs, [a.dtype for a in node.args], node.dtype)


def _astype(em, node, idx):
    x = yield node.args[0], idx
    return cast(em.f, x, node.args[0].dtype, node.dtype)


def _broadcast_to(em, node, idx):
    return (yield node.args[0], broadcast_index(node.args[0].shape, node.shape, idx))


for _op in SCALAR:
    ACCESS[_op] = _elementwise
ACCESS.update(where=_where, astype=_astype, broadcast_to=_broadcast_to)
ACCESS["fill"] = lambda em, node, idx: literal(node.params["value"], node.dtype)
ACCESS["const"] = lambda em, node, idx: literal(node.params["value"][()], node.dtype)


def _transpose(em, node, idx):
    src = [None] * len(idx)
    for k, p in enumerate(node.params["perm"]):
        src[p] = idx[k]
    return (yield node.args[0], src)


def _reshape(em, node, idx):
    (x,) = node.args
    lin = linear(em.f, idx, strides_of(node.shape))
    if em.plan.kind[id(x)] == "buf":
        return em.load(x, None, offset=lin)
    return (yield x, unravel(em.f, lin, x.shape))


ACCESS.update(transpose=_transpose, reshape=_reshape)


# ---- indexing ---------------------------------------------------------------------------------
def _layout(x, spec, arrays):
    return IndexLayout(x.shape, spec, [a.shape for a in arrays])


def index_position(em, x, layout, arrays, idx):
    """Generator (driven like an ACCESS rule): the x-index addressed by output index `idx` of x[spec];
    index arrays are read, checked and wrapped."""
    f = em.f
    block_idx = [idx[k] for k in layout.block]
    pos = []
    for axis, how in enumerate(layout.axes):
        dim = x.shape[axis]
        if how[0] == "slice":
            _, out_axis, start, step = how
            i = idx[out_axis]
            pos.append(start + i * step if isinstance(i, int) else
                       iadd(f, start, f.emit(f"mul nsw i64 {i}, {step}") if step != 1 else i))
        elif how[0] == "int":
            pos.append(how[1])
        else:
            arr = arrays[how[1]]
            raw = cast(f, (yield arr, broadcast_index(arr.shape, layout.bshape, block_idx)), arr.dtype, np.int64)
            neg = f.emit(f"icmp slt i64 {raw}, 0")
            wrapped = f.emit(f"select i1 {neg}, i64 {f.emit(f'add i64 {raw}, {dim}')}, i64 {raw}")
            em.exit_unless(f.emit(f"icmp ult i64 {wrapped}, {dim}"), OOB_EXIT)
            pos.append(wrapped)
    return pos


def _index(em, node, idx):
    x, *arrays = node.args
    layout = _layout(x, node.params["spec"], arrays)
    pos = yield from index_position(em, x, layout, arrays, idx)
    return (yield x, pos)


ACCESS["index"] = _index


def _index_update(accumulate):
    def rule(em, node):
        x, v, *arrays = node.args
        if node.shape == ():           # x[newaxis...] of a 0-d x: one element, v's only one; a register
            new = cast(em.f, em.value(v, [0] * v.ndim), v.dtype, node.dtype)
            if accumulate:
                new = elementwise(em.f, "add", [em.value(x, []), new], [node.dtype, node.dtype], node.dtype)
            em.store(node, [], new)
            return
        layout = _layout(x, node.params["spec"], arrays)
        if em.plan.loc[id(node)] != em.plan.loc.get(id(x)):     # else updated in place (plan.UPDATES_IN_PLACE)
            em.loops(node.shape, lambda idx: em.store(node, idx, em.value(x, idx)))

        def update(idx):
            pos = em.drive(index_position(em, x, layout, arrays, idx))
            new = cast(em.f, em.value(v, broadcast_index(v.shape, layout.out_shape, idx)), v.dtype, node.dtype)
            if accumulate:
                old = em.load(node, pos)
                new = elementwise(em.f, "add", [old, new], [node.dtype, node.dtype], node.dtype)
            em.store(node, pos, new)
        em.loops(layout.out_shape, update)
    return rule


MATERIALIZE.update(index_set=_index_update(False), index_add=_index_update(True))


# ---- reductions --------------------------------------------------------------------------------
def _float_extreme(intrinsic):
    """max/min of floats as LLVM's `maximum`/`minimum` (NaN-propagating, as NumPy), which the loop
    vectorizer reduces in vector registers (a compare-and-select chain stays scalar: ~8x NumPy's
    time on a row max); a tie of -0.0 and +0.0 gives +0.0 for max, -0.0 for min."""
    def pick(f, acc, v, ty):
        return f.emit(f"call {ty} @llvm.{intrinsic}.{_INTRINSIC_SUFFIX[ty]}({ty} {acc}, {ty} {v})")
    return pick


_INTRINSIC_SUFFIX = {"double": "f64", "float": "f32"}


def _int_pick(pred):
    def pick(f, acc, v, ty):
        return f.emit(f"select i1 {f.emit(f'icmp {pred} {ty} {v}, {acc}')}, {ty} {v}, {ty} {acc}")
    return pick


def _fold(instr):
    return lambda f, acc, v, ty: f.emit(f"{instr} {ty} {acc}, {v}")


# op -> kind -> (identity, combine(f, acc, v, ty))
REDUCE = {
    "sum": {"f": (0.0, _fold("fadd reassoc")), "i": (0, _fold("add")), "b": (False, _fold("or")),
            "c": (0.0, complexops.sum_combine)},
    "prod": {"f": (1.0, _fold("fmul reassoc")), "i": (1, _fold("mul")), "b": (True, _fold("and"))},
    "max": {"f": (-np.inf, _float_extreme("maximum")), "i": (None, _int_pick("sgt")), "b": (False, _fold("or"))},
    "min": {"f": (np.inf, _float_extreme("minimum")), "i": (None, _int_pick("slt")), "b": (True, _fold("and"))},
}


def _accumulator_dtype(node):
    """float32 sums and products accumulate in double (more accurate than NumPy's pairwise sum)."""
    if node.op in ("sum", "prod") and node.dtype == np.float32:
        return np.dtype(np.float64)
    return node.dtype


def _split_index(x_ndim, axes, out_idx, red_idx):
    """Merge the kept-axis index and reduced-axis index into an index of x."""
    it_out, it_red = iter(out_idx), iter(red_idx)
    return [next(it_red) if a in axes else next(it_out) for a in range(x_ndim)]


class Accumulator:
    """The running value of one reduction output: `start()` sets the identity, `add(x_value)` folds an
    operand element in, `finish(out_idx)` stores the result.  Also used by fusion.py's loop groups."""

    def __init__(self, em, node):
        self.em, self.node = em, node
        self.dtype = _accumulator_dtype(node)
        self.identity, self.combine = REDUCE[node.op][kind(self.dtype)]
        if self.identity is None:
            info = np.iinfo(self.dtype)
            self.identity = info.min if node.op == "max" else info.max
        self.ty = reg_type(self.dtype)
        if node.op in ("max", "min") and node.args[0].size == 0:
            raise LoweringUnsupported(f"{node.op} of an empty axis")
        if node.op in ("max", "min") and self.ty in _INTRINSIC_SUFFIX:
            name = f"llvm.{'maximum' if node.op == 'max' else 'minimum'}.{_INTRINSIC_SUFFIX[self.ty]}"
            em.declare(f"declare {self.ty} @{name}({self.ty}, {self.ty})")

    def start(self):
        f = self.em.f
        self.slot = f.alloca(self.ty)
        f.stmt(f"store {self.ty} {literal(self.identity, self.dtype)}, ptr {self.slot}")

    def add(self, value):
        f, ty = self.em.f, self.ty
        v = cast(f, value, self.node.args[0].dtype, self.dtype)
        f.stmt(f"store {ty} {self.combine(f, f.emit(f'load {ty}, ptr {self.slot}'), v, ty)}, ptr {self.slot}")

    def finish(self, out_idx):
        """Store the result for kept-axis index `out_idx` (keepdims handled here)."""
        f, node = self.em.f, self.node
        result = cast(f, f.emit(f"load {self.ty}, ptr {self.slot}"), self.dtype, node.dtype)
        axes = tuple(node.params["axis"])
        if node.params["keepdims"]:
            out_idx = _split_index(node.args[0].ndim, axes, out_idx, [0] * len(axes))
        self.em.store(node, out_idx, result)


def _reduction(em, node):
    (x,) = node.args
    axes = tuple(node.params["axis"])
    acc = Accumulator(em, node)
    if axes and x.ndim - 1 not in axes and acc.dtype == node.dtype and em.plan.kind[id(node)] == "buf":
        return _reduce_rows(em, node, axes, acc)

    def per_output(out_idx):
        acc.start()
        em.loops([x.shape[a] for a in axes],
                 lambda red_idx: acc.add(em.value(x, _split_index(x.ndim, axes, out_idx, red_idx))))
        acc.finish(out_idx)
    em.loops([d for a, d in enumerate(x.shape) if a not in axes], per_output)


def _reduce_rows(em, node, axes, acc):
    """A reduction keeping the last axis: the output buffer is the accumulator and the reduced axes
    are the outer loops, so the inner loop runs along contiguous rows and vectorizes (reducing one
    column at a time would gather with a stride)."""
    (x,) = node.args
    f = em.f
    kept = [d for a, d in enumerate(x.shape) if a not in axes]

    def out_position(out_idx):
        return _split_index(x.ndim, axes, out_idx, [0] * len(axes)) if node.params["keepdims"] else out_idx
    em.loops(kept, lambda out_idx: em.store(node, out_position(out_idx), literal(acc.identity, node.dtype)))

    def row(red_idx):
        def fold_in(out_idx):
            pos = out_position(out_idx)
            v = cast(f, em.value(x, _split_index(x.ndim, axes, out_idx, red_idx)), x.dtype, node.dtype)
            em.store(node, pos, acc.combine(f, em.load(node, pos), v, acc.ty))
        em.loops(kept, fold_in)
    em.loops([x.shape[a] for a in axes], row)


for _op in REDUCE:
    MATERIALIZE[_op] = _reduction


def _arg_reduction(em, node):
    (x,) = node.args
    axis = node.params["axis"]
    n = x.shape[axis]
    if n == 0:
        raise LoweringUnsupported(f"{node.op} of an empty axis")
    f, ty, k = em.f, reg_type(x.dtype), kind(x.dtype)
    pred = {"f": "ogt", "i": "sgt", "b": "ugt"}[k] if node.op == "argmax" else {"f": "olt", "i": "slt", "b": "ult"}[k]

    def per_output(out_idx):
        best, where_at = f.alloca(ty), f.alloca("i64")
        f.stmt(f"store {ty} {em.value(x, _split_index(x.ndim, (axis,), out_idx, [0]))}, ptr {best}")
        f.stmt(f"store i64 0, ptr {where_at}")

        def step(red_idx):
            (j,) = red_idx
            v = em.value(x, _split_index(x.ndim, (axis,), out_idx, [j]))
            b = f.emit(f"load {ty}, ptr {best}")
            if k == "f":   # first NaN wins, as NumPy
                better = f.emit(f"fcmp {pred} {ty} {v}, {b}")
                v_nan = f.emit(f"fcmp uno {ty} {v}, 0.0")
                b_ok = f.emit(f"fcmp ord {ty} {b}, 0.0")
                take = f.emit(f"and i1 {b_ok}, {f.emit(f'or i1 {better}, {v_nan}')}")
            else:
                take = f.emit(f"icmp {pred} {ty} {v}, {b}")
            f.stmt(f"store {ty} {f.emit(f'select i1 {take}, {ty} {v}, {ty} {b}')}, ptr {best}")
            old = f.emit(f"load i64, ptr {where_at}")
            f.stmt(f"store i64 {f.emit(f'select i1 {take}, i64 {j}, i64 {old}')}, ptr {where_at}")
        em.loops([n], step)
        em.store(node, out_idx, cast(f, f.emit(f"load i64, ptr {where_at}"), np.int64, node.dtype))
    em.loops(node.shape, per_output)


MATERIALIZE.update(argmax=_arg_reduction, argmin=_arg_reduction)


def _cumsum(em, node):
    (x,) = node.args
    axis = node.params["axis"]
    f, ty = em.f, reg_type(node.dtype)
    others = [d for a, d in enumerate(x.shape) if a != axis]

    def per_line(out_idx):
        acc = f.alloca(ty)
        f.stmt(f"store {ty} {literal(0, node.dtype)}, ptr {acc}")

        def step(red_idx):
            full = _split_index(x.ndim, (axis,), out_idx, red_idx)
            v = cast(f, em.value(x, full), x.dtype, node.dtype)
            s = elementwise(f, "add", [f.emit(f"load {ty}, ptr {acc}"), v], [node.dtype] * 2, node.dtype)
            f.stmt(f"store {ty} {s}, ptr {acc}")
            em.store(node, full, s)
        em.loops([x.shape[axis]], step)
    em.loops(others, per_line)


def _concatenate(em, node):
    axis = node.params["axis"]
    start = 0
    for a in node.args:
        def put(idx, a=a, start=start):
            dst = list(idx)
            dst[axis] = iadd(em.f, idx[axis], start)
            em.store(node, dst, cast(em.f, em.value(a, idx), a.dtype, node.dtype))
        em.loops(a.shape, put)
        start += a.shape[axis]


def _dot_general(em, node):
    if id(node) in em.plan.gemm:
        return blas.emit_gemm(em, node)
    x, y = node.args
    (xc, yc), (xb, yb) = node.params["contract"], node.params["batch"]
    xfree = [i for i in range(x.ndim) if i not in xc and i not in xb]
    yfree = [i for i in range(y.ndim) if i not in yc and i not in yb]
    acc_dt = np.dtype(np.float64) if node.dtype == np.float32 else node.dtype
    f, ty = em.f, reg_type(acc_dt)
    add = _fold("fadd reassoc" if kind(acc_dt) == "f" else "add")

    def per_output(out_idx):
        nb, nx = len(xb), len(xfree)
        xi, yi = [None] * x.ndim, [None] * y.ndim
        for k, (i, j) in enumerate(zip(xb, yb)):
            xi[i] = yi[j] = out_idx[k]
        for k, i in enumerate(xfree):
            xi[i] = out_idx[nb + k]
        for k, j in enumerate(yfree):
            yi[j] = out_idx[nb + nx + k]
        acc = f.alloca(ty)
        f.stmt(f"store {ty} {literal(0, acc_dt)}, ptr {acc}")

        def step(c_idx):
            for k, (i, j) in enumerate(zip(xc, yc)):
                xi[i] = yi[j] = c_idx[k]
            a = cast(f, em.value(x, xi), x.dtype, acc_dt)
            b = cast(f, em.value(y, yi), y.dtype, acc_dt)
            prod = elementwise(f, "multiply", [a, b], [acc_dt] * 2, acc_dt)
            f.stmt(f"store {ty} {add(f, f.emit(f'load {ty}, ptr {acc}'), prod, ty)}, ptr {acc}")
        em.loops([x.shape[i] for i in xc], step)
        em.store(node, out_idx, cast(f, f.emit(f"load {ty}, ptr {acc}"), acc_dt, node.dtype))
    em.loops(node.shape, per_output)


MATERIALIZE.update(cumsum=_cumsum, concatenate=_concatenate, dot_general=_dot_general)
# The Fourier transforms call numpy.fft's own loops (fftcall.py); they read their operand from memory.
MATERIALIZE.update(fftcall.MATERIALIZE)
MEMORY_OPERANDS = frozenset(fftcall.MATERIALIZE)

# Loops (loops.py): a loop node is planned with its body's own Plan (NESTED: op -> plan rule, returning
# the node's kind) and emitted as a counted loop that writes its loop_result nodes.
# Conds (conditional.py) alike: one Plan per branch, emitted as a branch calling one of two functions.
NESTED = {"loop": loops.plan, "cond": conditional.plan}
MATERIALIZE.update(loop=loops.emit_loop, loop_result=loops.emit_result,
                   cond=conditional.emit_cond, cond_result=conditional.emit_result)


_COSTS = {**{op: 20 for op in ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh")},
          **{op: 50 for op in ("tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh",
                               "arctanh", "power", "arctan2")},
          **{op: 4 for op in ("divide", "sqrt", "floor_divide", "remainder")},
          **{op: 0 for op in ("broadcast_to", "transpose", "reshape", "fill", "const")}}


def op_cost(node):
    """Rough per-element cost of computing a fusable node from its operands (1 = one add)."""
    return _COSTS.get(node.op, 1)


# Ops without native code run through a call back into their reference evaluation (hostcall.py): those
# the spec (ir/ops.py) declares `host`.
HOST_OPS = frozenset(ops_where(lambda s: s.host))
PLANNED = ("input", "guard")          # lowered by the planner and the emitter themselves (plan.py kinds)


# Complex values are lowered natively (complexops.py) by these ops, and by the elementwise ops and
# reductions with a complex ('c') column in SCALAR / REDUCE; every other node touching one is a host call.
COMPLEX_STRUCTURAL = frozenset(("fill", "const", "astype", "where", "broadcast_to", "transpose", "reshape", "index",
                                "concatenate"))


def is_hosted(node):
    """Whether `node` runs as a host call: its spec says `host`, it is a Fourier transform numpy.fft's
    loops do not take (fftcall.native), or its value or an operand is complex and its op has no complex
    lowering (complexops.py: arithmetic, parts, abs, exp, sums, indexing)."""
    if SPECS[node.op].host:
        return True
    if node.op in fftcall.MATERIALIZE:
        return not fftcall.native(node)
    if node.op in ("input", "const", "guard") or (
            node.dtype.kind != "c" and all(a.dtype.kind != "c" for a in node.args)):
        return False
    return not (complexops.NATIVE and (node.op in COMPLEX_STRUCTURAL or "c" in SCALAR.get(node.op, ())
                                       or "c" in REDUCE.get(node.op, ())))


def unlowered_ops():
    """Ops compile_trace refuses (LoweringUnsupported): the dispatcher runs such traces in NumPy."""
    lowered = set(ACCESS) | set(MATERIALIZE) | {"input", "const", "guard"}
    return {op for op, s in SPECS.items() if op not in lowered and not s.host}


def check_lowerings(specs=SPECS):
    """IRError unless every op of `specs` has its lowering: an ACCESS rule for each elementwise op not
    declared `host` (scalar code in scalar_ops.SCALAR for the ufuncs), an ACCESS or MATERIALIZE rule for
    every other op not declared `host` (the planner's own PLANNED ops aside), no native rule for a `host`
    op, and a cost for each op calling libm.  Run when the module is imported; tests run it on scratch
    specs."""
    native = [op for op, s in specs.items() if not s.host and op not in PLANNED]
    or_host = " or declare it host=True in ir/ops.py (then it calls back into its reference evaluation)"
    check_table("SCALAR (jit/scalar_ops.py)", ACCESS, [op for op in native if specs[op].elementwise],
                "add its scalar code per dtype kind," + or_host)
    check_table("ACCESS/MATERIALIZE (jit/rules.py)", {**ACCESS, **MATERIALIZE}, native,
                "add its lowering rule," + or_host)
    both = [op for op, s in specs.items() if s.host and (op in ACCESS or op in MATERIALIZE)]
    if both:
        raise IRError(f"op(s) {', '.join(both)} are declared host=True in ir/ops.py but have native lowering rules")
    native_elementwise = {op: s for op, s in specs.items() if s.elementwise and not s.host}
    check_table("SCALAR (jit/scalar_ops.py)", SCALAR, (), "", specs=native_elementwise)
    check_table("ACCESS/MATERIALIZE (jit/rules.py)", {**ACCESS, **MATERIALIZE}, (), "", specs=specs)
    check_table("op costs (jit/rules.py _COSTS)", _COSTS, [op for op in native if specs[op].libm],
                "give the per-element cost of the libm call its spec names (20-50 adds)", specs=specs)


check_lowerings()


def compare_to_literal(em, x, dtype, expected):
    """i1: register `x` of `dtype` == the Python scalar `expected` (as NumPy's == would say)."""
    cdt = np.result_type(dtype, np.asarray(expected).dtype)
    xs = cast(em.f, x, dtype, cdt)
    return elementwise(em.f, "equal", [xs, literal(expected, cdt)], [cdt, cdt], np.dtype(bool))
