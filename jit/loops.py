"""Native loops: a `loop` node (ir/loops.py) becomes a counted loop whose body is compiled once.

Plan.  The body trace gets its own Plan (plan.py; `plan`, called by the enclosing Plan through
rules.NESTED, kept in its `nested`), a Plan of its own as the kernel's is: its constant arrays join
the kernel's, its workspace is its own.  It is emitted (`emit_loop`) by its own Emitter as an
internal function `i64 @<enclosing>_loop<k>(ptr args)` with the kernel ABI (abi.py), args = [the
counter, the carries in, the invariants, the carries out, the y rows out, its constants, (its
workspace)], its guards numbered as in the whole trace (`Trace.guards`).  Loops in a body nest.

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
- A loop with `exit` (a continue flag, ir/loops.py): the body's flag goes to a scratch byte, tested
  after each call; false leaves before the carries step (the iteration is discarded), so the count is
  the iteration number there.  Array carries are then copied from that iteration's input buffer into
  the result's (no in-place carries: the discarded iteration would have written them), and the
  stacked rows from the count on are zeroed.
`loop_result` nodes are the loop's results: 0-d ones registers defined right after the loop, arrays
buffers it writes (plan.py plans them as it plans any materialized value).

Measured (forward W1 pendulum, loaded 2-core box, CPU time per call; C: the same loop with gcc -O3
-march=native -ffast-math): run time 1.07x / 0.99x / 1.22x C at 1e3 / 1e5 / 1e6 steps (at 1e6 theta
decays into subnormals, where C's FMA contraction does fewer slow operations; undamped 1.09x / 1.06x /
1.05x); compile 10-80 ms whatever the trip count.  The pendulum's value and gradient by loop AD
(a taping loop, then a reversed loop) ran 0.90x / 0.92x the hand-written C gradient at 1e3 / 1e5 steps.  A call
the inliner may decline (BODY_INLINE False,
`noinline`) ran 1.5-1.9x C.  Short loops are not unrolled in the trace: LLVM's own unroller fully
unrolls short static-trip loops once the body is inlined (the pendulum up to 8 steps), and the
trace-level unrolled form measured no faster (0.90-1.15x rolled, within noise, at trips 1-1000 for
the pendulum and for x' = tanh(W x + b) with n = 2, 8, 64) while compiling 0.5-400 ms per step.
"""
from .abi import MEMORY_EXIT, SUCCESS, argument_order
from .errors import LoweringUnsupported
from .exitwrites import is_predicated, old_value_read, predicated
from .llvmtext import dtype_info, mem_type, reg_type
from ..ir.loops import node_guards

BODY_INLINE = True        # call the body with `alwaysinline` (else `noinline`): measured above
UPDATES_IN_PLACE = ("index_set", "index_add")   # as plan.py's (this module cannot import it: a cycle)


def plan(outer, node):
    """Plan loop `node` inside Plan `outer` (rules.NESTED): the body's own Plan, in outer.nested (for a
    loop with exit, of its body with row writes predicated: exitwrites.py); its constant arrays are
    appended to outer's.  Returns the node's kind, 'loop'."""
    body, exit = node.params["body"], node.params["exit"]
    if exit is not None:
        body = predicated(body, node.params["n_carry"], exit)
    for v in body.inputs[1:] + body.outputs:
        if v.dtype.kind == "c":
            raise LoweringUnsupported("a loop carrying complex values")
        dtype_info(v.dtype)
    inner = outer.nested[id(node)] = type(outer)(body)      # a Plan (plan.py imports rules, which imports us)
    inner.in_body = True
    args = argument_order(len(body.inputs), len(body.outputs), 0)
    for k, chain in in_place_carries(node, chains=True, body=body):   # the updates write the carry's one buffer
        for update in chain:
            inner.loc[id(update)] = ("arg", args["input"] + 1 + k)
        inner.direct_output[k] = True
        inner.units = [u for u in inner.units if u.copy_of is not body.outputs[k]]
    outer.consts.extend(inner.consts)
    return "loop"


