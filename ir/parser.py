"""The parser of the trace text form (see `printer.py`): `parse_trace(format_trace(t))` prints as `t`.

Nodes are rebuilt through `Builder.emit`, so every shape and dtype is recomputed by the SHAPE table and
must agree with the type written after the colon.  Param values are Python literals read with
`ast.literal_eval`, plus the bare names `nan`, `inf`, dtype short names (f64, i32, b1...) and
`complex(re, im)`, and the names of custom_call rules (ir/custom_ops.py).  A loop node's line (type
`loop`) is followed by its body, a nested trace.
"""
import ast
import re

import numpy as np

from .builder import Builder
from .custom_ops import RULES
from .errors import IRError
from .loops import RUNTIME_ROWS
from .ops import TUPLE
from .printer import TUPLE_TYPES, parse_dtype_name

_NAME = r"%[\w.]+"
_TYPE = r"(\w+)\[([\d,\s?]*)\]"
_HEADER = re.compile(r"trace\s*\((.*)\)\s*\{")
_TYPED_NAME = re.compile(rf"\s*({_NAME})\s*:\s*{_TYPE}\s*")
_NODE = re.compile(rf"({_NAME})\s*=\s*(\w+)\b(.*)")
_TYPE_ONLY = re.compile(rf"\s*(?:{_TYPE}|({'|'.join(TUPLE_TYPES)}))\s*")
_FLOAT_NAMES = {"nan": float("nan"), "inf": float("inf")}


class _BareNames(ast.NodeTransformer):
    """Turns the bare names the printer writes (nan, inf, dtype short names) into constants."""

    def visit_Name(self, node):
        if node.id in RULES:   # a custom_call rule, by its name
            return ast.copy_location(ast.Constant(value=RULES[node.id]), node)
        value = _FLOAT_NAMES[node.id] if node.id in _FLOAT_NAMES else parse_dtype_name(node.id)
        return ast.copy_location(ast.Constant(value=value), node)

    def visit_Call(self, node):
        if not (isinstance(node.func, ast.Name) and node.func.id == "complex" and len(node.args) == 2
                and not node.keywords):
            raise IRError(f"only complex(re, im) calls may appear in params, got {ast.unparse(node)}")
        real, imag = (_literal(a) for a in node.args)
        return ast.copy_location(ast.Constant(value=complex(real, imag)), node)


def _literal(node):
    return ast.literal_eval(_BareNames().visit(node))


def _parse_params(text):
    """`{axis=(0,), keepdims=False}` -> dict (text is what follows the operands)."""
    text = text.strip()
    if not text:
        return {}
    if not (text.startswith("{") and text.endswith("}")):
        raise IRError(f"expected '{{params}}', got {text!r}")
    try:
        call = ast.parse(f"f({text[1:-1]})", mode="eval").body
        if call.args:
            raise IRError(f"params must be written name=value: {text!r}")
        return {kw.arg: _literal(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError) as e:
        raise IRError(f"bad params {text!r}: {e}") from e


def _parse_type(dtype_text, shape_text):
    shape = tuple(RUNTIME_ROWS if d.strip() == "?" else int(d) for d in shape_text.split(",") if d.strip())
    return shape, parse_dtype_name(dtype_text)


def _split_operands(text):
    """'%0, %1 {params}' -> (['%0', '%1'], '{params}')."""
    brace = text.find("{")
    operands, params = (text, "") if brace < 0 else (text[:brace], text[brace:])
    names = [s.strip() for s in operands.split(",") if s.strip()]
    for n in names:
        if not re.fullmatch(_NAME, n):
            raise IRError(f"bad operand {n!r}")
    return names, params


class _Parser:
    """Parses the lines of one trace; `lines` is shared with the parsers of nested bodies (`pos` is
    the next line to read)."""

    def __init__(self, lines, pos):
        self.lines, self.pos = lines, pos
        self.b = Builder()
        self.env = {}

    def lookup(self, name):
        if name not in self.env:
            raise IRError(f"{name} is used before it is defined")
        return self.env[name]

    def define(self, name, value):
        if name in self.env:
            raise IRError(f"{name} is defined twice")
        self.env[name] = value

    def next_line(self):
        if self.pos >= len(self.lines):
            raise IRError("unexpected end of the text: a trace is 'trace (inputs) {', node lines, "
                          "'return outputs', '}'")
        self.pos += 1
        return self.lines[self.pos - 1]

    def parse(self):
        """Read one whole trace from the current line; returns it."""
        self.header(self.next_line())
        while True:
            line = self.next_line()
            if line.startswith("return"):
                outputs = self.outputs(line)
                if self.next_line() != "}":
                    raise IRError(f"line {self.pos}: expected '}}' after the return line")
                return self.b.build(outputs)
            self.node(line)

    def header(self, line):
        m = _HEADER.fullmatch(line)
        if not m:
            raise IRError(f"line {self.pos}: expected 'trace (inputs) {{', got {line!r} (a trace is "
                          "'trace (inputs) {', node lines, 'return outputs', '}')")
        inside = m.group(1).strip()
        for part in re.split(rf",\s*(?={_NAME})", inside) if inside else []:
            typed = _TYPED_NAME.fullmatch(part)
            if not typed:
                raise IRError(f"line {self.pos}: bad input declaration {part!r}")
            shape, dtype = _parse_type(typed.group(2), typed.group(3))
            self.define(typed.group(1), self.b.input(shape, dtype))

    def node(self, line):
        where = f"line {self.pos}: "
        m = _NODE.fullmatch(line)
        if not m:
            raise IRError(f"{where}expected '%name = op operands {{params}} : type', got {line!r}")
        name, op, rest = m.groups()
        body, sep, type_part = rest.rpartition(" : ")
        typed = _TYPE_ONLY.fullmatch(type_part)
        if not sep or not typed:
            raise IRError(f"{where}missing ' : type' at the end of {line!r}")
        shape, dtype = ((), TUPLE) if typed.group(3) else _parse_type(typed.group(1), typed.group(2))
        try:
            operands, params_text = _split_operands(body)
            params = _parse_params(params_text)
        except IRError as e:
            raise IRError(where + e.message) from e
        if op == "const":
            params["value"] = np.array(params.get("value"), dtype=dtype).reshape(shape)
            params["value"].flags.writeable = False
        if dtype == TUPLE:                          # a loop or cond: its body or branches follow
            if op == "cond":
                params["branches"] = (self.nested(), self.nested())
            else:
                params["body"] = self.nested()
        try:
            value = self.b.emit(op, *[self.lookup(n) for n in operands], **params)
        except IRError as e:
            raise IRError(where + e.message) from e
        if value.shape != shape or value.dtype != dtype:
            raise IRError(f"{where}{name}: written type {shape}/{dtype} but {op} gives {value.shape}/{value.dtype}")
        self.define(name, value)

    def nested(self):
        """The trace written from the current line on (a loop's body, a cond's branch)."""
        parser = _Parser(self.lines, self.pos)
        trace = parser.parse()
        self.pos = parser.pos
        return trace

    def outputs(self, line):
        names = [s.strip() for s in line[len("return"):].split(",") if s.strip()]
        return [self.lookup(n) for n in names]


def parse_trace(text):
    """Parse the text form of a trace (as printed by `format_trace`) into a Trace."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    parser = _Parser(lines, 0)
    trace = parser.parse()
    if parser.pos != len(lines):
        raise IRError(f"line {parser.pos + 1}: text after the end of the trace")
    return trace
