"""Opcode handlers for control flow: jumps, loops, return, generators (`yield`, `yield from`),
exceptions (3.11 zero-cost exception tables: PUSH_EXC_INFO, POP_EXCEPT, CHECK_EXC_MATCH, RERAISE,
RAISE_VARARGS) and `with` blocks.

Jump targets arrive as instruction indices (decode resolved the labels); every jump goes through
`_jump_if`, the one jump helper.  RETURN_VALUE and YIELD_VALUE return True to stop the run loop.
"""
from .generators import InterpretedGenerator
from .protocols import type_lookup
from ...ir.errors import UnsupportedError
from .seqloops import WATCHED_ITERATORS, indexed_iter
from .version import FOR_ITER_EXIT_SKIP, SEND_KEEPS_RECEIVER


def _check_exception_class(value):
    classes = value if isinstance(value, tuple) else (value,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError("catching classes that do not inherit from BaseException is not allowed")


def _stopiteration_error(interpreter, exc):
    """What a StopIteration escaping a generator body becomes (3.12+ does it in bytecode)."""
    if not isinstance(exc, StopIteration):
        return exc
    error = RuntimeError("generator raised StopIteration")
    error.__cause__ = error.__context__ = exc
    return error


# CALL_INTRINSIC_1 (3.12+) by intrinsic name
_INTRINSICS = {"INTRINSIC_UNARY_POSITIVE": lambda interpreter, v: interpreter.unary_op("UNARY_POSITIVE", v),
               "INTRINSIC_LIST_TO_TUPLE": lambda interpreter, v: tuple(v),
               "INTRINSIC_STOPITERATION_ERROR": _stopiteration_error}


class FlowOps:
    """Mixin of the Interpreter: control-flow opcodes (see the module docstring)."""

    # -- jumps ---------------------------------------------------------------------------------------
    def _jump_if(self, frame, target, condition):
        source = frame.pc - 1
        if condition:
            frame.pc = target
        if self.ctx.loops is not None:          # rolling `while` loops (tracer/interpretation/whileloops.py)
            self.ctx.loops.jumped(self, frame, source)

    def op_JUMP(self, frame, target):
        self._jump_if(frame, target, True)

    def op_POP_JUMP_IF_FALSE(self, frame, target):
        self._jump_if(frame, target, not self.truth(frame.stack.pop()))

    def op_POP_JUMP_IF_TRUE(self, frame, target):
        self._jump_if(frame, target, self.truth(frame.stack.pop()))

    def op_POP_JUMP_IF_NONE(self, frame, target):
        self._jump_if(frame, target, frame.stack.pop() is None)

    def op_POP_JUMP_IF_NOT_NONE(self, frame, target):
        self._jump_if(frame, target, frame.stack.pop() is not None)

    def op_TO_BOOL(self, frame, arg):
        frame.stack[-1] = self.truth(frame.stack[-1])

    def op_JUMP_IF_FALSE_OR_POP(self, frame, target):
        if self.truth(frame.stack[-1]):
            frame.stack.pop()
        else:
            frame.pc = target

    def op_JUMP_IF_TRUE_OR_POP(self, frame, target):
        if self.truth(frame.stack[-1]):
            frame.pc = target
        else:
            frame.stack.pop()

    # -- loops ---------------------------------------------------------------------------------------
    def op_GET_ITER(self, frame, arg):
        iterable = frame.stack[-1]
        indexed = indexed_iter(iterable) if self.ctx.loops is not None else None   # (rolled: seqloops.py)
        frame.stack[-1] = iterator = self.get_iter(iterable) if indexed is None else indexed
        if self.ctx.loops is not None and iterator is not iterable:
            self.ctx.loops.made(iterator)

    def op_FOR_ITER(self, frame, target):
        iterator = frame.stack[-1]
        loops = self.ctx.loops
        if loops is not None:                       # rolling (tracer/interpretation/rolling.py)
            kind = WATCHED_ITERATORS.get(type(iterator))
            if kind is not None:
                return loops.for_iter(self, frame, target, FOR_ITER_EXIT_SKIP, kind)
            loops.consume(iterator)
            loops.unwatched(frame, iterator)
        try:
            value = iterator.__next__() if type(iterator) is InterpretedGenerator else self.next_item(iterator)
        except StopIteration:
            frame.stack.pop()
            frame.pc = target + FOR_ITER_EXIT_SKIP
            return
        frame.stack.append(value)

    # -- return and generators -----------------------------------------------------------------------
    def op_RETURN_VALUE(self, frame, arg):
        frame.retval = frame.stack.pop()
        frame.done = True
        return True

    def op_RETURN_CONST(self, frame, value):
        frame.retval = value
        frame.done = True
        return True

    def op_YIELD_VALUE(self, frame, arg):
        frame.retval = frame.stack.pop()
        if self.ctx.loops is not None:
            self.ctx.loops.yielded(frame)
        return True

    def op_RETURN_GENERATOR(self, frame, arg):
        """Nothing to do: calling a generator function already returned the generator object."""

    def op_GET_YIELD_FROM_ITER(self, frame, arg):
        value = frame.stack[-1]
        if type(value) is not InterpretedGenerator and not hasattr(value, "gi_frame"):
            frame.stack[-1] = self.get_iter(value)

    def op_SEND(self, frame, target):
        stack = frame.stack
        if self.ctx.loops is not None:
            self.ctx.loops.consume(stack[-2])
        value = stack.pop()
        receiver = stack[-1]
        try:
            if type(receiver) is InterpretedGenerator:
                result = receiver.send(value)
            elif value is None:
                result = self.next_item(receiver)
            else:
                result = self.call(self.load_attr(receiver, "send"), (value,), {})
        except StopIteration as stop:
            if SEND_KEEPS_RECEIVER:
                stack.append(stop.value)
            else:
                stack[-1] = stop.value
            frame.pc = target
            return
        stack.append(result)

    def op_END_SEND(self, frame, arg):
        value = frame.stack.pop()
        frame.stack[-1] = value

    def op_CLEANUP_THROW(self, frame, arg):
        exc = frame.stack.pop()
        if not isinstance(exc, StopIteration):
            raise exc
        del frame.stack[-2:]
        frame.stack.append(exc.value)

    def op_CALL_INTRINSIC_1(self, frame, intrinsic):
        run = _INTRINSICS.get(intrinsic.name)
        if run is None:
            raise UnsupportedError(f"jitgrad's interpreter does not support the intrinsic {intrinsic.name}",
                                   loc=self.ctx.location())
        frame.stack[-1] = run(self, frame.stack[-1])

    # -- exceptions ----------------------------------------------------------------------------------
    def op_PUSH_EXC_INFO(self, frame, arg):
        exc = frame.stack.pop()
        frame.stack.append(self.handled_exc)
        self.handled_exc = exc
        frame.stack.append(exc)

    def op_POP_EXCEPT(self, frame, arg):
        self.handled_exc = frame.stack.pop()

    def op_CHECK_EXC_MATCH(self, frame, arg):
        classes = frame.stack.pop()
        _check_exception_class(classes)
        frame.stack.append(isinstance(frame.stack[-1], classes))

    def op_RERAISE(self, frame, arg):
        raise frame.stack.pop()

    def op_LOAD_ASSERTION_ERROR(self, frame, arg):
        frame.stack.append(AssertionError)

    def op_RAISE_VARARGS(self, frame, count):
        if count == 0:
            if self.handled_exc is None:
                raise RuntimeError("No active exception to reraise")
            raise self.handled_exc
        cause = frame.stack.pop() if count == 2 else None
        exc = self._exception_instance(frame.stack.pop())
        if count == 2:
            raise exc from self._exception_instance(cause)
        raise exc

    def _exception_instance(self, value):
        if isinstance(value, type) and issubclass(value, BaseException):
            value = self.call(value, (), {})
        return value

    # -- with ----------------------------------------------------------------------------------------
    def op_BEFORE_WITH(self, frame, arg):
        manager = frame.stack.pop()
        kind = type(manager)
        enter, exit_ = type_lookup(kind, "__enter__"), type_lookup(kind, "__exit__")
        if enter is None or exit_ is None:
            raise TypeError(f"'{kind.__name__}' object does not support the context manager protocol")
        frame.stack.append(self.bind_special(exit_, manager))
        frame.stack.append(self.invoke(enter, manager))

    def op_WITH_EXCEPT_START(self, frame, arg):
        stack = frame.stack
        exc = stack[-1]
        exit_ = stack[-4]
        stack.append(self.call(exit_, (type(exc), exc, exc.__traceback__), {}))