def _first_const(outer, inner):
    """The argument number, in the enclosing kernel, of the first of the body's constant arrays."""
    if not inner.consts:
        return 0
    first = next(k for k, c in enumerate(outer.consts) if c is inner.consts[0])
    return argument_order(outer.root.n_in, outer.root.n_out, 0)["const"] + first


def in_place_carries(node, chains=False, body=None):
    """The carries k of loop `node` that its body only updates at some positions (`traj[i] = v`, or
    the scatters `g[i] += a; g[i + 1] += b` of a backward loop): body output k is a chain of
    index_set/index_add updates starting from body input 1 + k, each read only by the next (the first
    the input's only reader), the last no other output.  One buffer serves every iteration, updated in
    place: O(1) work per iteration instead of a copy of the whole carry.  With `chains`: (k, the
    updates, first to last) pairs.  `body`: the body lowered (default: the node's).  A loop with exit
    (its discarded last iteration would write the carry) qualifies only with one write predicated on
    its flag (exitwrites.py)."""
    body, n_carry, exit = body or node.params["body"], node.params["n_carry"], node.params["exit"]
    readers = {}
    for n in body.nodes:
        for a in n.args:
            readers.setdefault(id(a), []).append(n)
    outputs = [id(v) for v in body.outputs]
    order = {id(n): k for k, n in enumerate(body.nodes)}
    found = []
    for k in range(n_carry):
        x, new = body.inputs[1 + k], body.outputs[k]
        chain = _update_chain(new, x, readers, outputs, order)
        if exit is not None and not (len(chain) == 1 and is_predicated(new, x, body.outputs[exit])):
            continue
        if x.shape != () and chain and outputs.count(id(new)) == 1 and id(x) not in outputs:
            found.append((k, chain) if chains else k)
    return found


def _update_chain(new, x, readers, outputs, order):
    """The in-place updates leading from `x` to `new` (first to last), each its operand's only reader
    (`x` may also have element reads before the first: `_read_before`), none but `new` an output; []
    when `new` is not such a chain."""
    chain = []
    while new.op in UPDATES_IN_PLACE:
        chain.append(new)
        operand = new.args[0]
        others = [r for r in readers.get(id(operand), ()) if r is not new]
        if operand is x and not all(_read_before(r, new, order, readers) for r in others) \
                or operand is not x and (others or id(operand) in outputs):
            return []
        if operand is x:
            return chain[::-1]
        new = operand
    return []


def _read_before(reader, update, order, readers):
    """Whether `reader` of the carry sees its value before the carry's first in-place `update`: a 0-d
    element read (a register, loaded where it stands) placed before it (a backward loop reading the
    cotangent of `traj[i] = v` then zeroing it), or the predicated write's read of the positions it
    writes, read by nothing but the value it writes (exitwrites.py: read element by element as written)."""
    if order[id(reader)] > order[id(update)]:
        return False
    if reader.op == "index" and reader.shape == ():
        return True
    value = update.args[1]
    return old_value_read(reader, update) and readers.get(id(reader)) == [value] \
        and readers.get(id(value)) == [update]


def _guards_before(em, node):
    """How many guards `em`'s trace checks before loop (or cond) `node` (loop bodies and cond branches
    included)."""
    n = 0
    for other in em.trace.nodes:
        if other is node:
            return n
        n += node_guards(other)
    raise AssertionError("loop node not in its trace")


def _slot(em, dtype, value):
    """A stack slot holding register `value` of 0-d `dtype` (memory form)."""
    f = em.f
    slot = f.alloca(mem_type(dtype))
    if reg_type(dtype) == "i1":
        value = f.emit(f"zext i1 {value} to i8")
    f.stmt(f"store {mem_type(dtype)} {value}, ptr {slot}")
    return slot


