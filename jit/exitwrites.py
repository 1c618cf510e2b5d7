"""Row writes in a loop that ends on a flag (ir/loops.py's `exit`), made safe to do in place.

Such a loop runs one iteration more than it keeps: the iteration whose continue flag is false is
discarded, so its array carries cannot be one buffer updated in place (the discarded iteration would
have written them): each iteration copied them whole, which made a `while` loop writing `traj[i] = x`
into a 100,000-row array, or a loop whose trip count is read at run time, quadratic in its iterations.

`predicated(body, n_carry, exit)` is the body the JIT lowers instead: each write of an array carry at
one position (the carry's output is an index_set/index_add of its input at 0-d indices that nothing else
reads) moved to the end of the body and predicated on the flag, `traj[i] = where(go, v, traj[i])`
(`index_add`: `where(go, v, 0)`), so a discarded iteration writes back what was there.  The IR is
functional (a read of the carry is its value before the iteration's writes wherever it stands), so
moving the writes does not change what the body computes.  `is_predicated` recognises the form
(loops.in_place_carries lets such a carry update its one buffer in place).
"""
from ..ir import passes
from ..ir.builder import Builder

UPDATES = ("index_set", "index_add")


def predicated(body, n_carry, exit):
    """`body` with its single-position carry writes predicated on output `exit` (see the module), or
    `body` itself when it has none."""
    flag = body.outputs[exit]
    read = {id(a) for n in body.nodes for a in n.args}
    moved = {id(new) for k, new in enumerate(body.outputs[:n_carry])
             if new.op in UPDATES and new.args[0] is body.inputs[1 + k] and new.shape != ()
             and all(a.shape == () for a in new.args[2:]) and id(new) not in read
             and sum(v is new for v in body.outputs) == 1 and new is not flag}
    if not moved:
        return body
    b = Builder()
    env = passes.copy_inputs(b, body.inputs)
    passes.replay(b, [n for n in body.nodes if id(n) not in moved], env)
    go = env[id(flag)]
    for node in body.nodes:
        if id(node) in moved:
            x, v, *where = [env[id(a)] for a in node.args]
            spec = node.params["spec"]
            kept = b.index(x, *where, spec=spec) if node.op == "index_set" else b.fill(v.shape, v.dtype, 0)
            env[id(node)] = b.emit(node.op, x, b.where(go, v, kept), *where, spec=spec)
    return b.build([env[id(v)] for v in body.outputs])


def is_predicated(update, x, flag):
    """Whether `update` of carry `x` is a write predicated on `flag` by `predicated`."""
    value = update.args[1]
    if update.op not in UPDATES or update.args[0] is not x or value.op != "where" or value.args[0] is not flag:
        return False
    kept = value.args[2]
    if update.op == "index_add":
        return kept.op == "fill" and kept.params["value"] == 0
    return old_value_read(kept, update)


def old_value_read(reader, update):
    """Whether `reader` reads the positions `update` writes, of the carry `update` writes (its value
    before the write: an element-wise read-then-write of the same positions, safe in place)."""
    return reader.op == "index" and reader.args[0] is update.args[0] and reader.params == update.params \
        and len(reader.args) == len(update.args) - 1 and all(a is c for a, c in zip(reader.args[1:], update.args[2:]))
