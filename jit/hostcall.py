"""Ops without a native lowering (their spec in ir/ops.py says `host`: argsort, special functions, linear
algebra...; and every node on complex values) run inside the kernel as
calls back into Python: the kernel passes the operands' and the result's memory, and the callback
applies the op's reference evaluation (ir.EVAL, the op's definition) to NumPy views of that memory.
The rest of the trace stays compiled; each such op costs a few microseconds of call overhead.

One ctypes callback `jg_host(i64 token, ptr argv)` serves every kernel; the token names the node
(op, params, operand and result shapes/dtypes).  A Python exception inside the op is kept and the
kernel exits with abi.HOST_ERROR; the Kernel re-raises it.
"""
import ctypes
import itertools
import threading

import numpy as np

from ..ir.evaluate import evaluate
from . import engine
from .abi import HOST_ERROR

_HOST_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_nodes = {}    # token -> (op, params, [(shape, dtype, nbytes)] of operands and result, [(address, view)] cache)
_tokens = itertools.count()
_errors = threading.local()


def _layout(v):
    return v.shape, v.dtype, int(np.prod(v.shape, dtype=np.int64)) * v.dtype.itemsize


def _view(address, shape, dtype, nbytes):
    if nbytes == 0:
        return np.empty(shape, dtype)
    return np.frombuffer((ctypes.c_char * nbytes).from_address(address), dtype=dtype).reshape(shape)


def _views(ptrs, layouts, cache):
    """NumPy views of the operands' and result's memory; a slot whose address is the one of its last
    call (workspace buffers: every call) reuses its view (the memory is read when the op runs)."""
    views = []
    for k, (address, layout) in enumerate(zip(ptrs, layouts)):
        last = cache[k]
        if last is None or last[0] != address:
            last = cache[k] = (address, _view(address, *layout))
        views.append(last[1])
    return views


def _host(token, argv):
    try:
        op, params, layouts, cache = _nodes[token]
        *args, out = _views((ctypes.c_void_p * len(layouts)).from_address(argv), layouts, cache)
        out[...] = evaluate(op, args, params)
        return 0
    except BaseException as e:          # noqa: BLE001 - handed to the caller, never swallowed
        _errors.value = e
        return 1


_callback = _HOST_TYPE(_host)


def take_error():
    """The exception the last failed host call of this thread raised, taken: a later failure never
    reports it again, and its traceback (with the frames' arrays) is not kept alive."""
    error, _errors.value = getattr(_errors, "value", None), None
    return error or RuntimeError("host call failed")


def emit_host_call(em, node):
    """Call the reference evaluation of `node` from the kernel (the emitter's rule for hosted nodes)."""
    if "jg_host" not in _nodes:
        engine.register_symbol("jg_host", ctypes.cast(_callback, ctypes.c_void_p).value)
        _nodes["jg_host"] = None
    token = next(_tokens)
    layouts = [_layout(v) for v in (*node.args, node)]
    _nodes[token] = (node.op, node.params, layouts, [None] * len(layouts))
    em.declare("declare i64 @jg_host(i64, ptr)")
    f = em.f
    argv = f.alloca(f"[{len(node.args) + 1} x ptr]")
    addresses = [_in_memory(em, a) for a in node.args]
    result_slot = None if em.plan.kind[id(node)] == "buf" else em.scratch(8)
    addresses.append(result_slot or em.pointer(em.plan.loc[id(node)]))
    for k, address in enumerate(addresses):
        f.stmt(f"store ptr {address}, ptr {f.emit(f'getelementptr inbounds ptr, ptr {argv}, i64 {k}')}")
    failed = f.emit(f"icmp ne i64 {f.emit(f'call i64 @jg_host(i64 {token}, ptr {argv})')}, 0")
    em.exit_unless(f.emit(f"xor i1 {failed}, true"), HOST_ERROR)
    if result_slot:
        em.store(node, [], em.load(node, None, offset=0, loc=("ptr", result_slot)))


def _in_memory(em, value):
    """The address of `value`'s elements: its buffer, or a workspace slot holding a 0-d register."""
    if em.plan.kind[id(value)] == "buf":
        return em.pointer(em.plan.loc[id(value)])
    slot = em.scratch(value.dtype.itemsize)
    em.store_at(("ptr", slot), (), value.dtype, [], em.value(value, []))
    return slot