def _scratch(em, v):
    """The address of a fresh workspace buffer for a value of v's type."""
    return em.scratch(v.size * v.dtype.itemsize)


def _in_memory(em, v):
    """The address of operand v's elements: its buffer, else a slot or scratch buffer written now."""
    kind = em.plan.kind[id(v)]
    if kind == "buf":
        return em.pointer(em.plan.loc[id(v)])
    if v.shape == ():
        return _slot(em, v.dtype, em.value(v, []))
    address = _scratch(em, v)
    em.loops(v.shape, lambda idx: em.store_at(("ptr", address), v.shape, v.dtype, idx, em.value(v, idx)))
    return address


def _select(f, t, when_odd, when_even):
    """The pointer `when_odd` if iteration `t` (an int or i64 name) is odd, else `when_even`."""
    if isinstance(t, int):
        return when_odd if t % 2 else when_even
    odd = f.emit(f"trunc i64 {t} to i1")
    return f.emit(f"select i1 {odd}, ptr {when_odd}, ptr {when_even}")


def _results(em, node):
    """index -> the loop_result nodes reading that result of `node` (program order)."""
    found = {}
    for u in em.plan.users.get(id(node), ()):
        found.setdefault(u.params["index"], []).append(u)
    return found


class _Carry:
    """One carried value's storage across the iterations (see the module docstring)."""

    def __init__(self, em, init, result, trip, in_place):
        self.em, self.v, self.result = em, init, result
        if init.shape == ():
            self.slot_in = _slot(em, init.dtype, em.value(init, []))
            self.slot_out = em.f.alloca(mem_type(init.dtype))
            return
        final = em.pointer(em.plan.loc[id(result)]) if result is not None else _scratch(em, init)
        if in_place:        # one buffer, starting as a copy of the init
            em.loops(init.shape, lambda idx: em.store_at(("ptr", final), init.shape, init.dtype, idx,
                                                         em.value(init, idx)))
            self.init, self.buffers = final, (final, final)
            return
        self.init = _in_memory(em, init)
        other = _scratch(em, init) if trip is None or trip > 1 else final
        # iteration t writes buffers[t % 2]; the last one, trip - 1, writes `final` (a run-time trip: finish_at)
        self.buffers = (final, other) if trip is None or (trip - 1) % 2 == 0 else (other, final)

    def pointers(self, t):
        """(in, out) addresses at iteration t."""
        if self.v.shape == ():
            return self.slot_in, self.slot_out
        out = _select(self.em.f, t, self.buffers[1], self.buffers[0])
        if isinstance(t, int):
            return (self.init if t == 0 else self.buffers[(t - 1) % 2]), out
        f = self.em.f
        first = f.emit(f"icmp eq i64 {t}, 0")
        previous = _select(f, t, self.buffers[0], self.buffers[1])
        return f.emit(f"select i1 {first}, ptr {self.init}, ptr {previous}"), out

    def step(self):
        """After an iteration: the new value becomes the next one's input."""
        if self.v.shape == ():
            mt = mem_type(self.v.dtype)
            self.em.f.stmt(f"store {mt} {self.em.f.emit(f'load {mt}, ptr {self.slot_out}')}, ptr {self.slot_in}")

    def finish_at(self, count):
        """Define the result after a loop with exit left at i64 `count`: the value iteration `count`
        started from (arrays: copied into the result's buffer unless it is there already)."""
        em, v = self.em, self.v
        if self.result is None or v.shape == () or self.buffers == (self.init, self.init):
            self.finish(None)           # (a 0-d register, or the one buffer updated in place)
            return
        source = self.pointers(count)[0] if count != "0" else self.init
        loc = em.plan.loc[id(self.result)]
        em.loops(v.shape, lambda idx: em.store_at(loc, v.shape, v.dtype, idx, em.load(v, idx, loc=("ptr", source))))

    def finish(self, trip):
        """Define the result (0-d: a register; arrays: the buffer already holds it, unless trip == 0)."""
        em, v = self.em, self.v
        if self.result is None:
            return
        if v.shape == ():
            em.store(self.result, [], em.load(v, None, offset=0, loc=("ptr", self.slot_in)))
        elif trip == 0 and self.init != self.buffers[0]:
            loc = em.plan.loc[id(self.result)]
            em.loops(v.shape, lambda idx: em.store_at(loc, v.shape, v.dtype, idx,
                                                      em.load(v, idx, loc=("ptr", self.init))))


