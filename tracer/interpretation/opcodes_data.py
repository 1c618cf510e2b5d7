"""Opcode handlers for data: the stack, variables (fast, cells, names, globals), attributes,
container building and unpacking, string formatting and imports.

Each handler is `op_<OPNAME>(self, frame, arg)` with `arg` pre-resolved by `decode`.
"""
import sys
import types

from .calls import function_str
from .decode import UNBOUND
from .version import NULL, call_ex_callable, push_method, push_with_null

_FORMAT_CONVERSIONS = {1: ("__str__", str), 2: ("__repr__", repr), 3: (None, ascii)}


def _unbound_local(code, slot):
    return UnboundLocalError(
        f"cannot access local variable '{code.co_varnames[slot]}' where it is not associated with a value")


def _undefined(name):
    return NameError(f"name '{name}' is not defined", name=name)


def _delete_name(namespace, name):
    if name not in namespace:
        raise _undefined(name)
    del namespace[name]


class DataOps:
    """Mixin of the Interpreter: data opcodes (see the module docstring)."""

    def _effect(self, what):
        """A change outside the running frame's variables (loops being rolled are refused)."""
        if self.ctx.loops is not None:
            self.ctx.loops.effect(what)

    # -- stack -------------------------------------------------------------------------------------
    def op_NOP(self, frame, arg):
        pass

    op_RESUME = op_CACHE = op_PRECALL = op_EXTENDED_ARG = op_NOP

    def op_POP_TOP(self, frame, arg):
        frame.stack.pop()

    def op_PUSH_NULL(self, frame, arg):
        frame.stack.append(NULL)

    def op_COPY(self, frame, arg):
        frame.stack.append(frame.stack[-arg])

    def op_SWAP(self, frame, arg):
        stack = frame.stack
        stack[-1], stack[-arg] = stack[-arg], stack[-1]

    def op_LOAD_CONST(self, frame, arg):
        frame.stack.append(arg)

    # -- fast locals -------------------------------------------------------------------------------
    def op_LOAD_FAST(self, frame, slot):
        value = frame.fast[slot]
        if value is UNBOUND:
            raise _unbound_local(frame.code, slot)
        frame.stack.append(value)

    op_LOAD_FAST_CHECK = op_LOAD_FAST

    def op_STORE_FAST(self, frame, slot):
        frame.fast[slot] = frame.stack.pop()

    def op_LOAD_FAST_LOAD_FAST(self, frame, slots):
        self.op_LOAD_FAST(frame, slots[0])
        self.op_LOAD_FAST(frame, slots[1])

    def op_STORE_FAST_LOAD_FAST(self, frame, slots):
        frame.fast[slots[0]] = frame.stack.pop()
        self.op_LOAD_FAST(frame, slots[1])

    def op_STORE_FAST_STORE_FAST(self, frame, slots):
        frame.fast[slots[0]] = frame.stack.pop()
        frame.fast[slots[1]] = frame.stack.pop()

    def op_LOAD_FAST_AND_CLEAR(self, frame, slot):
        frame.stack.append(frame.fast[slot])
        frame.fast[slot] = UNBOUND

    def op_LOAD_CELL_SLOT(self, frame, index):
        """Pseudo-opcode (see version): LOAD_FAST on a cell variable's slot: push what it holds (its cell
        object, or a plain value an inlined comprehension keeps there)."""
        frame.stack.append(frame.cells[index])

    def op_LOAD_CELL_SLOT_AND_CLEAR(self, frame, index):
        """Pseudo-opcode (see version): save a cell variable's slot before an inlined comprehension."""
        frame.stack.append(frame.cells[index])
        frame.cells[index] = None

    def op_STORE_CELL_SLOT(self, frame, index):
        """Pseudo-opcode (see version): STORE_FAST into a cell variable's slot (an inlined comprehension's
        plain value, or the cell object it restores after it)."""
        frame.cells[index] = frame.stack.pop()

    def op_SPLIT(self, frame, parts):
        """Pseudo-opcode (see version): a superinstruction run as its single-slot parts, in order."""
        for handler, arg in parts:
            handler(self, frame, arg)

    def op_DELETE_FAST(self, frame, slot):
        if frame.fast[slot] is UNBOUND:
            raise _unbound_local(frame.code, slot)
        frame.fast[slot] = UNBOUND

    # -- cells -------------------------------------------------------------------------------------
    def op_MAKE_CELL(self, frame, index):
        slot = frame.decoded.cell_slots.get(index)
        cell = types.CellType() if slot is None or frame.fast[slot] is UNBOUND else types.CellType(frame.fast[slot])
        self.ctx.mark_local(cell)
        frame.cells[index] = cell

    def op_COPY_FREE_VARS(self, frame, count):
        closure = frame.func.__closure__
        frame.cells[len(frame.cells) - count:] = closure

    def op_LOAD_CLOSURE(self, frame, index):
        frame.stack.append(frame.cells[index])

    def op_LOAD_DEREF(self, frame, index):
        frame.stack.append(self._read_cell(frame, index))

    def op_LOAD_CLASSDEREF(self, frame, index):
        name = self._cell_name(frame, index)
        if name in frame.locals_dict:
            frame.stack.append(frame.locals_dict[name])
        else:
            frame.stack.append(self._read_cell(frame, index))

    def op_LOAD_FROM_DICT_OR_DEREF(self, frame, index):
        namespace = frame.stack.pop()
        name = self._cell_name(frame, index)
        frame.stack.append(namespace[name] if name in namespace else self._read_cell(frame, index))

    def op_STORE_DEREF(self, frame, index):
        if self.ctx.loops is not None:
            self.ctx.loops.store_cell(frame, self._cell_name(frame, index))
        cell = frame.cells[index]
        cell.cell_contents = value = frame.stack.pop()
        self.ctx.note_store("cell", cell)
        self.ctx.note_effect("cell", cell, self._cell_name(frame, index), value)

    def op_DELETE_DEREF(self, frame, index):
        if self.ctx.loops is not None:
            self.ctx.loops.store_cell(frame, self._cell_name(frame, index))
        cell = frame.cells[index]
        try:
            del cell.cell_contents
        except ValueError:
            raise self._empty_cell_error(frame, index) from None

    def _read_cell(self, frame, index):
        cell = frame.cells[index]
        try:
            value = cell.cell_contents
        except ValueError:
            raise self._empty_cell_error(frame, index) from None
        return self.ctx.read_cell(cell, self._cell_name(frame, index), value)

    @staticmethod
    def _cell_name(frame, index):
        return (frame.code.co_cellvars + frame.code.co_freevars)[index]

    def _empty_cell_error(self, frame, index):
        name = self._cell_name(frame, index)
        if index < len(frame.code.co_cellvars):
            return UnboundLocalError(f"cannot access local variable '{name}' where it is not associated with a value")
        return NameError(f"cannot access free variable '{name}' where it is not associated with a value "
                         f"in enclosing scope")

    # -- globals and names -------------------------------------------------------------------------
    def op_LOAD_GLOBAL(self, frame, arg):
        push_null, name = arg
        value = self._load_global(frame, name)
        if push_null:
            push_with_null(frame.stack, value)
        else:
            frame.stack.append(value)

    def _load_global(self, frame, name):
        namespace = frame.globals
        if name in namespace:
            return self.ctx.read_global(namespace, name, namespace[name])
        if name in frame.builtins:
            self.ctx.read_builtin(namespace, name)
            return frame.builtins[name]
        raise _undefined(name)

    def op_STORE_GLOBAL(self, frame, name):
        self._effect(f"a store to the global {name!r}")
        frame.globals[name] = value = frame.stack.pop()
        self.ctx.note_store("item", frame.globals, name)
        self.ctx.note_effect("item", frame.globals, name, value)

    def op_DELETE_GLOBAL(self, frame, name):
        self._effect(f"deleting the global {name!r}")
        _delete_name(frame.globals, name)

    def op_LOAD_NAME(self, frame, name):
        frame.stack.append(self._load_name(frame, frame.locals_dict, name))

    def op_LOAD_FROM_DICT_OR_GLOBALS(self, frame, name):
        frame.stack.append(self._load_name(frame, frame.stack.pop(), name))

    def _load_name(self, frame, namespace, name):
        return namespace[name] if name in namespace else self._load_global(frame, name)

    def op_LOAD_LOCALS(self, frame, arg):
        frame.stack.append(frame.locals_dict)

    def op_STORE_NAME(self, frame, name):
        frame.locals_dict[name] = frame.stack.pop()

    def op_DELETE_NAME(self, frame, name):
        _delete_name(frame.locals_dict, name)

    def op_SETUP_ANNOTATIONS(self, frame, arg):
        frame.locals_dict.setdefault("__annotations__", {})

    # -- attributes --------------------------------------------------------------------------------
    def op_LOAD_ATTR(self, frame, name):
        stack = frame.stack
        stack[-1] = self.load_attr(stack[-1], name)

    def op_LOAD_METHOD(self, frame, name):
        func, value = self.load_method(frame.stack.pop(), name)
        if func is None:
            push_with_null(frame.stack, value)
        else:
            push_method(frame.stack, func, value)

    def op_LOAD_SUPER_ATTR(self, frame, arg):
        is_method, two_args, name = arg
        stack = frame.stack
        receiver, cls, global_super = stack.pop(), stack.pop(), stack.pop()
        if global_super is super:
            proxy = super(cls, receiver)
        else:
            proxy = self.call(global_super, (cls, receiver) if two_args else (), {})
        value = self.load_attr(proxy, name)
        if is_method:
            push_with_null(stack, value)
        else:
            stack.append(value)

    def op_STORE_ATTR(self, frame, name):
        obj = frame.stack.pop()
        self.store_attr(obj, name, frame.stack.pop())

    def op_DELETE_ATTR(self, frame, name):
        self.delete_attr(frame.stack.pop(), name)

    # -- building containers -----------------------------------------------------------------------
    def _pop_n(self, frame, count):
        stack = frame.stack
        if not count:
            return []
        items = stack[-count:]
        del stack[-count:]
        return items

    def op_BUILD_TUPLE(self, frame, count):
        frame.stack.append(tuple(self._pop_n(frame, count)))

    def _built(self, frame, container):
        """A container the traced code made: changing it changes no outside state (no side effect a cached
        call replays: a list the function fills and reads is not a log to append to on every call)."""
        self.ctx.mark_local(container)
        frame.stack.append(container)

    def op_BUILD_LIST(self, frame, count):
        self._built(frame, self._pop_n(frame, count))

    def op_BUILD_SET(self, frame, count):
        self._built(frame, set(self._pop_n(frame, count)))

    def op_BUILD_MAP(self, frame, count):
        items = self._pop_n(frame, 2 * count)
        self._built(frame, {items[i]: items[i + 1] for i in range(0, len(items), 2)})

    def op_BUILD_CONST_KEY_MAP(self, frame, count):
        keys = frame.stack.pop()
        self._built(frame, dict(zip(keys, self._pop_n(frame, count))))

    def op_BUILD_STRING(self, frame, count):
        pieces = self._pop_n(frame, count)
        text = "".join(pieces)
        if self.ctx.replay is not None and any(id(p) in self.ctx.replay.texts for p in pieces):
            text = self.ctx.replay.note_text(text)
        frame.stack.append(text)

    def op_BUILD_SLICE(self, frame, count):
        frame.stack.append(slice(*self._pop_n(frame, count)))

    def op_LIST_TO_TUPLE(self, frame, arg):
        frame.stack[-1] = tuple(frame.stack[-1])

    def op_LIST_APPEND(self, frame, depth):
        value = frame.stack.pop()
        frame.stack[-depth].append(value)

    def op_SET_ADD(self, frame, depth):
        value = frame.stack.pop()
        frame.stack[-depth].add(value)

    def op_MAP_ADD(self, frame, depth):
        value = frame.stack.pop()
        key = frame.stack.pop()
        frame.stack[-depth][key] = value

    def op_LIST_EXTEND(self, frame, depth):
        iterable = frame.stack.pop()
        frame.stack[-depth].extend(self._iterate_star(iterable, "Value after * must be an iterable"))

    def op_SET_UPDATE(self, frame, depth):
        iterable = frame.stack.pop()
        frame.stack[-depth].update(self._iterate_star(iterable, "Value after * must be an iterable"))

    def _iterate_star(self, iterable, what):
        try:
            return self.iterate(iterable)
        except TypeError:
            if not hasattr(iterable, "__iter__") and not hasattr(iterable, "__getitem__"):
                raise TypeError(f"{what}, not {type(iterable).__name__}") from None
            raise

    def op_DICT_UPDATE(self, frame, depth):
        update = frame.stack.pop()
        if not hasattr(update, "keys"):
            raise TypeError(f"'{type(update).__name__}' object is not a mapping")
        frame.stack[-depth].update(update)

    def op_DICT_MERGE(self, frame, depth):
        update = frame.stack.pop()
        target = frame.stack[-depth]
        callee = call_ex_callable(frame.stack, depth)
        if not hasattr(update, "keys"):
            raise TypeError(f"{function_str(callee)} argument after ** must be a mapping, "
                            f"not {type(update).__name__}")
        for key in update.keys():
            if key in target:
                raise TypeError(f"{function_str(callee)} got multiple values for keyword argument '{key}'")
            target[key] = update[key]

    # -- unpacking ---------------------------------------------------------------------------------
    def _unpack_items(self, value):
        if type(value) in (tuple, list):
            return value
        try:
            return list(self.iterate(value))
        except TypeError:
            if not hasattr(value, "__iter__") and not hasattr(value, "__getitem__"):
                raise TypeError(f"cannot unpack non-iterable {type(value).__name__} object") from None
            raise

    def op_UNPACK_SEQUENCE(self, frame, count):
        items = self._unpack_items(frame.stack.pop())
        if len(items) != count:
            if len(items) > count:
                raise ValueError(f"too many values to unpack (expected {count})")
            raise ValueError(f"not enough values to unpack (expected {count}, got {len(items)})")
        frame.stack.extend(reversed(items))

    def op_UNPACK_EX(self, frame, arg):
        before, after = arg & 0xFF, arg >> 8
        items = list(self._unpack_items(frame.stack.pop()))
        if len(items) < before + after:
            raise ValueError(f"not enough values to unpack (expected at least {before + after}, got {len(items)})")
        stack = frame.stack
        stack.extend(reversed(items[len(items) - after:]))
        stack.append(items[before:len(items) - after])
        stack.extend(reversed(items[:before]))

    # -- formatting --------------------------------------------------------------------------------
    def op_FORMAT_VALUE(self, frame, flags):
        spec = frame.stack.pop() if flags & 0x04 else ""
        value = self._convert_value(frame.stack.pop(), flags & 0x03)
        frame.stack.append(self.convert(value, "__format__", format, spec))

    def op_CONVERT_VALUE(self, frame, kind):
        frame.stack[-1] = self._convert_value(frame.stack[-1], int(kind))

    def op_FORMAT_SIMPLE(self, frame, arg):
        frame.stack[-1] = self.convert(frame.stack[-1], "__format__", format, "")

    def op_FORMAT_WITH_SPEC(self, frame, arg):
        spec = frame.stack.pop()
        frame.stack[-1] = self.convert(frame.stack[-1], "__format__", format, spec)

    def _convert_value(self, value, kind):
        """The `!s`, `!r`, `!a` conversions of f-strings (kind 1, 2, 3; 0 is none)."""
        conversion = _FORMAT_CONVERSIONS.get(kind)
        if conversion is None:
            return value
        dunder, native = conversion
        return native(value) if dunder is None else self.convert(value, dunder, native)

    # -- imports -----------------------------------------------------------------------------------
    def op_IMPORT_NAME(self, frame, name):
        fromlist = frame.stack.pop()
        level = frame.stack.pop()
        importer = frame.builtins["__import__"]
        frame.stack.append(importer(name, frame.globals, frame.locals_dict, fromlist, level))

    def op_IMPORT_FROM(self, frame, name):
        module = frame.stack[-1]
        try:
            frame.stack.append(getattr(module, name))
        except AttributeError:
            full = f"{getattr(module, '__name__', '?')}.{name}"
            if full in sys.modules:
                frame.stack.append(sys.modules[full])
                return
            raise ImportError(f"cannot import name '{name}' from '{getattr(module, '__name__', '?')}' "
                              f"({getattr(module, '__file__', 'unknown location')})") from None
