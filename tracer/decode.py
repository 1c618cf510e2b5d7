"""Decoding of code objects into the interpreter's flat, pre-resolved instruction form (cached).

`decode(code, handlers, missing)` turns a code object (via the `bytecode` package) into a `Decoded`:
parallel lists of handler functions and arguments, with jump targets resolved to instruction indices,
local names to slots of the fast-locals list, cell/free variables to slots of the cell list, and the
exception table to one (handler index, stack depth, push lasti) entry per instruction (the
TryBegin pseudo-instructions of `Bytecode.from_code` report depth 0, so the table is read from
`ConcreteBytecode.exception_table`).  It also holds the argument binder of the code: a tiny code object with the same signature that returns its
arguments, so CPython itself binds arguments (defaults, *args, **kwargs, and its exact error messages).
"""
import bisect
import dis
import types

import bytecode
from bytecode import CellVar, FreeVar, Instr, Label, TryBegin, TryEnd

from ..ir.errors import UnsupportedError
from . import version

CO_VARARGS, CO_VARKEYWORDS, CO_GENERATOR = 0x04, 0x08, 0x20
CO_ASYNC_FLAGS = 0x80 | 0x100 | 0x200   # coroutine, iterable coroutine, async generator

_FAST_OPS = {"LOAD_FAST", "STORE_FAST", "DELETE_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR"}
_FAST_PAIR_OPS = {"LOAD_FAST_LOAD_FAST", "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST"}
# Fast-local opcodes naming a cell variable (3.12+ inlined comprehensions save and restore the cell
# object itself) run these handlers on the frame's cell list instead.
_CELL_SLOT_OPS = {"LOAD_FAST": "LOAD_CELL_SLOT", "LOAD_FAST_CHECK": "LOAD_CELL_SLOT",
                  "STORE_FAST": "STORE_CELL_SLOT", "LOAD_FAST_AND_CLEAR": "LOAD_CELL_SLOT_AND_CLEAR"}


class Decoded:
    """One code object, decoded once: see the module docstring."""

    __slots__ = ("code", "ops", "args", "linenos", "handlers", "send_targets", "nlocals", "nargs",
                 "cell_slots", "ncells", "binder", "is_generator")

    def __init__(self, code):
        self.code = code
        self.ops, self.args, self.linenos, self.handlers = [], [], [], []
        self.send_targets = {}   # index of a YIELD_VALUE inside `yield from` -> its SEND's exit index
        self.nlocals = len(code.co_varnames)
        self.nargs = (code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & CO_VARARGS)
                      + bool(code.co_flags & CO_VARKEYWORDS))
        self.ncells = len(code.co_cellvars) + len(code.co_freevars)
        self.cell_slots = {}     # cell index -> fast-local slot of the argument it starts from
        self.binder = _make_binder(code, self.nargs) if self.nargs else None
        self.is_generator = bool(code.co_flags & CO_GENERATOR)

    def bind(self, func, args, kwargs, defaults, kwdefaults):
        """The fast-locals list of a call of `func` with `args`/`kwargs` (CPython's own binding), with
        `defaults`/`kwdefaults` standing for func's (the tracer passes them as it read them)."""
        if self.binder is None:
            if args or kwargs:
                _empty_binder.__qualname__ = func.__qualname__
                _empty_binder(*args, **kwargs)
            return [UNBOUND] * self.nlocals
        binder = self.binder
        binder.__defaults__ = defaults
        binder.__kwdefaults__ = kwdefaults
        binder.__qualname__ = func.__qualname__
        fast = list(binder(*args, **kwargs))
        if self.nlocals > self.nargs:
            fast.extend([UNBOUND] * (self.nlocals - self.nargs))
        return fast


class _Unbound:
    """The value of a local variable that has not been assigned."""

    __slots__ = ()

    def __repr__(self):
        return "UNBOUND"


UNBOUND = _Unbound()


def _empty_binder():
    """Binder of code objects without parameters: raises CPython's error for any argument."""


_cache = {}


def decode(code, handlers, missing):
    """The cached `Decoded` of `code`; `handlers` maps handler names to functions, and
    `missing(opname)` makes the function run for an opcode without a handler."""
    decoded = _cache.get(code)
    if decoded is None:
        decoded = _cache[code] = _decode(code, handlers, missing)
    return decoded