def emit_loop(em, node):
    """MATERIALIZE rule of `loop`: the body's function, then the counted loop calling it."""
    f, inner = em.f, em.plan.nested[id(node)]
    body = inner.trace
    trip, n_carry, exit = node.params["trip"], node.params["n_carry"], node.params["exit"]
    name = f"{em.name}_loop{len(em.nested_functions)}"
    body_em = type(em)(inner, name, em.precise_math, em.guard_base + _guards_before(em, node))
    # internal: dropped once inlined
    text = body_em.functions().replace(f"define i64 @{name}(", f"define internal i64 @{name}(", 1)
    em.nested_functions.append(text)
    for line in body_em.declarations:
        em.declare(line)
    results = _results(em, node)
    first = {k: rs[0] for k, rs in results.items()}
    in_place = in_place_carries(node, body=body)
    carries = [_Carry(em, init, first.get(k), trip, k in in_place) for k, init in enumerate(node.args[:n_carry])]
    invariants = [_in_memory(em, v) for v in node.args[n_carry:]]
    n = None if trip is not None else _runtime_trip(em, node)
    ys, growing = [], []             # (a loop ending on its flag of a run-time trip: stacks grown as it goes)
    for j, y in enumerate(body.outputs[n_carry:]):
        r = None if n_carry + j == exit else first.get(n_carry + j)
        nbytes = y.size * y.dtype.itemsize
        base = em.pointer(em.plan.loc[id(r)]) if r is not None else _scratch(em, y)
        if n is not None and r is not None:
            base = _allocated(em, em.plan.loc[id(r)], n if exit is None else "0", nbytes)
            growing += [(len(ys), em.plan.loc[id(r)], nbytes, _capacity(em, base))] if exit is not None else []
        ys.append((base, r is not None, nbytes))
    first_const = _first_const(em.plan, inner)
    consts = [em.pointer(("arg", first_const + j)) for j in range(len(inner.consts))]
    workspace = []
    if inner.caller_workspace:
        offset = em.plan.workspace.alloc(max(inner.workspace.size, 8), 64)
        workspace.append(f.emit(f"getelementptr inbounds i8, ptr %ws, i64 {offset}"))
        em.heap_slots += [offset + slot for slot in body_em.heap_slots]     # the kernel frees them
    counter = f.alloca("i64")
    argv = f.alloca(f"[{inner.n_args + len(workspace)} x ptr]")

    def iteration(t):
        f.stmt(f"store i64 {t}, ptr {counter}")
        ins, outs = zip(*(c.pointers(t) for c in carries)) if carries else ((), ())
        bases = [base for base, _, _ in ys]
        for k, loc, nbytes, capacity in growing:
            bases[k] = _room(em, loc, t, nbytes, capacity)
        rows = [_row(f, base, t, nbytes) if stacked else base for base, (_, stacked, nbytes) in zip(bases, ys)]
        for k, address in enumerate([counter, *ins, *invariants, *outs, *rows, *consts, *workspace]):
            f.stmt(f"store ptr {address}, ptr {f.emit(f'getelementptr inbounds ptr, ptr {argv}, i64 {k}')}")
        rc = f.emit(f"call i64 @{name}(ptr {argv}){' #4' if BODY_INLINE else ' #1'}")
        cont, fail = f.new_label("ok"), f.new_label("exit")
        f.stmt(f"br i1 {f.emit(f'icmp eq i64 {rc}, {SUCCESS}')}, label %{cont}, label %{fail}")
        f.tail += [f"{fail}:", f"  ret i64 {rc}"]
        f.start_block(cont)
        if exit is not None:                  # the continue flag, in its scratch slot
            go = f.emit(f"load i8, ptr {ys[exit - n_carry][0]}")
            return f.emit(f"icmp ne i8 {go}, 0")
        return "true"

    def step():
        for c in carries:
            c.step()
    if n is not None:                         # a run-time trip count: for t in range(n), or to its flag
        count = _exit_loop(em, n, iteration, step)
        for c in carries:
            c.finish_at(count)
        if exit in first:
            em.store(first[exit], [], count)
    elif exit is None:
        em.loops([trip], lambda idx: (iteration(idx[0]), step()))
        for c in carries:
            c.finish(trip)
    else:
        count = _exit_loop(em, trip, iteration, step)
        for c in carries:
            c.finish_at(count)
        for base, stacked, nbytes in ys:
            if stacked:
                _zero_rows(em, base, count, trip, nbytes)
        if exit in first:
            em.store(first[exit], [], count)
    _copy_duplicates(em, results)


