"""Index arithmetic for the lowering: broadcasting index maps, row-major strides, and the static layout
of an index spec (which output axis drives which axis of x, where NumPy puts advanced-index dims).

Index lists hold Python ints (static) or i64 SSA names; the helpers fold static parts in Python so the
IR stays small and affine for LLVM's vectorizer.
"""
import numpy as np

from .errors import LoweringUnsupported


def strides_of(shape):
    """Row-major element strides of `shape`."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def broadcast_index(src_shape, dst_shape, idx):
    """The index into an operand of `src_shape` broadcast to `dst_shape`, given an index of dst."""
    lead = len(dst_shape) - len(src_shape)
    return [0 if d == 1 else idx[lead + k] for k, d in enumerate(src_shape)]


def iadd(f, a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    if b == 0:
        return a
    return f.emit(f"add nsw i64 {a}, {b}")


def imul(f, a, c):
    """a * c for an index a and a static int c."""
    if isinstance(a, int):
        return a * c
    if c == 0:
        return 0
    if c == 1:
        return a
    return f.emit(f"mul nsw i64 {a}, {c}")


def linear(f, idx, strides, offset=0):
    """offset + sum(idx[k] * strides[k])."""
    total = offset
    for i, s in zip(idx, strides):
        total = iadd(f, total, imul(f, i, s))
    return total


def unravel(f, lin, shape):
    """The row-major multi-index of linear position `lin` in `shape`."""
    idx = []
    for d, s in zip(shape, strides_of(shape)):
        if d == 1:
            idx.append(0)
        elif isinstance(lin, int):
            idx.append((lin // s) % d)
        else:
            q = lin if s == 1 else f.emit(f"udiv i64 {lin}, {s}")
            idx.append(f.emit(f"urem i64 {q}, {d}") if s * d < 2 ** 62 else q)
    return idx


class IndexLayout:
    """How x[spec] maps output positions to x positions.

    `axes[k]` says how x's axis k is addressed: ('slice', out_axis, start, step), ('int', k) or
    ('array', j) (j-th index array, read at the broadcast index-block of the output); `block` is the
    list of output axes holding the broadcast index-array dims; `out_shape` the result shape.
    """

    def __init__(self, x_shape, spec, array_shapes):
        consumed = sum(1 for e in spec if e[0] != "newaxis")
        entries = list(spec) + [("slice", 0, d, 1) for d in x_shape[consumed:]]
        advanced = [i for i, e in enumerate(entries) if e[0] == "array"]
        if advanced:
            advanced = [i for i, e in enumerate(entries) if e[0] in ("array", "int")]
        self.bshape = tuple(np.broadcast_shapes(*array_shapes)) if array_shapes else ()
        adjacent = advanced == list(range(advanced[0], advanced[-1] + 1)) if advanced else True
        out_shape, self.axes, self.block = [], [], []

        def place_block():
            self.block = list(range(len(out_shape), len(out_shape) + len(self.bshape)))
            out_shape.extend(self.bshape)

        if advanced and not adjacent:
            place_block()
        x_axis = 0
        for i, e in enumerate(entries):
            if advanced and adjacent and i == advanced[0]:
                place_block()
            if e[0] == "newaxis":
                out_shape.append(1)
                continue
            dim = x_shape[x_axis]
            if e[0] == "slice":
                _, start, length, step = e
                self.axes.append(("slice", len(out_shape), start, step))
                out_shape.append(length)
            elif e[0] == "int":
                k = e[1] + dim if e[1] < 0 else e[1]
                if not 0 <= k < dim:
                    raise LoweringUnsupported(f"static index {e[1]} out of range for axis of {dim}")
                self.axes.append(("int", k))
            else:
                self.axes.append(("array", e[1]))
            x_axis += 1
        self.out_shape = tuple(out_shape)
