"""All cores on big loops: a top-level elementwise or full-reduction loop nest (a plan.Unit: a
horizontal fusion group, one materialized elementwise node, or one reduction over all axes) of at
least MIN_ITERATIONS iterations runs split across threads.

Emission.  The loop nest's body is outlined into `i64 @<kernel>_par<k>(ptr noalias %p0.., ptr %ws,
i64 %start, i64 %end, ptr %task)`, which runs the outermost index from start to end (the inner loops
whole) and returns its exit code; an entry `ptr @<kernel>_par<k>_entry(ptr %task)` unpacks a task
block (exit code, start, end, the kernel's pointers, reduction partials) for it.  At the call site the
kernel fills one task block per thread (T = the thread count, at most the outer trip count, each
share ceil(n/T) outer indices) and calls `@jg_parallel_run`, which starts tasks 1..T-1 on POSIX
threads (pthread_create; a task whose thread cannot start runs on the caller), runs task 0 itself,
joins them, and returns the first failing exit code in task order (a guard, an index out of bounds,
PRECISE_EXIT: the kernel leaves with it, as from any loop).  Outlined bodies read the kernel's 0-d
registers from workspace slots (emit.py spills them before the call).

Thread count: the i64 cell `jg_num_threads` (threads.py) read by every kernel at run time (not baked
into the machine code, so cached kernels follow the setting): JITGRAD_NUM_THREADS, default the number
of cores this process may run on (os.sched_getaffinity); `set_num_threads(n)` changes it.  1 runs the
one share on the caller, no thread started.

Results.  Elementwise outputs are bit-identical whatever the thread count (each element is computed by
the same code).  A sum or product over a split loop adds up per-thread partials in thread order, so
its rounding depends on the thread count (deterministic for a given count; max and min, and integer
and bool reductions, are exact).  BLAS keeps its own threads (OPENBLAS_NUM_THREADS).

Measured (W3, sum(tanh(x) sin(y)^2 + exp(-x^2) y) and its gradient, 2-core box): see bench/threads_w3.py.
"""
import math

from .abi import SUCCESS
from .threads import MAX_THREADS, num_threads, set_num_threads  # noqa: F401 - the setting's API here too
from .llvmtext import FunctionText
from .fusion import group_body
from .rules import REDUCE, Accumulator

MIN_ITERATIONS = 1 << 16        # below this a split loses: starting and joining a thread costs ~20-50 us
TASK_HEAD = 3                   # i64 slots before the pointers: exit code, start, end
PARTIAL_BYTES = 16              # one slot per reduction (a complex128 accumulator fits)


_RUN = f"""@jg_num_threads = external global i64
declare i32 @jg_pthread_create(ptr, ptr, ptr, ptr)
declare i32 @jg_pthread_join(i64, ptr)
define internal i64 @jg_parallel_run(ptr %fn, ptr %tasks, i64 %n, i64 %stride) #1 {{
entry:
  %tids = alloca [{MAX_THREADS} x i64], align 8
  %spawned = alloca [{MAX_THREADS} x i8], align 8
  br label %spawn_head
spawn_head:
  %t = phi i64 [ 1, %entry ], [ %t1, %spawn_next ]
  %more = icmp ult i64 %t, %n
  br i1 %more, label %spawn, label %run0
spawn:
  %off = mul i64 %t, %stride
  %task = getelementptr i8, ptr %tasks, i64 %off
  %tid = getelementptr i64, ptr %tids, i64 %t
  %rc = call i32 @jg_pthread_create(ptr %tid, ptr null, ptr %fn, ptr %task)
  %ok = icmp eq i32 %rc, 0
  %flag = getelementptr i8, ptr %spawned, i64 %t
  store i8 1, ptr %flag
  br i1 %ok, label %spawn_next, label %inline
inline:
  store i8 0, ptr %flag
  call ptr %fn(ptr %task)
  br label %spawn_next
spawn_next:
  %t1 = add i64 %t, 1
  br label %spawn_head
run0:
  call ptr %fn(ptr %tasks)
  br label %join_head
join_head:
  %j = phi i64 [ 1, %run0 ], [ %j1, %join_next ]
  %jmore = icmp ult i64 %j, %n
  br i1 %jmore, label %join, label %collect_head
join:
  %jflag = getelementptr i8, ptr %spawned, i64 %j
  %was = load i8, ptr %jflag
  %started = icmp ne i8 %was, 0
  br i1 %started, label %do_join, label %join_next
do_join:
  %tid_j = getelementptr i64, ptr %tids, i64 %j
  %jtid = load i64, ptr %tid_j
  %jrc = call i32 @jg_pthread_join(i64 %jtid, ptr null)
  br label %join_next
join_next:
  %j1 = add i64 %j, 1
  br label %join_head
collect_head:
  %c = phi i64 [ 0, %join_head ], [ %c1, %collect_next ]
  %coff = mul i64 %c, %stride
  %ctask = getelementptr i8, ptr %tasks, i64 %coff
  %code = load i64, ptr %ctask
  %failed = icmp ne i64 %code, {SUCCESS}
  br i1 %failed, label %leave, label %collect_next
collect_next:
  %c1 = add i64 %c, 1
  %cmore = icmp ult i64 %c1, %n
  br i1 %cmore, label %collect_head, label %leave
leave:
  %result = phi i64 [ %code, %collect_head ], [ {SUCCESS}, %collect_next ]
  ret i64 %result
}}"""