def _runtime_trip(em, node):
    """The i64 trip count of a loop of a run-time trip count (its last operand; 0 when negative)."""
    f = em.f
    n = em.value(node.args[-1], [])
    return f.emit(f"select i1 {f.emit(f'icmp slt i64 {n}, 0')}, i64 0, i64 {n}")


def _allocated(em, loc, n, nbytes):
    """A run-time stack of `n` (i64) rows of `nbytes` for a loop to write: the buffer whose pointer lies
    in workspace slot `loc` (('heap', offset)), replaced by a fresh one when smaller (the kernel starts
    from the buffer the call before left, and keeps it when it returns: emit.py's driver)."""
    f = em.f
    for line in ("ptr @jg_malloc(i64)", "void @jg_free(ptr)", "i64 @jg_malloc_usable_size(ptr)"):
        em.declare(f"declare {line}")
    slot = em.pointer(("ws", loc[1]))
    size = f.emit(f"mul nuw nsw i64 {n}, {max(nbytes, 1)}")
    size = f.emit(f"select i1 {f.emit(f'icmp ult i64 {size}, 8')}, i64 8, i64 {size}")
    held = f.emit(f"load ptr, ptr {slot}")
    enough = f.emit(f"icmp uge i64 {f.emit(f'call i64 @jg_malloc_usable_size(ptr {held})')}, {size}")
    grow, ready = f.new_label("grow"), f.new_label("ready")
    f.stmt(f"br i1 {enough}, label %{ready}, label %{grow}")
    f.start_block(grow)
    f.stmt(f"call void @jg_free(ptr {held})")
    fresh = f.emit(f"call ptr @jg_malloc(i64 {size})")
    f.stmt(f"store ptr {fresh}, ptr {slot}")
    em.exit_unless(f.emit(f"icmp ne ptr {fresh}, null"), MEMORY_EXIT)
    f.stmt(f"br label %{ready}")
    f.start_block(ready)
    return f.emit(f"load ptr, ptr {slot}")


def _capacity(em, base):
    """A stack slot holding the bytes buffer `base` has room for (it grows: `_room`)."""
    f = em.f
    slot = f.alloca("i64")
    f.stmt(f"store i64 {f.emit(f'call i64 @jg_malloc_usable_size(ptr {base})')}, ptr {slot}")
    return slot


