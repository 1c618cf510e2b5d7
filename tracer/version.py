"""Every difference between the CPython versions the interpreter runs on, in one place.

The handlers in `opcodes_*.py` are written once; this module says how each version's bytecode maps onto
them: opcode aliases (jump directions, renamed opcodes), argument normalization, where CALL finds its
callable and the NULL slot, how FOR_ITER/SEND/throw() leave a finished iterator, and the prologue every
code object starts with.  Opcodes that exist in one version only simply have their own handler.
The interpreter tests pass on 3.11, 3.12 and 3.13.
"""
import sys

VERSION = sys.version_info[:2]
SUPPORTED = ((3, 11), (3, 12), (3, 13))

# opcode name -> name of the handler that runs it (the rest run `op_<own name>`).
_ALIASES_311 = {
    "JUMP_FORWARD": "JUMP", "JUMP_BACKWARD": "JUMP", "JUMP_BACKWARD_NO_INTERRUPT": "JUMP",
    "POP_JUMP_FORWARD_IF_FALSE": "POP_JUMP_IF_FALSE", "POP_JUMP_BACKWARD_IF_FALSE": "POP_JUMP_IF_FALSE",
    "POP_JUMP_FORWARD_IF_TRUE": "POP_JUMP_IF_TRUE", "POP_JUMP_BACKWARD_IF_TRUE": "POP_JUMP_IF_TRUE",
    "POP_JUMP_FORWARD_IF_NONE": "POP_JUMP_IF_NONE", "POP_JUMP_BACKWARD_IF_NONE": "POP_JUMP_IF_NONE",
    "POP_JUMP_FORWARD_IF_NOT_NONE": "POP_JUMP_IF_NOT_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE": "POP_JUMP_IF_NOT_NONE",
}
_ALIASES_312 = {"JUMP_FORWARD": "JUMP", "JUMP_BACKWARD": "JUMP", "JUMP_BACKWARD_NO_INTERRUPT": "JUMP"}
# 3.13 sets function attributes one by one after MAKE_FUNCTION; decode folds them into its flags.
_ALIASES_313 = dict(_ALIASES_312, SET_FUNCTION_ATTRIBUTE="NOP")
OPCODE_ALIASES = {(3, 11): _ALIASES_311, (3, 12): _ALIASES_312}.get(VERSION, _ALIASES_313)

# Where the NULL of a call sits: 3.11/3.12 push [NULL, callable], 3.13 pushes [callable, NULL].
NULL_FIRST = VERSION < (3, 13)

# Instructions FOR_ITER skips past its target when the iterator is exhausted (END_FOR, POP_TOP).
FOR_ITER_EXIT_SKIP = {(3, 11): 0, (3, 12): 1}.get(VERSION, 2)

# SEND on a finished delegate: 3.11 replaces the receiver by the value, 3.12+ keeps it (END_SEND pops).
SEND_KEEPS_RECEIVER = VERSION >= (3, 12)

# gen.throw() whose `yield from` delegate finished: 3.11 jumps past the loop itself, 3.12+ raises the
# StopIteration into the frame, where CLEANUP_THROW handles it.
THROW_STOPITERATION_INTO_FRAME = VERSION >= (3, 12)

# Whether LOAD_ATTR carries a (method bit, name) pair (3.12+) instead of a plain name (3.11).
LOAD_ATTR_HAS_METHOD_BIT = VERSION >= (3, 12)

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


def normalize(opname, arg):
    """Map one decoded instruction onto (handler name, argument) for the running version."""
    if opname == "LOAD_ATTR" and LOAD_ATTR_HAS_METHOD_BIT:
        is_method, name = arg
        return ("LOAD_METHOD" if is_method else "LOAD_ATTR"), name
    if opname == "COMPARE_OP" and arg.name.endswith("_CAST"):
        # 3.13's "convert to bool" bit: only set when a jump consumes the result, and jumps test truth
        return opname, type(arg)[arg.name[:-len("_CAST")]]
    if opname == "MAKE_FUNCTION" and arg is None:
        arg = 0     # 3.13: no flags on the opcode itself (see decode)
    return OPCODE_ALIASES.get(opname, opname), arg


class _Null:
    """The NULL slot CPython pushes under a callable (never visible to user code)."""

    __slots__ = ()

    def __repr__(self):
        return "NULL"


NULL = _Null()
