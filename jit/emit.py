"""Emission: LLVM IR text for a Plan (plan.py), unit by unit, in chunk functions and a driver entry
(abi.py gives the entry's calling convention and exit codes).

The rule API.  The lowering rules (rules.py, fusion.py, blas.py, hostcall.py) receive the Emitter
`em` and may use only:
  em.f                        the FunctionText of the current chunk (instructions, blocks, allocas);
  em.plan                     the Plan, read only (kind, loc, gemm, ...);
  em.value(v, idx)            the register of value v at index idx (a list of ints / i64 names): a
                              register, a load from v's buffer, or v's fused computation;
  em.access(node, idx)        node's own ACCESS rule at idx, whatever node's kind (no memo);
  em.drive(generator)         run a generator that reads values as ACCESS rules do; its result;
  em.hand_over(node, idx, r)  make r the value of node at idx for the rest of the current loop nest;
  em.load / em.store / em.store_at / em.pointer / em.element_ptr     memory of buffers;
  em.loops(dims, body)        a loop nest over static dims, body(idx);
  em.exit_unless(ok, code)    return exit code `code` (abi) when i1 ok is false;
  em.scratch(nbytes)          the address of a fresh workspace slot (an i8 ptr name);
  em.declare(line)            an external declaration the module needs.
ACCESS rules of fused ops are generators: they yield (operand, index) for every operand element they
read and receive its register; the Emitter drives them with an explicit stack (`_drive`), so a fused
chain of any length is emitted without recursion in Python.
"""
import contextlib
from types import GeneratorType

from .abi import PRECISE_EXIT, SUCCESS
from .engine import vector_width
from .indexing import linear, strides_of
from .llvmtext import FunctionText, literal, mem_type, reg_type
from .mathfns import PREAMBLE
from .plan import ALIGNED_OPS, CHUNK_OPS
from ..ir.evaluate import evaluate
from . import fusion, hostcall, parallel, rules

FAST_CODEGEN_CHUNKS = 4
FAST_CODEGEN_ITERATIONS = 1024
FOLDABLE = ALIGNED_OPS
ATTRIBUTES = ("attributes #1 = {{ nounwind noinline{w} }}\nattributes #2 = {{ nounwind{w} }}\n"
              "attributes #3 = {{ nounwind noinline optnone }}\nattributes #4 = {{ nounwind alwaysinline{w} }}\n")


def attributes():
    """The attribute groups of a kernel module: #1 chunks, #2 the entry, #3 unoptimized chunks, #4
    inlined ones; loops prefer the host's vector width (engine.vector_width)."""
    width = vector_width()
    return ATTRIBUTES.format(w=f' "prefer-vector-width"="{width}"' if width else "")


