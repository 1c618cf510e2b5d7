"""Products of traced arrays: matmul, dot, vdot, inner, outer, tensordot and einsum, all expressed with
the IR's `dot_general` (plus reshape, broadcast_to, transpose and sum), real or complex (vdot conjugates
its first operand, as NumPy).

Concrete results come from the real NumPy function; the IR is checked against them by `make`.
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from .values import IMPLEMENTATIONS, builder, concrete_of, elementwise, lift, make, reshape, unwrap
from .refusals import refuse, refuse_options


def _dot_general(x, y, contract, batch=((), ())):
    return builder().dot_general(x, y, contract=tuple(map(tuple, contract)), batch=tuple(map(tuple, batch)))


def matmul(x1, x2, out=None, **kwargs):
    """np.matmul / `@`: broadcast batch dims, 1-d operands promoted and the extra axis removed."""
    refuse_options("matmul", out=out, **kwargs)
    concrete = np.matmul(concrete_of(x1), concrete_of(x2))
    x, y = lift(x1), lift(x2)
    x = reshape(x, (1,) + x.shape) if x.ndim == 1 else x
    y = reshape(y, y.shape + (1,)) if y.ndim == 1 else y
    batch = tuple(np.broadcast_shapes(x.shape[:-2], y.shape[:-2]))
    b = builder()
    if x.shape[:-2] != batch:
        x = b.broadcast_to(x, shape=batch + x.shape[-2:])
    if y.shape[:-2] != batch:
        y = b.broadcast_to(y, shape=batch + y.shape[-2:])
    n = len(batch)
    result = _dot_general(x, y, ((n + 1,), (n,)), (tuple(range(n)), tuple(range(n))))
    return make(reshape(result, np.shape(concrete)), concrete)


def _product(np_fn, a, b, contract_axes):
    """np.dot / np.inner: a scalar operand multiplies, else contract `contract_axes(x, y)`."""
    concrete = np_fn(concrete_of(a), concrete_of(b))
    if np.ndim(concrete_of(a)) == 0 or np.ndim(concrete_of(b)) == 0:
        return make(elementwise("multiply", np.multiply, a, b).ir, concrete)
    x, y = lift(a), lift(b)
    return make(_dot_general(x, y, contract_axes(x, y)), concrete)


def dot(a, b, out=None):
    """np.dot: sum over the last axis of a and the second-to-last of b."""
    refuse_options("dot", out=out)
    return _product(np.dot, a, b, lambda x, y: ((x.ndim - 1,), (max(y.ndim - 2, 0),)))


def inner(a, b):
    """np.inner: sum over the last axes."""
    return _product(np.inner, a, b, lambda x, y: ((x.ndim - 1,), (y.ndim - 1,)))


def _flat(v):
    return reshape(v, (v.size,))


def vdot(a, b):
    """np.vdot: dot of the flattened operands, the first one conjugated when complex."""
    concrete = np.vdot(concrete_of(a), concrete_of(b))
    x = lift(a)
    x = builder().conj(x) if x.dtype.kind == "c" else x
    return make(_dot_general(_flat(x), _flat(lift(b)), ((0,), (0,))), concrete)


def outer(a, b, out=None):
    """np.outer: all products of the flattened operands."""
    refuse_options("outer", out=out)
    concrete = np.outer(concrete_of(a), concrete_of(b))
    return make(_dot_general(_flat(lift(a)), _flat(lift(b)), ((), ())), concrete)


def tensordot(a, b, axes=2):
    """np.tensordot."""
    concrete = np.tensordot(concrete_of(a), concrete_of(b), axes)
    x, y = lift(a), lift(b)
    if isinstance(axes, (int, np.integer)):
        xa, ya = tuple(range(x.ndim - axes, x.ndim)), tuple(range(axes))
    else:
        xa, ya = axes
        xa = normalize_axis_tuple(xa if isinstance(xa, (tuple, list)) else (xa,), x.ndim, allow_duplicate=True)
        ya = normalize_axis_tuple(ya if isinstance(ya, (tuple, list)) else (ya,), y.ndim, allow_duplicate=True)
    return make(_dot_general(x, y, (xa, ya)), concrete)


def _parse_einsum(subscripts, ndims):
    """(one letter string per operand, output letters), with '...' spelled out in fresh letters."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    fresh = [c for c in _LETTERS if c not in spec]
    widest = max([n - len(t.replace("...", "")) for t, n in zip(terms, ndims) if "..." in t], default=0)
    ellipsis = "".join(fresh[:widest])
    terms = [t.replace("...", ellipsis[len(ellipsis) - (n - len(t) + 3):] if n - len(t) + 3 else "")
             for t, n in zip(terms, ndims)]
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        letters = "".join(terms)
        output = ellipsis + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis))
    return terms, output


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _distinct_axes(letters, v, sizes):
    """Operand `v` with subscripts `letters` as (distinct letters, IR): repeated letters take the
    diagonal, and size-1 axes are broadcast to the letter's size among all operands."""
    distinct = "".join(dict.fromkeys(letters))
    if distinct != letters:
        grids = []
        for axis, c in enumerate(letters):
            at = [1] * len(distinct)
            at[distinct.index(c)] = v.shape[axis]
            grids.append(builder().const(np.arange(v.shape[axis]).reshape(at)))
        v = builder().index(v, *grids, spec=tuple(("array", j) for j in range(len(letters))))
    shape = tuple(sizes[c] for c in distinct)
    return distinct, v if v.shape == shape else builder().broadcast_to(v, shape=shape)


