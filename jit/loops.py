"""Native loops: a `loop` node (ir/loops.py) becomes a counted loop whose body is compiled once.

Plan.  The body trace gets its own Lowering, planned with the enclosing trace (`plan`), so its
constant arrays join the kernel's; it is emitted (`emit_loop`) as an internal function
`i64 @<enclosing>_loop<k>(ptr args)` with the kernel ABI of lower.py, args = [the counter, the carries
in, the invariants, the carries out, the y rows out, its constants, (its workspace)], and its guards
numbered as in the whole trace (`Trace.guards`).  A loop inside the body nests the same way.

Emission.  `for t in range(trip)`: store t, point the carries at their buffers and each y at row t of
its stacked result (base + t * row bytes), call the body, leave with its exit code (a guard's number,
OOB_EXIT, PRECISE_EXIT, HOST_ERROR) when it is not -1.  The call is always inlined (BODY_INLINE), so
the per-iteration argument array and the 0-d carries' stack slots become registers (SROA).
- A 0-d carry lives in two stack slots, in and out, copied out -> in after each iteration.
- An array carry alternates between two buffers, chosen so that iteration trip-1 writes the
  result's own buffer (no copy at the end); iteration 0 reads the init where it lies.
- An array carry the body only updates at some positions (`traj[i] = v`: `in_place_carries`) keeps
  one buffer, a copy of its init, that the body's index_set updates in place.
- trip == 0: the results are the inits, the stacks are empty.
`loop_result` nodes are the loop's results: 0-d ones registers defined right after the loop, arrays
buffers it writes (lower.py plans them as it plans any materialized value).

Measured (forward W1 pendulum, loaded 2-core box, CPU time per call; C: the same loop with gcc -O3
-march=native -ffast-math): run time 1.07x / 0.99x / 1.22x C at 1e3 / 1e5 / 1e6 steps (at 1e6 theta
decays into subnormals, where C's FMA contraction does fewer slow operations; undamped 1.09x / 1.06x /
1.05x); compile 10-80 ms whatever the trip count.  A call the inliner may decline (BODY_INLINE False,
`noinline`) ran 1.5-1.9x C.  Short loops are not unrolled in the trace: LLVM's own unroller fully
unrolls short static-trip loops once the body is inlined (the pendulum up to 8 steps), and the
trace-level unrolled form measured no faster (0.90-1.15x rolled, within noise, at trips 1-1000 for
the pendulum and for x' = tanh(W x + b) with n = 2, 8, 64) while compiling 0.5-400 ms per step.
"""
from .errors import LoweringUnsupported
from .llvmtext import dtype_info, mem_type, reg_type
from .lower import UPDATES_IN_PLACE
from ..ir.loops import count_guards

BODY_INLINE = True        # call the body with `alwaysinline` (else `noinline`): measured above


class LoopPlan:
    """Where a loop node's pieces come from: the body's Lowering, and the kernel argument number of
    the first of the body's constant arrays (they follow the enclosing trace's own)."""

    __slots__ = ("lowering", "first_const")

    def __init__(self, lowering, first_const):
        self.lowering, self.first_const = lowering, first_const


def plan(lw, node):
    """Plan loop `node` inside Lowering `lw`: its body's Lowering; returns the node's kind, 'loop'."""
    from .lower import Lowering         # lower imports rules, which imports this module
    body = node.params["body"]
    for v in body.inputs[1:] + body.outputs:
        if v.dtype.kind == "c":
            raise LoweringUnsupported("a loop carrying complex values")
        dtype_info(v.dtype)
    inner = Lowering(body, f"{lw.name}_body", lw.precise_math)    # renamed when emitted
    for k in in_place_carries(node):     # the update writes the carry's one buffer (arg 1 + k)
        inner.loc[id(body.outputs[k])] = ("arg", 1 + k)
        inner.output_loc[k] = True
    lw.loc[id(node)] = LoopPlan(inner, lw.n_in + lw.n_out + len(lw.consts))
    lw.consts.extend(inner.consts)
    return "loop"


