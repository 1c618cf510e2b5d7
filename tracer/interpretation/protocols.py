"""Python's object protocols, run so that Python-level special methods are interpreted.

Operators, truth, iteration, subscripts and attribute access on objects whose special methods are
written in Python (user classes) run those methods through the interpreter; everything else (numbers,
containers, ndarrays, TracedArray, whose dunders are jitgrad's own code) goes to the native operation.
Binary operators and comparisons are each one table keyed by the `bytecode` enum of the opcode.
"""
import collections
import operator
import types
from types import FunctionType, MethodType

import numpy as np
from bytecode import BinaryOp, Compare

from ..recording import context
from ..arrays.aliasing import constant_ir, plain_iterator, shadowed_items
from ..arrays.values import TracedArray, contains_traced
from ..arrays.indexing import setitem_plain
from ..arrays.loopindex import LoopIndex, binary as counter_binary, compare as counter_compare, has_counter, \
    index_key, plain
from ..arrays.values import const, shadowed

# Types whose special methods never run Python code we must interpret: go native directly.
NATIVE_TYPES = frozenset({int, float, bool, complex, str, bytes, tuple, list, dict, set, frozenset,
                          type(None), slice, range, np.ndarray, TracedArray, np.float64, np.float32,
                          np.int64, np.int32, np.bool_, np.complex128, types.ModuleType, super})
# Iterators of builtin containers: `next` on them never runs Python code.
NATIVE_ITERATORS = frozenset(type(iter(c)) for c in ([], (), range(1), {}, {}.values(), {}.items(), set(), "",
                                                     np.zeros(1))) | {enumerate, zip, map, filter, reversed}
# Builtin containers whose in-place operators (`+=`, `|=`...) change them.
_MUTABLE = frozenset({list, dict, set, bytearray, collections.deque, np.ndarray})
# Values (not environments): their attributes are never environment reads.
VALUE_TYPES = (int, float, complex, str, bytes, tuple, list, dict, set, frozenset, type(None), slice,
               range, np.ndarray, np.generic, TracedArray)


def is_jitgrad_code(fn):
    """Whether `fn` is defined by jitgrad itself (called natively, never interpreted).  Instances are
    judged by their class: a jitgrad function object copies its wrapped function's `__module__`."""
    module = getattr(fn, "__module__", None) if isinstance(fn, (FunctionType, MethodType, type)) \
        else type(fn).__module__
    return type(module) is str and (module == "jitgrad" or module.startswith("jitgrad."))


def type_lookup(tp, name):
    """`name` found along `tp`'s MRO without invoking descriptors (CPython's _PyType_Lookup)."""
    for klass in tp.__mro__:
        found = klass.__dict__.get(name)
        if found is not None:
            return found
    return None


def python_method(tp, name):
    """The Python function implementing special method `name` of `tp`, or None if it is native.  While
    tracing, it is an environment read (redefining the method on the class retraces)."""
    found = type_lookup(tp, name)
    if type(found) is FunctionType and not is_jitgrad_code(found):
        ctx = context.current()
        return found if ctx is None else ctx.read_method(tp, name, found)
    return None


def _python_accessor(prop, slot):
    """The Python function in slot `fget`/`fset`/`fdel` of property `prop`, or None."""
    accessor = getattr(prop, slot)
    return accessor if type(accessor) is FunctionType and not is_jitgrad_code(accessor) else None


def _instance_dict(obj):
    try:
        return object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return None


def _basic_key(entries, others=(slice, type(Ellipsis), type(None))):
    """Whether index entries are ints (loop counters among them) or entries of the types `others`."""
    return all(type(e) in (int, LoopIndex) or isinstance(e, np.integer) or type(e) in others for e in entries)


def _holds_traced_array(key):
    """Whether subscript `key` holds a traced index array or mask (NumPy would convert it with __array__;
    traced scalars become guarded ints through __index__)."""
    entries = key if type(key) is tuple else (key,)
    return any(type(e) is TracedArray and np.ndim(e.value) > 0 for e in entries)


class _BinarySpec:
    __slots__ = ("native", "dunder", "rdunder", "idunder", "symbol")

    def __init__(self, native, stem, symbol, inplace):
        self.native, self.symbol = native, symbol + ("=" if inplace else "")
        self.dunder, self.rdunder = f"__{stem}__", f"__r{stem}__"
        self.idunder = f"__i{stem}__" if inplace else None


