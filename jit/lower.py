"""Lowering a Trace to one LLVM module: the plan (which values live where), chunked emission, and the
driver function that the Kernel calls.

Plan.  Every value is one of
  - 'reg':   a 0-d value, an SSA register of straight-line code (the scalar regime: unrolled loops);
  - 'buf':   a materialized row-major buffer: an input, an output, a constant, or a workspace slice;
  - 'fused': computed where it is read, from its operands (elementwise chains, broadcasts, transposes,
             reshapes, slices and gathers become index arithmetic inside the consumer's loop nest).
An array value is materialized when it is an output, is produced by an op with its own loop structure
(reductions, dot_general, cumsum, concatenate, index_set/add: rules.MATERIALIZE), is a host call
(rules.is_hosted: ops without native code, and every node touching a complex value: complex values
are always buffers, computed by the reference evaluation), or is read more
than once (or re-read under broadcasting) and costs more than RECOMPUTE_LIMIT to recompute
(rules.op_cost, summed over its fused operands).  0-d values whose operands are all constants are
folded with the reference evaluation (so `x ** (2 - 1)` from a VJP becomes `x`).  Reductions read their operand fused, so they fuse
with their producers; accumulations carry `reassoc` so they vectorize.  Shapes are constants.

Chunks.  Top-level code is cut into functions of about CHUNK_OPS nodes (noinline) so codegen stays
linear in trace length; registers live across chunks through 8-byte workspace slots.  The workspace
is one block: on the stack if small, else handed in by the caller (the Kernel keeps one per thread and
reuses it, so large temporaries do not page-fault on every call).

ABI.  `i64 <name>(ptr args)` (name unique per kernel): args holds the data pointers of the inputs, then
the outputs, then the constant arrays, then (if caller_workspace) the workspace of ws_size bytes (all row-major contiguous, shapes and dtypes as the trace says).  It returns -1
on success, k >= 0 when guard k failed, OOB_EXIT when an index array held an out-of-range index,
PRECISE_EXIT when an inline math function met an argument outside its accurate range (polymath): the
Kernel then reruns the trace's twin compiled with libm math.
"""
import numpy as np

from .errors import LoweringUnsupported
from .indexing import linear, strides_of
from ..ir.evaluate import evaluate
from ..ir.ops import ELEMENTWISE
from .llvmtext import FunctionText, literal, mem_type, reg_type
from .mathfns import PREAMBLE

CHUNK_OPS = 1000
FAST_CODEGEN_CHUNKS = 4
STACK_WORKSPACE = 64 * 1024
OOB_EXIT = -2
PRECISE_EXIT = -3
SOURCES = ("input", "const", "fill")
FOLDABLE = set(ELEMENTWISE) | {"where", "astype"}
UPDATES_IN_PLACE = ("index_set", "index_add")   # written over their operand 0's buffer when it dies
RECOMPUTE_LIMIT = 6       # a fused value costing more than this per element is not recomputed
ATTRIBUTES = "\n".join(["attributes #1 = { nounwind noinline }", "attributes #2 = { nounwind }",
                        "attributes #3 = { nounwind noinline optnone }",
                        "attributes #4 = { nounwind alwaysinline }"]) + "\n"