def _sum_out(v, letters, keep):
    """Sum `v` over the axes whose letters are not in `keep`."""
    axes = tuple(i for i, c in enumerate(letters) if c not in keep)
    if not axes:
        return v, letters
    return builder().sum(v, axis=axes, keepdims=False), "".join(c for c in letters if c in keep)


def _sublist_letters(sublist):
    """An einsum sublist ([0, 1], [Ellipsis, 2]) as subscript letters."""
    letters = []
    for s in sublist:
        if s is Ellipsis:
            letters.append("...")
        elif isinstance(s, (int, np.integer)) and 0 <= s < 52:
            letters.append("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[s])
        else:
            refuse(f"np.einsum: sublist entry {s!r} is not an axis label (an int in [0, 52) or Ellipsis)")
    return "".join(letters)


def _sublist_form(*arguments):
    """(subscripts string, operands) of np.einsum(op0, sublist0, op1, sublist1, ..., [output sublist])."""
    operands, sublists = arguments[0::2], arguments[1::2]
    inputs = ",".join(_sublist_letters(s) for s in sublists)
    if len(arguments) % 2:                              # a trailing output sublist
        return inputs + "->" + _sublist_letters(operands[-1]), operands[:-1]
    return inputs, operands


def einsum(subscripts, *operands, out=None, dtype=None, order="K", casting="safe", optimize=False):
    """np.einsum (string form, with '...' and repeated subscripts), contracted pairwise left to right
    with dot_general; `optimize` changes only NumPy's order of work, not the result."""
    refuse_options("einsum", out=out, dtype=dtype)
    if not isinstance(subscripts, str):
        subscripts, operands = _sublist_form(subscripts, *operands)
    concrete = np.einsum(subscripts, *unwrap(operands))
    lifted = [lift(o) for o in operands]
    terms, output = _parse_einsum(subscripts, [v.ndim for v in lifted])
    sizes = {}
    for letters, v in zip(terms, lifted):
        for c, n in zip(letters, v.shape):
            sizes[c] = max(sizes.get(c, 1), n)
    work = [_distinct_axes(letters, v, sizes) for letters, v in zip(terms, lifted)]
    while len(work) > 1:
        (la, x), (lb, y) = work[0], work[1]
        needed = set(output).union(*[set(letters) for letters, _ in work[2:]])
        x, la = _sum_out(x, la, needed | set(lb))
        y, lb = _sum_out(y, lb, needed | set(la))
        batch = [c for c in la if c in lb and c in needed]
        contract = [c for c in la if c in lb and c not in needed]
        r = _dot_general(x, y, ([la.index(c) for c in contract], [lb.index(c) for c in contract]),
                         ([la.index(c) for c in batch], [lb.index(c) for c in batch]))
        shared = set(batch) | set(contract)
        letters = "".join(batch) + "".join(c for c in la if c not in shared) + "".join(c for c in lb if c not in shared)
        work = [(letters, r)] + work[2:]
    letters, v = work[0]
    v, letters = _sum_out(v, letters, set(output))
    perm = tuple(letters.index(c) for c in output)
    if perm != tuple(range(len(perm))):
        v = builder().transpose(v, perm=perm)
    return make(v, concrete)


IMPLEMENTATIONS.update(dot=dot, matmul=matmul)