def in_place_carries(node):
    """The carries k of loop `node` that its body only updates at some positions (`traj[i] = v`):
    body output k is an index_set/index_add of body input 1 + k, which nothing else reads, and is
    no other output.  One buffer serves every iteration, updated in place: O(1) work per iteration
    instead of a copy of the whole carry."""
    body, n_carry = node.params["body"], node.params["n_carry"]
    readers = {}
    for n in body.nodes:
        for a in n.args:
            readers.setdefault(id(a), []).append(n)
    outputs = [id(v) for v in body.outputs]
    found = []
    for k in range(n_carry):
        x, new = body.inputs[1 + k], body.outputs[k]
        if (x.shape != () and new.op in UPDATES_IN_PLACE and new.args[0] is x
                and readers.get(id(x)) == [new] and outputs.count(id(new)) == 1 and id(x) not in outputs):
            found.append(k)
    return found


def _guards_before(lw, node):
    """How many guards `lw`'s trace checks before loop `node` (loop bodies included)."""
    n = 0
    for other in lw.trace.nodes:
        if other is node:
            return n
        n += 1 if other.op == "guard" else count_guards(other.params["body"]) if other.op == "loop" else 0
    raise AssertionError("loop node not in its trace")


def _slot(lw, dtype, value):
    """A stack slot holding register `value` of 0-d `dtype` (memory form)."""
    f = lw.f
    slot = f.alloca(mem_type(dtype))
    if reg_type(dtype) == "i1":
        value = f.emit(f"zext i1 {value} to i8")
    f.stmt(f"store {mem_type(dtype)} {value}, ptr {slot}")
    return slot


def _scratch(lw, v):
    """The address of a fresh workspace buffer for a value of v's type."""
    return lw.pointer(("ws", lw.ws_alloc(max(v.size * v.dtype.itemsize, 8), 64)))


def _in_memory(lw, v):
    """The address of operand v's elements: its buffer, else a slot or scratch buffer written now."""
    kind = lw.kind[id(v)]
    if kind == "buf":
        return lw.pointer(lw.loc[id(v)])
    if v.shape == ():
        return _slot(lw, v.dtype, lw.value(v, []))
    address = _scratch(lw, v)
    lw.loops(v.shape, lambda idx: lw.store_at(("ptr", address), v.shape, v.dtype, idx, lw.value(v, idx)))
    return address


def _select(f, t, when_odd, when_even):
    """The pointer `when_odd` if iteration `t` (an int or i64 name) is odd, else `when_even`."""
    if isinstance(t, int):
        return when_odd if t % 2 else when_even
    odd = f.emit(f"trunc i64 {t} to i1")
    return f.emit(f"select i1 {odd}, ptr {when_odd}, ptr {when_even}")


def _results(lw, node):
    """index -> the loop_result nodes reading that result of `node` (program order)."""
    found = {}
    for u in lw.users.get(id(node), ()):
        found.setdefault(u.params["index"], []).append(u)
    return found


class _Carry:
    """One carried value's storage across the iterations (see the module docstring)."""

    def __init__(self, lw, init, result, trip, in_place):
        self.lw, self.v, self.result = lw, init, result
        if init.shape == ():
            self.slot_in = _slot(lw, init.dtype, lw.value(init, []))
            self.slot_out = lw.f.alloca(mem_type(init.dtype))
            return
        final = lw.pointer(lw.loc[id(result)]) if result is not None else _scratch(lw, init)
        if in_place:        # one buffer, starting as a copy of the init
            lw.loops(init.shape, lambda idx: lw.store_at(("ptr", final), init.shape, init.dtype, idx,
                                                         lw.value(init, idx)))
            self.init, self.buffers = final, (final, final)
            return
        self.init = _in_memory(lw, init)
        other = _scratch(lw, init) if trip > 1 else final
        # iteration t writes buffers[t % 2]; the last one, trip - 1, writes `final`
        self.buffers = (final, other) if (trip - 1) % 2 == 0 else (other, final)

    def pointers(self, t):
        """(in, out) addresses at iteration t."""
        if self.v.shape == ():
            return self.slot_in, self.slot_out
        out = _select(self.lw.f, t, self.buffers[1], self.buffers[0])
        if isinstance(t, int):
            return (self.init if t == 0 else self.buffers[(t - 1) % 2]), out
        f = self.lw.f
        first = f.emit(f"icmp eq i64 {t}, 0")
        previous = _select(f, t, self.buffers[0], self.buffers[1])
        return f.emit(f"select i1 {first}, ptr {self.init}, ptr {previous}"), out

    def step(self):
        """After an iteration: the new value becomes the next one's input."""
        if self.v.shape == ():
            mt = mem_type(self.v.dtype)
            self.lw.f.stmt(f"store {mt} {self.lw.f.emit(f'load {mt}, ptr {self.slot_out}')}, ptr {self.slot_in}")

    def finish(self, trip):
        """Define the result (0-d: a register; arrays: the buffer already holds it, unless trip == 0)."""
        lw, v = self.lw, self.v
        if self.result is None:
            return
        if v.shape == ():
            lw.define_reg(self.result, lw.load(v, None, offset=0, loc=("ptr", self.slot_in)))
        elif trip == 0 and self.init != self.buffers[0]:
            loc = lw.loc[id(self.result)]
            lw.loops(v.shape, lambda idx: lw.store_at(loc, v.shape, v.dtype, idx,
                                                      lw.load(v, idx, loc=("ptr", self.init))))


