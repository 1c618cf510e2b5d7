"""Every difference between the CPython versions the interpreter runs on, in one place.

The handlers in `opcodes_*.py` are written once; this module says how each supported version's bytecode
maps onto them.  `OPCODES` classifies every name of the running version's `dis.opmap`: run by a handler
(`op_<name>`), an alias of another handler with a normaliser of its argument (jump directions, local
names to slots, cell variables in inlined comprehensions, superinstructions split into their parts), or
refused with a reason.  Beside the table: where CALL finds its callable and the NULL slot, how
FOR_ITER/SEND/throw() leave a finished iterator, and the prologue every code object starts with.  Importing
this module on another Python version raises.  It imports nothing
of the tracer, so every layer may read it.
"""
import functools
import operator
import sys

from bytecode import CellVar, FreeVar

from ...ir.errors import UnsupportedError

VERSION = sys.version_info[:2]
SUPPORTED = ((3, 11), (3, 12), (3, 13))
if VERSION not in SUPPORTED:
    raise UnsupportedError(f"jitgrad's bytecode interpreter supports Python "
                           f"{', '.join('%d.%d' % v for v in SUPPORTED)}; this is Python {VERSION[0]}.{VERSION[1]}")


# -- the opcode table ------------------------------------------------------------------------------------
class Opcode:
    """How the interpreter treats one opcode of the running version: run by a handler, `resolve(arg,
    site)` giving (handler name, argument) (`targets` lists every handler it may pick), or refused
    (`refusal` says why).  `site` is decode's view of the instruction: `local(name)` and `cell(name)`
    give the slot of a local and the index of a cell variable (None if it is none), `following(name)`
    the arguments of the run of `name` instructions right after it."""

    __slots__ = ("targets", "normalise", "refusal")

    def __init__(self, targets, normalise=None, refusal=None):
        self.targets, self.normalise, self.refusal = targets, normalise, refusal

    def resolve(self, arg, site):
        return (self.targets[0], arg) if self.normalise is None else self.normalise(arg, site)


def _own(names):
    """Opcodes run by the handler of their own name, on their argument as decoded."""
    return {name: Opcode((name,)) for name in names.split()}


def _alias(target, names):
    """Opcodes run by the handler `target` on their argument as decoded."""
    return {name: Opcode((target,)) for name in names.split()}


def _refused(reason, names):
    """Opcodes the interpreter refuses, saying why."""
    return {name: Opcode((), refusal=reason) for name in names.split()}


def _local(handler):
    """A fast-local opcode whose argument, a local variable's name, becomes its slot."""
    return Opcode((handler,), lambda name, site: (handler, site.local(name)))


def _local_or_cell(handler, cell_handler):
    """A fast-local opcode that may name a cell variable (3.12+: an inlined comprehension saves, clears
    and restores the raw content of the slot, the cell object itself, and may keep a plain value in it;
    3.13: LOAD_CLOSURE compiles to LOAD_FAST): then `cell_handler` runs on the frame's cell list."""
    def normalise(arg, site):
        name = arg.name if isinstance(arg, (CellVar, FreeVar)) else arg
        cell = site.cell(name)
        return (handler, site.local(name)) if cell is None else (cell_handler, cell)
    return Opcode((handler, cell_handler), normalise)


SPLIT = "SPLIT"
"""The pseudo-handler running a superinstruction as its parts: its argument is ((handler name, arg), ...)."""


def _superinstruction(name, first, second):
    """A 3.13 superinstruction of two fast-local opcodes (argument: their two names): `name`'s handler on
    the two slots, or, when either names a cell variable, the two single-slot forms one after the other."""
    def normalise(names, site):
        parts = (first.resolve(names[0], site), second.resolve(names[1], site))
        if parts[0][0] == first.targets[0] and parts[1][0] == second.targets[0]:
            return name, (parts[0][1], parts[1][1])
        return SPLIT, parts
    return Opcode((name, SPLIT) + first.targets + second.targets, normalise)


def _load_attr_method_bit(arg, site):
    """3.12+ LOAD_ATTR carries (method bit, name): with the bit it is 3.11's LOAD_METHOD."""
    is_method, name = arg
    return ("LOAD_METHOD" if is_method else "LOAD_ATTR"), name


