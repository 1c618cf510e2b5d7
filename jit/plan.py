"""Planning a trace for lowering: a pure step, no LLVM text.  It decides what every value is, where
buffers live, which top-level nodes share a loop nest, and where the code is cut into chunks; the
emitter (emit.py) follows the plan.

Kinds.  Every value is one of
  - 'reg':   a 0-d value, an SSA register of straight-line code (the scalar regime: unrolled loops);
  - 'buf':   a materialized row-major buffer: an input, an output, a constant, or a workspace slice;
  - 'fused': computed where it is read, from its operands (elementwise chains, broadcasts, transposes,
             reshapes, slices and gathers become index arithmetic inside the consumer's loop nest);
  - 'guard': a value guard (exits with its number when its 0-d predicate differs from the traced one).
An array value is materialized when it is an output, is produced by an op with its own loop structure
(rules.MATERIALIZE), is hosted (`hosted`: rules.is_hosted, a call back into the reference evaluation:
ops whose spec says `host`, and complex ops without a native lowering), feeds a BLAS product, a
Fourier transform (both read memory) or a host call, or is read more than once (or re-read under
broadcasting) and costs more than RECOMPUTE_LIMIT per element to recompute (rules.op_cost summed over
its fused operands).

Buffers.  `loc[id(v)]` is ('arg', k) (abi.argument_order) or ('ws', byte offset) in the one workspace
block; an index_set/index_add whose operand dies there updates the operand's buffer in place.  Buffers
whose live ranges do not overlap share bytes (liveness.py: `peak_bytes` against `unshared_bytes`).  An
output computed into the workspace is written straight into its output argument (`direct_output`).

Units and chunks.  `units` is the emission order: single nodes, horizontal fusion groups (consecutive
top-level nodes iterating over one shape share one loop nest: see `_reads_aligned`), and the copies
of outputs.  A unit with `new_chunk` starts a new chunk function (about CHUNK_OPS nodes each, and at
most CHUNK_LOOPS units with loops when the trace has more than MANY_LOOPS of them), which keeps LLVM's
work linear in the trace length: a 250-step vectorised simulation (5k nodes, ~2,500 loops over 32
elements) compiled in 506 s in 1000-node chunks at O2, in 0.7 s in short chunks that the emitter
compiles with the fast code generator (emit.fast_codegen), and runs faster (134 us vs 248 us).

Nesting.  A node that owns a trace (a loop's body: params["body"]) gets its own Plan, `nested[id(node)]`
(made by `nest`), sharing this plan's workspace allocator and constant list, so the body's buffers
never overlap the outer ones; a body's inputs and outputs are workspace buffers, its lowering rule
moves values in and out of them.  The loop op's rule plans its body itself (rules.NESTED: loops.py),
as a Plan of its own trace's arguments and workspace, emitted as a function of its own.
Every walk here is a loop over the program or an explicit worklist, never recursion along data
dependence, so traces of any length plan.
"""
import math

import numpy as np

from . import blas
from .abi import STACK_WORKSPACE, argument_order
from .errors import LoweringUnsupported
from .indexing import IndexLayout
from .liveness import reuse_workspace
from .rowgroups import row_groups
from .rules import ACCESS, MATERIALIZE, MATERIALIZED_OPERANDS, MEMORY_OPERANDS, NESTED, REDUCE, is_hosted, op_cost
from ..ir.loops import runtime_rows
from ..ir.ops import SPECS, family, ops_where

CHUNK_OPS = 1000
CHUNK_LOOPS = 16          # loops per chunk in a kernel of more than MANY_LOOPS loops (LLVM's O2 time grows
MANY_LOOPS = 128          # faster than linearly in the loops of one function)
RECOMPUTE_LIMIT = 6       # a fused value costing more than this per element is not recomputed
SOURCES = family("source")                        # input, const, fill
UPDATES_IN_PLACE = ("index_set", "index_add")   # written over their operand 0's buffer when it dies
RUNTIME_READERS = ("loop", "index")     # what may read a stack of a run-time number of rows (by rows)
# Natively lowered elementwise ops (ufuncs, where, astype) keep a loop index where they read.
ALIGNED_OPS = frozenset(ops_where(lambda s: s.elementwise and not s.host))


