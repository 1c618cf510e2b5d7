"""Native conditionals: a `cond` node (ir/conditional.py) becomes a branch that calls one of two
functions, each compiled from one branch trace; only the taken one runs.

Plan.  Each branch trace gets its own Plan (plan.py; `plan`, called by the enclosing Plan through
rules.NESTED; the pair kept in its `nested`), as a loop body does (loops.py): its constant arrays join
the kernel's, its workspace is its own.

Emission (`emit_cond`).  Each branch is an internal function `i64 @<enclosing>_cond<k>_<side>(ptr
args)` with the kernel ABI (abi.py), args = [the operands, the results, its constants, (its
workspace)], its guards numbered as in the whole trace (the true branch's first).  Before branching,
the operands are put in memory (buffers, or stack slots for 0-d registers) and every result gets its
place (a stack slot for a 0-d result, its buffer for an array); then `br i1 pred` to two blocks that
each call their function (always inlined) and leave with its exit code when it is not SUCCESS, and
meet after it, where the 0-d results are loaded into registers.  Nothing computed in a branch block
is read after the join except through memory, so the enclosing code's registers stay well defined.

Branch-free conds (`flattened`, before planning).  A small cond whose branches cannot fault on the
other side's operands (ir/cond_passes.py's `branch_free`: 0-d arithmetic and guards) is lowered as
straight-line code instead: both branches computed, the results selected, the guards masked to the
side taken (ir/cond_passes.py's `if_converted`).  A branch on data whose side varies from one
iteration to the next mispredicts about half the time (~15-20 cycles each); computing both sides costs
the cheaper one's work.  Converted when both branches together cost at most `if_convert_cost()`
(rules.op_cost units, 1 = an add; JITGRAD_IF_CONVERT_COST, 0 turns it off).  Measured
(2026-12-07, loaded 2-core box, cached value-and-gradient calls interleaved in one process, random
data): the quickstart loop over 200 rows (forward cond ~35: an exp and its overflow guard; backward
cond ~12) 0.93x at 16 and 24 against 0 (only the backward cond converted), 1.15x at 40 and 1.13x at 80
(the exp computed on every row); a Huber loss loop (~10) 0.98x at 16, a softplus loop (log1p(exp))
within noise.  So a pair holding an exp, log or sine stays a branch: the default, 20.
"""
import os

from .abi import SUCCESS
from .errors import LoweringUnsupported
from .llvmtext import dtype_info, mem_type
from .loops import BODY_INLINE, _copy_duplicates, _first_const, _guards_before, _in_memory, _results, _scratch
from ..ir.cond_passes import if_converted
from ..ir.loops import count_guards


def if_convert_cost():
    """The most two branches may cost together to be made branch-free (JITGRAD_IF_CONVERT_COST)."""
    return int(os.environ.get("JITGRAD_IF_CONVERT_COST", "20"))


def flattened(trace, op_cost):
    """`trace` with its small branch-free conds made straight-line (see the module docstring; `op_cost`:
    rules.op_cost, which imports this module)."""
    return if_converted(trace, lambda branches: sum(op_cost(n) for t in branches for n in t.nodes) <= if_convert_cost())


def plan(outer, node):
    """Plan cond `node` inside Plan `outer` (rules.NESTED): one Plan per branch, in outer.nested; their
    constant arrays are appended to outer's.  Returns the node's kind, 'cond'."""
    plans = []
    for branch in node.params["branches"]:
        for v in branch.inputs + branch.outputs:
            if v.dtype.kind == "c":
                raise LoweringUnsupported("a cond on complex values")
            dtype_info(v.dtype)
        inner = type(outer)(branch)              # a Plan (plan.py imports rules, which imports us)
        if inner.holds_heap:
            raise LoweringUnsupported("a cond holding a stack of a run-time number of rows")
        outer.consts.extend(inner.consts)
        plans.append(inner)
    outer.nested[id(node)] = tuple(plans)
    return "cond"


def _branch_function(em, inner, name, guard_base):
    """Emit the function of one branch (internal: dropped once inlined)."""
    body_em = type(em)(inner, name, em.precise_math, guard_base)
    text = body_em.functions().replace(f"define i64 @{name}(", f"define internal i64 @{name}(", 1)
    em.nested_functions.append(text)
    for line in body_em.declarations:
        em.declare(line)


def emit_cond(em, node):
    """MATERIALIZE rule of `cond`: the branches' functions, then the branch calling one of them."""
    f = em.f
    plans = em.plan.nested[id(node)]
    true = node.params["branches"][0]
    base = em.guard_base + _guards_before(em, node)
    name = f"{em.name}_cond{len(em.nested_functions)}"
    names = [f"{name}_true", f"{name}_false"]
    for inner, side, guard_base in zip(plans, names, (base, base + count_guards(true))):
        _branch_function(em, inner, side, guard_base)
    results = _results(em, node)
    first = {k: rs[0] for k, rs in results.items()}
    operands = [_in_memory(em, v) for v in node.args[1:]]
    places = []
    for k, y in enumerate(true.outputs):
        r = first.get(k)
        if r is None:
            places.append(_scratch(em, y))
        elif y.shape == ():
            places.append(f.alloca(mem_type(y.dtype)))
        else:
            places.append(em.pointer(em.plan.loc[id(r)]))
    calls = []
    for inner in plans:
        consts = [em.pointer(("arg", _first_const(em.plan, inner) + j)) for j in range(len(inner.consts))]
        workspace = [em.scratch(inner.workspace.size)] if inner.caller_workspace else []
        pointers = [*operands, *places, *consts, *workspace]
        calls.append((f.alloca(f"[{len(pointers)} x ptr]"), pointers))
    pred = em.value(node.args[0], [])
    labels = [f.new_label("then"), f.new_label("else")]
    join = f.new_label("join")
    f.stmt(f"br i1 {pred}, label %{labels[0]}, label %{labels[1]}")
    for label, side, (argv, pointers) in zip(labels, names, calls):
        f.start_block(label)
        for k, address in enumerate(pointers):
            f.stmt(f"store ptr {address}, ptr {f.emit(f'getelementptr inbounds ptr, ptr {argv}, i64 {k}')}")
        rc = f.emit(f"call i64 @{side}(ptr {argv}){' #4' if BODY_INLINE else ' #1'}")
        fail = f.new_label("exit")
        f.stmt(f"br i1 {f.emit(f'icmp eq i64 {rc}, {SUCCESS}')}, label %{join}, label %{fail}")
        f.tail += [f"{fail}:", f"  ret i64 {rc}"]
    f.start_block(join)
    for k, r in first.items():
        if r.shape == ():
            em.store(r, [], em.load(r, None, offset=0, loc=("ptr", places[k])))
    _copy_duplicates(em, results)


def emit_result(em, node):
    """MATERIALIZE rule of `cond_result`: nothing to do, its cond has defined or written it."""

