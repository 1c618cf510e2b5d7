"""Generators whose frames the interpreter runs.

Calling an interpreted generator function returns an InterpretedGenerator.  It is a real iterator
(`__iter__`, `__next__`, `send`, `throw`, `close`), so interpreted loops and native consumers such as
`list(gen)` or `sum(gen)` alike resume the interpreted frame; `throw` into a frame suspended in
`yield from` is first offered to the delegate, as CPython does.
"""
from .version import THROW_STOPITERATION_INTO_FRAME


class InterpretedGenerator:
    """A generator object backed by an interpreted frame."""

    __slots__ = ("_interpreter", "_frame", "_started", "_running", "_handled_exc", "__weakref__")

    def __init__(self, interpreter, frame):
        self._interpreter, self._frame = interpreter, frame
        self._started = self._running = False
        self._handled_exc = None   # the exception this generator is handling while suspended

    def __iter__(self):
        return self

    def __next__(self):
        return self._resume(True, None, None)

    def __repr__(self):
        return f"<interpreted generator {self._frame.code.co_qualname}>"

    def send(self, value):
        """Resume the generator, making the pending `yield` evaluate to `value`."""
        if not self._started and value is not None:
            raise TypeError("can't send non-None value to a just-started generator")
        return self._resume(True, value, None)

    def throw(self, typ, val=None, tb=None):
        """Raise an exception at the pending `yield` (offered first to a `yield from` delegate)."""
        exc = _exception(typ, val)
        frame = self._frame
        if frame.done or not self._started:
            frame.done = True
            raise exc
        exit_index = frame.decoded.send_targets.get(frame.pc - 1)
        if exit_index is not None:
            delegate = frame.stack[-1]
            if isinstance(exc, GeneratorExit):
                close = getattr(delegate, "close", None)
                if close is not None:
                    self._interpreter.call(close, (), {})
            else:
                delegate_throw = getattr(delegate, "throw", None)
                if delegate_throw is not None:
                    self._running = True
                    try:
                        return self._interpreter.call(delegate_throw, (exc,), {})
                    except StopIteration as stop:
                        if THROW_STOPITERATION_INTO_FRAME:
                            exc = stop
                        else:
                            frame.stack[-1], frame.pc, exc = stop.value, exit_index, None
                    except BaseException as raised:
                        exc = raised
                    finally:
                        self._running = False
        return self._resume(False, None, exc)

    def close(self):
        """Raise GeneratorExit at the pending `yield`; the generator must not yield again."""
        if self._frame.done or not self._started:
            self._frame.done = True
            return
        try:
            self.throw(GeneratorExit)
        except (GeneratorExit, StopIteration):
            return
        raise RuntimeError("generator ignored GeneratorExit")

    def _resume(self, push, value, exc):
        frame = self._frame
        if self._running:
            raise ValueError("generator already executing")
        if frame.done:
            raise StopIteration
        if push:
            frame.stack.append(value)
        self._started = self._running = True
        interpreter = self._interpreter
        outer = interpreter.handled_exc      # like CPython, a generator keeps its own handled exception
        if self._handled_exc is not None:
            interpreter.handled_exc = self._handled_exc
        try:
            result = interpreter.resume(frame, exc)
        except StopIteration as stop:
            frame.done = True
            raise RuntimeError("generator raised StopIteration") from stop
        except BaseException:
            frame.done = True
            raise
        finally:
            self._running = False
            inner = interpreter.handled_exc
            self._handled_exc = None if inner is outer or frame.done else inner
            interpreter.handled_exc = outer
        if frame.done:
            raise StopIteration(result) if result is not None else StopIteration
        return result


def _exception(typ, val):
    """The exception instance `gen.throw(typ, val)` raises."""
    if isinstance(typ, BaseException):
        return typ
    if isinstance(typ, type) and issubclass(typ, BaseException):
        if isinstance(val, typ):
            return val
        return typ() if val is None else typ(val)
    raise TypeError(f"exceptions must be classes or instances deriving from BaseException, "
                    f"not {type(typ).__name__}")