def _room(em, loc, t, nbytes, capacity):
    """The base of a growing stack (workspace slot `loc`, its room in slot `capacity`) with room for row
    `t`: reallocated to twice its size (at least) when it has none."""
    f = em.f
    em.declare("declare ptr @jg_realloc(ptr, i64)")
    slot = em.pointer(("ws", loc[1]))
    need = f.emit(f"mul nuw nsw i64 {f.emit(f'add nuw nsw i64 {t}, 1')}, {max(nbytes, 1)}")
    room = f.emit(f"load i64, ptr {capacity}")
    grow, ready = f.new_label("grow"), f.new_label("room")
    f.stmt(f"br i1 {f.emit(f'icmp ugt i64 {need}, {room}')}, label %{grow}, label %{ready}")
    f.start_block(grow)
    twice = f.emit(f"shl nuw i64 {room}, 1")
    size = f.emit(f"select i1 {f.emit(f'icmp ugt i64 {need}, {twice}')}, i64 {need}, i64 {twice}")
    grown = f.emit(f"call ptr @jg_realloc(ptr {f.emit(f'load ptr, ptr {slot}')}, i64 {size})")
    em.exit_unless(f.emit(f"icmp ne ptr {grown}, null"), MEMORY_EXIT)
    f.stmt(f"store ptr {grown}, ptr {slot}")
    f.stmt(f"store i64 {size}, ptr {capacity}")
    f.stmt(f"br label %{ready}")
    f.start_block(ready)
    return f.emit(f"load ptr, ptr {slot}")


def _exit_loop(em, trip, iteration, step):
    """`for t in range(trip)` (`trip` an int or an i64 name) leaving early when `iteration(t)` (emitting
    the body) gives a false i1, before `step()`; returns the i64 count of iterations taken (t where it
    left)."""
    f = em.f
    if trip == 0:
        return "0"
    pre = f.block
    head, run, done = f.new_label("while"), f.new_label("body"), f.new_label("left")
    f.stmt(f"br label %{head}")
    f.start_block(head)
    t = f.fresh("t")
    phi_at = len(f.lines)
    f.lines.append(None)
    f.stmt(f"br i1 {f.emit(f'icmp ult i64 {t}, {trip}')}, label %{run}, label %{done}")
    f.start_block(run)
    em.memo.append({})
    f.loop_depth += 1
    try:
        go = iteration(t)
        stay = f.new_label("stay")
        f.stmt(f"br i1 {go}, label %{stay}, label %{done}")
        f.start_block(stay)
        step()
    finally:
        f.loop_depth -= 1
        em.memo.pop()
    nxt = f.emit(f"add nuw nsw i64 {t}, 1")
    f.stmt(f"br label %{head}")
    f.lines[phi_at] = f"  {t} = phi i64 [ 0, %{pre} ], [ {nxt}, %{f.block} ]"
    f.start_block(done)
    return t


def _zero_rows(em, base, count, trip, nbytes):
    """Zero rows count..trip-1 of a stacked result (rows a loop with exit did not take)."""
    f = em.f
    em.declare("declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)")
    start = f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {f.emit(f'mul nsw i64 {count}, {nbytes}')}")
    length = f.emit(f"mul nsw i64 {f.emit(f'sub nsw i64 {trip}, {count}')}, {nbytes}")
    f.stmt(f"call void @llvm.memset.p0.i64(ptr {start}, i8 0, i64 {length}, i1 false)")


def _row(f, base, t, nbytes):
    if isinstance(t, int):
        return base if t == 0 else f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {t * nbytes}")
    return f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {f.emit(f'mul nsw i64 {t}, {nbytes}')}")


def _copy_duplicates(em, results):
    """Later loop_result nodes reading a result already read: the first one's value."""
    for first, *others in results.values():
        for r in others:
            if r.shape == ():
                em.store(r, [], em.value(first, []))
            else:
                loc = em.plan.loc[id(r)]
                em.loops(r.shape, lambda idx, r=r, loc=loc: em.store_at(loc, r.shape, r.dtype, idx,
                                                                         em.value(first, idx)))


def emit_result(em, node):
    """MATERIALIZE rule of `loop_result`: nothing to do, its loop has defined or written it."""
