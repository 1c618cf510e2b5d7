"""Opcode handlers for calls and for making functions and classes.

CALL collects the callable, positional and keyword arguments (KW_NAMES names the trailing ones) and
hands them to `CallPolicy.call`; MAKE_FUNCTION builds real function objects (so they also work if they
escape to native code); LOAD_BUILD_CLASS pushes the interpreter's own `build_class`.
"""
import types

from .version import pop_call, pop_call_ex_callable

_MAKE_FUNCTION_FLAGS = ((0x08, "closure"), (0x04, "annotations"), (0x02, "kwdefaults"), (0x01, "defaults"))


class CallOps:
    """Mixin of the Interpreter: call opcodes (see the module docstring)."""

    def op_KW_NAMES(self, frame, names):
        frame.kw_names = names

    def op_CALL(self, frame, argc):
        fn, args = pop_call(frame.stack, argc)
        names = frame.kw_names
        if names:
            frame.kw_names = ()
            split = len(args) - len(names)
            kwargs = dict(zip(names, args[split:]))
            args = args[:split]
        else:
            kwargs = {}
        frame.stack.append(self.call(fn, tuple(args), kwargs))

    def op_CALL_KW(self, frame, argc):
        frame.kw_names = frame.stack.pop()
        self.op_CALL(frame, argc)

    def op_CALL_FUNCTION_EX(self, frame, flags):
        stack = frame.stack
        kwargs = stack.pop() if flags & 0x01 else {}
        args = stack.pop()
        fn = pop_call_ex_callable(stack)
        if type(args) is not tuple:
            args = tuple(self.iterate(args))
        if type(kwargs) is not dict:
            kwargs = dict(kwargs)
        stack.append(self.call(fn, args, kwargs))

    def op_MAKE_FUNCTION(self, frame, flags):
        stack = frame.stack
        code = stack.pop()
        parts = {name: stack.pop() for bit, name in _MAKE_FUNCTION_FLAGS if flags & bit}
        func = types.FunctionType(code, frame.globals, code.co_name, parts.get("defaults"), parts.get("closure"))
        func.__qualname__ = code.co_qualname
        if "kwdefaults" in parts:
            func.__kwdefaults__ = parts["kwdefaults"]
        if "annotations" in parts:
            pairs = parts["annotations"]
            func.__annotations__ = dict(zip(pairs[::2], pairs[1::2])) if isinstance(pairs, tuple) else pairs
        self.ctx.mark_local(func)
        stack.append(func)

    def op_LOAD_BUILD_CLASS(self, frame, arg):
        frame.stack.append(self.build_class)
