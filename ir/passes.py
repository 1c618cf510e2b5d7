"""Simplification passes: pure trace -> trace functions that keep the meaning and the guard order.

`dce` drops dead nodes (guards are always live), `cse` merges equal nodes, `fold_constants` evaluates
nodes whose operands are all constants, `simplify` applies algebraic identities that are exact in
floating point (table SIMPLIFY keyed by op), and `optimize` runs them all to a fixed point.  All of
them see through loop ops (ir/loop_passes.py, through the table LOOP_PASSES: pruned carries, bodies
optimized, invariant code hoisted).

Exactness: x*1, x/1, x**1, x-(+0.0) and x+(-0.0) equal x bitwise for every real x, NaN and -0.0
included, so they are simplified (the first three only for real dtypes: complex products mix the
parts).  x+(+0.0) is not (-0.0 + 0.0 == +0.0) and stays, except for integer and bool dtypes; x*0
becomes zeros only for integer and bool dtypes (NaN*0 is NaN, -1.0*0 is -0.0).  A replacement is used
only when its shape and dtype equal those of the node it replaces.
"""
import numpy as np

from .builder import Builder
from .errors import IRError
from .evaluate import EVAL, empty_extreme
from .loops import has_loops
from .ops import PARAMS, SPECS, check_table, family, ops_where
from .printer import format_value
from .value import Trace, Value

# The passes seen through loops, in ir/loop_passes.py: "dce", the `dce` of a trace holding loops, and
# "rewrites", the class whose instance rewrites the loop and loop_result nodes of an `optimize` round
# (methods `loop` and `result`, each returning a replacement Value or None).  They run this module's
# passes on loop bodies, so that module sits above this one and fills this table when it is imported;
# ir/__init__.py imports it, so the table is filled whenever jitgrad.ir is (lower layers take
# callbacks, not imports).
# ir/cond_passes.py adds "cond_rewrites", the class rewriting the cond and cond_result nodes of a round
# (same methods, `cond` and `result`).
LOOP_PASSES = {}

_CONSTANT_OPS = ops_where(lambda s: s.constant)          # const, fill
_UNFOLDED = ops_where(lambda s: not s.foldable)           # the sources; a loop or cond on constants stays one
# Folded results that are not uniform become consts only up to this many elements (traces stay small).
FOLD_LIMIT = 1 << 16


def replay(b, nodes, env, rule=None):
    """Re-emit `nodes` into builder `b`, operands mapped through `env` (id(old) -> new Value).

    `rule(b, node, args)` may return a replacement Value for a node (None: copy the node with its new
    operands).  `env` is extended with every node and returned.
    """
    for node in nodes:
        args = [env[id(a)] for a in node.args]
        new = rule(b, node, args) if rule is not None else None
        env[id(node)] = new if new is not None else copy_node(b, node, args)
    return env


def copy_node(b, node, args):
    """`node` re-emitted into `b` on operands `args`.  When every operand keeps its shape and dtype the
    node keeps its own (shape rules depend on nothing else), so the op/param checks and the shape rule
    are skipped: passes over long scalar traces spend most of their time here."""
    for a, o in zip(args, node.args):
        if a.shape != o.shape or (a.dtype is not o.dtype and a.dtype != o.dtype):
            return b.emit(node.op, *args, **node.params)
    v = Value(node.op, tuple(args), node.params, node.shape, node.dtype)
    b.nodes.append(v)
    return v


def copy_inputs(b, values):
    """New inputs of builder `b` with the types of `values`, in order: the env (id(old) -> new)."""
    return {id(v): b.input(v.shape, v.dtype) for v in values}


def rebuild(trace, rule=None):
    """A fresh copy of `trace` (new inputs, same order) with `rule` applied as in `replay`."""
    b = Builder()
    env = copy_inputs(b, trace.inputs)
    replay(b, trace.nodes, env, rule)
    return b.build([env[id(v)] for v in trace.outputs])


def with_body_pass(rule, body_pass):
    """A `replay` rule: loops and conds re-emitted with `body_pass` applied to their bodies and branches
    (never merged or folded), every other node by `rule`."""
    def wrapped(b, node, args):
        if node.op == "loop":
            p = node.params
            return b.loop(*args, body=body_pass(p["body"]), trip=p["trip"], n_carry=p["n_carry"], exit=p["exit"])
        if node.op == "cond":
            return b.cond(*args, branches=tuple(body_pass(t) for t in node.params["branches"]))
        return rule(b, node, args) if rule is not None else None
    return wrapped


