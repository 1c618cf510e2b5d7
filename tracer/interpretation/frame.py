"""The interpreter's frame: one activation of an interpreted code object.

A Frame holds the value stack, fast locals (a list indexed by the slots `decode` resolved), cells
(cell variables then free variables), the namespace dict of class bodies, the globals and builtins, and
the instruction index.  `code` and `lineno` are what `TraceContext` reads for `file:line`.
"""
import builtins

from .decode import UNBOUND

_BUILTINS = builtins.__dict__


class Frame:
    """One interpreted activation; see the module docstring."""

    __slots__ = ("decoded", "code", "func", "fast", "cells", "stack", "pc", "globals", "builtins",
                 "locals_dict", "kw_names", "retval", "done")

    def __init__(self, decoded, func, fast, locals_dict=None):
        self.decoded = decoded
        self.code = decoded.code
        self.func = func
        self.fast = fast
        self.cells = [None] * decoded.ncells if decoded.ncells else ()
        self.stack = []
        self.pc = 0
        self.globals = func.__globals__
        self.builtins = _builtins_of(self.globals)
        self.locals_dict = locals_dict
        self.kw_names = ()
        self.retval = None
        self.done = False

    @property
    def lineno(self):
        """Source line of the instruction being executed (or about to resume)."""
        return self.decoded.linenos[max(self.pc - 1, 0)]

    def local_variables(self):
        """The frame's variables as a dict (what `locals()` returns inside it)."""
        if self.locals_dict is not None:
            return self.locals_dict
        code = self.code
        result = {name: value for name, value in zip(code.co_varnames, self.fast) if value is not UNBOUND}
        for name, cell in zip(code.co_cellvars + code.co_freevars, self.cells):
            if cell is not None:
                try:
                    result[name] = cell.cell_contents
                except ValueError:
                    pass
        return result


def _builtins_of(globals_dict):
    found = globals_dict.get("__builtins__", _BUILTINS)
    return found if isinstance(found, dict) else found.__dict__