_BINARY_FAMILY = [("ADD", "add", "+"), ("SUBTRACT", "sub", "-"), ("MULTIPLY", "mul", "*"),
                  ("TRUE_DIVIDE", "truediv", "/"), ("FLOOR_DIVIDE", "floordiv", "//"),
                  ("REMAINDER", "mod", "%"), ("POWER", "pow", "**"), ("MATRIX_MULTIPLY", "matmul", "@"),
                  ("LSHIFT", "lshift", "<<"), ("RSHIFT", "rshift", ">>"), ("AND", "and", "&"),
                  ("OR", "or", "|"), ("XOR", "xor", "^")]
_OPERATOR_NAME = {"and": "and_", "or": "or_"}
BINARY = {}
for _op, _stem, _symbol in _BINARY_FAMILY:
    _fn = _OPERATOR_NAME.get(_stem, _stem)
    BINARY[BinaryOp[_op]] = _BinarySpec(getattr(operator, _fn), _stem, _symbol, False)
    BINARY[BinaryOp["INPLACE_" + _op]] = _BinarySpec(getattr(operator, "i" + _fn.rstrip("_")), _stem,
                                                     _symbol, True)

# Compare enum -> (native operator, dunder, reflected dunder, symbol)
COMPARE = {Compare.LT: (operator.lt, "__lt__", "__gt__", "<"), Compare.LE: (operator.le, "__le__", "__ge__", "<="),
           Compare.EQ: (operator.eq, "__eq__", "__eq__", "=="), Compare.NE: (operator.ne, "__ne__", "__ne__", "!="),
           Compare.GT: (operator.gt, "__gt__", "__lt__", ">"), Compare.GE: (operator.ge, "__ge__", "__le__", ">=")}

# unary opcode -> (native operator, dunder)
UNARY = {"UNARY_NEGATIVE": (operator.neg, "__neg__"), "UNARY_POSITIVE": (operator.pos, "__pos__"),
         "UNARY_INVERT": (operator.invert, "__invert__")}