class Workspace:
    """Byte offsets in the kernel's one workspace block (buffers, register spills, scratch slots)."""

    def __init__(self):
        self.size = 0

    def alloc(self, nbytes, align):
        offset = -(-self.size // align) * align
        self.size = offset + nbytes
        return offset


class Unit:
    """One emission step: `nodes` (one node, or a horizontal group looping over `shape`), or the copy
    of output `copy_of` into output argument `output`; `stored`: group members written to memory."""
    __slots__ = ("nodes", "shape", "stored", "copy_of", "output", "new_chunk", "phases", "roles")

    def __init__(self, nodes=(), shape=None, stored=frozenset(), copy_of=None, output=None):
        self.nodes, self.shape, self.stored = list(nodes), shape, stored
        self.copy_of, self.output, self.new_chunk = copy_of, output, False
        self.phases = self.roles = None     # a row group's (rowgroups.py)

    @property
    def size(self):
        return len(self.nodes) or 1


class Plan:
    """The plan of one trace (see the module docstring)."""

    def __init__(self, trace, workspace=None, parent=None):
        self.trace, self.parent = trace, parent
        self.root = parent.root if parent else self
        self.workspace = workspace or Workspace()
        self.consts = parent.consts if parent else []   # const Values passed as arrays, in arg order
        self.n_in, self.n_out = len(trace.inputs), len(trace.outputs)
        self.kind, self.loc, self.cost = {}, {}, {}
        self.nested = {}                                # id(node) -> Plan of the trace it owns
        self.users = {}
        for node in trace.nodes:
            for a in node.args:
                self.users.setdefault(id(a), []).append(node)
        self.heap = []                  # workspace offsets of the pointers to run-time stacks (loops.py)
        self.in_body = False            # a loop body's plan (loops.py)
        self.hosted = {id(n) for n in trace.nodes if is_hosted(n)}
        self.row_local = set()          # buffers holding one row of a row group (rowgroups.py)
        self.gemm_layout = {id(n): blas.gemm_layout(n) for n in trace.nodes
                            if n.op == "dot_general" and id(n) not in self.hosted}
        self.out_ids = {id(v) for v in trace.outputs}
        self.position = {id(n): k for k, n in enumerate(trace.nodes)}
        self.guard_number = {id(g): k for k, g in enumerate(trace.guards)}
        self.constants = {id(n): n.params["value"] if n.op == "const" else
                          np.full((), n.params["value"], n.params["dtype"])
                          for n in trace.nodes if n.op in ("const", "fill") and n.shape == ()}
        self._place_values()
        self.gemm = {id(n) for n in trace.nodes if self.gemm_layout.get(id(n)) is not None
                     and all(self.kind[id(a)] == "buf" for a in n.args)}   # dot_generals through BLAS
        self.units = self._units()
        self.unshared_bytes = self.peak_bytes = self.workspace.size     # workspace bytes (see liveness.py)
        if parent is None and not self.nested and not self.heap and not any(n.op in NESTED for n in trace.nodes):
            self.unshared_bytes, self.peak_bytes = reuse_workspace(self, ALIGNED_OPS)

    # ---- kinds and buffers ---------------------------------------------------------------------
    def _place_values(self):
        args = argument_order(self.root.n_in, self.root.n_out, 0)
        for k, v in enumerate(self.trace.inputs):
            self.kind[id(v)] = "buf"
            self.loc[id(v)] = ("arg", args["input"] + k) if self.parent is None else self._ws_buffer(v)
        for node in self.trace.nodes:
            for a in node.args:
                if id(a) not in self.kind:
                    raise LoweringUnsupported(f"operand of {node.op} is not defined earlier in the trace")
            if any(map(runtime_rows, node.args)) and node.op not in RUNTIME_READERS:
                raise LoweringUnsupported(f"{node.op} of a stack of a run-time number of rows")
            k = self.kind[id(node)] = self._kind_of(node)
            if k == "buf":
                self.loc[id(node)] = self._buffer_for(node)
            if "body" in node.params and id(node) not in self.nested:   # unless its NESTED rule planned it
                self.nest(node, node.params["body"])
        if any(map(runtime_rows, self.trace.outputs)):
            raise LoweringUnsupported("a stack of a run-time number of rows as an output")
        self.direct_output = []
        seen = set()
        for j, v in enumerate(self.trace.outputs):
            direct = (self.parent is None and self.kind[id(v)] == "buf" and self.loc[id(v)][0] == "ws"
                      and v.op not in SOURCES and id(v) not in seen)
            seen.add(id(v))
            if direct:
                self.loc[id(v)] = ("arg", args["output"] + j)
            self.direct_output.append(direct)

    def _kind_of(self, node):
        if node.op in NESTED:               # a loop: planned with its body's own Plan (loops.py)
            return NESTED[node.op](self, node)
        users = self.users.get(id(node), [])
        if node.op == "guard":
            if node.args[0].shape != () or np.ndim(node.params["expected"]) != 0:
                raise LoweringUnsupported("guard on a non-scalar predicate")
            return "guard"
        if (node.op == "fill" and id(node) not in self.hosted) or (node.op == "const" and node.shape == ()):
            # host-called ops read their operands from memory: give a fill one when it feeds them
            return "buf" if node.shape != () and any(map(self._reads_memory, users)) else "fused"
        if node.op == "const":
            return "buf"
        if node.op not in ACCESS and node.op not in MATERIALIZE and not SPECS[node.op].host:
            raise LoweringUnsupported(f"op {node.op} has no lowering (jit/rules.py) and is not declared host")
        if node.shape == ():
            return "reg"
        if (node.op in MATERIALIZE or id(node) in self.hosted or id(node) in self.out_ids
                or any(self._reads_memory(u) or self.gemm_layout.get(id(u)) for u in users)):
            return "buf"
        self.cost[id(node)] = cost = op_cost(node) + sum(self.cost.get(id(a), 0) for a in node.args
                                                         if self.kind[id(a)] == "fused")
        reread = len(users) > 1 or any(u.size > node.size or u.op in MATERIALIZED_OPERANDS for u in users)
        return "buf" if reread and cost > RECOMPUTE_LIMIT else "fused"

    def _reads_memory(self, user):
        """Whether `user` reads its operands from memory: a host call, a Fourier transform."""
        return id(user) in self.hosted or user.op in MEMORY_OPERANDS

    def _buffer_for(self, node):
        if runtime_rows(node):          # allocated per call by its loop: a pointer in the workspace
            self.heap.append(self.workspace.alloc(8, 8))
            return ("heap", self.heap[-1])
        if node.op == "const":
            self.consts.append(node)
            root = self.root
            return ("arg", argument_order(root.n_in, root.n_out, 0)["const"] + len(self.consts) - 1)
        if node.op in UPDATES_IN_PLACE:
            x = node.args[0]
            if (self.kind[id(x)] == "buf" and self.loc[id(x)][0] == "ws" and x.op not in SOURCES
                    and id(x) not in self.out_ids and self.users[id(x)] == [node]):
                return self.loc[id(x)]      # x dies here: update its buffer (the rule skips the copy)
        return self._ws_buffer(node)

    def _ws_buffer(self, v):
        return ("ws", self.workspace.alloc(max(v.size * v.dtype.itemsize, 8), 64))

    @property
    def caller_workspace(self):
        """Large workspaces come from the caller (abi: the last argument), reused across calls; so does a
        loop body's holding pointers to run-time stacks (its loop's caller frees them: loops.py)."""
        return self.workspace.size > STACK_WORKSPACE or self.in_body and self.holds_heap

    @property
    def holds_heap(self):
        """Whether this plan or a nested one holds run-time stacks."""
        return bool(self.heap) or any(p.holds_heap for plans in self.nested.values()
                                      for p in (plans if isinstance(plans, tuple) else (plans,)))

    @property
    def n_args(self):
        """Pointer arguments of the kernel's chunks (inputs, outputs, constants of the root trace)."""
        return self.root.n_in + self.root.n_out + len(self.consts)

    def nest(self, node, body):
        """Plan `body`, the trace `node` owns (a loop's body), inside this plan's workspace."""
        self.nested[id(node)] = Plan(body, self.workspace, parent=self)
        return self.nested[id(node)]

    # ---- units: horizontal fusion groups and chunks ---------------------------------------------
    def _units(self):
        units, group, group_shape = [], {}, None
        for node in self.trace.nodes:
            k = self.kind[id(node)]
            if k == "fused" or node.op == "const":
                continue
            shape = None if id(node) in self.hosted else self.iteration_shape(node)
            if group and shape == group_shape and self._reads_aligned(node, group, shape):
                group[id(node)] = node
                continue
            if group and k in ("reg", "guard") and not self._depends_on(node, group):
                units.append(Unit([node]))      # straight-line code moves ahead of the group's loop
                continue
            if group:
                units.append(self._group_unit(group, group_shape))
                group, group_shape = {}, None
            if shape is not None:
                group, group_shape = {id(node): node}, shape
            else:
                units.append(Unit([node]))
        if group:
            units.append(self._group_unit(group, group_shape))
        units = row_groups(self, units, Unit, ALIGNED_OPS)
        if self.parent is None:
            units += [Unit(copy_of=v, output=j) for j, v in enumerate(self.trace.outputs)
                      if not self.direct_output[j]]
        looping = [u.copy_of.size > 1 if u.copy_of is not None else any(map(self._runs_loop, u.nodes))
                   for u in units]
        loop_budget = CHUNK_LOOPS if sum(looping) > MANY_LOOPS else len(units) + 1
        ops = loops = 0
        for unit, has_loop in zip(units, looping):
            if ops >= CHUNK_OPS or loops >= loop_budget:
                unit.new_chunk, ops, loops = True, 0, 0
            ops += unit.size
            loops += has_loop
        return units

    def _runs_loop(self, node):
        """Whether emitting `node` makes a loop (of more than one iteration)."""
        if node.op in UPDATES_IN_PLACE:
            x, _, *arrays = node.args
            copies = self.loc.get(id(node)) != self.loc.get(id(x)) and node.size > 1
            return copies or math.prod(IndexLayout(x.shape, node.params["spec"],
                                                   [a.shape for a in arrays]).out_shape) > 1
        if self.kind[id(node)] in ("reg", "guard") and node.op not in MATERIALIZE and not SPECS[node.op].host:
            return False
        return max([node.size] + [a.size for a in node.args]) > 1

    def _group_unit(self, group, shape):
        nodes = list(group.values())
        if len(nodes) == 1:
            return Unit(nodes)
        return Unit(nodes, shape, frozenset(id(n) for n in nodes if self._read_outside(n, group)))

    def iteration_shape(self, node):
        """The shape a node's top-level loop runs over if it can join a group, else None: a
        materialized fusable node, or a reduction over all axes of its operand."""
        k = self.kind[id(node)]
        if k == "buf" and node.op not in MATERIALIZE and node.op != "const":
            return node.shape
        if node.op in REDUCE and k in ("buf", "reg"):
            x = node.args[0]
            if len(node.params["axis"]) == x.ndim and x.ndim > 0:
                return x.shape
        return None

    def _reads_aligned(self, node, members, shape):
        """True if every path from `node` through fused values to a group member keeps the loop
        index (elementwise ops of `shape` only), so it reads the element this iteration computed;
        a member never reads a reduction member of its own group (that exists after the loop)."""
        stack, seen = [(node, True)], set()
        while stack:
            n, aligned = stack.pop()
            for a in n.args:
                keeps = aligned and (n is node and n.op in REDUCE or (n.op in ALIGNED_OPS and a.shape == shape))
                if id(a) in members:
                    if not keeps or members[id(a)].op in REDUCE:
                        return False
                elif self.kind[id(a)] == "fused" and (id(a), keeps) not in seen:
                    seen.add((id(a), keeps))
                    stack.append((a, keeps))
        return True

    def _depends_on(self, node, members):
        """True if `node` reads a group member, directly or through fused values."""
        stack, seen = [node], set()
        while stack:
            for a in stack.pop().args:
                if id(a) in members:
                    return True
                if self.kind[id(a)] == "fused" and id(a) not in seen:
                    seen.add(id(a))
                    stack.append(a)
        return False

    def _read_outside(self, node, members):
        """True if `node` is an output or some value other than the group's members (and fused values
        feeding only them) reads it: then its buffer must really be written."""
        if id(node) in self.out_ids:
            return True
        stack, seen = list(self.users.get(id(node), ())), set()
        while stack:
            u = stack.pop()
            if id(u) in members or id(u) in seen:
                continue
            if self.kind[id(u)] != "fused":
                return True
            seen.add(id(u))
            stack.extend(self.users.get(id(u), ()))
        return False