def _compare_without_cast(arg, site):
    """3.13's COMPARE_OP "convert to bool" bit is set only when a jump consumes the result, and jumps
    test truth anyway: the comparison without it."""
    return "COMPARE_OP", (type(arg)[arg.name[:-len("_CAST")]] if arg.name.endswith("_CAST") else arg)


def _make_function_with_attributes(arg, site):
    """3.13's MAKE_FUNCTION has no flags; the SET_FUNCTION_ATTRIBUTE run after it sets them one by one
    (and is a NOP then): the flags of 3.11's MAKE_FUNCTION, so that one handler builds the function."""
    return "MAKE_FUNCTION", functools.reduce(operator.or_, site.following("SET_FUNCTION_ATTRIBUTE"), 0)


_ASYNC = "coroutines and async generators are not traced"
_EXCEPT_STAR = "`except*` (exception groups) is not supported"
_PSEUDO = "a compiler pseudo-instruction, never found in a code object"
_INSTRUMENTED = "a sys.monitoring instrumentation, never found in the code the tracer decodes"
_INTERNAL = "internal to CPython's own interpreter, never found in a function's code"
_END_FOR = "never run: an exhausted FOR_ITER jumps past it (FOR_ITER_EXIT_SKIP)"

_COMMON = _own("""
    BEFORE_WITH BINARY_OP BINARY_SUBSCR BUILD_CONST_KEY_MAP BUILD_LIST BUILD_MAP BUILD_SET BUILD_SLICE
    BUILD_STRING BUILD_TUPLE CACHE CALL CALL_FUNCTION_EX CHECK_EXC_MATCH COMPARE_OP CONTAINS_OP COPY
    COPY_FREE_VARS DELETE_ATTR DELETE_DEREF DELETE_GLOBAL DELETE_NAME DELETE_SUBSCR DICT_MERGE DICT_UPDATE
    EXTENDED_ARG FOR_ITER GET_ITER GET_LEN GET_YIELD_FROM_ITER IMPORT_FROM IMPORT_NAME IS_OP LIST_APPEND
    LIST_EXTEND LOAD_ASSERTION_ERROR LOAD_ATTR LOAD_BUILD_CLASS LOAD_CONST LOAD_DEREF LOAD_GLOBAL
    LOAD_NAME MAKE_CELL MAKE_FUNCTION MAP_ADD MATCH_CLASS MATCH_KEYS MATCH_MAPPING MATCH_SEQUENCE NOP
    POP_EXCEPT POP_TOP PUSH_EXC_INFO PUSH_NULL RAISE_VARARGS RERAISE RESUME RETURN_GENERATOR RETURN_VALUE
    SEND SETUP_ANNOTATIONS SET_ADD SET_UPDATE STORE_ATTR STORE_DEREF STORE_GLOBAL STORE_NAME STORE_SUBSCR
    SWAP UNARY_INVERT UNARY_NEGATIVE UNARY_NOT UNPACK_EX UNPACK_SEQUENCE WITH_EXCEPT_START YIELD_VALUE
""") | _alias("JUMP", "JUMP_FORWARD JUMP_BACKWARD JUMP_BACKWARD_NO_INTERRUPT") | _refused(
    _ASYNC, "BEFORE_ASYNC_WITH END_ASYNC_FOR GET_AITER GET_ANEXT GET_AWAITABLE") | _refused(
    _EXCEPT_STAR, "CHECK_EG_MATCH") | {"DELETE_FAST": _local("DELETE_FAST")}