class Emitter:
    """Builds the LLVM module text of one planned trace; see the module docstring."""

    def __init__(self, plan, name, precise_math=False, guard_base=0):
        self.plan, self.name, self.precise_math = plan, name, precise_math
        self.guard_base = guard_base    # a loop body's guards are numbered as in the whole trace
        self.nested_functions = []      # LLVM functions of loop bodies (loops.py)
        self.trace = plan.trace
        self.consts = plan.consts
        self.declarations = set()   # external functions the emitted code calls (besides the PREAMBLE's)
        self.constants = dict(plan.constants)   # 0-d values known at compile time (grows by folding)
        self.outermost = False      # the kernel's own emitter (build), not a loop body's or a branch's
        self.caller = None          # while a loop nest is outlined (parallel.py): the chunk calling it
        self.parallel_count = 0
        self.heap_slots = list(plan.heap)   # workspace offsets of run-time stacks' pointers, nested ones too
        self.serial_loops = 0       # loop ids of loops over parallel tasks (parallel._serial_loop)

    @property
    def ws_size(self):
        return self.plan.workspace.size

    @property
    def caller_workspace(self):
        return self.plan.caller_workspace

    # ---- module, chunks, driver ----------------------------------------------------------------
    def build(self):
        """The module text: preamble, chunk functions, driver entry."""
        self.outermost = True
        functions = self.functions()
        return PREAMBLE + "\n".join(sorted(self.declarations)) + "\n" + functions + attributes()

    def functions(self):
        """The text of this trace's functions (chunks, driver @name, loop bodies), without the module's
        preamble, declarations (self.declarations) and attribute groups."""
        self.chunks = []
        self.reg_def = {}         # id -> (chunk number, register name)
        self.spills = {}          # id -> workspace offset of its slot
        self._new_chunk()
        for unit in self.plan.units:
            if unit.new_chunk:
                self._new_chunk()
            self.ops_in_chunk += unit.size
            if unit.copy_of is not None:
                self._copy_out(unit.copy_of, ("arg", self.plan.n_in + unit.output))
            elif unit.phases:
                fusion.emit_rows(self, unit)
            elif parallel.split_shape(self, unit) is not None:
                parallel.emit(self, unit, parallel.split_shape(self, unit))
            elif len(unit.nodes) > 1:
                fusion.emit_group(self, unit)
            else:
                self._emit_node(unit.nodes[0])
            self.check_math_flag()
        chunks = "\n".join(self._chunk_text(c) for c in range(len(self.chunks)))
        return chunks + self._driver() + "".join(self.nested_functions)

    def _emit_node(self, node):
        k = self.plan.kind[id(node)]
        if k == "guard":
            self._guard(node)
        elif id(node) in self.plan.hosted:
            hostcall.emit_host_call(self, node)
        elif node.op in rules.MATERIALIZE:
            rules.MATERIALIZE[node.op](self, node)
        elif k == "reg":      # the scalar regime: straight-line code, no loop bookkeeping
            self.define_reg(node, self._folded(node) or self.access(node, []))
        else:
            self.loops(node.shape, lambda idx: self.store(node, idx, self.access(node, idx)))

    def _new_chunk(self):
        params = "".join(f"ptr noalias %p{k}, " for k in range(self.plan.n_args))
        header = f"define internal i64 @{self.name}_chunk{len(self.chunks)}({params}ptr %ws) #1"
        f = FunctionText(header, self.precise_math)
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
        f.lines += stores + [f"  ret i64 {SUCCESS}"] + f.tail
        if self.fast_codegen(c):
            f.header = f.header[:-len("#1")] + "#3"
        elif len(self.chunks) == 1:         # the one chunk is inlined into the driver
            f.header = f.header[:-len("#1")] + "#4"
        return f.text()

    def fast_codegen(self, c):
        """True if chunk `c` of a long kernel (more than FAST_CODEGEN_CHUNKS chunks) has no loop nest
        of more than FAST_CODEGEN_ITERATIONS iterations: it is compiled without IR passes and with the
        fast code generator (`optnone`).  Loop optimization costs LLVM ~10 ms per loop, which short
        loops never pay back: on the 27k-op Euler gradient (straight-line code) fast code generation
        compiles 6x faster (0.28 s vs 1.76 s) and runs 1.0-1.5x slower (libm latency dominates); on a
        vectorised 32-element simulation, measured below, it compiles ~50x faster.  Shorter kernels
        get O2."""
        return (len(self.chunks) > FAST_CODEGEN_CHUNKS
                and self.chunks[c].most_iterations <= FAST_CODEGEN_ITERATIONS)

    def _driver(self):
        n, n_args = len(self.chunks), self.plan.n_args
        lines = [f"define i64 @{self.name}(ptr %args) #2 {{", "entry:"]
        for k in range(n_args):
            lines += [f"  %g{k} = getelementptr inbounds ptr, ptr %args, i64 {k}", f"  %p{k} = load ptr, ptr %g{k}"]
        if self.caller_workspace:
            lines += [f"  %gws = getelementptr inbounds ptr, ptr %args, i64 {n_args}", "  %ws = load ptr, ptr %gws"]
        else:
            lines.append(f"  %ws = alloca [{max(self.ws_size, 8)} x i8], align 64")
        ptrs = ", ".join(f"ptr %p{k}" for k in range(n_args))
        heap = self.heap_slots if self.outermost else []     # (a loop body's: the kernel's)
        for k, offset in enumerate(heap):   # a run-time stack starts from the buffer the last call left
            self.declare(f"@{self.name}_spare{k} = internal global ptr null")
            lines += [f"  %h{k} = getelementptr inbounds i8, ptr %ws, i64 {offset}",
                      f"  %ht{k} = atomicrmw xchg ptr @{self.name}_spare{k}, ptr null seq_cst",
                      f"  store ptr %ht{k}, ptr %h{k}"]
        fails = []
        for c in range(n):
            lines += [f"  %r{c} = call i64 @{self.name}_chunk{c}({ptrs}{', ' if ptrs else ''}ptr %ws)",
                      f"  %f{c} = icmp ne i64 %r{c}, {SUCCESS}",
                      f"  br i1 %f{c}, label %fail, label %c{c + 1}", f"c{c + 1}:"]
            fails.append(f"[ %r{c}, %{'entry' if c == 0 else f'c{c}'} ]")
        lines += self._keep(heap, "hs") + [f"  ret i64 {SUCCESS}", "fail:", f"  %rc = phi i64 {', '.join(fails)}"]
        lines += self._keep(heap, "hf") + ["  ret i64 %rc", "}"]
        return "\n" + "\n".join(lines) + "\n"

    def _keep(self, slots, tag):
        """Driver lines keeping the run-time stacks whose pointers lie in `slots` (%h<k>) for the next
        call (one per stack: a buffer kept already, by a call of another thread, is freed)."""
        if slots:
            self.declare("declare void @jg_free(ptr)")
        return [line for k in range(len(slots)) for line in (
            f"  %{tag}{k} = load ptr, ptr %h{k}", f"  %{tag}o{k} = atomicrmw xchg ptr @{self.name}_spare{k}, "
            f"ptr %{tag}{k} seq_cst", f"  call void @jg_free(ptr %{tag}o{k})")]

    # ---- reading values: the worklist ------------------------------------------------------------
    def value(self, node, idx):
        """The register value of `node` at index `idx` (list of ints / i64 names) in the current code."""
        r = self._known(node, idx)
        if r is None:
            r = self._drive((id(node), tuple(idx)), rules.ACCESS[node.op](self, node, list(idx)))
        return r

    def access(self, node, idx):
        """The value of `node` at `idx` computed by its own ACCESS rule (materialized nodes too)."""
        return self._drive(None, rules.ACCESS[node.op](self, node, list(idx)))

    def drive(self, rule):
        """Run a generator that reads values as ACCESS rules do (rules.index_position); its result."""
        return self._drive(None, rule)

    def hand_over(self, node, idx, r):
        self.memo[-1][(id(node), tuple(idx))] = r

    def _known(self, node, idx):
        """The register of `node` at `idx` if it needs no fused computation (else None)."""
        k = self.plan.kind[id(node)]
        if k in ("reg", "guard"):
            return self._reg(node)
        key = (id(node), tuple(idx))
        for scope in reversed(self.memo):
            if key in scope:
                return scope[key]
        if k != "buf":
            return None
        r = self.memo[-1][key] = self.load(node, idx)
        return r

    def _drive(self, key, rule):
        """Run `rule` (a register, or a generator of operand reads); the fused operands it asks for are
        computed on an explicit stack of frames (memo key, rule), never by recursion."""
        stack, sent = [(key, rule)], None
        while True:
            key, rule = stack[-1]
            if isinstance(rule, GeneratorType):
                try:
                    operand, operand_idx = rule.send(sent)
                except StopIteration as done:
                    result = done.value
                else:
                    sent = self._known(operand, operand_idx)
                    if sent is None:
                        stack.append(((id(operand), tuple(operand_idx)),
                                      rules.ACCESS[operand.op](self, operand, list(operand_idx))))
                    continue
            else:
                result = rule
            stack.pop()
            if key is not None:
                self.memo[-1][key] = result
            if not stack:
                return result
            sent = result

    def _reg(self, node):
        vid = id(node)
        if vid in self.regs:
            return self.regs[vid]
        chunk, name = self.reg_def[vid]
        if vid not in self.spills:      # not stored at its definition: store it at its chunk's end
            self.spills[vid] = self.plan.workspace.alloc(16, 8)
            if self.caller is not None and chunk == len(self.chunks) - 1:
                address = self.caller.emit(f"getelementptr inbounds i8, ptr %ws, i64 {self.spills[vid]}")
                self.caller.stmt(f"store {reg_type(node.dtype)} {name}, ptr {address}")   # before the call
            else:
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
        horizon = self.plan.position.get(vid, -1) + CHUNK_OPS - self.ops_in_chunk
        users = self.plan.users.get(vid)     # in program order: the last one is read last
        if not self.f.loop_depth and users and self.plan.position[id(users[-1])] > horizon:
            self.spills[vid] = self.plan.workspace.alloc(16, 8)     # (a complex128 register fills 16)
            address = self.f.emit(f"getelementptr inbounds i8, ptr %ws, i64 {self.spills[vid]}")
            self.f.stmt(f"store {reg_type(node.dtype)} {name}, ptr {address}")

    # ---- memory --------------------------------------------------------------------------------
    def pointer(self, loc):
        """The base pointer of a buffer location in the current chunk."""
        kind, where = loc
        if kind == "arg":
            return f"%p{where}"
        if kind == "ptr":               # an address already computed in this chunk
            return where
        if kind == "heap":              # a run-time stack: its pointer, as its loop last stored it
            return self.f.emit(f"load ptr, ptr {self.pointer(('ws', where))}")
        if where not in self.ptrs:
            r = self.f.fresh("w")
            self.f.prologue.append(f"  {r} = getelementptr inbounds i8, ptr %ws, i64 {where}")
            self.ptrs[where] = r
        return self.ptrs[where]

    def element_ptr(self, loc, dtype, offset):
        return self.f.emit(f"getelementptr inbounds {mem_type(dtype)}, ptr {self.pointer(loc)}, i64 {offset}")

    def load(self, node, idx, offset=None, loc=None):
        """Load element `idx` of materialized `node` (or the given linear `offset`, from `loc`)."""
        if offset is None and id(node) in self.plan.row_local:     # one row's buffer (rowgroups.py)
            offset = idx[-1]
        elif offset is None:
            offset = linear(self.f, idx, strides_of(node.shape))
        p = self.element_ptr(loc or self.plan.loc[id(node)], node.dtype, offset)
        r = self.f.emit(f"load {mem_type(node.dtype)}, ptr {p}")
        return self.f.emit(f"trunc i8 {r} to i1") if reg_type(node.dtype) == "i1" else r

    def store_at(self, loc, shape, dtype, idx, val):
        p = self.element_ptr(loc, dtype, linear(self.f, idx, strides_of(shape)))
        if reg_type(dtype) == "i1":
            val = self.f.emit(f"zext i1 {val} to i8")
        self.f.stmt(f"store {mem_type(dtype)} {val}, ptr {p}")

    def store(self, node, idx, val):
        """Write element `idx` of `node`: into its buffer, or (0-d) define its register."""
        if self.plan.kind[id(node)] == "reg":
            self.define_reg(node, val)
        elif id(node) in self.plan.row_local:
            self.store_at(self.plan.loc[id(node)], node.shape[-1:], node.dtype, idx[-1:], val)
        else:
            self.store_at(self.plan.loc[id(node)], node.shape, node.dtype, idx, val)

    def scratch(self, nbytes):
        """The address (in this chunk) of a fresh 64-byte-aligned workspace slot of `nbytes`."""
        offset = self.plan.workspace.alloc(max(nbytes, 8), 64)
        return self.f.emit(f"getelementptr inbounds i8, ptr %ws, i64 {offset}")

    def declare(self, line):
        self.declarations.add(line)

    @contextlib.contextmanager
    def outlined(self, f):
        """Emit into FunctionText `f`, a function of its own taking the chunks' pointer arguments (a loop
        nest outlined by parallel.py): 0-d registers of the chunk are read from workspace slots, stored
        in the chunk (before its call of `f`) when first read."""
        saved = self.f, self.memo, self.regs, self.ptrs
        self.caller, self.f, self.memo, self.regs, self.ptrs = self.f, f, [{}], {}, {}
        try:
            yield f
        finally:
            self.f, self.memo, self.regs, self.ptrs = saved
            self.caller = None

    def loops(self, dims, body):
        """A loop nest over static `dims`; values computed inside do not leak out of it."""
        self.memo.append({})
        try:
            self.f.loop_nest(list(dims), body)
        finally:
            self.memo.pop()

    def _copy_out(self, v, loc):
        self.loops(v.shape, lambda idx: self.store_at(loc, v.shape, v.dtype, idx, self.value(v, idx)))

    # ---- exits ---------------------------------------------------------------------------------
    def exit_unless(self, ok, code):
        """Branch to `return code` when i1 `ok` is false; continue in a fresh block."""
        cont, bad = self.f.new_label("ok"), self.f.new_label("exit")
        self.f.stmt(f"br i1 {ok}, label %{cont}, label %{bad}")
        self.f.tail += [f"{bad}:", f"  ret i64 {code}"]
        self.f.start_block(cont)

    def check_math_flag(self):
        if self.f.math_flag_raised:
            raised = self.f.emit(f"load i1, ptr {self.f.math_flag}")
            self.exit_unless(self.f.emit(f"xor i1 {raised}, true"), PRECISE_EXIT)
            self.f.math_flag_raised = False

    def _guard(self, node):
        pred = node.args[0]
        x = self.value(pred, [])
        ok = rules.compare_to_literal(self, x, pred.dtype, node.params["expected"])
        self.exit_unless(ok, self.guard_base + self.plan.guard_number[id(node)])
        self.define_reg(node, "true")