def _decode(code, handlers, missing):
    decoded = Decoded(code)
    label_index, items = {}, []
    for item in bytecode.Bytecode.from_code(code):
        if isinstance(item, Label):
            label_index[item] = len(items)
        elif not isinstance(item, (TryBegin, TryEnd)):
            items.append(item)
    handlers_at = _exception_handlers(code, len(items))
    local_slot = {name: i for i, name in enumerate(code.co_varnames)}
    cell_index = {name: i for i, name in enumerate(code.co_cellvars + code.co_freevars)}
    for index, name in enumerate(code.co_cellvars):
        if name in local_slot and local_slot[name] < decoded.nargs:
            decoded.cell_slots[index] = local_slot[name]
    line = code.co_firstlineno
    for index, instr in enumerate(items):
        name, arg = version.normalize(instr.name, instr.arg if instr.require_arg() else None)
        if name in _FAST_OPS and isinstance(arg, (CellVar, FreeVar)):  # 3.13: LOAD_CLOSURE is LOAD_FAST
            arg = arg.name
        if isinstance(arg, Label):
            arg = label_index[arg]
        elif name in _FAST_OPS and arg in cell_index:      # 3.12+: a comprehension's cell variable
            name, arg = _CELL_SLOT_OPS[name], cell_index[arg]
        elif name in _FAST_OPS:
            arg = local_slot[arg]
        elif isinstance(arg, CellVar):
            arg = code.co_cellvars.index(arg.name)
        elif isinstance(arg, FreeVar):
            arg = len(code.co_cellvars) + code.co_freevars.index(arg.name)
        elif name in _FAST_PAIR_OPS:
            if arg[0] in cell_index or arg[1] in cell_index:
                raise UnsupportedError(f"jitgrad cannot decode {instr.name} on a cell variable in {code.co_qualname}")
            arg = (local_slot[arg[0]], local_slot[arg[1]])
        elif name == "MAKE_FUNCTION":
            arg |= _following_function_attributes(items, index)
        handler = handlers.get(name)
        decoded.ops.append(handler if handler is not None else missing(instr.name))
        decoded.args.append(arg)
        line = instr.lineno if instr.lineno is not None else line
        decoded.linenos.append(line)
        if name == "YIELD_VALUE" and index and items[index - 1].name == "SEND":
            decoded.send_targets[index] = label_index[items[index - 1].arg]
    decoded.handlers = handlers_at
    return decoded


def _following_function_attributes(items, index):
    """The flags of the SET_FUNCTION_ATTRIBUTE instructions right after a MAKE_FUNCTION (3.13)."""
    flags = 0
    for item in items[index + 1:]:
        if item.name != "SET_FUNCTION_ATTRIBUTE":
            break
        flags |= item.arg
    return flags


def _exception_handlers(code, count):
    """Per instruction index: None or (handler index, stack depth, push lasti), from the code's
    exception table (offsets in code units, ranges inclusive)."""
    every = [ins.offset // 2 for ins in dis.get_instructions(code)]
    offsets = [ins.offset // 2 for ins in dis.get_instructions(code) if ins.opname != "EXTENDED_ARG"]
    if len(offsets) != count:
        raise UnsupportedError(f"jitgrad cannot decode {code.co_qualname} ({code.co_filename}): "
                               f"{len(offsets)} instructions in dis but {count} in bytecode")
    index_at = {offset: bisect.bisect_left(offsets, offset) for offset in every}
    result = [None] * count
    for entry in bytecode.ConcreteBytecode.from_code(code).exception_table:
        handler = (index_at[entry.target], entry.stack_depth, entry.push_lasti)
        first = bisect.bisect_left(offsets, entry.start_offset)
        last = bisect.bisect_right(offsets, entry.stop_offset)
        result[first:last] = [handler] * (last - first)
    return result


def _make_binder(code, nargs):
    """A function with `code`'s signature whose body returns the tuple of its bound arguments."""
    names = code.co_varnames[:nargs]
    body = [Instr(op, arg) for op, arg in version.PROLOGUE]
    body += [Instr("LOAD_FAST", name) for name in names]
    body += [Instr("BUILD_TUPLE", nargs), Instr("RETURN_VALUE")]
    bc = bytecode.Bytecode(body)
    bc.argcount, bc.posonlyargcount = code.co_argcount, code.co_posonlyargcount
    bc.kwonlyargcount, bc.argnames = code.co_kwonlyargcount, list(names)
    bc.flags = (code.co_flags & (CO_VARARGS | CO_VARKEYWORDS)) | 0x01 | 0x02   # OPTIMIZED, NEWLOCALS
    bc.name, bc.filename, bc.first_lineno = code.co_name, code.co_filename, code.co_firstlineno
    if hasattr(bc, "qualname"):
        bc.qualname = code.co_qualname
    return types.FunctionType(bc.to_code(), {})