_TABLE_311 = _COMMON | _own("""
    FORMAT_VALUE JUMP_IF_FALSE_OR_POP JUMP_IF_TRUE_OR_POP KW_NAMES LIST_TO_TUPLE LOAD_CLASSDEREF
    LOAD_CLOSURE LOAD_METHOD PRECALL UNARY_POSITIVE
""") | {f"POP_JUMP_{direction}_IF_{condition}": Opcode((f"POP_JUMP_IF_{condition}",))
        for direction in ("FORWARD", "BACKWARD") for condition in ("FALSE", "TRUE", "NONE", "NOT_NONE")} | {
    "LOAD_FAST": _local("LOAD_FAST"), "STORE_FAST": _local("STORE_FAST"),
} | _refused(_ASYNC, "ASYNC_GEN_WRAP") | _refused(_EXCEPT_STAR, "PREP_RERAISE_STAR") | _refused(
    "`from module import *` is only allowed at module level, which is not traced", "IMPORT_STAR") | _refused(
    "only the interactive interpreter prints expression statements", "PRINT_EXPR")

_FAST_312 = {
    "LOAD_FAST": _local_or_cell("LOAD_FAST", "LOAD_CELL_SLOT"),
    "LOAD_FAST_CHECK": _local_or_cell("LOAD_FAST_CHECK", "LOAD_CELL_SLOT"),
    "STORE_FAST": _local_or_cell("STORE_FAST", "STORE_CELL_SLOT"),
    "LOAD_FAST_AND_CLEAR": _local_or_cell("LOAD_FAST_AND_CLEAR", "LOAD_CELL_SLOT_AND_CLEAR"),
}

_COMMON_312 = _COMMON | _own("""
    BINARY_SLICE CALL_INTRINSIC_1 CLEANUP_THROW END_SEND LOAD_FROM_DICT_OR_DEREF LOAD_FROM_DICT_OR_GLOBALS
    LOAD_LOCALS LOAD_SUPER_ATTR POP_JUMP_IF_FALSE POP_JUMP_IF_NONE POP_JUMP_IF_NOT_NONE POP_JUMP_IF_TRUE
    RETURN_CONST STORE_SLICE
""") | _FAST_312 | {"LOAD_ATTR": Opcode(("LOAD_ATTR", "LOAD_METHOD"), _load_attr_method_bit)} | _refused(_PSEUDO, """
    JUMP JUMP_NO_INTERRUPT LOAD_METHOD LOAD_SUPER_METHOD LOAD_ZERO_SUPER_ATTR LOAD_ZERO_SUPER_METHOD
    POP_BLOCK SETUP_CLEANUP SETUP_FINALLY SETUP_WITH STORE_FAST_MAYBE_NULL
""") | _refused(_INSTRUMENTED, """
    INSTRUMENTED_CALL INSTRUMENTED_CALL_FUNCTION_EX INSTRUMENTED_END_FOR INSTRUMENTED_END_SEND
    INSTRUMENTED_FOR_ITER INSTRUMENTED_INSTRUCTION INSTRUMENTED_JUMP_BACKWARD INSTRUMENTED_JUMP_FORWARD
    INSTRUMENTED_LINE INSTRUMENTED_LOAD_SUPER_ATTR INSTRUMENTED_POP_JUMP_IF_FALSE
    INSTRUMENTED_POP_JUMP_IF_NONE INSTRUMENTED_POP_JUMP_IF_NOT_NONE INSTRUMENTED_POP_JUMP_IF_TRUE
    INSTRUMENTED_RESUME INSTRUMENTED_RETURN_CONST INSTRUMENTED_RETURN_VALUE INSTRUMENTED_YIELD_VALUE
""") | _refused(_INTERNAL, "INTERPRETER_EXIT") | _refused(_END_FOR, "END_FOR") | _refused(
    "its intrinsics serve `except*` and generic type parameters (PEP 695), which are not supported",
    "CALL_INTRINSIC_2") | _refused("an opcode number CPython reserves and never emits", "RESERVED")

_TABLE_312 = _COMMON_312 | _own("FORMAT_VALUE KW_NAMES LOAD_CLOSURE")

