"""The state of an interpreted frame at a loop header (`Header`), flattened for comparison (rolling.py):
its fast locals, cells and value stack, through tuples and lists and the attributes of the objects the
trace made whose state is their `__dict__` (loopattrs.py) (`flatten_frame`); whether two such states agree in
everything but traced values and the loop counter (`same_state`); and rebuilding the frame (and those
objects' attributes) with values replaced after a loop op (`rebuild`).
"""
import types
import weakref

import numpy as np

from .loopattrs import Objects, places
from ..arrays.loopindex import LoopIndex
from ..arrays.sizeint import SizeInt
from ..arrays.values import TracedArray
from ..recording.errormode import mode_state

FLATTEN_LIMIT = 64            # longer tuples and lists are compared by identity
_STATIC_TYPES = (int, float, complex, str, bytes, bool, type(None))


class _Struct:
    """A tuple or list of `n` items in a flattened frame state."""

    __slots__ = ("kind", "n")

    def __init__(self, kind, n):
        self.kind, self.n = kind, n

    def __eq__(self, other):
        return type(other) is _Struct and other.kind is self.kind and other.n == self.n


class _Attrs:
    """The attribute names of an object in a flattened frame state (its values follow, in that order)."""

    __slots__ = ("names",)

    def __init__(self, names):
        self.names = names

    def __eq__(self, other):
        return type(other) is _Attrs and other.names == self.names


class _EmptyCell:
    __slots__ = ()


_EMPTY = _EmptyCell()


class _Weak:
    """A plain ndarray in a flattened frame state, by identity without a reference (a plain array made
    while tracing is adopted by a traced write only while nothing else holds it: aliasing.py)."""

    __slots__ = ("ref",)

    def __init__(self, array):
        self.ref = weakref.ref(array)

    def same(self, other):
        return type(other) is _Weak and self.ref() is other.ref() is not None


def _roots(frame, stack_top):
    """The frame's fast locals, cells' contents and value stack but its `stack_top` items."""
    roots = list(frame.fast)
    for cell in frame.cells:        # a slot may hold a plain value: a 3.12+ inlined comprehension's local
        try:
            roots.append(cell.cell_contents if type(cell) is types.CellType else cell)
        except ValueError:
            roots.append(_EMPTY)
    roots.extend(frame.stack[:len(frame.stack) - stack_top])
    return roots


def flatten_frame(frame, stack_top=1, opaque=(), objects=None):
    """The frame's state as a flat list (the iterator on top of the stack excluded: `stack_top` items);
    a list whose id `opaque` maps is the marker it maps it to (compared by identity: appends.py).  An
    object that `objects` (a loopattrs.Objects) takes is followed by its attributes (once, where it is
    first met), which it notes."""
    items, work = [], _roots(frame, stack_top)[::-1]
    while work:
        x = work.pop()
        t = type(x)
        if t is list and id(x) in opaque:
            items.append(opaque[id(x)])
            if getattr(opaque[id(x)], "last", False):      # (its last item: `lst[-1]` is read, appends.py)
                items.append(x[-1] if x else _EMPTY)
        elif (t is tuple or t is list) and len(x) <= FLATTEN_LIMIT:
            items.append(_Struct(t, len(x)))
            work.extend(reversed(x))
        else:
            items.append(_Weak(x) if t is np.ndarray else x)
            state = objects.take(x) if objects is not None else None
            if state is not None:
                items.append(_Attrs(tuple(state)))
                work.extend(reversed(state.values()))
    return items


def _same_static(a, b):
    if a is b:
        return True
    t = type(a)
    if t is SizeInt:              # an int argument plus a constant (arrays/sizeint.py), made afresh
        return type(b) is SizeInt and a.arg is b.arg and a.offset == b.offset
    if t is _Weak:
        return a.same(b)
    if t is not type(b):
        return False
    if t is float or t is complex:
        return np.asarray(a).tobytes() == np.asarray(b).tobytes()
    if t in _STATIC_TYPES:
        return a == b
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return False