def dce(trace):
    """Drop the nodes whose value reaches no output; guards are always live.  Loops: their unused
    carries and outputs are dropped too (ir/loop_passes.py)."""
    if has_loops(trace):
        return LOOP_PASSES["dce"](trace)
    live = {id(v) for v in trace.outputs}
    live.update(id(n) for n in trace.nodes if n.op == "guard")
    for node in reversed(trace.nodes):
        if id(node) in live:
            for a in node.args:
                live.add(id(a))
    return Trace(trace.inputs, [n for n in trace.nodes if id(n) in live], trace.outputs)


# Params keyed otherwise than by `exact_key`: a const by its bytes, a loop or cond by the identity of
# the traces it owns (the same body object: equal loops; bodies are not compared).
_OWN_KEYS = {
    "const": lambda p: (p["value"].dtype.str, p["value"].shape, p["value"].tobytes()),
    "loop": lambda p: (id(p["body"]), p["trip"], p["n_carry"], p["exit"]),
    "cond": lambda p: tuple(id(t) for t in p["branches"]),
}


def _params_key(node):
    """The exact params of a node as a hashable key (-0.0 differs from 0.0, True from 1)."""
    names = PARAMS[node.op]            # (the builder gives every node exactly these params)
    if not names:
        return ()
    own = _OWN_KEYS.get(node.op)
    if own is not None:
        return own(node.params)
    params = node.params
    if len(names) == 1:
        return exact_key(params[names[0]])
    return tuple([exact_key(params[name]) for name in names])


# Tags of the parts of an `exact_key` that are not plain ints, strings or None: each kind of value
# gets its own tag, so that keys of different values never compare equal (True == 1 == 1.0 in Python,
# and 0.0 == -0.0 although the two differ).  A tagged key is a tuple opening with its tag; plain
# values are never tuples.
_BOOL, _FLOAT, _COMPLEX, _PLAIN, _TUPLE, _LIST, _DTYPE, _ARRAY, _SCALAR, _OTHER = (
    "bool", "float", "complex", "plain", "tuple", "list", "dtype", "array", "scalar", "other")
_PLAIN_TYPES = frozenset((int, str, type(None)))     # (equal only to their own values of their own type)


def exact_key(value):
    """A hashable key equal for two param values exactly when they are the same value of the same
    type, bit for bit (-0.0 differs from 0.0; NaNs are equal): CSE's measure of equal params."""
    t = type(value)
    if t in _PLAIN_TYPES:
        return value
    if t is tuple:
        for item in value:
            if type(item) not in _PLAIN_TYPES:
                return (_TUPLE,) + tuple(map(exact_key, value))
        return (_PLAIN, value)
    return _exact_other(t, value)