def split_shape(em, unit):
    """The shape a unit's loop nest iterates over when it is worth splitting across threads, else None."""
    if not em.outermost or not unit.nodes or unit.copy_of is not None:
        return None
    if len(unit.nodes) > 1:
        shape = unit.shape
    else:
        node = unit.nodes[0]
        if id(node) in em.plan.hosted or em.plan.kind[id(node)] not in ("buf", "reg"):
            return None
        shape = em.plan.iteration_shape(node)
        if shape is None or (node.op not in REDUCE and em.plan.kind[id(node)] != "buf"):
            return None
    if shape is None or len(shape) == 0 or shape[0] < 2 or math.prod(shape) < MIN_ITERATIONS:
        return None
    return shape


# Loop metadata of the kernel's loops over its tasks (filling task blocks, combining partials): at most
# MAX_THREADS iterations, which LLVM would otherwise vectorize and unroll for nothing (W3's kernel: 254 -> 68
# instructions outside the outlined body, compile 79 -> 60 ms).  One distinct loop id per loop.
_SERIAL = ('!1 = !{!"llvm.loop.vectorize.width", i32 1}', '!2 = !{!"llvm.loop.interleave.count", i32 1}',
           '!3 = !{!"llvm.loop.unroll.disable"}')


def _serial_loop(em):
    """A fresh loop id (metadata name) for a loop over tasks, declared in `em`'s module."""
    for line in _SERIAL:
        em.declare(line)
    em.serial_loops += 1
    name = f"!{len(_SERIAL) + em.serial_loops}"
    em.declare(f"{name} = distinct !{{{name}, !1, !2, !3}}")
    return name


def _counted(f, start, end, body, depth=0, loop_id=None):
    """`for i in range(start, end): body(i)` with run-time bounds (i64 names or ints); `depth` 1 marks
    the loop as a loop nest's (math in it takes the vectorizable polynomials); `loop_id` is the metadata
    its latch carries (_serial_loop)."""
    pre, head, done = f.block, f.new_label("ploop"), f.new_label("pdone")
    f.stmt(f"br i1 {f.emit(f'icmp slt i64 {start}, {end}')}, label %{head}, label %{done}")
    f.start_block(head)
    i = f.fresh("i")
    phi_at = len(f.lines)
    f.lines.append(None)
    f.loop_depth += depth
    body(i)
    f.loop_depth -= depth
    nxt = f.emit(f"add nsw i64 {i}, 1")
    latch = f"br i1 {f.emit(f'icmp slt i64 {nxt}, {end}')}, label %{head}, label %{done}"
    f.stmt(latch if loop_id is None else f"{latch}, !llvm.loop {loop_id}")
    f.lines[phi_at] = f"  {i} = phi i64 [ {start}, %{pre} ], [ {nxt}, %{f.block} ]"
    f.start_block(done)


def _slot(f, task, offset):
    return f.emit(f"getelementptr inbounds i8, ptr {task}, i64 {offset}")