_TABLE_313 = _COMMON_312 | _own("CALL_KW CONVERT_VALUE FORMAT_SIMPLE FORMAT_WITH_SPEC TO_BOOL") | {
    "COMPARE_OP": Opcode(("COMPARE_OP",), _compare_without_cast),
    "MAKE_FUNCTION": Opcode(("MAKE_FUNCTION",), _make_function_with_attributes),
    "SET_FUNCTION_ATTRIBUTE": Opcode(("NOP",)),     # folded into the MAKE_FUNCTION before it
    "LOAD_FAST_LOAD_FAST": _superinstruction("LOAD_FAST_LOAD_FAST", _FAST_312["LOAD_FAST"], _FAST_312["LOAD_FAST"]),
    "STORE_FAST_LOAD_FAST": _superinstruction("STORE_FAST_LOAD_FAST", _FAST_312["STORE_FAST"], _FAST_312["LOAD_FAST"]),
    "STORE_FAST_STORE_FAST": _superinstruction("STORE_FAST_STORE_FAST", _FAST_312["STORE_FAST"],
                                               _FAST_312["STORE_FAST"]),
} | _refused(_PSEUDO, "LOAD_CLOSURE") | _refused(_INSTRUMENTED, "INSTRUMENTED_CALL_KW") | _refused(
    _INTERNAL, "EXIT_INIT_CHECK") | _refused(
    "the optimizer's entry point; a code object reads back the instruction it replaced", "ENTER_EXECUTOR")

TABLES = {(3, 11): _TABLE_311, (3, 12): _TABLE_312, (3, 13): _TABLE_313}
OPCODES = TABLES[VERSION]
"""Opcode name -> Opcode, for every name of the running version's `dis.opmap`."""


def opcode(name):
    """The table's entry for the opcode `name` (a refusal for a name it does not know)."""
    entry = OPCODES.get(name)
    return entry if entry is not None else Opcode((), refusal=f"not an opcode of Python {VERSION[0]}.{VERSION[1]}")


# -- calls and the NULL slot -----------------------------------------------------------------------------
# Where the NULL of a call sits: 3.11/3.12 push [NULL, callable], 3.13 pushes [callable, NULL].
NULL_FIRST = VERSION < (3, 13)

# Instructions FOR_ITER skips past its target when the iterator is exhausted (END_FOR, POP_TOP).
FOR_ITER_EXIT_SKIP = {(3, 11): 0, (3, 12): 1, (3, 13): 2}[VERSION]

# SEND on a finished delegate: 3.11 replaces the receiver by the value, 3.12+ keeps it (END_SEND pops).
SEND_KEEPS_RECEIVER = VERSION >= (3, 12)

# gen.throw() whose `yield from` delegate finished: 3.11 jumps past the loop itself, 3.12+ raises the
# StopIteration into the frame, where CLEANUP_THROW handles it.
THROW_STOPITERATION_INTO_FRAME = VERSION >= (3, 12)

# The first instruction of every code object (the argument binder builds code objects too).
PROLOGUE = (("RESUME", 0),)


def push_with_null(stack, value):
    """Push `value` and a NULL in this version's order (LOAD_GLOBAL/LOAD_ATTR with the NULL bit)."""
    if NULL_FIRST:
        stack.append(NULL)
        stack.append(value)
    else:
        stack.append(value)
        stack.append(NULL)


def push_method(stack, func, self_obj):
    """Push an unbound method and its receiver as LOAD_METHOD (3.11) / method LOAD_ATTR (3.12+) do."""
    stack.append(func)
    stack.append(self_obj)


def pop_call(stack, argc):
    """Pop CALL's operands: returns (callable, list of positional arguments incl. a bound self)."""
    args = stack[len(stack) - argc:]
    del stack[len(stack) - argc:]
    second = stack.pop()
    first = stack.pop()
    if NULL_FIRST:
        if first is NULL:
            return second, args
        return first, [second] + args
    if second is NULL:
        return first, args
    return first, [second] + args


def call_ex_callable(stack, depth):
    """The callable of a CALL_FUNCTION_EX whose keyword dict is `depth` below the top (DICT_MERGE)."""
    return stack[-depth - (2 if NULL_FIRST else 3)]


def pop_call_ex_callable(stack):
    """Pop the callable (and its NULL) under CALL_FUNCTION_EX's arguments."""
    if NULL_FIRST:
        fn = stack.pop()
        stack.pop()
        return fn
    stack.pop()
    return stack.pop()


class _Null:
    """The NULL slot CPython pushes under a callable (never visible to user code)."""

    __slots__ = ()

    def __repr__(self):
        return "NULL"


NULL = _Null()