def _exact_other(t, value):
    """`exact_key` of a value other than an int, a string, None or a tuple."""
    if t is bool:
        return (_BOOL, value)
    if t is float:
        return (_FLOAT, value.hex())
    if t is complex:
        return (_COMPLEX, value.real.hex(), value.imag.hex())
    if t is list:
        return (_LIST,) + tuple(map(exact_key, value))
    if isinstance(value, np.dtype):
        return (_DTYPE, value)
    if t is np.ndarray:
        return (_ARRAY, value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return (_SCALAR, value.dtype.str, value.tobytes())
    return (_OTHER, t, format_value(value))


def node_key(node, args):
    """What makes two nodes equal for CSE: op, operands `args` (by identity), exact params and type."""
    return (node.op, tuple(map(id, args)), _params_key(node), node.shape, node.dtype)


def cse(trace):
    """Merge nodes with the same op, operands, params (const arrays compared exactly) and type.

    Guards are never merged: each one keeps its place and index.
    """
    seen = {}

    def rule(b, node, args):
        if node.op == "guard":
            return None
        key = node_key(node, args)
        if key not in seen:
            seen[key] = copy_node(b, node, args)
        return seen[key]
    return rebuild(trace, with_body_pass(rule, cse))


def constant_value(v):
    """The concrete array of a const or fill Value, else None (NumPy's warnings as the caller set them:
    `optimize` and `fold_constants` silence them once, not per node)."""
    if v.op in _CONSTANT_OPS:
        return EVAL[v.op]([], v.params)
    return None


def _uniform_element(arr):
    """The first element of `arr` when every element has its exact bits, else None (also when empty)."""
    if not arr.size:
        return None
    first = arr.reshape(-1)[0]
    if arr.size == 1:
        return first
    return first if np.full(arr.shape, first, dtype=arr.dtype).tobytes() == arr.tobytes() else None


def uniform_value(v):
    """The single element value of a const/fill Value whose elements are all the same bits, else None."""
    if v.op == "fill" and v.size:
        return np.full((), v.params["value"], dtype=v.params["dtype"])[()]
    return _uniform_element(v.params["value"]) if v.op == "const" else None


def emit_constant(b, arr, max_const_size=None):
    """A fill when every element of `arr` has the same bits (any size), else a const; None (nothing
    emitted) when a const would have more than `max_const_size` elements."""
    arr = np.asarray(arr)
    first = _uniform_element(arr)
    if first is not None:
        return b.fill(arr.shape, arr.dtype, first.item())
    if max_const_size is not None and arr.size > max_const_size:
        return None
    return b.const(arr)


def _fold(b, node, args):
    if node.op in _UNFOLDED or not args:
        return None
    for a in args:
        if a.op not in _CONSTANT_OPS:
            return None
    values = [constant_value(a) for a in args]
    result = np.asarray(EVAL[node.op](values, node.params))
    if node.op == "guard":
        if not bool(result):
            why = node.params["why"]
            raise IRError(f"guard on constants always fails{': ' + why if why else ''}", loc=node.params["loc"])
        return b.fill((), bool, True)
    if result.shape != node.shape or result.dtype != node.dtype:
        raise IRError(f"{node.op}: reference evaluation gives {result.shape}/{result.dtype}, "
                      f"shape rule says {node.shape}/{node.dtype}")
    return emit_constant(b, result, max_const_size=FOLD_LIMIT)


def fold_constants(trace):
    """Evaluate every node whose operands are all const/fill: uniform results become fills, others
    consts (up to FOLD_LIMIT elements; bigger ones stay computed).

    A guard on constants that holds is dropped (its value becomes a `fill` True); one that fails
    raises IRError with the guard's location.
    """
    with np.errstate(all="ignore"):
        return dce(rebuild(trace, with_body_pass(_fold, fold_constants)))


# ---- algebraic simplification -------------------------------------------------------------------

def _same_type(x, node):
    return x if x.shape == node.shape and x.dtype == node.dtype else None


def _constant_in(v, dtype):
    """The uniform value of const/fill `v` converted to `dtype` (the arithmetic's dtype), else None."""
    c = uniform_value(v)
    return None if c is None else np.asarray(c).astype(dtype)


def _is_one(c):
    """1 of a real dtype (complex x * (1+0j) is not x bitwise: NumPy computes a*1 - b*0 + (a*0 + b*1)i)."""
    return c == 1 and c.dtype.kind != "c"


def _signbits(c):
    if np.iscomplexobj(c):
        return np.signbit(c.real), np.signbit(c.imag)
    return (np.signbit(c),)


def _is_exact_additive_identity(c):
    """0 for integers/bools, -0.0 for floats (x + -0.0 == x bitwise; x + +0.0 maps -0.0 to +0.0)."""
    if c.dtype.kind in "biu":
        return c == 0
    return c == 0 and all(_signbits(c))


def _is_exact_subtractive_identity(c):
    """0 for integers, +0.0 for floats (x - +0.0 == x + -0.0 == x bitwise)."""
    if c.dtype.kind in "biu":
        return c == 0
    return c == 0 and not any(_signbits(c))


def _identity_operand(is_identity, positions):
    """Rule for a binary op: return the other operand when the one at a position in `positions` is a
    constant satisfying `is_identity` (judged in the node's dtype)."""
    def rule(b, node, args):
        for pos in positions:
            c = _constant_in(args[pos], node.dtype)
            if c is not None and is_identity(c):
                other = _same_type(args[1 - pos], node)
                if other is not None:
                    return other
        return None
    return rule


_times_one = _identity_operand(_is_one, (0, 1))


def _multiply(b, node, args):
    one = _times_one(b, node, args)
    if one is not None or node.dtype.kind not in "biu":
        return one
    for a in args:
        c = _constant_in(a, node.dtype)
        if c is not None and c == 0:
            return b.fill(node.shape, node.dtype, 0)
    return None


def _negative(b, node, args):
    (x,) = args
    return x.args[0] if x.op == "negative" else None


def _where(b, node, args):
    cond, x, y = args
    c = uniform_value(cond)
    if c is not None:
        return _same_type(x if bool(c) else y, node)
    return _same_type(x, node) if x is y else None


def _whole_index(node, args):
    spec = node.params["spec"]
    x = args[0]
    return len(args) == 1 and len(spec) <= x.ndim and all(
        entry == ("slice", 0, x.shape[i], 1) for i, entry in enumerate(spec))


def _whole_update(b, node, args):
    """index_set/index_add addressing every element of x (full unit-step slices, 0 on axes of size
    1): v placed in x's shape, and for index_add x + v (one addition per element, as np.add.at;
    operands of the node's dtype only, so no rounding moves)."""
    x, v, *arrays = args
    spec = node.params["spec"]
    if arrays or len(spec) > x.ndim or not x.dtype == v.dtype == node.dtype:
        return None
    kept = []
    for axis, entry in enumerate(spec):
        if entry == ("slice", 0, x.shape[axis], 1):
            kept.append(x.shape[axis])
        elif not (entry[0] == "int" and x.shape[axis] == 1):
            return None
    kept += x.shape[len(spec):]
    if v.ndim > len(kept):          # (a setitem may drop leading 1s of v; leave those alone)
        return None
    placed = b.reshape(b.broadcast_to(v, shape=tuple(kept)), shape=x.shape)
    return b.add(x, placed) if node.op == "index_add" else placed


# Ops that are the identity on operand 0 when the predicate holds (and the types agree).
_NOOP_WHEN = {
    "reshape": lambda node, args: True,
    "broadcast_to": lambda node, args: True,
    "astype": lambda node, args: True,
    "transpose": lambda node, args: tuple(node.params["perm"]) == tuple(range(node.ndim)),
    "concatenate": lambda node, args: len(args) == 1,
    "index": _whole_index,
    **{op: (lambda node, args: tuple(node.params["axis"]) == ()) for op in family("reduction")},
}

# Ops that only move or repeat elements: of a fill, a fill of their shape.
_MOVES = ("reshape", "broadcast_to", "transpose")

# op(op(x, inner), outer) == op(x, compose(inner, outer)): params of the single equivalent node.
_COMPOSE = {
    "reshape": lambda inner, outer: {"shape": outer["shape"]},
    "broadcast_to": lambda inner, outer: {"shape": outer["shape"]},
    "transpose": lambda inner, outer: {"perm": tuple(inner["perm"][k] for k in outer["perm"])},
}


def _structural(b, node, args):
    if _NOOP_WHEN[node.op](node, args):
        same = _same_type(args[0], node)
        if same is not None:
            return same
    inner = args[0]
    if node.op in _MOVES and inner.op == "fill" and inner.dtype == node.dtype:   # (folding would make the
        return b.fill(node.shape, node.dtype, inner.params["value"])             # array, then check it)
    if node.op in _COMPOSE and inner.op == node.op:
        return b.emit(node.op, inner.args[0], **_COMPOSE[node.op](inner.params, node.params))
    return None


def _extreme(b, node, args):
    """max/min over no elements is the op's identity (ir/evaluate.py), whatever the data: a fill."""
    x = args[0]
    if x.size == 0 or any(x.shape[a] == 0 for a in node.params["axis"]):
        return b.fill(node.shape, node.dtype, empty_extreme(node.op, node.dtype))
    return _structural(b, node, args)


SIMPLIFY = {
    "power": _identity_operand(_is_one, (1,)),          # x**1 == x exactly (pow is exact there)
    "add": _identity_operand(_is_exact_additive_identity, (0, 1)),
    "subtract": _identity_operand(_is_exact_subtractive_identity, (1,)),
    "divide": _identity_operand(_is_one, (1,)),
    "multiply": _multiply,
    "negative": _negative,
    "where": _where,
    **{op: _structural for op in _NOOP_WHEN},
    "max": _extreme,
    "min": _extreme,
    "index_set": _whole_update,
    "index_add": _whole_update,
}


check_table("SIMPLIFY (ir/passes.py)", SIMPLIFY, (), "", specs=SPECS)


def _simplified(b, node, args):
    return SIMPLIFY[node.op](b, node, args) if node.op in SIMPLIFY else None


def simplify(trace):
    """Apply the exact algebraic identities of SIMPLIFY once over the trace (then drop dead nodes)."""
    return dce(rebuild(trace, with_body_pass(_simplified, simplify)))


def _rewritten(b, node, args, loops, conds):
    """What the rules of an `optimize` round replace `node` (on operands `args`) with, or None."""
    op = node.op
    if op == "loop":
        return loops.loop(b, node, args)
    if op == "loop_result":
        return loops.result(b, node, args)
    if op == "cond":
        return conds.cond(b, node, args)
    if op == "cond_result":
        return conds.result(b, node, args)
    new = _simplified(b, node, args)
    return new if new is not None else _fold(b, node, args)


_STRUCTURED = ("loop", "loop_result", "cond", "cond_result")


def _settle(b, new, seen, kept, loops, conds):
    """`new`, a rule's replacement; when it is a node the rule just emitted (the builder's last), it
    goes through the rules and CSE at once, as the next round would take it (so that no round is
    needed for it): the value standing for it then, recorded in `kept`."""
    for _ in range(8):
        if not b.nodes or b.nodes[-1] is not new or id(new) in kept or new.op in _STRUCTURED:
            return new
        again = _rewritten(b, new, list(new.args), loops, conds)
        if again is None:
            break
        new = again
    else:
        return new
    key = None if new.op == "guard" else node_key(new, new.args)
    hit = seen.get(key)
    if hit is not None:
        return hit
    kept[id(new)] = key
    if key is not None:
        seen[key] = new
    return new


def _optimize_round(trace, settled):
    """One pass applying simplify, then folding, then CSE to each node, then dce: (new trace, whether
    any rule fired).  Inputs and unchanged nodes are kept as they are (Values are immutable).
    `settled` maps the ids of the nodes of `trace` that no rule changed in the previous round (all
    alive together, so the ids are unambiguous) to their CSE keys: with the same operands again, the
    deterministic simplify and fold rules are not asked again, and the key is the same.  It is
    refilled for the next round."""
    b = Builder()
    b.inputs = list(trace.inputs)
    env = {id(v): v for v in trace.inputs}
    seen, kept, fired = {}, {}, False
    loops, conds = LOOP_PASSES["rewrites"](), LOOP_PASSES["cond_rewrites"]()
    for node in trace.nodes:
        args = [env[id(a)] for a in node.args]
        same = args == list(node.args)          # Values compare by identity
        known = same and id(node) in settled
        new = None if known else _rewritten(b, node, args, loops, conds)
        if new is None:
            key = settled[id(node)] if known else (
                None if node.op == "guard" else node_key(node, args))
            new = seen.get(key)
            if new is None:
                if same:
                    b.nodes.append(node)
                new = node if same else copy_node(b, node, args)
                kept[id(new)] = key
                if key is not None:
                    seen[key] = new
                env[id(node)] = new
                continue
        fired = True
        env[id(node)] = _settle(b, new, seen, kept, loops, conds)
    settled.clear()
    settled.update(kept)
    return dce(b.build([env[id(v)] for v in trace.outputs])), fired


def optimize(trace, max_rounds=20):
    """simplify, fold_constants, cse and dce repeated until no rule changes the trace any more."""
    trace, settled = dce(trace), {}
    for _ in range(max_rounds):
        with np.errstate(all="ignore"):        # (folding evaluates ops on constants)
            trace, changed = _optimize_round(trace, settled)
        # A round visits every node after its operands, so the only work it can leave for the next
        # round is in the nodes its rules emitted (they skip the rules and CSE).  When every node it
        # returns went through them unchanged (is settled), the next round would change nothing:
        # skipping it saves a whole pass over long traces.
        if not changed or all(id(n) in settled for n in trace.nodes):
            break
    return trace
