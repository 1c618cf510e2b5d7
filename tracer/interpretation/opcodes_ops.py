"""Opcode handlers for operators, subscripts and structural pattern matching (`match`).

The operator handlers look their opcode's meaning up in the tables of `protocols` (one binary-operator
table, one comparison table, one unary table) and run the protocol there.
"""
from .protocols import BINARY, type_lookup
from ..arrays.values import shadowed

_MAPPING_FLAG, _SEQUENCE_FLAG = 1 << 6, 1 << 5
# Builtin classes whose single positional sub-pattern matches the subject itself (`case int(x)`).
_SELF_MATCHING = (bool, bytearray, bytes, dict, float, frozenset, int, list, set, str, tuple)


class OperatorOps:
    """Mixin of the Interpreter: operator, subscript and match opcodes."""

    def op_BINARY_OP(self, frame, op):
        stack = frame.stack
        rhs = stack.pop()
        stack[-1] = self.binary_op(BINARY[op], stack[-1], rhs)

    def op_COMPARE_OP(self, frame, cmp):
        stack = frame.stack
        rhs = stack.pop()
        stack[-1] = self.compare(cmp, stack[-1], rhs)

    def op_IS_OP(self, frame, invert):
        stack = frame.stack
        rhs = stack.pop()
        stack[-1] = (shadowed(stack[-1]) is shadowed(rhs)) != bool(invert)     # an array and its stand-in

    def op_CONTAINS_OP(self, frame, invert):
        stack = frame.stack
        container = stack.pop()
        stack[-1] = self.contains(container, stack[-1]) != bool(invert)

    def op_UNARY_NEGATIVE(self, frame, arg):
        frame.stack[-1] = self.unary_op("UNARY_NEGATIVE", frame.stack[-1])

    def op_UNARY_POSITIVE(self, frame, arg):
        frame.stack[-1] = self.unary_op("UNARY_POSITIVE", frame.stack[-1])

    def op_UNARY_INVERT(self, frame, arg):
        frame.stack[-1] = self.unary_op("UNARY_INVERT", frame.stack[-1])

    def op_UNARY_NOT(self, frame, arg):
        frame.stack[-1] = not self.truth(frame.stack[-1])

    def op_BINARY_SUBSCR(self, frame, arg):
        stack = frame.stack
        key = stack.pop()
        stack[-1] = self.get_item(stack[-1], key)

    def op_STORE_SUBSCR(self, frame, arg):
        stack = frame.stack
        key, container, value = stack.pop(), stack.pop(), stack.pop()
        self.set_item(container, key, value)

    def op_BINARY_SLICE(self, frame, arg):
        stack = frame.stack
        stop, start = stack.pop(), stack.pop()
        stack[-1] = self.get_item(stack[-1], slice(start, stop))

    def op_STORE_SLICE(self, frame, arg):
        stack = frame.stack
        stop, start, container, value = stack.pop(), stack.pop(), stack.pop(), stack.pop()
        self.set_item(container, slice(start, stop), value)

    def op_DELETE_SUBSCR(self, frame, arg):
        stack = frame.stack
        key, container = stack.pop(), stack.pop()
        self.del_item(container, key)

    # -- match -------------------------------------------------------------------------------------
    def op_GET_LEN(self, frame, arg):
        frame.stack.append(self.length(frame.stack[-1]))

    def op_MATCH_MAPPING(self, frame, arg):
        frame.stack.append(bool(type(frame.stack[-1]).__flags__ & _MAPPING_FLAG))

    def op_MATCH_SEQUENCE(self, frame, arg):
        frame.stack.append(bool(type(frame.stack[-1]).__flags__ & _SEQUENCE_FLAG))

    def op_MATCH_KEYS(self, frame, arg):
        keys, subject = frame.stack[-1], frame.stack[-2]
        if len(set(keys)) != len(keys):
            raise ValueError(f"mapping pattern checks duplicate key ({keys!r})")
        get = self.load_attr(subject, "get")
        missing = object()
        values = []
        for key in keys:
            value = self.call(get, (key, missing), {})
            if value is missing:
                frame.stack.append(None)
                return
            values.append(value)
        frame.stack.append(tuple(values))

    def op_MATCH_CLASS(self, frame, count):
        stack = frame.stack
        names, cls, subject = stack.pop(), stack.pop(), stack.pop()
        stack.append(self._match_class(subject, cls, count, names))

    def _match_class(self, subject, cls, count, names):
        """The attributes a class pattern extracts from `subject`, or None when it does not match."""
        if not isinstance(cls, type):
            raise TypeError("called match pattern must be a type")
        if not isinstance(subject, cls):
            return None
        attributes, seen = [], set()
        if count:
            match_args = type_lookup(cls, "__match_args__")
            if match_args is None:
                if not issubclass(cls, _SELF_MATCHING) or count > 1:
                    raise TypeError(f"{cls.__name__}() accepts 0 positional sub-patterns ({count} given)")
                attributes.append(subject)
                positional = ()
            else:
                if type(match_args) is not tuple:
                    raise TypeError(f"{cls.__name__}.__match_args__ must be a tuple (got {type(match_args).__name__})")
                if count > len(match_args):
                    raise TypeError(f"{cls.__name__}() accepts {len(match_args)} positional sub-pattern"
                                    f"{'' if len(match_args) == 1 else 's'} ({count} given)")
                positional = match_args[:count]
        else:
            positional = ()
        for name in positional + tuple(names):
            if name in seen:
                raise TypeError(f"{cls.__name__}() got multiple sub-patterns for attribute '{name}'")
            seen.add(name)
            try:
                attributes.append(self.load_attr(subject, name))
            except AttributeError:
                return None
        return tuple(attributes)