class Lowering:
    """Builds the LLVM module text of one trace; see the module docstring."""

    def __init__(self, trace, name, precise_math=False):
        from . import fusion, rules
        self.name = name
        self.precise_math = precise_math
        self.rules = rules
        self.fusion = fusion
        self.trace = trace
        self.n_in, self.n_out = len(trace.inputs), len(trace.outputs)
        self.consts = []          # const Values passed as arrays, in arg order
        self.kind, self.loc = {}, {}
        self.cost = {}            # fused nodes: estimated cost of recomputing one element
        self.declarations = set() # external functions the emitted code calls (besides the PREAMBLE's)
        self.ws_size = 0
        self.nested_functions = []  # LLVM functions of loop bodies (loops.py), emitted with this module
        self._plan()

    # ---- planning ------------------------------------------------------------------------------
    def _plan(self):
        self.users = users = {}
        for node in self.trace.nodes:
            for a in node.args:
                users.setdefault(id(a), []).append(node)
        # asked several times per node while planning and emitting: decided once here
        self.hosted = {id(n) for n in self.trace.nodes if self.rules.is_hosted(n)}
        self.out_ids = out_ids = {id(v) for v in self.trace.outputs}
        kind = self.kind
        for k, v in enumerate(self.trace.inputs):
            kind[id(v)], self.loc[id(v)] = "buf", ("arg", k)
        for node in self.trace.nodes:
            for a in node.args:
                if id(a) not in kind:
                    raise LoweringUnsupported(f"operand of {node.op} is not defined earlier in the trace")
            k = kind[id(node)] = self._kind_of(node, users.get(id(node), []), id(node) in out_ids)
            if k == "buf":
                self.loc[id(node)] = self._buffer_for(node)
        self.output_loc = []
        for j, v in enumerate(self.trace.outputs):
            direct = (self.kind.get(id(v)) == "buf" and self.loc[id(v)][0] == "ws"
                      and v.op not in SOURCES and id(v) not in {id(w) for w in self.trace.outputs[:j]})
            if direct:
                self.loc[id(v)] = ("arg", self.n_in + j)
            self.output_loc.append(direct)

    def _kind_of(self, node, users, is_output):
        if node.op in self.rules.NESTED:    # a loop: planned with its body's own Lowering (loops.py)
            return self.rules.NESTED[node.op](self, node)
        if node.op == "guard":
            if node.args[0].shape != () or np.ndim(node.params["expected"]) != 0:
                raise LoweringUnsupported("guard on a non-scalar predicate")
            return "guard"
        if node.dtype.kind == "c":          # complex values live in buffers, made by host calls
            return "buf"
        if node.op == "fill" or (node.op == "const" and node.shape == ()):
            # host-called ops read their operands from memory: give a fill one when it feeds them
            hosted = node.shape != () and any(id(u) in self.hosted for u in users)
            return "buf" if hosted else "fused"
        if node.op == "const":
            return "buf"
        if node.op not in self.rules.ACCESS and node.op not in self.rules.MATERIALIZE:
            raise LoweringUnsupported(f"op {node.op} has no lowering")
        if node.shape == ():
            return "reg"
        if (node.op in self.rules.MATERIALIZE or id(node) in self.hosted or is_output
                or self.rules.blas.needs_buffer(users) or any(id(u) in self.hosted for u in users)):
            return "buf"
        self.cost[id(node)] = cost = self.rules.op_cost(node) + sum(self.cost.get(id(a), 0) for a in node.args
                                                                  if self.kind[id(a)] == "fused")
        reread = len(users) > 1 or any(u.size > node.size or u.op in self.rules.MATERIALIZED_OPERANDS
                                       for u in users)
        return "buf" if reread and cost > RECOMPUTE_LIMIT else "fused"

    def _buffer_for(self, node):
        if node.op == "const":
            self.consts.append(node)
            return ("arg", self.n_in + self.n_out + len(self.consts) - 1)
        if node.op in UPDATES_IN_PLACE:
            x = node.args[0]
            if (self.kind[id(x)] == "buf" and self.loc[id(x)][0] == "ws" and x.op not in SOURCES
                    and id(x) not in self.out_ids and self.users[id(x)] == [node]):
                return self.loc[id(x)]      # x dies here: update its buffer (the rule skips the copy)
        return ("ws", self.ws_alloc(max(node.size * node.dtype.itemsize, 8), 64))

    def ws_alloc(self, nbytes, align):
        offset = -(-self.ws_size // align) * align
        self.ws_size = offset + nbytes
        return offset

    @property
    def caller_workspace(self):
        """Large workspaces come from the caller (args[n_args]), reused across calls, one per thread."""
        return self.ws_size > STACK_WORKSPACE

    @property
    def n_args(self):
        return self.n_in + self.n_out + len(self.consts)

    # ---- emission ------------------------------------------------------------------------------
    def build(self):
        """The module text: preamble, chunk functions, driver `jg_kernel`."""
        functions = self.functions()
        return PREAMBLE + "\n".join(sorted(self.declarations)) + "\n" + functions + ATTRIBUTES

    def functions(self):
        """The text of this trace's functions (chunks, driver @name, loop bodies), without the module's
        preamble, declarations (self.declarations) and attribute groups."""
        self.chunks = []
        self.reg_def = {}         # id -> (chunk number, register name)
        self.spills = {}          # id -> workspace offset of its slot
        self._new_chunk()
        group, group_shape = {}, None          # the pending horizontal-fusion group (fusion.py)
        for node in self.trace.nodes:
            k = self.kind[id(node)]
            if k == "fused" or node.op == "const":
                continue
            shape = None if id(node) in self.hosted else self.fusion.iteration_shape(self, node)
            if group and shape == group_shape and self.fusion.reads_aligned(self, node, group, shape):
                group[id(node)] = node
                continue
            if group and k in ("reg", "guard") and not self.fusion.depends_on(self, node, group):
                self._emit_unit([node])        # straight-line code moves ahead of the group's loop
                continue
            if group:
                self._emit_unit(list(group.values()), group_shape)
                group, group_shape = {}, None
            if shape is not None:
                group, group_shape = {id(node): node}, shape
            else:
                self._emit_unit([node])
        self._emit_unit(list(group.values()), group_shape)
        for j, v in enumerate(self.trace.outputs):
            if not self.output_loc[j]:
                self._copy_out(v, ("arg", self.n_in + j))
        chunks = "\n".join(self._chunk_text(c) for c in range(len(self.chunks)))
        return chunks + self._driver() + "".join(self.nested_functions)

    def _emit_unit(self, nodes, shape=None):
        """Emit one node, or a group of several sharing one loop nest over `shape`."""
        if not nodes:
            return
        if self.ops_in_chunk >= CHUNK_OPS:
            self._new_chunk()
        self.ops_in_chunk += len(nodes)
        if len(nodes) > 1:
            self.fusion.emit_group(self, shape, nodes)
        else:
            self._emit_node(nodes[0])
        self._check_math_flag()

    def _emit_node(self, node):
        k = self.kind[id(node)]
        if k == "guard":
            self._guard(node)
        elif id(node) in self.hosted:
            self.rules.hostcall.emit_host_call(self, node)
        elif node.op in self.rules.MATERIALIZE:
            self.rules.MATERIALIZE[node.op](self, node)
        elif k == "reg":      # the scalar regime: straight-line code, no loop bookkeeping
            self.define_reg(node, self._folded(node) or self.rules.ACCESS[node.op](self, node, []))
        else:
            self.materialize_by_access(node)

    def _new_chunk(self):
        params = "".join(f"ptr noalias %p{k}, " for k in range(self.n_args))
        f = FunctionText(f"define internal i64 @{self.name}_chunk{len(self.chunks)}({params}ptr %ws) #1", self.precise_math)
        f.prologue, f.tail, f.spill_out = [], [], []
        self.chunks.append(f)
        self.f = f
        self.memo = [{}]
        self.regs = {}
        self.ptrs = {}
        self.ops_in_chunk = 0

    def _chunk_text(self, c):
        f = self.chunks[c]
        stores = []
        for offset, name, ty in f.spill_out:
            p = f.fresh("w")
            stores += [f"  {p} = getelementptr inbounds i8, ptr %ws, i64 {offset}", f"  store {ty} {name}, ptr {p}"]
        f.lines[:0] = f.prologue
        f.lines += stores + ["  ret i64 -1"] + f.tail
        if self.straight_line(c):
            f.header = f.header[:-len("#1")] + "#3"
        elif len(self.chunks) == 1:         # the one chunk is inlined into the driver
            f.header = f.header[:-len("#1")] + "#4"
        return f.text()

    def straight_line(self, c):
        """True if chunk `c` of a long kernel (more than FAST_CODEGEN_CHUNKS chunks) has no loops but
        short ones: the unrolled scalar regime, compiled without IR passes and with the fast code
        generator (`optnone`).  On the 27k-op Euler gradient that compiles 6x faster (0.28 s vs
        1.76 s) and runs 1.0-1.5x slower (libm latency dominates); shorter kernels get O2."""
        return len(self.chunks) > FAST_CODEGEN_CHUNKS and not self.chunks[c].long_loops

    def _driver(self):
        n = len(self.chunks)
        lines = [f"define i64 @{self.name}(ptr %args) #2 {{", "entry:"]
        for k in range(self.n_args):
            lines += [f"  %g{k} = getelementptr inbounds ptr, ptr %args, i64 {k}", f"  %p{k} = load ptr, ptr %g{k}"]
        if self.caller_workspace:
            lines += [f"  %gws = getelementptr inbounds ptr, ptr %args, i64 {self.n_args}", "  %ws = load ptr, ptr %gws"]
        else:
            lines.append(f"  %ws = alloca [{max(self.ws_size, 8)} x i8], align 64")
        ptrs = ", ".join(f"ptr %p{k}" for k in range(self.n_args))
        fails = []
        for c in range(n):
            lines += [f"  %r{c} = call i64 @{self.name}_chunk{c}({ptrs}{', ' if ptrs else ''}ptr %ws)",
                      f"  %f{c} = icmp ne i64 %r{c}, -1",
                      f"  br i1 %f{c}, label %fail, label %c{c + 1}", f"c{c + 1}:"]
            fails.append(f"[ %r{c}, %{'entry' if c == 0 else f'c{c}'} ]")
        lines += ["  ret i64 -1", "fail:", f"  %rc = phi i64 {', '.join(fails)}"]
        lines += ["  ret i64 %rc", "}"]
        return "\n" + "\n".join(lines) + "\n"

    # ---- reading and writing values -----------------------------------------------------------
    def value(self, node, idx):
        """The register value of `node` at index `idx` (list of ints / i64 names) in the current code."""
        k = self.kind[id(node)]
        if k in ("reg", "guard"):
            return self._reg(node)
        key = (id(node), tuple(idx))
        for scope in reversed(self.memo):
            if key in scope:
                return scope[key]
        if k == "buf":
            r = self.load(node, idx)
        else:
            r = self.rules.ACCESS[node.op](self, node, list(idx))
        self.memo[-1][key] = r
        return r

    def _reg(self, node):
        vid = id(node)
        if vid in self.regs:
            return self.regs[vid]
        chunk, name = self.reg_def[vid]
        if vid not in self.spills:      # not stored at its definition: store it at its chunk's end
            self.spills[vid] = self.ws_alloc(8, 8)
            self.chunks[chunk].spill_out.append((self.spills[vid], name, reg_type(node.dtype)))
        load = f"load {reg_type(node.dtype)}, ptr "
        if self.f.loop_depth:           # must dominate uses after the loop: load in the entry block
            r = self.f.fresh("s")
            self.f.prologue.append(f"  {r} = {load}{self.pointer(('ws', self.spills[vid]))}")
        else:                           # load where first used: short live ranges, fast codegen
            r = self.f.emit(load + self.f.emit(f"getelementptr inbounds i8, ptr %ws, i64 {self.spills[vid]}"))
        self.regs[vid] = r
        return r

    def _folded(self, node):
        """The literal of a 0-d node whose operands are all known constants, else None."""
        if node.op not in FOLDABLE:
            return None
        vals = [self.constants.get(id(a)) for a in node.args]
        if any(v is None for v in vals):
            return None
        value = evaluate(node.op, vals, node.params)
        self.constants[id(node)] = value
        return literal(value, node.dtype)

    def define_reg(self, node, name):
        """Bind 0-d `node` to register `name`; store it to a slot now if a later chunk may read it."""
        vid = id(node)
        self.regs[vid] = name
        self.reg_def[vid] = (len(self.chunks) - 1, name)
        horizon = self.position.get(vid, -1) + CHUNK_OPS - self.ops_in_chunk
        users = self.users.get(vid)     # in program order: the last one is read last
        if not self.f.loop_depth and users and self.position[id(users[-1])] > horizon:
            self.spills[vid] = self.ws_alloc(8, 8)
            address = self.f.emit(f"getelementptr inbounds i8, ptr %ws, i64 {self.spills[vid]}")
            self.f.stmt(f"store {reg_type(node.dtype)} {name}, ptr {address}")

    def pointer(self, loc):
        """The base pointer of a buffer location in the current chunk."""
        kind, where = loc
        if kind == "arg":
            return f"%p{where}"
        if kind == "ptr":               # an address already computed in this chunk
            return where
        if where not in self.ptrs:
            r = self.f.fresh("w")
            self.f.prologue.append(f"  {r} = getelementptr inbounds i8, ptr %ws, i64 {where}")
            self.ptrs[where] = r
        return self.ptrs[where]

    def element_ptr(self, loc, dtype, offset):
        return self.f.emit(f"getelementptr inbounds {mem_type(dtype)}, ptr {self.pointer(loc)}, i64 {offset}")

    def load(self, node, idx, offset=None, loc=None):
        """Load element `idx` of materialized `node` (or the given linear `offset`, from `loc`)."""
        if offset is None:
            offset = linear(self.f, idx, strides_of(node.shape))
        p = self.element_ptr(loc or self.loc[id(node)], node.dtype, offset)
        mt = mem_type(node.dtype)
        r = self.f.emit(f"load {mt}, ptr {p}")
        return self.f.emit(f"trunc i8 {r} to i1") if reg_type(node.dtype) == "i1" else r

    def store_at(self, loc, shape, dtype, idx, val):
        p = self.element_ptr(loc, dtype, linear(self.f, idx, strides_of(shape)))
        if reg_type(dtype) == "i1":
            val = self.f.emit(f"zext i1 {val} to i8")
        self.f.stmt(f"store {mem_type(dtype)} {val}, ptr {p}")

    def store(self, node, idx, val):
        """Write element `idx` of `node`: into its buffer, or (0-d) define its register."""
        if self.kind[id(node)] == "reg":
            self.define_reg(node, val)
        else:
            self.store_at(self.loc[id(node)], node.shape, node.dtype, idx, val)

    def loops(self, dims, body):
        """A loop nest over static `dims`; values computed inside do not leak out of it."""
        self.memo.append({})
        try:
            self.f.loop_nest(list(dims), body)
        finally:
            self.memo.pop()

    def materialize_by_access(self, node):
        """Compute a fusable node into its buffer (or register) with one loop nest."""
        access = self.rules.ACCESS[node.op]
        self.loops(node.shape, lambda idx: self.store(node, idx, access(self, node, idx)))

    def _copy_out(self, v, loc):
        if self.ops_in_chunk >= CHUNK_OPS:
            self._new_chunk()
        self.ops_in_chunk += 1
        if v.dtype.kind == "c":             # complex values are buffers: copy the bytes
            self.declarations.add("declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)")
            self.f.stmt(f"call void @llvm.memcpy.p0.p0.i64(ptr {self.pointer(loc)}, "
                        f"ptr {self.pointer(self.loc[id(v)])}, i64 {v.size * v.dtype.itemsize}, i1 false)")
            return
        self.loops(v.shape, lambda idx: self.store_at(loc, v.shape, v.dtype, idx, self.value(v, idx)))
        self._check_math_flag()

    # ---- exits ---------------------------------------------------------------------------------
    def exit_unless(self, ok, code):
        """Branch to `return code` when i1 `ok` is false; continue in a fresh block."""
        cont, bad = self.f.new_label("ok"), self.f.new_label("exit")
        self.f.stmt(f"br i1 {ok}, label %{cont}, label %{bad}")
        self.f.tail += [f"{bad}:", f"  ret i64 {code}"]
        self.f.start_block(cont)

    def _check_math_flag(self):
        if self.f.math_flag_raised:
            raised = self.f.emit(f"load i1, ptr {self.f.math_flag}")
            self.exit_unless(self.f.emit(f"xor i1 {raised}, true"), PRECISE_EXIT)
            self.f.math_flag_raised = False

    def _guard(self, node):
        pred = node.args[0]
        index = self._guard_numbers[id(node)]
        x = self.value(pred, [])
        ok = self.rules.compare_to_literal(self, x, pred.dtype, node.params["expected"])
        self.exit_unless(ok, index)
        self.define_reg(node, "true")

    def prepare(self, guard_base=0):
        """Number the guards (from guard_base: a loop body's first guard has the number it has in the
        whole trace) and index values by id; call before build()."""
        self._guard_numbers = {id(g): guard_base + k for k, g in enumerate(self.trace.guards)}
        self.guard_base = guard_base
        self.position = {id(n): k for k, n in enumerate(self.trace.nodes)}
        self.constants = {id(n): n.params["value"] if n.op == "const" else
                          np.full((), n.params["value"], n.params["dtype"])
                          for n in self.trace.nodes if n.op in ("const", "fill") and n.shape == ()}
        return self


def lower(trace, name, precise_math=False):
    """(module text, Lowering) for `trace`, entry point @name; raises LoweringUnsupported."""
    lw = Lowering(trace, name, precise_math).prepare()
    return lw.build(), lw