class Protocols:
    """Mixin of the Interpreter: the object protocols (see the module docstring)."""

    def invoke(self, method, obj, *args):
        """Call special method `method` (as found on the type) of `obj` with `args`."""
        if type(method) is FunctionType:
            return self.call(method, (obj,) + args, {})
        return self.call(self.bind_special(method, obj), args, {})

    @staticmethod
    def bind_special(method, obj):
        """`method` (found on `obj`'s type) bound to `obj`, as the descriptor protocol does."""
        if type(method) is FunctionType:
            return MethodType(method, obj)
        get = getattr(type(method), "__get__", None)
        return get(method, obj, type(obj)) if get is not None else method

    # -- operators ---------------------------------------------------------------------------------
    def binary_op(self, spec, a, b):
        """`a <op> b` (or `a <op>= b`) for the _BinarySpec `spec`."""
        a, b = shadowed(a), shadowed(b)
        ta, tb = type(a), type(b)
        if ta is LoopIndex or tb is LoopIndex:
            return counter_binary(spec.native, a, b)
        if spec.idunder is not None and ta in _MUTABLE and self.ctx.loops is not None:
            self.ctx.loops.effect(f"'{spec.symbol}' on a {ta.__name__}")
        if ta in NATIVE_TYPES and tb in NATIVE_TYPES:
            return spec.native(a, b)
        if spec.idunder is not None:
            inplace = python_method(ta, spec.idunder)
            if inplace is not None:
                result = self.call(inplace, (a, b), {})
                if result is not NotImplemented:
                    return result
            elif python_method(ta, spec.dunder) is None and python_method(tb, spec.rdunder) is None:
                return spec.native(a, b)
        elif python_method(ta, spec.dunder) is None and python_method(tb, spec.rdunder) is None:
            return spec.native(a, b)
        result = self._reflected_protocol(a, b, spec.dunder, spec.rdunder)
        if result is NotImplemented:
            raise TypeError(f"unsupported operand type(s) for {spec.symbol}: '{ta.__name__}' and '{tb.__name__}'")
        return result

    def _reflected_protocol(self, a, b, dunder, rdunder):
        """CPython's forward/reflected dispatch; NotImplemented if both sides decline."""
        ta, tb = type(a), type(b)
        forward = type_lookup(ta, dunder)
        reflected = type_lookup(tb, rdunder) if tb is not ta else None
        if reflected is not None and issubclass(tb, ta) and reflected is not type_lookup(ta, rdunder):
            result = self.invoke(reflected, b, a)
            if result is not NotImplemented:
                return result
            reflected = None
        if forward is not None:
            result = self.invoke(forward, a, b)
            if result is not NotImplemented:
                return result
        if reflected is not None:
            return self.invoke(reflected, b, a)
        return NotImplemented

    def compare(self, cmp, a, b):
        """`a <cmp> b` for a `Compare` enum member."""
        native, dunder, rdunder, symbol = COMPARE[cmp]
        a, b = shadowed(a), shadowed(b)
        ta, tb = type(a), type(b)
        if ta is LoopIndex or tb is LoopIndex:
            return counter_compare(native, a, b)
        if (ta in NATIVE_TYPES and tb in NATIVE_TYPES) or (python_method(ta, dunder) is None
                                                            and python_method(tb, rdunder) is None):
            return native(a, b)
        result = self._reflected_protocol(a, b, dunder, rdunder)
        if result is not NotImplemented:
            return result
        if cmp == Compare.EQ:
            return a is b
        if cmp == Compare.NE:
            return a is not b
        raise TypeError(f"'{symbol}' not supported between instances of '{ta.__name__}' and '{tb.__name__}'")

    def unary_op(self, opname, value):
        """`-x`, `+x`, `~x`."""
        native, dunder = UNARY[opname]
        value = shadowed(value)
        method = python_method(type(value), dunder)
        return native(value) if method is None else self.call(method, (value,), {})

    def truth(self, value):
        """`bool(value)` as a branch sees it (a TracedArray records a guard natively)."""
        if value is True or value is False or value is None:
            return value is True
        value = shadowed(value)
        tp = type(value)
        if tp in NATIVE_TYPES:
            return bool(value)
        method = python_method(tp, "__bool__")
        if method is not None:
            result = self.call(method, (value,), {})
            if type(result) is not bool:
                raise TypeError(f"__bool__ should return bool, returned {type(result).__name__}")
            return result
        if type_lookup(tp, "__bool__") is None and python_method(tp, "__len__") is not None:
            return self.length(value) != 0
        return bool(value)

    def length(self, value):
        """`len(value)`."""
        value = shadowed(value)                          # its stand-in may have been reshaped
        method = python_method(type(value), "__len__")
        if method is None:
            return len(value)
        result = operator.index(self.call(method, (value,), {}))
        if result < 0:
            raise ValueError("__len__() should return >= 0")
        return result

    # -- containers --------------------------------------------------------------------------------
    def get_item(self, container, key):
        """`container[key]`."""
        container, key = shadowed(container), shadowed_items(key)
        if type(key) is LoopIndex or type(key) is tuple and has_counter(key):
            container, key = self._counter_key(container, key, read=True)
        if type(container) is np.ndarray and _holds_traced_array(key):   # a plain array at traced positions
            container = TracedArray(constant_ir(container), container.copy())
        method = None if type(container) in NATIVE_TYPES else python_method(type(container), "__getitem__")
        return container[key] if method is None else self.call(method, (container, key), {})

    def set_item(self, container, key, value):
        """`container[key] = value`."""
        if type(key) is LoopIndex or type(key) is tuple and has_counter(key):
            container, key = self._counter_key(container, key, read=False)
        method = None if type(container) in NATIVE_TYPES else python_method(type(container), "__setitem__")
        if method is None:
            setitem_plain(container, key, value)
            if isinstance(container, dict):            # (its keys are hashable: the store succeeded)
                self.ctx.note_store("item", container, key)
            elif type(container) is not np.ndarray:
                self.ctx.note_store("container", container)
            if type(container) in (dict, list):
                self.ctx.note_effect("item", container, key, value)
        else:
            self.call(method, (container, key, value), {})
        if type(container) is not TracedArray and self.ctx.loops is not None and not (
                type(container) is np.ndarray and self.ctx.created_arrays.get(id(container)) is not container
                and contains_traced((value,))):      # a plain array adopted by a traced write: now traced
            self.ctx.loops.effect(f"a store into a {type(container).__name__}")

    @staticmethod
    def _counter_key(container, key, read):
        """A key holding a loop counter (tracer/arrays/loopindex.py): dynamic in the IR for a basic read
        (an element, a row `x[i]`, a column `x[:, i]`: a view linked by the counter) or any write of a
        traced array, and for an element read of a plain one (as a constant), else plain ints (the loop
        is then not rolled)."""
        entries = key if type(key) is tuple else (key,)
        if read and not (type(container) is TracedArray and _basic_key(entries) or type(container) is np.ndarray
                         and len(entries) == np.ndim(container) and _basic_key(entries, ())):
            return container, plain(key, f"an index of a {type(container).__name__}")   # a list, a mask...
        if type(container) is np.ndarray and read and container.dtype.kind in "biufc":
            container = TracedArray(const(container), container.copy())   # a constant read at a traced index
        if type(container) is not TracedArray and not (type(container) is np.ndarray and not read):
            return container, plain(key, f"an index of a {type(container).__name__}")
        return container, index_key(key)

    def del_item(self, container, key):
        """`del container[key]`."""
        method = None if type(container) in NATIVE_TYPES else python_method(type(container), "__delitem__")
        if self.ctx.loops is not None:
            self.ctx.loops.effect(f"deleting from a {type(container).__name__}")
        if method is None:
            del container[key]
        else:
            self.call(method, (container, key), {})

    def contains(self, container, item):
        """`item in container`."""
        container, item = shadowed(container), shadowed(item)
        tp = type(container)
        if tp in NATIVE_TYPES:
            return item in container
        method = python_method(tp, "__contains__")
        if method is not None:
            return self.truth(self.call(method, (container, item), {}))
        if type_lookup(tp, "__contains__") is None and python_method(tp, "__iter__") is not None:
            return any(x is item or self.truth(self.compare(Compare.EQ, x, item)) for x in self.iterate(container))
        return item in container

    # -- iteration ---------------------------------------------------------------------------------
    def get_iter(self, obj):
        """`iter(obj)`."""
        obj = shadowed(obj)
        tp = type(obj)
        if tp is np.ndarray:
            return plain_iterator(obj)
        method = None if tp in NATIVE_TYPES else python_method(tp, "__iter__")
        if method is None:
            return iter(obj)
        it = self.call(method, (obj,), {})
        if type_lookup(type(it), "__next__") is None:
            raise TypeError(f"iter() returned non-iterator of type '{type(it).__name__}'")
        return it

    def next_item(self, it):
        """`next(it)`; raises StopIteration at the end."""
        if type(it) in NATIVE_ITERATORS:
            return next(it)
        method = python_method(type(it), "__next__")
        return next(it) if method is None else self.call(method, (it,), {})

    def iterate(self, obj):
        """A Python iterator over `obj` that runs Python-level `__iter__`/`__next__` interpreted."""
        obj = shadowed(obj)
        tp = type(obj)
        if tp is np.ndarray:
            return plain_iterator(obj)
        if tp in NATIVE_TYPES or (python_method(tp, "__iter__") is None and python_method(tp, "__next__") is None):
            return iter(obj)
        return self._iterate(self.get_iter(obj))

    def _iterate(self, it):
        while True:
            try:
                item = self.next_item(it)
            except StopIteration:
                return
            yield item

    # -- attributes --------------------------------------------------------------------------------
    def load_attr(self, obj, name):
        """`obj.name`, honouring Python properties, descriptors and `__getattr__`."""
        obj = shadowed(obj)
        tp = type(obj)
        if tp is super:
            return self._super_attr(obj, name)
        if tp in NATIVE_TYPES and tp is not types.ModuleType:
            value = getattr(obj, name)
            if tp is TracedArray and name == "flags":     # of the tracer's own copy: not the environment
                self.ctx.mark_local(value)
            return value
        hook = None if isinstance(obj, type) else python_method(tp, "__getattr__")
        try:
            if isinstance(obj, type):    # class attributes: metaclass descriptors are native in practice
                return self.ctx.read_attr(obj, name, getattr(obj, name))
            value = self._getattribute(obj, tp, name, hook is not None)
        except AttributeError:
            if hook is None:
                self.ctx.read_missing_attr(obj, name)   # `hasattr`, `getattr(o, n, default)`, try/except
                raise
            value = self.call(hook, (obj, name), {})
        if isinstance(obj, VALUE_TYPES):
            return value
        if type(value) is int and self.ctx.loops is not None and self.ctx.loops.active:   # (a count? loopattrs.py)
            self.ctx.loops.read_attr(obj, name, self.ctx.frames[-1])
        return self.ctx.read_attr(obj, name, value)

    def _getattribute(self, obj, tp, name, has_hook):
        custom = python_method(tp, "__getattribute__")
        if custom is not None:
            return self.call(custom, (obj, name), {})
        descr = type_lookup(tp, name)
        if descr is not None:
            kind = type(descr)
            if kind is FunctionType:
                own = _instance_dict(obj)
                if own is None or name not in own:
                    return MethodType(descr, obj)
            elif kind is property:
                getter = _python_accessor(descr, "fget")
                if getter is not None:
                    return self.call(getter, (obj,), {})
            else:
                getter = python_method(kind, "__get__")
                if getter is not None:
                    own = _instance_dict(obj)
                    is_data = type_lookup(kind, "__set__") is not None or type_lookup(kind, "__delete__") is not None
                    if is_data or own is None or name not in own:
                        return self.call(getter, (descr, obj, tp), {})
        if has_hook:
            return type_lookup(tp, "__getattribute__")(obj, name)
        return getattr(obj, name)

    def _super_attr(self, proxy, name):
        """`super().name` for an instance: a Python property found after `__thisclass__` is interpreted."""
        receiver, owner = proxy.__self__, proxy.__self_class__
        if receiver is not None and receiver is not owner:
            mro = owner.__mro__
            for klass in mro[mro.index(proxy.__thisclass__) + 1:]:
                descr = klass.__dict__.get(name)
                if descr is not None:
                    getter = _python_accessor(descr, "fget") if type(descr) is property else None
                    if getter is not None:
                        return self.call(getter, (receiver,), {})
                    break
        return getattr(proxy, name)

    def load_method(self, obj, name):
        """(function, self) for a plain Python method found on the type, else (None, obj.name)."""
        tp = type(obj)
        if tp not in NATIVE_TYPES and not isinstance(obj, type) and python_method(tp, "__getattribute__") is None:
            descr = type_lookup(tp, name)
            if type(descr) is FunctionType:
                own = _instance_dict(obj)
                if own is None or name not in own:
                    return self.ctx.read_method(obj, name, descr), obj
        return None, self.load_attr(obj, name)

    def store_attr(self, obj, name, value, generic=False):
        """`obj.name = value`, honouring Python `__setattr__`, property setters and descriptors
        (`generic`: `object.__setattr__(obj, name, value)`, which skips the class's `__setattr__`)."""
        obj = shadowed(obj)
        if self.ctx.loops is not None:         # (outside state for watched loops: rolling.py)
            self.ctx.loops.store_attr(obj, name, f"a store to the attribute {name!r}")
        if not self._attr_hook(obj, name, None if generic else "__setattr__", "fset", "__set__", (value,)):
            (object.__setattr__ if generic else setattr)(obj, name, value)
        self.ctx.note_store("attr", obj, name)
        self.ctx.note_effect("attr", obj, name, value)

    def delete_attr(self, obj, name):
        """`del obj.name`."""
        if self.ctx.loops is not None:
            self.ctx.loops.store_attr(obj, name, f"deleting the attribute {name!r}")
        if not self._attr_hook(obj, name, "__delattr__", "fdel", "__delete__", ()):
            delattr(obj, name)

    def _attr_hook(self, obj, name, dunder, property_slot, descr_slot, extra):
        """Run a Python-level attribute setter/deleter if one applies; False if none does."""
        tp = type(obj)
        if tp in NATIVE_TYPES:
            return False
        method = python_method(tp, dunder) if dunder else None
        if method is not None:
            self.call(method, (obj, name) + extra, {})
            return True
        descr = type_lookup(tp, name)
        if descr is None:
            return False
        if type(descr) is property:
            accessor = _python_accessor(descr, property_slot)
            if accessor is not None:
                self.call(accessor, (obj,) + extra, {})
                return True
            return False
        method = python_method(type(descr), descr_slot)
        if method is not None:
            self.call(method, (descr, obj) + extra, {})
            return True
        return False

    # -- conversions -------------------------------------------------------------------------------
    def convert(self, value, dunder, native, *args):
        """`str(value)`, `repr(value)` or `format(value, spec)` (`native`), interpreting a Python dunder."""
        method = None if type(value) in NATIVE_TYPES else python_method(type(value), dunder)
        if method is None:
            text = native(value, *args)
            return self.ctx.replay.note_text(text) if type(value) is TracedArray and self.ctx.replay else text
        result = self.call(method, (value,) + args, {})
        if not isinstance(result, str):
            raise TypeError(f"{dunder} returned non-string (type {type(result).__name__})")
        return result