def emit_loop(lw, node):
    """MATERIALIZE rule of `loop`: the body's function, then the counted loop calling it."""
    loop_plan, f = lw.loc[id(node)], lw.f
    inner, body = loop_plan.lowering, node.params["body"]
    trip, n_carry = node.params["trip"], node.params["n_carry"]
    inner.name = f"{lw.name}_loop{len(lw.nested_functions)}"
    inner.prepare(lw.guard_base + _guards_before(lw, node))
    # internal: dropped once inlined
    lw.nested_functions.append(inner.functions().replace(f"define i64 @{inner.name}(",
                                                          f"define internal i64 @{inner.name}(", 1))
    lw.declarations |= inner.declarations
    results = _results(lw, node)
    first = {k: rs[0] for k, rs in results.items()}
    in_place = in_place_carries(node)
    carries = [_Carry(lw, init, first.get(k), trip, k in in_place) for k, init in enumerate(node.args[:n_carry])]
    invariants = [_in_memory(lw, v) for v in node.args[n_carry:]]
    ys = []
    for j, y in enumerate(body.outputs[n_carry:]):
        r = first.get(n_carry + j)
        ys.append((lw.pointer(lw.loc[id(r)]) if r is not None else _scratch(lw, y), r is not None,
                   y.size * y.dtype.itemsize))
    consts = [lw.pointer(("arg", loop_plan.first_const + j)) for j in range(len(inner.consts))]
    workspace = [lw.pointer(("ws", lw.ws_alloc(inner.ws_size, 64)))] if inner.caller_workspace else []
    counter = f.alloca("i64")
    argv = f.alloca(f"[{inner.n_args + len(workspace)} x ptr]")

    def iteration(idx):
        (t,) = idx
        f.stmt(f"store i64 {t}, ptr {counter}")
        ins, outs = zip(*(c.pointers(t) for c in carries)) if carries else ((), ())
        rows = [_row(f, base, t, nbytes) if stacked else base for base, stacked, nbytes in ys]
        for k, address in enumerate([counter, *ins, *invariants, *outs, *rows, *consts, *workspace]):
            f.stmt(f"store ptr {address}, ptr {f.emit(f'getelementptr inbounds ptr, ptr {argv}, i64 {k}')}")
        rc = f.emit(f"call i64 @{inner.name}(ptr {argv}){' #4' if BODY_INLINE else ' #1'}")
        cont, fail = f.new_label("ok"), f.new_label("exit")
        f.stmt(f"br i1 {f.emit(f'icmp eq i64 {rc}, -1')}, label %{cont}, label %{fail}")
        f.tail += [f"{fail}:", f"  ret i64 {rc}"]
        f.start_block(cont)
        for c in carries:
            c.step()
    lw.loops([trip], iteration)
    for c in carries:
        c.finish(trip)
    _copy_duplicates(lw, results)


def _row(f, base, t, nbytes):
    if isinstance(t, int):
        return base if t == 0 else f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {t * nbytes}")
    return f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {f.emit(f'mul nsw i64 {t}, {nbytes}')}")


def _copy_duplicates(lw, results):
    """Later loop_result nodes reading a result already read: the first one's value."""
    for first, *others in results.values():
        for r in others:
            if r.shape == ():
                lw.define_reg(r, lw.value(first, []))
            else:
                loc = lw.loc[id(r)]
                lw.loops(r.shape, lambda idx, r=r, loc=loc: lw.store_at(loc, r.shape, r.dtype, idx,
                                                                         lw.value(first, idx)))


def emit_result(lw, node):
    """MATERIALIZE rule of `loop_result`: nothing to do, its loop has defined or written it."""