def same_state(before, after, watch):
    """Whether two headers' flattened states agree in everything but traced values and `watch`'s counter
    (the same affine function of it, relative to the header)."""
    xs, ys = before.items, after.items
    if len(xs) != len(ys) or before.aliases != after.aliases:
        return False
    for a, b in zip(xs, ys):
        ta = type(a)
        if ta is TracedArray:
            if type(b) is not TracedArray or a.ir.shape != b.ir.shape or a.ir.dtype != b.ir.dtype \
                    or type(a.value) is not type(b.value):
                return False
        elif ta is LoopIndex:
            if type(b) is not LoopIndex or a.watch is not b.watch:
                return False
            if (a.relative(before.last) != b.relative(after.last) if a.watch is watch else
                    a.relative(0) != b.relative(0)):
                return False
        elif ta is _Struct or ta is _Attrs:
            if not a == b:
                return False
        elif not _same_static(a, b):
            return False
    return True


def rebuild(frame, replace, counter, stack_top=1, opaque=(), objects=()):
    """Replace, in the frame's locals, cells and stack (through tuples and lists, but its `stack_top`
    items and the lists whose ids are in `opaque`) and in the attributes of `objects` (their
    `__dict__`s), the objects `replace` maps by id, and each LoopIndex `i` by `counter(i)`."""
    def rebuilt(x):
        t = type(x)
        if t is TracedArray:
            return replace.get(id(x), x)
        if t is LoopIndex:
            return counter(x)
        if (t is tuple or t is list) and len(x) <= FLATTEN_LIMIT and id(x) not in opaque:
            items = [rebuilt(e) for e in x]
            if any(e is not o for e, o in zip(items, x)):
                return t(items)
        return x

    frame.fast[:] = [rebuilt(x) for x in frame.fast]
    for k, cell in enumerate(frame.cells):
        if type(cell) is not types.CellType:          # a plain value in a cell slot (see _flatten)
            frame.cells[k] = rebuilt(cell)
            continue
        try:
            contents = cell.cell_contents
        except ValueError:
            continue
        new = rebuilt(contents)
        if new is not contents:
            cell.cell_contents = new
    below = len(frame.stack) - stack_top
    frame.stack[:below] = [rebuilt(x) for x in frame.stack[:below]]
    for obj in objects:
        state = vars(obj)
        for name, x in list(state.items()):
            new = rebuilt(x)
            if new is not x:
                state[name] = new


class Header:
    """One arrival at a loop header: node count, flattened frame state, environment size, iterator
    state and the counter's last value."""

    __slots__ = ("n", "items", "irs", "aliases", "env", "next", "last", "ints", "floats", "mode", "lengths", "objects")

    def __init__(self, ctx, frame, watch):
        self.next, step = watch.state()
        self.last = self.next - step                         # the range value of the iteration that ended
        self.n = len(ctx.builder.nodes)
        objects = Objects(ctx)               # (whose attributes are state too: loopattrs.py)
        self.items = flatten_frame(frame, watch.STACK_TOP, watch.appends.markers, objects)
        self.objects = objects.found
        self.lengths = watch.appends.lengths()          # of the lists the loop appends to (appends.py)
        self.irs = [x.ir if type(x) is TracedArray else None for x in self.items]   # (arrays written in place
        self.env = len(ctx.env)                                                     # keep their object)
        self.ints, self.floats = {}, {}      # variables and attributes holding Python ints, floats (stepping.py)
        for key, holder, slot in places(frame, self.objects):
            kind = type(holder[slot])
            if kind is int or kind is float:
                (self.ints if kind is int else self.floats)[key] = holder[slot]
        self.mode = mode_state()                        # NumPy's error mode (errstate blocks: effects.py)
        first = {}                   # which items are one traced object (writes into one reach the others)
        self.aliases = [first.setdefault(id(x), k) if type(x) is TracedArray else None
                        for k, x in enumerate(self.items)]
