"""Pytrees: nested tuples, lists, dicts, namedtuples and dataclasses, flattened to leaves and back.

`flatten(tree) -> (leaves, treedef)`; `unflatten(treedef, leaves) -> tree`.  A treedef is hashable
(it is part of the cache key) and says how to rebuild: dicts keep their key order, dataclass instances
are rebuilt field by field without running `__init__`.
"""
import dataclasses


def _children(tree):
    """(kind, aux, children) for a container, or None for a leaf."""
    t = type(tree)
    if t is tuple or t is list:
        return t, None, tree
    if t is dict:
        keys = tuple(tree)
        return dict, keys, [tree[k] for k in keys]
    if isinstance(tree, tuple) and hasattr(t, "_fields"):
        return t, None, tuple(tree)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        names = tuple(f.name for f in dataclasses.fields(tree))
        return t, names, [getattr(tree, n) for n in names]
    return None


def flatten(tree):
    """Leaves of `tree` in a fixed order, and the hashable structure to rebuild it."""
    leaves = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree, leaves):
    node = _children(tree)
    if node is None:
        leaves.append(tree)
        return None
    kind, aux, children = node
    return kind, aux, tuple(_flatten(c, leaves) for c in children)


def unflatten(treedef, leaves):
    """Rebuild the tree described by `treedef` from `leaves` (an iterable, consumed in order)."""
    return _unflatten(treedef, iter(leaves))


def _unflatten(treedef, leaves):
    if treedef is None:
        return next(leaves)
    kind, aux, children = treedef
    values = [_unflatten(c, leaves) for c in children]
    if kind is tuple or kind is list:
        return kind(values)
    if kind is dict:
        return dict(zip(aux, values))
    if aux is None:  # namedtuple
        return kind(*values)
    obj = object.__new__(kind)  # dataclass: set fields directly, like copy.replace without __init__
    for name, value in zip(aux, values):
        object.__setattr__(obj, name, value)
    return obj


def leaf_count(treedef):
    """How many leaves a tree of this structure has."""
    if treedef is None:
        return 1
    return sum(leaf_count(c) for c in treedef[2])
