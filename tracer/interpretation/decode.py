"""Decoding of code objects into the interpreter's flat, pre-resolved instruction form (cached).

`decode(code, handlers, missing)` turns a code object (via the `bytecode` package) into a `Decoded`:
parallel lists of handler functions and arguments.  Each instruction goes through its entry in the
version table (`version.OPCODES`: handler, alias with normaliser, or refusal), then jump targets are
resolved to instruction indices and cell/free variables to slots of the cell list (the normalisers map
local names to slots of the fast-locals list); the exception table becomes one (handler index, stack
depth, push lasti) entry per instruction (the TryBegin pseudo-instructions of `Bytecode.from_code`
report depth 0, so the table is read from `ConcreteBytecode.exception_table`).  It also holds the
argument binder of the code: a tiny code object with the same signature that returns its arguments, so
CPython itself binds arguments (defaults, *args, **kwargs, and its exact error messages).
"""
import bisect
import dis
import itertools
import types

import bytecode
from bytecode import CellVar, FreeVar, Instr, Label, TryBegin, TryEnd

from ...ir.errors import UnsupportedError
from . import version

CO_VARARGS, CO_VARKEYWORDS, CO_GENERATOR = 0x04, 0x08, 0x20
CO_ASYNC_FLAGS = 0x80 | 0x100 | 0x200   # coroutine, iterable coroutine, async generator

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
    `missing(opname, reason)` makes the function run for an opcode the version table refuses."""
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
    site = _Site(code, items)
    for index, name in enumerate(code.co_cellvars):
        slot = site.locals.get(name)
        if slot is not None and slot < decoded.nargs:
            decoded.cell_slots[index] = slot
    line = code.co_firstlineno
    for index, instr in enumerate(items):
        site.index = index
        opcode = version.opcode(instr.name)
        if opcode.refusal is not None:
            op, arg = missing(instr.name, opcode.refusal), None
        else:
            name, arg = opcode.resolve(instr.arg if instr.require_arg() else None, site)
            if name == version.SPLIT:
                arg = tuple((handlers[part], part_arg) for part, part_arg in arg)
            else:
                arg = _resolve(arg, code, label_index)
            op = handlers[name]
        decoded.ops.append(op)
        decoded.args.append(arg)
        line = instr.lineno if instr.lineno is not None else line
        decoded.linenos.append(line)
        if instr.name == "YIELD_VALUE" and index and items[index - 1].name == "SEND":
            decoded.send_targets[index] = label_index[items[index - 1].arg]
    decoded.handlers = handlers_at
    return decoded


def _resolve(arg, code, label_index):
    """A jump target as an instruction index, a cell or free variable as an index of the cell list."""
    if isinstance(arg, Label):
        return label_index[arg]
    if isinstance(arg, CellVar):
        return code.co_cellvars.index(arg.name)
    if isinstance(arg, FreeVar):
        return len(code.co_cellvars) + code.co_freevars.index(arg.name)
    return arg


class _Site:
    """The instruction being decoded, as the normalisers of `version.OPCODES` see it."""

    __slots__ = ("locals", "_cell_of", "_items", "index")

    def __init__(self, code, items):
        self.locals = {name: i for i, name in enumerate(code.co_varnames)}
        self._cell_of = {name: i for i, name in enumerate(code.co_cellvars + code.co_freevars)}
        self._items, self.index = items, 0

    def local(self, name):
        """The fast-locals slot of the local variable `name`."""
        return self.locals[name]

    def cell(self, name):
        """The cell-list index of the cell or free variable `name`, None if `name` is neither."""
        return self._cell_of.get(name)

    def following(self, opname):
        """The arguments of the `opname` instructions right after this one."""
        args = []
        for item in itertools.islice(self._items, self.index + 1, None):
            if item.name != opname:
                break
            args.append(item.arg)
        return args


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