def emit(em, unit, shape):
    """Emit `unit` (split_shape gave `shape`) as an outlined body run by jg_parallel_run."""
    nodes = unit.nodes
    reductions = [n for n in nodes if n.op in REDUCE]
    stored = unit.stored if len(nodes) > 1 else frozenset(id(n) for n in nodes if n.op not in REDUCE)
    n_args = em.plan.n_args
    partials = 8 * (TASK_HEAD + n_args + 1)
    stride = partials + PARTIAL_BYTES * len(reductions)
    name = f"{em.name}_par{em.parallel_count}"
    em.parallel_count += 1
    em.declare(_RUN)
    em.nested_functions.append(_body(em, name, nodes, stored, reductions, shape, partials))
    em.nested_functions.append(_entry(name, n_args))
    f = em.f
    f.most_iterations = max(f.most_iterations, math.prod(shape))     # the chunk is not a fast-codegen one
    tasks = f.alloca(f"[{MAX_THREADS * stride} x i8]")
    n = shape[0]
    wanted = f.emit("load i64, ptr @jg_num_threads")
    t = f.emit(f"call i64 @llvm.umax.i64(i64 {f.emit(f'call i64 @llvm.umin.i64(i64 {wanted}, i64 {n})')}, i64 1)")
    per = f.emit(f"udiv i64 {f.emit(f'add i64 {t}, {n - 1}')}, {t}")
    t = f.emit(f"udiv i64 {f.emit(f'add i64 {n - 1}, {per}')}, {per}")      # no empty share

    def fill(k):
        task = _slot(f, tasks, f.emit(f"mul i64 {k}, {stride}"))
        start = f.emit(f"mul i64 {k}, {per}")
        end = f.emit(f"call i64 @llvm.umin.i64(i64 {f.emit(f'add i64 {start}, {per}')}, i64 {n})")
        for j, value in enumerate([SUCCESS, start, end]):
            f.stmt(f"store i64 {value}, ptr {_slot(f, task, 8 * j)}")
        for j, pointer in enumerate([f"%p{a}" for a in range(n_args)] + ["%ws"]):
            f.stmt(f"store ptr {pointer}, ptr {_slot(f, task, 8 * (TASK_HEAD + j))}")
    _counted(f, 0, t, fill, loop_id=_serial_loop(em))
    rc = f.emit(f"call i64 @jg_parallel_run(ptr @{name}_entry, ptr {tasks}, i64 {t}, i64 {stride})")
    ok, bad = f.new_label("pok"), f.new_label("pexit")
    f.stmt(f"br i1 {f.emit(f'icmp eq i64 {rc}, {SUCCESS}')}, label %{ok}, label %{bad}")
    f.tail += [f"{bad}:", f"  ret i64 {rc}"]
    f.start_block(ok)
    for r, node in enumerate(reductions):        # partials combined in thread order
        acc = Accumulator(em, node)
        acc.start()

        def combine(k, r=r, acc=acc):
            task = _slot(f, tasks, f.emit(f"mul i64 {k}, {stride}"))
            part = f.emit(f"load {acc.ty}, ptr {_slot(f, task, partials + PARTIAL_BYTES * r)}")
            f.stmt(f"store {acc.ty} {acc.combine(f, f.emit(f'load {acc.ty}, ptr {acc.slot}'), part, acc.ty)}, "
                   f"ptr {acc.slot}")
        _counted(f, 0, t, combine, loop_id=_serial_loop(em))
        acc.finish([])


def _body(em, name, nodes, stored, reductions, shape, partials):
    """The text of the outlined loop nest: outer index from %start to %end, partials into the task."""
    params = "".join(f"ptr noalias %p{k}, " for k in range(em.plan.n_args))
    f = FunctionText(f"define internal i64 @{name}({params}ptr %ws, i64 %start, i64 %end, ptr %task) #1",
                     em.precise_math)
    f.prologue, f.tail = [], []
    with em.outlined(f):
        accumulators = {id(n): Accumulator(em, n) for n in reductions}
        for acc in accumulators.values():
            acc.start()
        body = group_body(em, nodes, stored, accumulators)
        f.iterations = math.prod(shape)
        _counted(f, "%start", "%end", lambda i: em.loops(shape[1:], lambda idx: body([i] + idx)), depth=1)
        for r, node in enumerate(reductions):
            acc = accumulators[id(node)]
            value = f.emit(f"load {acc.ty}, ptr {acc.slot}")
            f.stmt(f"store {acc.ty} {value}, ptr {_slot(f, '%task', partials + PARTIAL_BYTES * r)}")
        em.check_math_flag()
    f.lines[:0] = f.prologue
    f.lines += [f"  ret i64 {SUCCESS}"] + f.tail
    return "\n" + f.text()


def _entry(name, n_args):
    """`ptr @<name>_entry(ptr %task)`: unpack a task block, run the body, store its exit code."""
    lines = [f"define internal ptr @{name}_entry(ptr %task) #1 {{", "entry:"]
    loaded = []
    for j, (kind, label) in enumerate([("i64", "start"), ("i64", "end")] +
                                      [("ptr", f"p{a}") for a in range(n_args)] + [("ptr", "ws")]):
        lines += [f"  %g{label} = getelementptr inbounds i64, ptr %task, i64 {j + 1}",
                  f"  %{label} = load {kind}, ptr %g{label}"]
        loaded.append(f"{kind} %{label}")
    args = ", ".join(loaded[2:] + loaded[:2])
    lines += [f"  %rc = call i64 @{name}({args}, ptr %task)", "  store i64 %rc, ptr %task", "  ret ptr null", "}"]
    return "\n" + "\n".join(lines) + "\n"
